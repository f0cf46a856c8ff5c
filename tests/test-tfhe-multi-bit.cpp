// Multi-bit bootstrapping on the INSECURE_TEST_4BIT_MULTI_BIT_G* sets: Fourier-domain monomials
// against every FFT kernel, the multi-bit modulus switch against exact arithmetic, every GGSW of
// a key against the subset indicator it must encrypt, seeded keys, the blind rotation against
// the exact rotation by the phase, and the noise model of the modulus switch and the bootstrap
// against measurements. End-to-end lookups on these sets run in test-tfhe-pbs.
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/algorithms/modulus_switch.h"
#include "tfhe/algorithms/multi_bit_external_product.h"
#include "tfhe/algorithms/polynomial.h"
#include "tfhe/tfhe.h"

#include "tfhe-sample-stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

const char * const kSets[] = {"INSECURE_TEST_4BIT_MULTI_BIT_G2", "INSECURE_TEST_4BIT_MULTI_BIT_G3",
                              "INSECURE_TEST_4BIT_MULTI_BIT_G4"};

struct Keys {
    ClientKey client;
    ServerKey server;
};

Keys & keys(const std::string & name) {
    static std::map<std::string, std::unique_ptr<Keys>> cache;
    auto & k = cache[name];
    if (!k) {
        k = std::make_unique<Keys>();
        k->client = generate_client_key(parameters_by_name(name));
        k->server = generate_server_key(k->client);
    }
    return *k;
}

using Stats = test::SampleStats;

// round(x 2N / 2^64) mod 2N in 128-bit arithmetic.
uint32_t exact_switch(uint64_t x, size_t polynomial_size) {
    const unsigned __int128 scaled = static_cast<unsigned __int128>(x) * (2 * polynomial_size);
    const unsigned __int128 rounded = (scaled + (static_cast<unsigned __int128>(1) << 63)) >> 64;
    return static_cast<uint32_t>(rounded % (2 * polynomial_size));
}

// The switched phase b~ - sum over groups of e_S* (S*: the group's key bits that are 1), mod 2N.
uint64_t switched_phase(std::span<const uint32_t> switched, const LweSecretKey & key, LweBskGroupingFactor g,
                        size_t polynomial_size) {
    const size_t per_group = g.ggsw_per_group() - 1;
    uint64_t phi = switched.back();
    for (size_t group = 0; group < key.data.size() / g.value; ++group) {
        size_t subset = 0;
        for (size_t b = 0; b < g.value; ++b) subset |= static_cast<size_t>(key.data[group * g.value + b]) << b;
        if (subset != 0) phi -= switched[group * per_group + subset - 1];
    }
    return phi & (2 * polynomial_size - 1);
}

// Death tests re-run the test in a fresh process: the thread pool of the parent is not forked.
void use_threadsafe_death_tests() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

} // namespace

// The monomial table's factor times the transform of p is the transform of X^d p, on every
// kernel of this CPU (they share one Fourier layout).
TEST(TfheMultiBit, FourierMonomialsMatchEveryKernel) {
    std::mt19937_64 rng(5);
    for (size_t n : {size_t{64}, size_t{1024}, size_t{2048}}) {
        const FourierMonomialTable & table = fourier_monomial_table(PolynomialSize{n});
        ASSERT_EQ(table.polynomial_size(), n);
        for (FftKernel kernel : {FftKernel::Scalar, FftKernel::Avx2, FftKernel::Avx512}) {
            if (!NegacyclicFft::kernel_available(kernel)) continue;
            const NegacyclicFft fft(n, kernel);
            std::vector<uint64_t> p(n), shifted(n), back(n);
            for (auto & x : p) x = rng();
            aligned_vector<double> fp(n), w(n), product(n);
            fft.forward_torus(p, fp);
            for (uint32_t degree : {uint32_t{0}, uint32_t{1}, uint32_t(n / 2 + 1), uint32_t(n), uint32_t(2 * n - 1),
                                    uint32_t(rng() % (2 * n))}) {
                polynomial_monomial_mul(shifted, p, degree);
                table.monomial(degree, w);
                const size_t h = n / 2;
                for (size_t j = 0; j < h; ++j) {
                    product[j] = w[j] * fp[j] - w[h + j] * fp[h + j];
                    product[h + j] = w[j] * fp[h + j] + w[h + j] * fp[j];
                }
                fft.backward(product, back);
                // Back in the coefficient domain: X^d p up to the FFT's rounding (a few units of 2^-64
                // relative to coefficients of 2^63: well under 2^20).
                for (size_t i = 0; i < n; ++i)
                    ASSERT_LT(std::abs(static_cast<int64_t>(back[i] - shifted[i])), int64_t{1} << 20)
                        << fft.instance_kernel_name() << " N=" << n << " d=" << degree << " i=" << i;
            }
        }
    }
}

// The points of a block of four are quarter turns apart (what the AVX2 kernel reads one root
// per block for): the factor of point 4q + i for X^d is that of point 4q times i^(k_i d).
TEST(TfheMultiBit, FourierMonomialBlocksAreQuarterTurns) {
    for (size_t n : {size_t{16}, size_t{64}, size_t{1024}, size_t{2048}, size_t{4096}}) {
        const FourierMonomialTable & table = fourier_monomial_table(PolynomialSize{n});
        ASSERT_TRUE(table.blocks_are_quarter_turns()) << "N=" << n;
        const std::array<uint32_t, 4> & turns = table.block_quarter_turns();
        const size_t h = n / 2;
        aligned_vector<double> w(n);
        for (uint32_t degree = 0; degree < 2 * n; degree += (n >= 1024 ? 37 : 1)) {
            table.monomial(degree, w);
            for (size_t q = 0; q < h / 4; ++q)
                for (size_t i = 0; i < 4; ++i) {
                    // (re, im) i^m
                    double re = w[4 * q], im = w[h + 4 * q];
                    for (uint32_t m = 0; m < (turns[i] * degree) % 4; ++m) {
                        const double t = re;
                        re = -im;
                        im = t;
                    }
                    ASSERT_NEAR(w[4 * q + i], re, 1e-14) << "N=" << n << " d=" << degree << " point " << 4 * q + i;
                    ASSERT_NEAR(w[h + 4 * q + i], im, 1e-14) << "N=" << n << " d=" << degree << " point " << 4 * q + i;
                }
        }
    }
}

TEST(TfheMultiBit, ModulusSwitchRoundsSubsetSums) {
    std::mt19937_64 rng(7);
    for (size_t g = 2; g <= 4; ++g) {
        const LweBskGroupingFactor grouping{g};
        const size_t n = 12, big_n = 1024, subsets = grouping.ggsw_per_group();
        LweCiphertext c(LweDimension{n});
        for (auto & x : c.data) x = rng();
        c.data[0] = ~uint64_t{0}; // wraps around the torus
        std::vector<uint32_t> out(multi_bit_switched_size(LweDimension{n}, grouping));
        ASSERT_EQ(out.size(), n / g * (subsets - 1) + 1);
        modulus_switch_multi_bit_lwe_ciphertext(c, PolynomialSize{big_n}, grouping, out);
        for (size_t group = 0; group < n / g; ++group)
            for (size_t s = 1; s < subsets; ++s) {
                uint64_t sum = 0;
                for (size_t b = 0; b < g; ++b)
                    if ((s >> b) & 1) sum += c.data[group * g + b];
                EXPECT_EQ(out[group * (subsets - 1) + s - 1], exact_switch(sum, big_n)) << "g=" << g << " S=" << s;
            }
        // The body exactly as the standard switch rounds it.
        std::vector<uint32_t> standard(n + 1);
        modulus_switch_lwe_ciphertext(c, PolynomialSize{big_n}, ModulusSwitchType::Standard, standard);
        EXPECT_EQ(out.back(), standard.back());
    }
    use_threadsafe_death_tests();
    LweCiphertext odd(LweDimension{10});
    std::vector<uint32_t> out(4 * 7 + 1);
    EXPECT_DEATH(modulus_switch_multi_bit_lwe_ciphertext(odd, PolynomialSize{1024}, LweBskGroupingFactor{3}, out),
                 "grouping factor 3");
}

// Every GGSW of a multi-bit key encrypts its subset indicator: an external product with a
// trivial GLWE of the constant 2^60 decrypts to f_S 2^60.
TEST(TfheMultiBit, KeyGgswsEncryptSubsetIndicators) {
    for (const char * name : kSets) {
        SCOPED_TRACE(name);
        Keys & k = keys(name);
        const TfheParameters & p = k.client.parameters;
        const LweBootstrapKey bsk = generate_lwe_bootstrap_key(k.client.lwe_secret_key, k.client.glwe_secret_key,
                                                               p.pbs_base_log, p.pbs_level_count, p.glwe_noise,
                                                               p.grouping_factor);
        ASSERT_EQ(bsk.grouping_factor, p.grouping_factor);
        const size_t g = p.grouping_factor.value, per_group = p.grouping_factor.ggsw_per_group();
        const size_t big_n = p.polynomial_size.value, kk = p.glwe_dimension.value;
        ASSERT_EQ(bsk.ggsw_count(), p.lwe_dimension.value / g * per_group);
        ExternalProductScratch scratch(p.glwe_dimension, p.polynomial_size, p.pbs_level_count);
        std::vector<uint64_t> trivial((kk + 1) * big_n, 0), out((kk + 1) * big_n);
        trivial[kk * big_n] = uint64_t{1} << 60;
        GlweCiphertext glwe(p.glwe_dimension, p.polynomial_size);
        GgswCiphertext ggsw(p.glwe_dimension, p.polynomial_size, p.pbs_base_log, p.pbs_level_count);
        std::vector<uint64_t> phase(big_n);
        size_t ones = 0;
        for (size_t i = 0; i < bsk.ggsw_count(); ++i) {
            const size_t group = i / per_group, subset = i % per_group;
            int64_t expected = 1;
            for (size_t b = 0; b < g; ++b)
                expected &= static_cast<int64_t>(k.client.lwe_secret_key.data[group * g + b] == ((subset >> b) & 1));
            ones += static_cast<size_t>(expected);
            std::copy(bsk.ggsw(i).begin(), bsk.ggsw(i).end(), ggsw.data.begin());
            const FourierGgswCiphertext fourier = convert_to_fourier_ggsw_ciphertext(ggsw);
            std::fill(out.begin(), out.end(), 0);
            add_external_product_assign(out, view_of(fourier), trivial, scratch);
            glwe.data = out;
            decrypt_glwe_ciphertext(k.client.glwe_secret_key, glwe, phase);
            const int64_t decoded = std::llround(static_cast<double>(static_cast<int64_t>(phase[0])) / std::ldexp(1.0, 60));
            ASSERT_EQ(decoded, expected) << "GGSW " << i << " (group " << group << ", subset " << subset << ")";
        }
        EXPECT_EQ(ones, p.lwe_dimension.value / g); // one indicator per group
    }
}

// The multi-bit external product (key in the block layout, GGSW sums built in registers from the
// monomial table) against the classic external product with the GGSW sum computed exactly in the
// coefficient domain: the Fourier-domain products on every kernel, then the whole step.
TEST(TfheMultiBit, ExternalProductMatchesTheCoefficientDomain) {
    std::mt19937_64 rng(3);
    // The sets' k = 1, and k = 2: (k + 1)^2 l polynomials not a multiple of the AVX2 kernel's 4.
    const std::pair<const char *, size_t> shapes[] = {{kSets[0], 1}, {kSets[1], 1}, {kSets[2], 1}, {kSets[0], 2},
                                                      {kSets[1], 2}};
    for (const auto & [name, glwe_dimension] : shapes) {
        SCOPED_TRACE(std::string(name) + " k=" + std::to_string(glwe_dimension));
        const TfheParameters & p = parameters_by_name(name);
        const GlweDimension k{glwe_dimension};
        const size_t n = p.polynomial_size.value, subsets = p.grouping_factor.ggsw_per_group();
        const size_t columns = k.value + 1, rows = p.pbs_level_count.value * columns;
        const LweDimension bits{p.grouping_factor.value * 2}; // two groups
        LweBootstrapKey key(bits, k, p.polynomial_size, p.pbs_base_log, p.pbs_level_count, p.grouping_factor);
        for (auto & x : key.data) x = rng();
        const FourierLweBootstrapKey fourier = convert_to_fourier_lwe_bootstrap_key(key);
        const size_t group = 1, ggsw_size = key.ggsw_size();
        std::vector<uint32_t> exponents(subsets - 1);
        for (auto & e : exponents) e = static_cast<uint32_t>(rng() % (2 * n));
        exponents[0] = 0; // a zero exponent is allowed too
        // Exact: sum_S X^(e_S) GGSW_S polynomial by polynomial, mod 2^64.
        GgswCiphertext exact(k, p.polynomial_size, p.pbs_base_log, p.pbs_level_count);
        std::copy(key.ggsw(group * subsets).begin(), key.ggsw(group * subsets).end(), exact.data.begin());
        std::vector<uint64_t> shifted(n);
        for (size_t s = 1; s < subsets; ++s) {
            const std::span<const uint64_t> ggsw = key.ggsw(group * subsets + s);
            for (size_t q = 0; q < ggsw_size / n; ++q) {
                polynomial_monomial_mul(shifted, ggsw.subspan(q * n, n), exponents[s - 1]);
                for (size_t i = 0; i < n; ++i) exact.data[q * n + i] += shifted[i];
            }
        }
        const FourierGgswCiphertext exact_fourier = convert_to_fourier_ggsw_ciphertext(exact);
        const NegacyclicFft & fft = fft_plan(p.polynomial_size);
        // Random digits in the decomposition's range, transformed.
        const size_t digits_stride = multi_bit_fourier_stride(p.polynomial_size, rows);
        const size_t output_stride = multi_bit_fourier_stride(p.polynomial_size, columns);
        aligned_vector<double> digits(digits_stride);
        const int64_t half = int64_t{1} << (p.pbs_base_log.value - 1);
        for (size_t r = 0; r < rows; ++r) {
            std::vector<int64_t> d(n);
            for (auto & x : d) x = static_cast<int64_t>(rng() % (2 * half)) - half;
            fft.forward_integer(d, std::span<double>(digits).subspan(r * n, n));
        }
        std::vector<std::vector<uint64_t>> expected(columns, std::vector<uint64_t>(n));
        for (size_t col = 0; col < columns; ++col) {
            aligned_vector<double> acc(n, 0.0);
            for (size_t r = 0; r < rows; ++r)
                NegacyclicFft::multiply_add(acc, std::span<const double>(digits).subspan(r * n, n),
                                            std::span<const double>(exact_fourier.data).subspan((r * columns + col) * n, n));
            fft.backward(acc, expected[col]);
        }
        const uint32_t * rows_of_exponents[1] = {exponents.data()};
        for (MultiBitKernel kernel : {MultiBitKernel::Generic, MultiBitKernel::Avx2}) {
            if (!multi_bit_kernel_available(kernel)) continue;
            aligned_vector<double> output(output_stride);
            multiply_multi_bit_ggsw_sums(fourier, group, rows_of_exponents, fourier_monomial_table(p.polynomial_size),
                                         digits, output, kernel);
            std::vector<uint64_t> back(n);
            for (size_t col = 0; col < columns; ++col) {
                aligned_vector<double> a(output.begin() + col * n, output.begin() + (col + 1) * n);
                fft.backward(a, back);
                for (size_t i = 0; i < n; ++i)
                    ASSERT_LT(std::abs(static_cast<int64_t>(back[i] - expected[col][i])), int64_t{1} << 44)
                        << "kernel " << static_cast<int>(kernel) << " column " << col << " coefficient " << i;
            }
        }
        // The whole step on a random accumulator against the classic external product.
        std::vector<uint64_t> input(columns * n), classic(columns * n, 0);
        for (auto & x : input) x = rng();
        ExternalProductScratch scratch(k, p.polynomial_size, p.pbs_level_count);
        add_external_product_assign(classic, view_of(exact_fourier), input, scratch);
        for (MultiBitKernel kernel : {MultiBitKernel::Generic, MultiBitKernel::Avx2}) {
            if (!multi_bit_kernel_available(kernel)) continue;
            std::vector<uint64_t> accumulator = input, spare_buffer(columns * n);
            uint64_t * current[1] = {accumulator.data()};
            uint64_t * spare[1] = {spare_buffer.data()};
            aligned_vector<double> digits_scratch(digits_stride), output_scratch(output_stride);
            multi_bit_external_product_assign(fourier, group, rows_of_exponents, current, spare,
                                              fourier_monomial_table(p.polynomial_size), scratch, digits_scratch,
                                              output_scratch, kernel);
            ASSERT_EQ(current[0], spare_buffer.data()); // the result is in the other buffer
            for (size_t i = 0; i < columns * n; ++i)
                ASSERT_LT(std::abs(static_cast<int64_t>(current[0][i] - classic[i])), int64_t{1} << 44)
                    << "kernel " << static_cast<int>(kernel) << " coefficient " << i;
        }
    }
}

TEST(TfheMultiBit, SeededKeyDecompressesDeterministically) {
    const TfheParameters & p = parameters_by_name("INSECURE_TEST_4BIT_MULTI_BIT_G3");
    const ClientKey client = generate_client_key(p);
    const CompressedServerKey compressed = generate_compressed_server_key(client);
    EXPECT_EQ(compressed.bootstrap_key.grouping_factor, p.grouping_factor);
    const size_t ggsws = p.lwe_dimension.value / 3 * 8;
    EXPECT_EQ(compressed.bootstrap_key.ggsw_count(), ggsws);
    const size_t rows = p.pbs_level_count.value * (p.glwe_dimension.value + 1);
    EXPECT_EQ(compressed.bootstrap_key.bodies.size(), ggsws * rows * p.polynomial_size.value);
    const LweBootstrapKey a = decompress_seeded_lwe_bootstrap_key(compressed.bootstrap_key);
    EXPECT_EQ(a, decompress_seeded_lwe_bootstrap_key(compressed.bootstrap_key));
    EXPECT_EQ(a.grouping_factor, p.grouping_factor);
    EXPECT_EQ(compressed.bootstrap_key.size_bytes() * (p.glwe_dimension.value + 1) - 32 * (p.glwe_dimension.value + 1),
              a.size_bytes());
    // Another seed, other masks.
    CompressedServerKey other = compressed;
    other.bootstrap_key.seed = Seed::from_os();
    EXPECT_NE(decompress_seeded_lwe_bootstrap_key(other.bootstrap_key), a);
    // The decompressed key bootstraps.
    const ServerKey server = decompress_server_key(compressed);
    const LookupTable lut = generate_lookup_table(server, 16, 16, [](uint64_t m) { return (7 * m + 2) % 16; });
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(server);
    for (uint64_t m = 0; m < 16; ++m) {
        LweCiphertext out = allocate_lwe_ciphertext(server);
        keyswitch_bootstrap(server, encrypt_message(client, m, 16), out, lut, workspace);
        EXPECT_EQ(decrypt_message(client, out, 16), (7 * m + 2) % 16);
    }
}

// The multi-bit blind rotation of a random table is X^(-phi) V within the model's noise, and
// the measured variance agrees with noise_model.h; the same for the modulus switch.
TEST(TfheMultiBit, BlindRotationAndNoiseModel) {
    for (const char * name : kSets) {
        SCOPED_TRACE(name);
        Keys & k = keys(name);
        const TfheParameters & p = k.client.parameters;
        const size_t big_n = p.polynomial_size.value, kk = p.glwe_dimension.value;
        const FourierLweBootstrapKey & bsk = k.server.bootstrap_key;
        ExternalProductScratch external_product(p.glwe_dimension, p.polynomial_size, p.pbs_level_count);
        MultiBitBlindRotationScratch scratch(bsk, 1);
        RandomGenerator g = RandomGenerator::from_os();
        std::vector<uint64_t> lut(big_n), accumulator((kk + 1) * big_n);
        std::vector<uint32_t> switched(multi_bit_switched_size(p.lwe_dimension, p.grouping_factor));
        LweCiphertext small(p.lwe_dimension), extracted(p.big_lwe_dimension());
        const NoiseBudget budget = bootstrap_noise_budget(p);
        const double bound = 8 * std::sqrt(budget.pbs_output);
        Stats pbs, modulus_switch;
        for (size_t r = 0; r < 48; ++r) {
            g.fill_uniform(lut);
            const LweCiphertext input = encrypt_message(k.client, r % 16, 16);
            keyswitch_lwe_ciphertext(k.server.keyswitch_key, input, small);
            modulus_switch_multi_bit_lwe_ciphertext(small, p.polynomial_size, p.grouping_factor, switched);
            const uint64_t phi = switched_phase(switched, k.client.lwe_secret_key, p.grouping_factor, big_n);
            std::fill(accumulator.begin(), accumulator.end(), 0);
            polynomial_monomial_mul(std::span<uint64_t>(accumulator.data() + kk * big_n, big_n), lut,
                                    (2 * big_n - switched.back()) % (2 * big_n));
            multi_bit_blind_rotate_assign(accumulator, switched, bsk, external_product, scratch);
            for (size_t c = 0; c < 64; ++c) {
                const size_t h = c * (big_n / 64);
                extract_lwe_sample_from_glwe_ciphertext(accumulator, p.glwe_dimension, p.polynomial_size, h, extracted);
                const size_t t = (h + phi) % (2 * big_n);
                const uint64_t expected = t < big_n ? lut[t] : 0 - lut[t - big_n];
                const double e = torus_to_double(decrypt_lwe_ciphertext(k.client.big_lwe_secret_key, extracted) - expected);
                ASSERT_LT(std::abs(e), bound) << "rotation " << r << " coefficient " << h;
                pbs.add(e);
            }
        }
        std::printf("%s: bootstrap output variance measured / model %.3f, modulus switch ",
                    name, pbs.variance() / budget.pbs_output);
        // Coefficients of one rotation are correlated (noise_model.h): a loose tolerance for 48 rotations.
        EXPECT_NEAR(pbs.variance() / budget.pbs_output, 1.0, 0.35) << "bootstrap output";
        // Modulus switch: switched phase against the exact phase, fresh keys, many samples.
        const LweSecretKey key = generate_binary_lwe_secret_key(p.lwe_dimension, g);
        for (int s = 0; s < 20000; ++s) {
            const LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(key, g.next_u64(), p.lwe_noise, g);
            modulus_switch_multi_bit_lwe_ciphertext(c, p.polynomial_size, p.grouping_factor, switched);
            const uint64_t phi = switched_phase(switched, key, p.grouping_factor, big_n);
            double e = static_cast<double>(phi) / static_cast<double>(2 * big_n) - torus_to_double(decrypt_lwe_ciphertext(key, c));
            e -= std::round(e);
            modulus_switch.add(e);
        }
        // With this key: one uniform rounding error (variance 1/12 (2N)^-2) per group whose bits are
        // not all 0, and the body's. The model is its mean over keys (a few % away for a small n).
        const size_t g_value = p.grouping_factor.value;
        double errors = 1;
        for (size_t group = 0; group < p.lwe_dimension.value / g_value; ++group) {
            uint64_t any = 0;
            for (size_t b = 0; b < g_value; ++b) any |= key.data[group * g_value + b];
            errors += static_cast<double>(any);
        }
        const double this_key = errors / 12.0 / std::pow(2.0 * static_cast<double>(big_n), 2);
        std::printf("%.3f (%.3f for this key)\n", modulus_switch.variance() / budget.modulus_switch,
                    modulus_switch.variance() / this_key);
        EXPECT_NEAR(modulus_switch.variance() / this_key, 1.0, 0.06) << "modulus switch";
        // Grouping lowers the modulus switch noise below the classic standard switch's.
        EXPECT_LT(budget.modulus_switch,
                  modulus_switch_additive_variance(p.lwe_dimension, p.polynomial_size, ModulusSwitchType::Standard));
    }
}

// The bootstrap with each kernel of the Fourier-domain products (and the digits extracted inside
// the FFT, as every kernel does): the same lookups decrypt the same. The kernels round
// differently, and a digit that rounds the other way adds other key noise, so the output phases
// may differ by up to the output noise: within 8 of its standard deviations.
TEST(TfheMultiBit, ProductKernelsGiveTheSameLookups) {
    for (const char * name : kSets) {
        SCOPED_TRACE(name);
        Keys & k = keys(name);
        const FourierLweBootstrapKey & bsk = k.server.bootstrap_key;
        const TfheParameters & p = k.client.parameters;
        const LookupTable lut = generate_lookup_table(k.server, 16, 16, [](uint64_t m) { return (5 * m + 3) % 16; });
        std::vector<LweCiphertext> small;
        for (uint64_t m = 0; m < 16; ++m) {
            small.emplace_back(p.lwe_dimension);
            keyswitch_lwe_ciphertext(k.server.keyswitch_key, encrypt_message(k.client, m, 16), small.back());
        }
        std::vector<uint64_t> reference;
        double widest = 0;
        for (MultiBitKernel kernel : {MultiBitKernel::Generic, MultiBitKernel::Avx2}) {
            if (!multi_bit_kernel_available(kernel)) continue;
            ProgrammableBootstrapScratch scratch(bsk, 4);
            scratch.multi_bit.kernel = kernel;
            std::vector<LweCiphertext> out(16, allocate_lwe_ciphertext(k.server));
            for (size_t first = 0; first < 16; first += 4) {
                const LweCiphertext * in[4];
                LweCiphertext * outputs[4];
                const LookupTable * luts[4];
                for (size_t c = 0; c < 4; ++c) {
                    in[c] = &small[first + c];
                    outputs[c] = &out[first + c];
                    luts[c] = &lut;
                }
                programmable_bootstrap_lwe_ciphertext_group(in, outputs, luts, bsk, p.modulus_switch, scratch);
            }
            for (uint64_t m = 0; m < 16; ++m) {
                EXPECT_EQ(decrypt_message(k.client, out[m], 16), (5 * m + 3) % 16)
                    << "kernel " << static_cast<int>(kernel);
                const uint64_t phase = decrypt_lwe_ciphertext(k.client.big_lwe_secret_key, out[m]);
                if (reference.size() < 16) reference.push_back(phase);
                else widest = std::max(widest, std::abs(torus_to_double(phase - reference[m])));
            }
        }
        EXPECT_LT(widest, 8 * std::sqrt(bootstrap_noise_budget(p).pbs_output)) << "largest phase gap";
    }
}

TEST(TfheMultiBit, ClassicEntryPointsRefuseMultiBitKeys) {
    use_threadsafe_death_tests();
    Keys & k = keys("INSECURE_TEST_4BIT_MULTI_BIT_G2");
    const TfheParameters & p = k.client.parameters;
    ExternalProductScratch scratch(p.glwe_dimension, p.polynomial_size, p.pbs_level_count);
    std::vector<uint64_t> accumulator((p.glwe_dimension.value + 1) * p.polynomial_size.value);
    std::vector<uint32_t> switched(p.lwe_dimension.value + 1);
    EXPECT_DEATH(blind_rotate_assign(accumulator, switched, k.server.bootstrap_key, scratch), "multi-bit key");
    // A multi-bit bootstrap with the centred modulus switch does not exist.
    ProgrammableBootstrapScratch pbs(k.server.bootstrap_key);
    const LookupTable lut = generate_lookup_table(k.server, 16, 16, [](uint64_t m) { return m; });
    LweCiphertext small(p.lwe_dimension), out = allocate_lwe_ciphertext(k.server);
    EXPECT_DEATH(programmable_bootstrap_lwe_ciphertext(small, out, lut, k.server.bootstrap_key,
                                                       ModulusSwitchType::CenteredMeanNoiseReduction, pbs),
                 "centred modulus switch");
}
