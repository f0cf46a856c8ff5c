// LWE key-switching key from an input key s' (dimension n', the big key k N) to an output key s
// (dimension n), base B = 2^beta, l levels: for every input coefficient i and level j = 1..l,
// an LWE encryption under s of s'_i / B^j. Key switching a ciphertext (a', b') under s'
// decomposes each a'_i into digits d_{i,j} and returns (0, b') - sum d_{i,j} KSK(i, j), an
// encryption of the same phase under s.
//
// Storage: every torus element is kept as its 32 most significant bits, rounded (the KSK is
// generated on the 64-bit torus, then rounded: public post-processing of the encryptions, so
// no loss of security). Key switching then runs mod 2^32 and its output has 32-bit precision,
// far more than the modulus switch to 2N that follows it in a bootstrap reads; the rounding
// adds a variance of l n' E[d^2] (n/2 + 1) 2^-64 / 12 (see noise_model.h), below 2^-38 for every
// parameter set against about 2^-22 for the key switch itself, and halves the memory the key
// switch streams through.
// Entry (i, j) (0-based level j) is the LWE ciphertext at offset (i l + j) (n + 1).
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/aligned_memory.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct LweKeyswitchKey {
    LweDimension input_lwe_dimension;  // n'
    LweDimension output_lwe_dimension; // n
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    aligned_vector<uint32_t> data; // n' l (n + 1) top halves of torus elements (huge pages: streamed)

    LweKeyswitchKey() = default;
    LweKeyswitchKey(LweDimension input, LweDimension output, DecompositionBaseLog base_log_,
                    DecompositionLevelCount levels)
        : input_lwe_dimension(input), output_lwe_dimension(output), base_log(base_log_), level_count(levels),
          data(input.value * levels.value * (output.value + 1), 0) {}

    size_t entry_size() const { return output_lwe_dimension.value + 1; }
    std::span<const uint32_t> entry(size_t input_index, size_t level) const {
        return {data.data() + (input_index * level_count.value + level) * entry_size(), entry_size()};
    }
    size_t size_bytes() const { return data.size() * sizeof(uint32_t); }
    bool operator==(const LweKeyswitchKey &) const = default;
};

// The 32 most significant bits of a torus element, rounded.
inline uint32_t torus_to_u32(uint64_t t) { return static_cast<uint32_t>((t + (uint64_t{1} << 31)) >> 32); }

} // namespace fhegpt::tfhe
