// GGSW ciphertext in the Fourier domain: every polynomial of the GgswCiphertext transformed by
// the negacyclic FFT (N doubles each). Row r, column c at offset (r (k + 1) + c) N, the same
// layout as one GGSW of a FourierLweBootstrapKey; FourierGgswView reads either.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/negacyclic_fft.h"

namespace fhegpt::tfhe {

struct FourierGgswCiphertext {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    aligned_vector<double> data; // l (k + 1) rows of (k + 1) N doubles
};

// A non-owning view of a Fourier-domain GGSW (standalone or inside a bootstrapping key).
struct FourierGgswView {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    const double * data = nullptr;

    size_t row_count() const { return level_count.value * (glwe_dimension.value + 1); }
};

inline FourierGgswView view_of(const FourierGgswCiphertext & ggsw) {
    return {ggsw.glwe_dimension, ggsw.polynomial_size, ggsw.base_log, ggsw.level_count, ggsw.data.data()};
}

} // namespace fhegpt::tfhe
