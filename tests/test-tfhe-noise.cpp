// The noise model's terms against measurements, for every production parameter set: the
// empirical variance of the phase error after encryption, linear operations and modulus
// switching (thousands of samples each), and the FFT error of an external product against exact
// integer arithmetic, must be within 10-25% of commons/noise_model.h. The key switch and the
// bootstrap output, which need the set's keys, are measured in test-tfhe-pbs-production on the
// bootstraps it runs anyway, with the failure probability they imply.
#include "tfhe/tfhe.h"
#include "tfhe-production-sets.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/algorithms/modulus_switch.h"
#include "tfhe/algorithms/multi_bit_external_product.h"

#include "tfhe-sample-stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

using Stats = test::SampleStats;

// The modulus switch of a set's bootstrap (multi-bit or classic) and the switched phase
// b~ - sum a~ s mod 2N it leads the blind rotation to, from the secret key.
size_t switched_size(const TfheParameters & p) {
    return p.is_multi_bit() ? multi_bit_switched_size(p.lwe_dimension, p.grouping_factor) : p.lwe_dimension.value + 1;
}
uint64_t switch_and_phase(const TfheParameters & p, ModulusSwitchType type, const LweCiphertext & c,
                          const LweSecretKey & key, std::vector<uint32_t> & switched) {
    const size_t n = p.lwe_dimension.value;
    uint64_t phi = 0;
    if (p.is_multi_bit()) {
        modulus_switch_multi_bit_lwe_ciphertext(c, p.polynomial_size, p.grouping_factor, switched);
        const size_t g = p.grouping_factor.value, per_group = p.grouping_factor.ggsw_per_group() - 1;
        phi = switched.back();
        for (size_t group = 0; group < n / g; ++group) {
            size_t subset = 0;
            for (size_t b = 0; b < g; ++b) subset |= static_cast<size_t>(key.data[group * g + b]) << b;
            if (subset != 0) phi -= switched[group * per_group + subset - 1];
        }
    } else {
        modulus_switch_lwe_ciphertext(c, p.polynomial_size, type, switched);
        phi = switched[n];
        for (size_t i = 0; i < n; ++i) phi -= switched[i] * key.data[i];
    }
    return phi & (2 * p.polynomial_size.value - 1);
}

double measure_modulus_switch_variance(const TfheParameters & p, ModulusSwitchType type, size_t samples) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(p.lwe_dimension, g);
    const size_t two_n = 2 * p.polynomial_size.value;
    std::vector<uint32_t> switched(switched_size(p));
    Stats stats;
    for (size_t s = 0; s < samples; ++s) {
        const LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(key, g.next_u64(), p.lwe_noise, g);
        const uint64_t phi = switch_and_phase(p, type, c, key, switched);
        const double switched_phase = static_cast<double>(phi) / static_cast<double>(two_n);
        double e = switched_phase - torus_to_double(decrypt_lwe_ciphertext(key, c));
        e -= std::round(e);
        stats.add(e);
    }
    return stats.variance();
}

void expect_within(double measured, double model, double tolerance, const std::string & what) {
    std::printf("  %-44s measured 2^%.3f  model 2^%.3f  ratio %.3f\n", what.c_str(), std::log2(measured),
                std::log2(model), measured / model);
    EXPECT_NEAR(measured / model, 1.0, tolerance) << what;
}

class TfheNoiseModel : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> production_names() { return test_sets::production_sets_under_test(); }

} // namespace

TEST_P(TfheNoiseModel, EncryptionVariance) {
    const TfheParameters & p = test_sets::parameters_under_test(GetParam());
    RandomGenerator g = RandomGenerator::from_os();
    for (const auto & [key_dimension, noise, what] :
         {std::tuple{p.lwe_dimension, p.lwe_noise, "small key"}, std::tuple{p.big_lwe_dimension(), p.glwe_noise, "big key"}}) {
        const LweSecretKey key = generate_binary_lwe_secret_key(key_dimension, g);
        Stats stats;
        for (int s = 0; s < 20000; ++s) {
            const uint64_t m = g.next_u64() % p.message_modulus();
            const LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(key, encode_message(m, p.message_modulus()), noise, g);
            stats.add(torus_to_double(decrypt_lwe_ciphertext(key, c) - encode_message(m, p.message_modulus())));
        }
        // Variances below 2^-100 or so are a few integer units: compare in units of 2^-64.
        expect_within(stats.variance(), noise.variance(), 0.1, p.name + " encryption, " + what);
    }
}

TEST_P(TfheNoiseModel, LeveledOperationsVariance) {
    const TfheParameters & p = test_sets::parameters_under_test(GetParam());
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(p.lwe_dimension, g);
    const std::vector<int64_t> weights = {3, -2, 5, 1};
    Stats stats;
    for (int s = 0; s < 8000; ++s) {
        std::vector<LweCiphertext> inputs;
        for (size_t i = 0; i < weights.size(); ++i)
            inputs.push_back(allocate_and_encrypt_new_lwe_ciphertext(key, 0, p.lwe_noise, g));
        LweCiphertext out(p.lwe_dimension);
        lwe_ciphertext_dot_product(out, std::span<const LweCiphertext>(inputs), weights);
        stats.add(torus_to_double(decrypt_lwe_ciphertext(key, out)));
    }
    expect_within(stats.variance(), dot_product_variance(weights, p.lwe_noise.variance()), 0.1,
                  p.name + " dot product (3, -2, 5, 1)");
}

TEST_P(TfheNoiseModel, ModulusSwitchVariance) {
    const TfheParameters & p = test_sets::parameters_under_test(GetParam());
    if (p.is_multi_bit()) { // one switch: the subset sums, rounded (standard body)
        const double measured = measure_modulus_switch_variance(p, ModulusSwitchType::Standard, 4000);
        expect_within(measured, bootstrap_noise_budget(p).modulus_switch, 0.25, p.name + " multi-bit modulus switch");
        return;
    }
    for (ModulusSwitchType type : {ModulusSwitchType::Standard, ModulusSwitchType::CenteredMeanNoiseReduction}) {
        const double measured = measure_modulus_switch_variance(p, type, 4000);
        expect_within(measured, modulus_switch_additive_variance(p.lwe_dimension, p.polynomial_size, type), 0.25,
                      p.name + (type == ModulusSwitchType::Standard ? " modulus switch" : " centred modulus switch"));
    }
}

// The FFT error of one external-product column, sum over (k + 1) l rows of digit polynomial x
// torus polynomial, against exact integer arithmetic, for every FFT kernel of this CPU.
TEST_P(TfheNoiseModel, FftErrorOfExternalProduct) {
    const TfheParameters & p = test_sets::parameters_under_test(GetParam());
    if (p.is_multi_bit()) GTEST_SKIP() << "its external product is FftErrorOfMultiBitExternalProduct's";
    const size_t k = p.glwe_dimension.value, n = p.polynomial_size.value, levels = p.pbs_level_count.value;
    const size_t rows = (k + 1) * levels;
    std::mt19937_64 rng(11);
    const int64_t half = int64_t{1} << (p.pbs_base_log.value - 1);
    std::uniform_int_distribution<int64_t> digit(-half, half - 1);
    for (FftKernel kernel : {FftKernel::Scalar, FftKernel::Avx2, FftKernel::Avx512}) {
        if (!NegacyclicFft::kernel_available(kernel)) continue;
        const NegacyclicFft fft(n, kernel);
        Stats stats;
        const size_t trials = std::max<size_t>(1, 8192 / n);
        for (size_t t = 0; t < trials; ++t) {
            aligned_vector<double> acc(n, 0.0), a(n), b(n);
            std::vector<uint64_t> exact(n, 0), out(n, 0);
            for (size_t r = 0; r < rows; ++r) {
                std::vector<int64_t> d(n);
                std::vector<uint64_t> row(n);
                for (auto & x : d) x = digit(rng);
                for (auto & x : row) x = rng();
                fft.forward_integer(d, a);
                fft.forward_torus(row, b);
                NegacyclicFft::multiply_add(acc, a, b, kernel);
                for (size_t i = 0; i < n; ++i) {
                    if (d[i] == 0) continue;
                    const uint64_t di = static_cast<uint64_t>(d[i]);
                    for (size_t j = 0; j < n; ++j) {
                        if (i + j < n) exact[i + j] += di * row[j];
                        else exact[i + j - n] -= di * row[j];
                    }
                }
            }
            fft.backward_add(acc, out);
            for (size_t i = 0; i < n; ++i) stats.add(torus_to_double(out[i] - exact[i]));
        }
        expect_within(stats.variance() + stats.mean() * stats.mean(),
                      fft_coefficient_variance(p.glwe_dimension, p.polynomial_size, p.pbs_base_log, p.pbs_level_count),
                      0.25, p.name + " FFT error (" + fft.instance_kernel_name() + ")");
    }
}

// The same for the fused multi-bit external product (multi_bit_external_product.h): one group
// of random GGSWs summed with random rotations, times random digits, against the exact sum and
// products mod 2^64. The sum has 2^g GGSWs' magnitude: about 2^g times the classic FFT error
// (multi_bit_fft_coefficient_variance).
TEST_P(TfheNoiseModel, FftErrorOfMultiBitExternalProduct) {
    const TfheParameters & p = test_sets::parameters_under_test(GetParam());
    if (!p.is_multi_bit()) GTEST_SKIP() << "classic set";
    const size_t n = p.polynomial_size.value, columns = p.glwe_dimension.value + 1;
    const size_t rows = columns * p.pbs_level_count.value, subsets = p.grouping_factor.ggsw_per_group();
    std::mt19937_64 rng(13);
    const int64_t half = int64_t{1} << (p.pbs_base_log.value - 1);
    std::uniform_int_distribution<int64_t> digit(-half, half - 1);
    const NegacyclicFft & fft = fft_plan(p.polynomial_size);
    Stats stats;
    for (size_t t = 0; t < std::max<size_t>(1, 4096 / n); ++t) {
        LweBootstrapKey key(LweDimension{p.grouping_factor.value}, p.glwe_dimension, p.polynomial_size, p.pbs_base_log,
                            p.pbs_level_count, p.grouping_factor);
        for (auto & x : key.data) x = rng();
        const FourierLweBootstrapKey fourier = convert_to_fourier_lwe_bootstrap_key(key);
        std::vector<uint32_t> exponents(subsets - 1);
        for (auto & e : exponents) e = static_cast<uint32_t>(rng() % (2 * n));
        std::vector<uint64_t> sum(key.ggsw(0).begin(), key.ggsw(0).end()), shifted(n);
        for (size_t s = 1; s < subsets; ++s)
            for (size_t q = 0; q < rows * columns; ++q) {
                polynomial_monomial_mul(shifted, key.ggsw(s).subspan(q * n, n), exponents[s - 1]);
                for (size_t i = 0; i < n; ++i) sum[q * n + i] += shifted[i];
            }
        std::vector<std::vector<int64_t>> digits(rows, std::vector<int64_t>(n));
        aligned_vector<double> digits_fourier(multi_bit_fourier_stride(p.polynomial_size, rows));
        for (size_t r = 0; r < rows; ++r) {
            for (auto & x : digits[r]) x = digit(rng);
            fft.forward_integer(digits[r], std::span<double>(digits_fourier).subspan(r * n, n));
        }
        aligned_vector<double> output(multi_bit_fourier_stride(p.polynomial_size, columns));
        const uint32_t * exponent_rows[1] = {exponents.data()};
        multiply_multi_bit_ggsw_sums(fourier, 0, exponent_rows, fourier_monomial_table(p.polynomial_size),
                                     digits_fourier, output);
        for (size_t col = 0; col < columns; ++col) {
            std::vector<uint64_t> exact(n, 0), out(n);
            for (size_t r = 0; r < rows; ++r) {
                const uint64_t * g = sum.data() + (r * columns + col) * n;
                for (size_t i = 0; i < n; ++i) {
                    const uint64_t di = static_cast<uint64_t>(digits[r][i]);
                    if (di == 0) continue;
                    for (size_t j = 0; j < n; ++j) {
                        if (i + j < n) exact[i + j] += di * g[j];
                        else exact[i + j - n] -= di * g[j];
                    }
                }
            }
            fft.backward(std::span<double>(output).subspan(col * n, n), out);
            for (size_t i = 0; i < n; ++i) stats.add(torus_to_double(out[i] - exact[i]));
        }
    }
    expect_within(stats.variance() + stats.mean() * stats.mean(),
                  multi_bit_fft_coefficient_variance(p.glwe_dimension, p.polynomial_size, p.pbs_base_log,
                                                     p.pbs_level_count, p.grouping_factor),
                  0.25, p.name + " FFT error (multi-bit external product)");
}

INSTANTIATE_TEST_SUITE_P(Sets, TfheNoiseModel, ::testing::ValuesIn(production_names()),
                         [](const ::testing::TestParamInfo<std::string> & info) { return info.param; });
