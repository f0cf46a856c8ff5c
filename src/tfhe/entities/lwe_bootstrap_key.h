// LWE bootstrapping key from an LWE key s (dimension n) to a GLWE key S (k, N): n GGSW
// ciphertexts under S, GGSW i encrypting the key bit s_i, with gadget base B = 2^beta and l
// levels. Blind rotation uses GGSW i as the selector of a CMux. This is the standard
// (coefficient) domain form: the form that is generated, stored and sent; evaluation uses
// its FourierLweBootstrapKey. GGSW i is at offset i * GgswCiphertext::ciphertext_size(k, N, l).
// With a grouping factor g > 1 it is a multi-bit key instead: (n / g) 2^g GGSWs of products of
// key bits (lwe_multi_bit_bootstrap_key.h).
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/entities/ggsw_ciphertext.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct LweBootstrapKey {
    LweDimension input_lwe_dimension; // n
    GlweDimension glwe_dimension;     // k
    PolynomialSize polynomial_size;   // N
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    LweBskGroupingFactor grouping_factor; // 1: classic
    std::vector<uint64_t> data; // ggsw_count() GGSW ciphertexts

    LweBootstrapKey() = default;
    LweBootstrapKey(LweDimension n, GlweDimension k, PolynomialSize big_n, DecompositionBaseLog base_log_,
                    DecompositionLevelCount levels, LweBskGroupingFactor grouping = LweBskGroupingFactor{})
        : input_lwe_dimension(n), glwe_dimension(k), polynomial_size(big_n), base_log(base_log_), level_count(levels),
          grouping_factor(grouping), data(grouping.ggsw_count(n) * GgswCiphertext::ciphertext_size(k, big_n, levels), 0) {}

    size_t ggsw_count() const { return grouping_factor.ggsw_count(input_lwe_dimension); }

    size_t ggsw_size() const { return GgswCiphertext::ciphertext_size(glwe_dimension, polynomial_size, level_count); }
    std::span<const uint64_t> ggsw(size_t i) const { return {data.data() + i * ggsw_size(), ggsw_size()}; }
    std::span<uint64_t> ggsw(size_t i) { return {data.data() + i * ggsw_size(), ggsw_size()}; }
    // Dimension of the LWE ciphertexts a bootstrap with this key outputs: k N.
    LweDimension output_lwe_dimension() const { return LweDimension{glwe_dimension.value * polynomial_size.value}; }
    size_t size_bytes() const { return data.size() * sizeof(uint64_t); }
    bool operator==(const LweBootstrapKey &) const = default;
};

} // namespace fhegpt::tfhe
