// LWE secret key: s = (s_0, ..., s_{n-1}) in {0, 1}^n, uniform binary.
// An LWE ciphertext (a, b) under s has phase b - <a, s> on the torus.
#pragma once

#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct LweSecretKey {
    std::vector<uint64_t> data; // n values in {0, 1}

    LweSecretKey() = default;
    explicit LweSecretKey(LweDimension dimension) : data(dimension.value, 0) {}

    LweDimension lwe_dimension() const { return LweDimension{data.size()}; }
    bool operator==(const LweSecretKey &) const = default;
};

} // namespace fhegpt::tfhe
