// Noise distributions of LWE / GLWE encryption, as TFHE-rs defines them.
//
// - TUniform(b): integers in [-2^b, 2^b] (units of 2^-64 of the torus); every value has
//   probability 2^-(b+1) except the two end points, 2^-(b+2) each. Variance (2^(2b+1) + 1) / 6.
// - Gaussian(sigma): rounded centred normal with standard deviation sigma * 2^64, sigma given
//   on the torus [0, 1) (TFHE-rs `StandardDev`).
// Samples come from a RandomGenerator; for encryption it must be a secret one (from_os()).
#pragma once

#include "tfhe/commons/csprng.h"

#include <cstdint>
#include <span>
#include <string>

namespace fhegpt::tfhe {

struct NoiseDistribution {
    enum class Kind { TUniform, Gaussian };
    Kind kind = Kind::TUniform;
    uint32_t tuniform_bound_log2 = 0; // TUniform: b
    double gaussian_std_dev = 0.0;    // Gaussian: sigma on the torus

    static NoiseDistribution t_uniform(uint32_t bound_log2);
    static NoiseDistribution gaussian(double std_dev);

    // Variance on the torus (units of 1, i.e. integer variance / 2^128).
    double variance() const;
    // "TUniform(45)" or "Gaussian(2.05e-06)".
    std::string to_string() const;
    bool operator==(const NoiseDistribution &) const = default;
};

// One sample, as a signed integer in units of 2^-64.
int64_t sample_noise(RandomGenerator & generator, const NoiseDistribution & distribution);
// values[i] += sample (wrapping).
void add_noise(RandomGenerator & generator, const NoiseDistribution & distribution, std::span<uint64_t> values);

} // namespace fhegpt::tfhe
