// GGSW ciphertext of a small integer m under a GLWE key S = (S_0, ..., S_{k-1}), with gadget
// base B = 2^beta and l levels: (k + 1) l GLWE ciphertexts ("rows"). Row (i, j), for level
// i = 1..l and component j = 0..k, is a GLWE encryption of -m S_j / B^i for j < k and of
// m / B^i for j = k (its mask is uniform, so it can be regenerated from a seed). The external
// product with a GLWE ciphertext C = (C_0, ..., C_k): decompose every C_j into digits D_{i,j}
// (sum_i D_{i,j} / B^i ~ C_j) and return sum D_{i,j} * row (i, j), whose phase is
// sum_i (D_{i,k} - sum_{j<k} D_{i,j} S_j) m / B^i + noise = m * phase(C) + noise.
// Stored row after row, row (i, j) (0-based level i) at offset (i (k + 1) + j) (k + 1) N.
#pragma once

#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct GgswCiphertext {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    std::vector<uint64_t> data; // l (k + 1) rows of (k + 1) N

    GgswCiphertext() = default;
    GgswCiphertext(GlweDimension k, PolynomialSize n, DecompositionBaseLog base_log_, DecompositionLevelCount levels)
        : glwe_dimension(k), polynomial_size(n), base_log(base_log_), level_count(levels),
          data(ciphertext_size(k, n, levels), 0) {}

    static size_t row_count(GlweDimension k, DecompositionLevelCount levels) { return levels.value * (k.value + 1); }
    static size_t row_size(GlweDimension k, PolynomialSize n) { return (k.value + 1) * n.value; }
    static size_t ciphertext_size(GlweDimension k, PolynomialSize n, DecompositionLevelCount levels) {
        return row_count(k, levels) * row_size(k, n);
    }
    size_t row_count() const { return row_count(glwe_dimension, level_count); }
    std::span<uint64_t> row(size_t r) {
        size_t size = row_size(glwe_dimension, polynomial_size);
        return {data.data() + r * size, size};
    }
    std::span<const uint64_t> row(size_t r) const {
        size_t size = row_size(glwe_dimension, polynomial_size);
        return {data.data() + r * size, size};
    }
    bool operator==(const GgswCiphertext &) const = default;
};

} // namespace fhegpt::tfhe
