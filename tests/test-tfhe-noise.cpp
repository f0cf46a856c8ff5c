// The noise model's terms against measurements, for every production parameter set: the
// empirical variance of the phase error after encryption, linear operations and modulus
// switching (thousands of samples each), and the FFT error of an external product against exact
// integer arithmetic, must be within 10-25% of commons/noise_model.h. The key switch and the
// bootstrap output, which need the set's keys, are measured in test-tfhe-pbs-production on the
// bootstraps it runs anyway, with the failure probability they imply.
#include "tfhe/tfhe.h"
#include "tfhe/algorithms/modulus_switch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

struct Stats {
    double sum = 0, sum2 = 0;
    size_t count = 0;
    void add(double x) {
        sum += x;
        sum2 += x * x;
        ++count;
    }
    double mean() const { return sum / static_cast<double>(count); }
    double variance() const { return sum2 / static_cast<double>(count) - mean() * mean(); }
};

double measure_modulus_switch_variance(const TfheParameters & p, ModulusSwitchType type, size_t samples) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(p.lwe_dimension, g);
    const size_t n = p.lwe_dimension.value, two_n = 2 * p.polynomial_size.value;
    std::vector<uint32_t> switched(n + 1);
    Stats stats;
    for (size_t s = 0; s < samples; ++s) {
        const LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(key, g.next_u64(), p.lwe_noise, g);
        modulus_switch_lwe_ciphertext(c, p.polynomial_size, type, switched);
        uint64_t phi = switched[n];
        for (size_t i = 0; i < n; ++i) phi -= switched[i] * key.data[i];
        phi %= two_n;
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

std::vector<std::string> production_names() {
    std::vector<std::string> names;
    // A _MIXED set's standard key is its base set's, tested under that name; its fine key has
    // the decomposition of a _PBS_L* set or of PARAM_5BIT_2M128 (same N and noise).
    for (const TfheParameters * p : production_parameter_sets())
        if (!p->has_fine_bootstrap()) names.push_back(p->name);
    return names;
}

} // namespace

TEST_P(TfheNoiseModel, EncryptionVariance) {
    const TfheParameters & p = parameters_by_name(GetParam());
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
    const TfheParameters & p = parameters_by_name(GetParam());
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
    const TfheParameters & p = parameters_by_name(GetParam());
    for (ModulusSwitchType type : {ModulusSwitchType::Standard, ModulusSwitchType::CenteredMeanNoiseReduction}) {
        const double measured = measure_modulus_switch_variance(p, type, 4000);
        expect_within(measured, modulus_switch_additive_variance(p.lwe_dimension, p.polynomial_size, type), 0.25,
                      p.name + (type == ModulusSwitchType::Standard ? " modulus switch" : " centred modulus switch"));
    }
}

// The FFT error of one external-product column, sum over (k + 1) l rows of digit polynomial x
// torus polynomial, against exact integer arithmetic, for every FFT kernel of this CPU.
TEST_P(TfheNoiseModel, FftErrorOfExternalProduct) {
    const TfheParameters & p = parameters_by_name(GetParam());
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

INSTANTIATE_TEST_SUITE_P(Sets, TfheNoiseModel, ::testing::ValuesIn(production_names()),
                         [](const ::testing::TestParamInfo<std::string> & info) { return info.param; });
