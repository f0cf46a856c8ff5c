// LWE ciphertext of dimension n: (a_0, ..., a_{n-1}, b) in T^(n+1), with b = <a, s> + m + e for
// the secret key s, the encoded message m (commons/torus.h) and a small noise e. Its phase
// b - <a, s> = m + e. Stored as n + 1 torus elements, the mask first, the body last.
#pragma once

#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct LweCiphertext {
    std::vector<uint64_t> data; // [a_0, ..., a_{n-1}, b]

    LweCiphertext() = default;
    explicit LweCiphertext(LweDimension dimension) : data(dimension.value + 1, 0) {}

    LweDimension lwe_dimension() const { return LweDimension{data.empty() ? 0 : data.size() - 1}; }
    LweSize lwe_size() const { return LweSize{data.size()}; }
    std::span<uint64_t> mask() { return {data.data(), data.size() - 1}; }
    std::span<const uint64_t> mask() const { return {data.data(), data.size() - 1}; }
    uint64_t & body() { return data.back(); }
    uint64_t body() const { return data.back(); }
    bool operator==(const LweCiphertext &) const = default;
};

} // namespace fhegpt::tfhe
