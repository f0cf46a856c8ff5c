// GLWE secret key: S = (S_0, ..., S_{k-1}), k polynomials of Z[X]/(X^N + 1) with uniform binary
// coefficients. A GLWE ciphertext (A_0, ..., A_{k-1}, B) under S has phase B - sum_j A_j S_j.
// Read as an LWE key of dimension k N (coefficients of S_0, then S_1, ...), it is the key of the
// LWE ciphertexts that sample extraction produces (the "big" LWE key of a parameter set).
#pragma once

#include "common/check.h"
#include "tfhe/commons/dimensions.h"
#include "tfhe/entities/lwe_secret_key.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct GlweSecretKey {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    std::vector<uint64_t> data; // k * N values in {0, 1}, polynomial j at [j N, (j + 1) N)

    GlweSecretKey() = default;
    GlweSecretKey(GlweDimension k, PolynomialSize n)
        : glwe_dimension(k), polynomial_size(n), data(k.value * n.value, 0) {}

    std::span<const uint64_t> polynomial(size_t j) const {
        FHEGPT_CHECK(j < glwe_dimension.value, "polynomial %zu of a GLWE key of dimension %zu", j,
                     glwe_dimension.value);
        return {data.data() + j * polynomial_size.value, polynomial_size.value};
    }
    // The same coefficients as an LWE secret key of dimension k N.
    LweSecretKey as_lwe_secret_key() const {
        LweSecretKey key;
        key.data = data;
        return key;
    }
    bool operator==(const GlweSecretKey &) const = default;
};

} // namespace fhegpt::tfhe
