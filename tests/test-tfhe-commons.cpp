// Commons of the TFHE engine: torus encoding, gadget decomposition, CSPRNG, noise
// distributions, parameter sets, polynomial products.
#include "tfhe/algorithms/polynomial.h"
#include "tfhe/commons/csprng.h"
#include "tfhe/commons/decomposition.h"
#include "tfhe/commons/noise_distribution.h"
#include "tfhe/commons/noise_model.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/commons/torus.h"
#include "common/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

using namespace fhegpt::tfhe;

TEST(TfheTorus, EncodeDecodeEveryMessage) {
    for (uint64_t p = 2; p <= 256; p *= 2) {
        const uint64_t delta = delta_with_padding(p);
        EXPECT_EQ(delta * p, uint64_t{1} << 63);
        for (uint64_t m = 0; m < p; ++m) {
            const uint64_t t = encode_message(m, p);
            EXPECT_EQ(decode_message(t, p), m);
            // Any noise strictly below Delta / 2 decodes to m.
            EXPECT_EQ(decode_message(t + delta / 2 - 1, p), m);
            EXPECT_EQ(decode_message(t - delta / 2, p), m);
            EXPECT_EQ(decode_message(t + delta / 2, p), (m + 1) % p);
        }
        // The padding bit is kept by decode_message_with_padding.
        EXPECT_EQ(decode_message_with_padding(encode_message(p + 1, p), p), p + 1);
        EXPECT_EQ(decode_message(encode_message(p + 1, p), p), 1u);
    }
}

TEST(TfheTorus, DoubleConversions) {
    EXPECT_EQ(torus_from_double(0.25), uint64_t{1} << 62);
    EXPECT_EQ(torus_from_double(-0.25), uint64_t{3} << 62);
    EXPECT_EQ(torus_from_double(1.0), 0u);
    EXPECT_DOUBLE_EQ(torus_to_double(uint64_t{1} << 62), 0.25);
    EXPECT_DOUBLE_EQ(torus_to_double(uint64_t{3} << 62), -0.25);
    EXPECT_EQ(torus_noise(100, 90), 10);
    EXPECT_EQ(torus_noise(90, 100), -10);
}

TEST(TfheDecomposition, RecomposesClosestRepresentable) {
    std::mt19937_64 rng(1);
    for (size_t base_log : {1, 2, 3, 4, 5, 8, 11, 15, 16, 23}) {
        for (size_t levels : {1, 2, 3, 4, 7}) {
            if (base_log * levels > 64) continue;
            SignedDecomposer d(DecompositionBaseLog{base_log}, DecompositionLevelCount{levels});
            const int64_t half = int64_t{1} << (base_log - 1);
            std::vector<int64_t> digits(levels);
            for (int trial = 0; trial < 2000; ++trial) {
                const uint64_t x = rng();
                d.decompose(x, digits);
                for (int64_t digit : digits) {
                    EXPECT_GE(digit, -half);
                    EXPECT_LT(digit, half);
                }
                const uint64_t rep = d.closest_representable(x);
                EXPECT_EQ(d.recompose(digits), rep);
                const size_t kept = base_log * levels;
                if (kept < 64) {
                    const int64_t error = static_cast<int64_t>(x - rep);
                    EXPECT_LE(std::llabs(error), int64_t{1} << (63 - kept));
                } else {
                    EXPECT_EQ(rep, x);
                }
            }
        }
    }
}

TEST(TfheDecomposition, SliceMatchesScalar) {
    std::mt19937_64 rng(2);
    const size_t size = 257;
    for (auto [base_log, levels] : {std::pair<size_t, size_t>{23, 1}, {15, 2}, {11, 3}, {4, 4}, {16, 4}}) {
        SignedDecomposer d(DecompositionBaseLog{base_log}, DecompositionLevelCount{levels});
        std::vector<uint64_t> in(size), state(size);
        for (auto & x : in) x = rng();
        std::vector<int64_t> out(size * levels), digits(levels);
        d.decompose_slice(in.data(), out.data(), state.data(), size);
        for (size_t j = 0; j < size; ++j) {
            d.decompose(in[j], digits);
            for (size_t l = 0; l < levels; ++l) EXPECT_EQ(out[l * size + j], digits[l]);
        }
    }
}

TEST(TfheDecomposition, DigitSecondMomentMatchesModel) {
    // E[d^2] = (B^2 + 2) / 12 for uniform inputs: the noise model uses it.
    std::mt19937_64 rng(3);
    for (size_t base_log : {3, 4, 5, 15, 23}) {
        SignedDecomposer d(DecompositionBaseLog{base_log}, DecompositionLevelCount{1});
        std::vector<int64_t> digit(1);
        double sum = 0;
        const int trials = 200000;
        for (int t = 0; t < trials; ++t) {
            d.decompose(rng(), digit);
            sum += static_cast<double>(digit[0]) * static_cast<double>(digit[0]);
        }
        const double b = std::ldexp(1.0, static_cast<int>(base_log));
        EXPECT_NEAR(sum / trials / ((b * b + 2) / 12), 1.0, 0.02) << "base log " << base_log;
    }
}

TEST(TfheCsprng, SeededStreamIsDeterministicAndChunkingInvariant) {
    Seed seed;
    for (size_t i = 0; i < seed.bytes.size(); ++i) seed.bytes[i] = static_cast<uint8_t>(i * 7 + 1);
    RandomGenerator a(seed, 5), b(seed, 5), c(seed, 6);
    std::vector<uint64_t> whole(5000);
    a.fill_uniform(whole);
    // Same stream requested in odd pieces.
    std::vector<uint64_t> pieces(5000);
    size_t pos = 0;
    for (size_t len : {1, 3, 700, 1, 1024, 2000, 1271}) {
        b.fill_uniform(std::span<uint64_t>(pieces.data() + pos, len));
        pos += len;
    }
    ASSERT_EQ(pos, pieces.size());
    EXPECT_EQ(whole, pieces);
    std::vector<uint64_t> other(5000);
    c.fill_uniform(other);
    EXPECT_NE(whole, other);
    // next_u64 continues the same byte stream.
    RandomGenerator d(seed, 5);
    for (size_t i = 0; i < 600; ++i) EXPECT_EQ(d.next_u64(), whole[i]);
}

TEST(TfheCsprng, OsSeededGeneratorsDiffer) {
    RandomGenerator a = RandomGenerator::from_os(), b = RandomGenerator::from_os();
    EXPECT_NE(a.next_u64(), b.next_u64());
    EXPECT_NE(Seed::from_os(), Seed::from_os());
}

TEST(TfheCsprng, BinaryAndUnitSamples) {
    RandomGenerator g = RandomGenerator::from_os();
    std::vector<uint64_t> bits(100000);
    g.fill_binary(bits);
    size_t ones = 0;
    for (uint64_t b : bits) {
        ASSERT_LE(b, 1u);
        ones += b;
    }
    EXPECT_NEAR(static_cast<double>(ones) / bits.size(), 0.5, 0.01);
    for (int i = 0; i < 10000; ++i) {
        const double u = g.next_unit_open0();
        ASSERT_GT(u, 0.0);
        ASSERT_LE(u, 1.0);
    }
}

TEST(TfheNoise, TUniformBoundsMeanAndVariance) {
    RandomGenerator g = RandomGenerator::from_os();
    for (uint32_t b : {0u, 1u, 3u, 17u, 45u}) {
        const NoiseDistribution d = NoiseDistribution::t_uniform(b);
        const int64_t bound = int64_t{1} << b;
        const int trials = 200000;
        double sum = 0, sum2 = 0;
        int64_t lo = 0, hi = 0;
        for (int t = 0; t < trials; ++t) {
            const int64_t x = sample_noise(g, d);
            ASSERT_GE(x, -bound);
            ASSERT_LE(x, bound);
            lo = std::min(lo, x);
            hi = std::max(hi, x);
            sum += static_cast<double>(x);
            sum2 += static_cast<double>(x) * static_cast<double>(x);
        }
        const double var = sum2 / trials, expected = d.variance() * std::ldexp(1.0, 128);
        EXPECT_NEAR(var / expected, 1.0, 0.02) << d.to_string();
        EXPECT_NEAR(sum / trials / std::sqrt(expected), 0.0, 0.02);
        if (b <= 3) {
            EXPECT_EQ(lo, -bound);
            EXPECT_EQ(hi, bound);
        }
    }
    // b = 0: values -1, 0, 1 with probabilities 1/4, 1/2, 1/4.
    const NoiseDistribution d0 = NoiseDistribution::t_uniform(0);
    int counts[3] = {0, 0, 0};
    for (int t = 0; t < 100000; ++t) ++counts[sample_noise(g, d0) + 1];
    EXPECT_NEAR(counts[0] / 1e5, 0.25, 0.01);
    EXPECT_NEAR(counts[1] / 1e5, 0.50, 0.01);
    EXPECT_NEAR(counts[2] / 1e5, 0.25, 0.01);
}

TEST(TfheNoise, GaussianVariance) {
    RandomGenerator g = RandomGenerator::from_os();
    for (double sigma : {2.168404344971009e-19, 2.845267479601915e-15, 2.046151696979124e-06}) {
        const NoiseDistribution d = NoiseDistribution::gaussian(sigma);
        std::vector<uint64_t> values(200001, 0);
        add_noise(g, d, values);
        double sum2 = 0, sum4 = 0;
        for (uint64_t v : values) {
            const double x = std::ldexp(static_cast<double>(static_cast<int64_t>(v)), -64);
            sum2 += x * x;
            sum4 += x * x * x * x;
        }
        const double var = sum2 / values.size();
        EXPECT_NEAR(var / d.variance(), 1.0, 0.02) << d.to_string();
        // Kurtosis 3 (normal), not 1.8 (uniform).
        EXPECT_NEAR(sum4 / values.size() / (var * var), 3.0, 0.1) << d.to_string();
    }
}

TEST(TfheParameters, LookupAndDefaults) {
    EXPECT_EQ(widest_production_message_bits(), 7u);
    for (uint32_t bits = 1; bits <= 7; ++bits) {
        const TfheParameters & p = default_parameters(bits);
        EXPECT_EQ(p.message_bits, bits);
        EXPECT_FALSE(p.insecure);
        EXPECT_GE(p.security_bits, 128);
        EXPECT_LE(p.source_log2_p_fail, -128);
        EXPECT_NE(p.name.find("INSECURE"), 0u);
    }
    EXPECT_EQ(parameters_by_name("param_4bit_2m128").name, "PARAM_4BIT_2M128");
    EXPECT_THROW(parameters_by_name("nope"), fhegpt::Error);
    EXPECT_THROW(default_parameters(8), fhegpt::Error);
    std::set<std::string> names;
    for (const TfheParameters & p : all_parameter_sets()) {
        EXPECT_TRUE(names.insert(p.name).second) << p.name;
        EXPECT_EQ(p.insecure, p.name.rfind("INSECURE_TEST_", 0) == 0) << p.name;
        EXPECT_FALSE(p.source.empty());
        EXPECT_LE(p.ks_base_log.value * p.ks_level_count.value, 32u) << p.name;
        EXPECT_LE(p.pbs_base_log.value * p.pbs_level_count.value, 64u) << p.name;
        // p messages with padding need N >= 2p / 2 coefficients per ... at least one per box.
        EXPECT_LE(p.message_modulus(), p.polynomial_size.value) << p.name;
    }
    for (const TfheParameters * p : production_parameter_sets()) EXPECT_FALSE(p->insecure);
}

TEST(TfheParameters, NoiseModelFailureProbabilityOfProductionSets) {
    // Our model of this implementation must give each production set at least the failure
    // probability its name promises (2^-64 or 2^-128, within a few bits of the source).
    for (const TfheParameters * p : production_parameter_sets()) {
        const NoiseBudget budget = bootstrap_noise_budget(*p);
        const double promised = p->name.find("2M64") != std::string::npos ? -64.0 : -128.0;
        EXPECT_LE(budget.log2_p_fail, promised + 4.0) << p->name << ": " << budget.log2_p_fail;
        EXPECT_NEAR(budget.log2_p_fail, p->source_log2_p_fail, 0.15 * -p->source_log2_p_fail) << p->name;
    }
    for (const TfheParameters & p : all_parameter_sets()) {
        if (!p.insecure) continue;
        EXPECT_LE(bootstrap_noise_budget(p).log2_p_fail, -64.0) << p.name;
    }
}

TEST(TfheNoise, FailureProbabilityFormula) {
    // sigma = half box / 2 -> erfc(sqrt(2)) ~ 0.0455
    const uint64_t p = 16;
    const double half = 1.0 / (4.0 * p);
    EXPECT_NEAR(std::exp2(log2_failure_probability(half * half / 4, p)), std::erfc(std::sqrt(2.0)), 1e-9);
    // Deep tail stays finite and monotone.
    const double a = log2_failure_probability(half * half / 400, p), b = log2_failure_probability(half * half / 900, p);
    EXPECT_LT(b, a);
    EXPECT_TRUE(std::isfinite(b));
    EXPECT_NEAR(a, std::log2(std::erfc(20.0 / std::sqrt(2.0))), 0.01);
    EXPECT_NEAR(log2_failure_probability(half * half / 25, p), std::log2(std::erfc(5.0 / std::sqrt(2.0))), 1e-9);
}

TEST(TfhePolynomial, MonomialMultiplication) {
    std::mt19937_64 rng(4);
    const size_t n = 64;
    std::vector<uint64_t> a(n), out(n), back(n), diff(n);
    for (auto & x : a) x = rng();
    for (size_t power = 0; power < 2 * n; ++power) {
        polynomial_monomial_mul(out, a, power);
        // X^power * X^(2N - power) = X^2N = 1.
        polynomial_monomial_mul(back, out, (2 * n - power) % (2 * n));
        EXPECT_EQ(back, a) << power;
        polynomial_monomial_mul_sub(diff, a, power);
        for (size_t t = 0; t < n; ++t) EXPECT_EQ(diff[t], out[t] - a[t]);
    }
    // X^N = -1.
    polynomial_monomial_mul(out, a, n);
    for (size_t t = 0; t < n; ++t) EXPECT_EQ(out[t], 0 - a[t]);
}

TEST(TfhePolynomial, BinaryKeyProductsAreExact) {
    std::mt19937_64 rng(5);
    for (size_t n : {64, 256, 2048}) {
        const size_t k = 2;
        std::vector<uint64_t> key(k * n);
        for (auto & x : key) x = rng() & 1;
        BinaryKeyMultiplier multiplier(key, PolynomialSize{n});
        for (size_t j = 0; j < k; ++j) {
            std::vector<uint64_t> a(n), fast(n), slow(n);
            for (auto & x : a) x = rng();
            for (size_t t = 0; t < n; ++t) fast[t] = slow[t] = t * 12345;
            multiplier.add_mul(fast, a, j);
            polynomial_add_mul_binary_schoolbook(slow, a, std::span<const uint64_t>(key.data() + j * n, n));
            EXPECT_EQ(fast, slow) << "N = " << n;
        }
    }
}
