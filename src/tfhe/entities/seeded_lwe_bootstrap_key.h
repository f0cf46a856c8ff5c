// Seeded (compressed) LWE bootstrapping key: the mask polynomials of every GGSW row are
// regenerated from the seed (stream i for GGSW i: its rows in order, k N uniform torus elements
// each), only the body polynomials are stored: n l (k + 1) N torus elements instead of
// n l (k + 1)^2 N. decompress_seeded_lwe_bootstrap_key gives back the LweBootstrapKey, bit for bit.
// A grouping factor g > 1 makes it a multi-bit key of (n / g) 2^g GGSWs (lwe_multi_bit_bootstrap_key.h).
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <vector>

namespace fhegpt::tfhe {

struct SeededLweBootstrapKey {
    LweDimension input_lwe_dimension;
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionBaseLog base_log;
    DecompositionLevelCount level_count;
    LweBskGroupingFactor grouping_factor; // 1: classic
    Seed seed;
    std::vector<uint64_t> bodies; // GGSW i, row r: body polynomial at (i rows + r) N

    size_t ggsw_count() const { return grouping_factor.ggsw_count(input_lwe_dimension); }
    size_t size_bytes() const { return bodies.size() * sizeof(uint64_t) + sizeof(Seed); }
    bool operator==(const SeededLweBootstrapKey &) const = default;
};

} // namespace fhegpt::tfhe
