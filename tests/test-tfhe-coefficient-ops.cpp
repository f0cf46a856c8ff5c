// The per-coefficient functions the CUDA kernels share with the CPU engine
// (tfhe/commons/coefficient_ops.h, tfhe/commons/negacyclic_fold.h), checked on the CPU against
// the engine's own routines and against their definitions: modulus switch, gadget digits,
// negacyclic monomials, sample extraction, and the fold / twist / wrap around a complex DFT
// (a plain O(N^2) DFT here, cuFFT on the device) against exact negacyclic products.
#include "tfhe/algorithms/glwe_sample_extraction.h"
#include "tfhe/algorithms/modulus_switch.h"
#include "tfhe/algorithms/polynomial.h"
#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/commons/decomposition.h"
#include "tfhe/commons/negacyclic_fold.h"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

std::vector<uint64_t> random_torus(std::mt19937_64 & rng, size_t size) {
    std::vector<uint64_t> v(size);
    for (auto & x : v) x = rng();
    return v;
}

TEST(CoefficientOps, ModulusSwitchRoundsToTheNearestUnitOf2N) {
    std::mt19937_64 rng(1);
    for (size_t big_n : {size_t{1024}, size_t{2048}, size_t{4096}}) {
        const unsigned log_2n = modulus_switch_log_2n(big_n);
        ASSERT_EQ(uint64_t{1} << log_2n, 2 * big_n);
        const unsigned shift = 64 - log_2n;
        for (int trial = 0; trial < 10000; ++trial) {
            const uint64_t a = rng();
            // round(a 2N / 2^64) from the definition, in 128-bit arithmetic.
            const unsigned __int128 scaled = static_cast<unsigned __int128>(a) * (2 * big_n);
            const uint64_t expected = static_cast<uint64_t>((scaled + (static_cast<unsigned __int128>(1) << 63)) >> 64);
            const uint64_t rounded = modulus_switch_rounded(a, shift);
            ASSERT_EQ(rounded, expected) << a;
            const int64_t error = static_cast<int64_t>((rounded << shift) - a);
            ASSERT_LE(std::abs(error), int64_t{1} << (shift - 1));
            ASSERT_EQ(modulus_switch_half_error(a, rounded, shift), error / 2);
        }
    }
}

TEST(CoefficientOps, ModulusSwitchMatchesTheEngine) {
    std::mt19937_64 rng(2);
    const size_t n = 700, big_n = 2048;
    const unsigned shift = 64 - modulus_switch_log_2n(big_n);
    const uint64_t mask = 2 * big_n - 1;
    for (ModulusSwitchType type : {ModulusSwitchType::Standard, ModulusSwitchType::CenteredMeanNoiseReduction}) {
        for (int trial = 0; trial < 20; ++trial) {
            LweCiphertext ct(LweDimension{n});
            ct.data = random_torus(rng, n + 1);
            std::vector<uint32_t> engine(n + 1);
            modulus_switch_lwe_ciphertext(ct, PolynomialSize{big_n}, type, engine);
            // The kernel's order: per-coefficient values, then the body from the summed half errors.
            int64_t half_error_sum = 0;
            for (size_t i = 0; i < n; ++i) {
                const uint64_t rounded = modulus_switch_rounded(ct.data[i], shift);
                ASSERT_EQ(engine[i], rounded & mask);
                if (type == ModulusSwitchType::CenteredMeanNoiseReduction)
                    half_error_sum += modulus_switch_half_error(ct.data[i], rounded, shift);
            }
            ASSERT_EQ(engine[n], modulus_switch_body(ct.data[n], half_error_sum, shift, mask));
        }
    }
}

TEST(CoefficientOps, DecompositionDigitsMatchTheDecomposerAndRecompose) {
    std::mt19937_64 rng(3);
    const std::pair<size_t, size_t> shapes[] = {{23, 1}, {15, 2}, {11, 3}, {4, 5}, {3, 6}, {2, 16}, {1, 32}};
    for (auto [base_log, levels] : shapes) {
        SignedDecomposer decomposer(DecompositionBaseLog{base_log}, DecompositionLevelCount{levels});
        std::vector<int64_t> digits(levels);
        for (int trial = 0; trial < 2000; ++trial) {
            const uint64_t x = rng();
            decomposer.decompose(x, digits);
            // The recomposition is the closest representable value (the definition).
            ASSERT_EQ(decomposer.recompose(digits), decomposer.closest_representable(x));
            for (size_t level = 1; level <= levels; ++level) {
                const int64_t digit = decomposition_digit(x, base_log, levels, level);
                ASSERT_EQ(digit, digits[level - 1]) << "base log " << base_log << " level " << level;
                ASSERT_GE(digit, -(int64_t{1} << (base_log - 1)));
                ASSERT_LT(digit, int64_t{1} << (base_log - 1));
            }
        }
    }
}

// X * in mod X^N + 1, the definition of a negacyclic shift.
std::vector<uint64_t> times_x(const std::vector<uint64_t> & in) {
    const size_t n = in.size();
    std::vector<uint64_t> out(n);
    out[0] = 0 - in[n - 1];
    for (size_t t = 1; t < n; ++t) out[t] = in[t - 1];
    return out;
}

TEST(CoefficientOps, MonomialMultiplicationIsRepeatedNegacyclicShift) {
    std::mt19937_64 rng(4);
    const size_t n = 64;
    const std::vector<uint64_t> in = random_torus(rng, n);
    std::vector<uint64_t> shifted = in, sub(n);
    for (size_t power = 0; power < 2 * n; ++power) {
        for (size_t t = 0; t < n; ++t) ASSERT_EQ(monomial_mul_coefficient(in.data(), n, power, t), shifted[t]);
        // The engine's vectorized CMux rotation: X^power in - in.
        polynomial_monomial_mul_sub(sub, in, power);
        for (size_t t = 0; t < n; ++t) ASSERT_EQ(sub[t], shifted[t] - in[t]);
        shifted = times_x(shifted);
    }
    EXPECT_EQ(shifted, in); // X^2N = 1
}

TEST(CoefficientOps, SampleExtractionReadsTheCoefficientOfTheProductWithTheKey) {
    std::mt19937_64 rng(5);
    const size_t k = 2, n = 32;
    const std::vector<uint64_t> glwe = random_torus(rng, (k + 1) * n);
    std::vector<uint64_t> key(k * n);
    for (auto & s : key) s = rng() & 1;
    for (size_t h = 0; h < n; ++h) {
        LweCiphertext extracted(LweDimension{k * n});
        extract_lwe_sample_from_glwe_ciphertext(glwe, GlweDimension{k}, PolynomialSize{n}, h, extracted);
        // Phase of the LWE sample == coefficient h of the GLWE phase b - sum_j a_j S_j.
        std::vector<uint64_t> mask_key(n, 0);
        for (size_t j = 0; j < k; ++j)
            polynomial_add_mul_binary_schoolbook(mask_key, std::span<const uint64_t>(glwe.data() + j * n, n),
                                                 std::span<const uint64_t>(key.data() + j * n, n));
        uint64_t lwe_mask_key = 0;
        for (size_t t = 0; t < k * n; ++t) {
            const uint64_t coefficient = sample_extract_mask_coefficient(glwe.data() + (t / n) * n, n, h, t % n);
            ASSERT_EQ(coefficient, extracted.data[t]);
            lwe_mask_key += coefficient * key[t];
        }
        ASSERT_EQ(extracted.data[k * n], glwe[k * n + h]);
        ASSERT_EQ(extracted.data[k * n] - lwe_mask_key, glwe[k * n + h] - mask_key[h]) << "coefficient " << h;
    }
}

TEST(CoefficientOps, WrapToTorusReducesModulo2To64) {
    EXPECT_EQ(wrap_to_torus(0.0), 0u);
    EXPECT_EQ(wrap_to_torus(-1.0), ~uint64_t{0});
    EXPECT_EQ(wrap_to_torus(2.5), 2u); // round half to even, like the CPU's backward transform
    EXPECT_EQ(wrap_to_torus(0x1p63), uint64_t{1} << 63);
    EXPECT_EQ(wrap_to_torus(5 * 0x1p64 + 7 * 0x1p20), uint64_t{7} << 20);
    EXPECT_EQ(wrap_to_torus(-0x1p64 - 0x1p40), uint64_t{0} - (uint64_t{1} << 40));
    EXPECT_EQ(wrap_to_torus(0x1p90 + 0x1p64 * 3 + 0x1p60), uint64_t{1} << 60);
}

// a * b mod X^N + 1 through fold + twist, a complex DFT of size N / 2, pointwise product, the
// inverse DFT, untwist and wrap: the kernels' pipeline with a plain DFT in cuFFT's conventions.
std::vector<uint64_t> product_through_fold(const std::vector<uint64_t> & a, const std::vector<int64_t> & b) {
    using C = std::complex<double>;
    const size_t n = a.size(), half = n / 2;
    auto forward = [&](auto coefficient) {
        std::vector<C> z(half), spectrum(half);
        for (size_t j = 0; j < half; ++j) {
            const double angle = std::numbers::pi * static_cast<double>(j) / static_cast<double>(n);
            double re, im;
            fold_twist(coefficient(j), coefficient(j + half), {std::cos(angle), std::sin(angle)}, re, im);
            z[j] = {re, im};
        }
        for (size_t f = 0; f < half; ++f)
            for (size_t j = 0; j < half; ++j)
                spectrum[f] += z[j] * std::polar(1.0, -2 * std::numbers::pi * double(j * f % half) / double(half));
        return spectrum;
    };
    const std::vector<C> fa = forward([&](size_t j) { return static_cast<double>(static_cast<int64_t>(a[j])); });
    const std::vector<C> fb = forward([&](size_t j) { return static_cast<double>(b[j]); });
    std::vector<uint64_t> out(n);
    for (size_t j = 0; j < half; ++j) {
        C z = 0;
        for (size_t f = 0; f < half; ++f)
            z += fa[f] * fb[f] * std::polar(1.0, 2 * std::numbers::pi * double(j * f % half) / double(half));
        const double angle = std::numbers::pi * static_cast<double>(j) / static_cast<double>(n);
        double lo, hi;
        untwist(z.real(), z.imag(), {std::cos(angle), std::sin(angle)}, 1.0 / static_cast<double>(half), lo, hi);
        out[j] = wrap_to_torus(lo);
        out[j + half] = wrap_to_torus(hi);
    }
    return out;
}

std::vector<uint64_t> negacyclic_product(const std::vector<uint64_t> & a, const std::vector<int64_t> & b) {
    const size_t n = a.size();
    std::vector<uint64_t> out(n, 0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) {
            const uint64_t term = a[i] * static_cast<uint64_t>(b[j]);
            if (i + j < n) out[i + j] += term;
            else out[i + j - n] -= term;
        }
    return out;
}

TEST(CoefficientOps, FoldTwistComputesNegacyclicProducts) {
    std::mt19937_64 rng(6);
    const size_t n = 64;
    std::vector<int64_t> digits(n);
    for (auto & d : digits) d = static_cast<int64_t>(rng() % (1 << 16)) - (1 << 15);
    // Small operands: the product is exact.
    std::vector<uint64_t> small(n);
    for (auto & x : small) x = static_cast<uint64_t>(static_cast<int64_t>(rng() % (1 << 20)) - (1 << 19));
    EXPECT_EQ(product_through_fold(small, digits), negacyclic_product(small, digits));
    // Torus operands (magnitudes to 2^63, products past 2^64): the error stays at the double
    // rounding of the key, far below the 2^-20 of the torus a bootstrap reads.
    const std::vector<uint64_t> torus = random_torus(rng, n);
    const std::vector<uint64_t> got = product_through_fold(torus, digits), want = negacyclic_product(torus, digits);
    for (size_t t = 0; t < n; ++t)
        EXPECT_LT(std::abs(static_cast<double>(static_cast<int64_t>(got[t] - want[t]))), 0x1p40) << t;
}

} // namespace
