// LWE bootstrapping key in the Fourier domain: the LweBootstrapKey with every polynomial
// transformed by the negacyclic FFT (NegacyclicFft::forward_torus, N doubles per polynomial),
// so that each CMux of a blind rotation costs (k + 1) l forward and k + 1 inverse FFTs and
// pointwise products. Layout for streaming: GGSW i, row r, column c (polynomial c of the row's
// GLWE ciphertext) at offset ((i rows + r) (k + 1) + c) N, rows = l (k + 1): a blind rotation
// reads the key once, front to back. With a grouping factor g > 1 it is a multi-bit key of
// (n / g) 2^g GGSWs (lwe_multi_bit_bootstrap_key.h), group j from ggsw(j 2^g) on, each group's
// doubles in the block layout of algorithms/multi_bit_external_product.h instead.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/negacyclic_fft.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

struct FourierLweBootstrapKey {
    LweDimension input_lwe_dimension;
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    LweBskGroupingFactor grouping_factor; // 1: classic
    aligned_vector<double> data;

    FourierLweBootstrapKey() = default;
    FourierLweBootstrapKey(LweDimension n, GlweDimension k, PolynomialSize big_n, DecompositionBaseLog base_log_,
                           DecompositionLevelCount levels, LweBskGroupingFactor grouping = LweBskGroupingFactor{})
        : input_lwe_dimension(n), glwe_dimension(k), polynomial_size(big_n), base_log(base_log_), level_count(levels),
          grouping_factor(grouping),
          data(grouping.ggsw_count(n) * levels.value * (k.value + 1) * (k.value + 1) * big_n.value, 0.0) {}

    size_t ggsw_count() const { return grouping_factor.ggsw_count(input_lwe_dimension); }

    size_t row_count() const { return level_count.value * (glwe_dimension.value + 1); }
    size_t ggsw_size() const { return row_count() * (glwe_dimension.value + 1) * polynomial_size.value; }
    const double * ggsw(size_t i) const { return data.data() + i * ggsw_size(); }
    double * ggsw(size_t i) { return data.data() + i * ggsw_size(); }
    LweDimension output_lwe_dimension() const { return LweDimension{glwe_dimension.value * polynomial_size.value}; }
    size_t size_bytes() const { return data.size() * sizeof(double); }
};

} // namespace fhegpt::tfhe
