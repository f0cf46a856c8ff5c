#include "tfhe/commons/noise_distribution.h"

#include "common/check.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>

namespace fhegpt::tfhe {

NoiseDistribution NoiseDistribution::t_uniform(uint32_t bound_log2) {
    FHEGPT_CHECK(bound_log2 + 2 <= 64, "TUniform bound 2^%u too large for a 64-bit torus", bound_log2);
    NoiseDistribution d;
    d.kind = Kind::TUniform;
    d.tuniform_bound_log2 = bound_log2;
    return d;
}

NoiseDistribution NoiseDistribution::gaussian(double std_dev) {
    FHEGPT_CHECK(std_dev >= 0.0 && std_dev < 0.25, "Gaussian std dev %g out of range", std_dev);
    NoiseDistribution d;
    d.kind = Kind::Gaussian;
    d.gaussian_std_dev = std_dev;
    return d;
}

double NoiseDistribution::variance() const {
    if (kind == Kind::TUniform) {
        // (2^(2b+1) + 1) / 6 in units of 2^-128.
        return (std::ldexp(1.0, 2 * static_cast<int>(tuniform_bound_log2) + 1) + 1.0) / 6.0 * std::ldexp(1.0, -128);
    }
    // Rounding to an integer adds 1/12 (units of 2^-128).
    return gaussian_std_dev * gaussian_std_dev + std::ldexp(1.0, -128) / 12.0;
}

std::string NoiseDistribution::to_string() const {
    if (kind == Kind::TUniform) return fmt::format("TUniform({})", tuniform_bound_log2);
    return fmt::format("Gaussian({:.6g})", gaussian_std_dev);
}

namespace {

int64_t sample_t_uniform(RandomGenerator & generator, uint32_t b) {
    // x uniform on b + 2 bits; (x >> 1) + (x & 1) is in [0, 2^(b+1)] with the two end points
    // half as likely as the others; subtract 2^b to centre it.
    uint64_t x = generator.next_u64();
    uint32_t bits = b + 2;
    if (bits < 64) x &= (uint64_t{1} << bits) - 1;
    uint64_t y = (x >> 1) + (x & 1);
    return static_cast<int64_t>(y - (uint64_t{1} << b));
}

// Two independent N(0, 1) samples (Box-Muller).
void standard_normal_pair(RandomGenerator & generator, double & z0, double & z1) {
    double u1 = generator.next_unit_open0();
    double u2 = generator.next_unit_open0();
    double r = std::sqrt(-2.0 * std::log(u1));
    double theta = 2.0 * std::numbers::pi * u2;
    z0 = r * std::cos(theta);
    z1 = r * std::sin(theta);
}

int64_t round_scaled(double z, double scale) { return static_cast<int64_t>(std::llround(z * scale)); }

} // namespace

int64_t sample_noise(RandomGenerator & generator, const NoiseDistribution & distribution) {
    if (distribution.kind == NoiseDistribution::Kind::TUniform)
        return sample_t_uniform(generator, distribution.tuniform_bound_log2);
    double z0, z1;
    standard_normal_pair(generator, z0, z1);
    return round_scaled(z0, std::ldexp(distribution.gaussian_std_dev, 64));
}

void add_noise(RandomGenerator & generator, const NoiseDistribution & distribution, std::span<uint64_t> values) {
    if (distribution.kind == NoiseDistribution::Kind::TUniform) {
        uint32_t b = distribution.tuniform_bound_log2;
        for (uint64_t & v : values) v += static_cast<uint64_t>(sample_t_uniform(generator, b));
        return;
    }
    double scale = std::ldexp(distribution.gaussian_std_dev, 64);
    size_t i = 0;
    for (; i + 1 < values.size(); i += 2) {
        double z0, z1;
        standard_normal_pair(generator, z0, z1);
        values[i] += static_cast<uint64_t>(round_scaled(z0, scale));
        values[i + 1] += static_cast<uint64_t>(round_scaled(z1, scale));
    }
    if (i < values.size()) values[i] += static_cast<uint64_t>(sample_noise(generator, distribution));
}

} // namespace fhegpt::tfhe
