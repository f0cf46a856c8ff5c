// Seeded (compressed) LWE key-switching key: the masks of the encryptions are regenerated from
// the seed (stream i for input coefficient i: l n uniform torus elements, level after level),
// only the bodies are stored (n' l of them, rounded to 32 bits as in LweKeyswitchKey).
// decompress_seeded_lwe_keyswitch_key gives back the LweKeyswitchKey, bit for bit.
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <vector>

namespace fhegpt::tfhe {

struct SeededLweKeyswitchKey {
    LweDimension input_lwe_dimension;
    LweDimension output_lwe_dimension;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    Seed seed;
    std::vector<uint32_t> bodies; // entry (i, j) at i l + j

    size_t size_bytes() const { return bodies.size() * sizeof(uint32_t) + sizeof(Seed); }
    bool operator==(const SeededLweKeyswitchKey &) const = default;
};

} // namespace fhegpt::tfhe
