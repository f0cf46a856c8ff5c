// Seeded (compressed) LWE ciphertext: the mask a is the output of RandomGenerator(seed, stream)
// (n uniform torus elements), so only the seed, the stream id and the body b are stored.
// Decompression (decompress_seeded_lwe_ciphertext) regenerates a. A client can use one seed for
// many ciphertexts with stream = 0, 1, 2, ...: n + 1 torus elements shrink to one.
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/dimensions.h"

#include <cstdint>

namespace fhegpt::tfhe {

struct SeededLweCiphertext {
    LweDimension lwe_dimension;
    Seed seed;
    uint64_t stream = 0;
    uint64_t body = 0;

    bool operator==(const SeededLweCiphertext &) const = default;
};

} // namespace fhegpt::tfhe
