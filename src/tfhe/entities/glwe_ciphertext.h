// GLWE ciphertext: (A_0, ..., A_{k-1}, B) with polynomials in T[X]/(X^N + 1) and
// B = sum_j A_j S_j + M + E under the GLWE secret key S; its phase is B - sum_j A_j S_j = M + E.
// Stored as (k + 1) N torus elements, polynomial j at [j N, (j + 1) N), the body last.
#pragma once

#include "common/check.h"
#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct GlweCiphertext {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    std::vector<uint64_t> data; // (k + 1) * N

    GlweCiphertext() = default;
    GlweCiphertext(GlweDimension k, PolynomialSize n)
        : glwe_dimension(k), polynomial_size(n), data((k.value + 1) * n.value, 0) {}

    std::span<uint64_t> polynomial(size_t j) {
        FHEGPT_CHECK(j <= glwe_dimension.value, "polynomial %zu of a GLWE ciphertext of dimension %zu", j,
                     glwe_dimension.value);
        return {data.data() + j * polynomial_size.value, polynomial_size.value};
    }
    std::span<const uint64_t> polynomial(size_t j) const {
        FHEGPT_CHECK(j <= glwe_dimension.value, "polynomial %zu of a GLWE ciphertext of dimension %zu", j,
                     glwe_dimension.value);
        return {data.data() + j * polynomial_size.value, polynomial_size.value};
    }
    std::span<uint64_t> body() { return polynomial(glwe_dimension.value); }
    std::span<const uint64_t> body() const { return polynomial(glwe_dimension.value); }
    bool operator==(const GlweCiphertext &) const = default;
};

} // namespace fhegpt::tfhe
