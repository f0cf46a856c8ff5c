// LWE / GLWE / GGSW encryption, leveled operations, external product, sample extraction, key
// switching and seeded (compressed) objects, on small insecure parameters.
#include "tfhe/commons/decomposition.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

const NoiseDistribution kSmallNoise = NoiseDistribution::t_uniform(20);

// Noise of a phase with respect to an encoded message, as a fraction of Delta / 2.
double relative_noise(uint64_t phase, uint64_t message, uint64_t p) {
    const int64_t e = torus_noise(phase, encode_message(message, p));
    return std::fabs(static_cast<double>(e)) / static_cast<double>(delta_with_padding(p) / 2);
}

} // namespace

TEST(TfheLwe, EncryptDecryptRoundTrip) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(LweDimension{600}, g);
    for (uint64_t p : {2u, 16u, 256u}) {
        for (uint64_t m = 0; m < p; m += (p > 16 ? 7 : 1)) {
            LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(key, encode_message(m, p), kSmallNoise, g);
            EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, c), p), m);
            EXPECT_LT(relative_noise(decrypt_lwe_ciphertext(key, c), m, p), 1e-3);
        }
    }
    LweCiphertext trivial(LweDimension{600});
    trivially_encrypt_lwe_ciphertext(trivial, encode_message(5, 16));
    EXPECT_EQ(decrypt_lwe_ciphertext(key, trivial), encode_message(5, 16));
}

TEST(TfheLwe, SeededCiphertextDecompresses) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(LweDimension{512}, g);
    const Seed seed = Seed::from_os();
    for (uint64_t stream = 0; stream < 8; ++stream) {
        const SeededLweCiphertext s = encrypt_seeded_lwe_ciphertext(key, encode_message(stream, 8), kSmallNoise, seed,
                                                                    stream, g);
        const LweCiphertext c = decompress_seeded_lwe_ciphertext(s);
        EXPECT_EQ(c.lwe_dimension().value, 512u);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, c), 8), stream);
        EXPECT_EQ(decompress_seeded_lwe_ciphertext(s), c);
    }
}

TEST(TfheLwe, LeveledOperations) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey key = generate_binary_lwe_secret_key(LweDimension{700}, g);
    const uint64_t p = 32;
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 50; ++trial) {
        const uint64_t a = rng() % p, b = rng() % p;
        const int64_t c = static_cast<int64_t>(rng() % 9) - 4;
        LweCiphertext ca = allocate_and_encrypt_new_lwe_ciphertext(key, encode_message(a, p), kSmallNoise, g);
        LweCiphertext cb = allocate_and_encrypt_new_lwe_ciphertext(key, encode_message(b, p), kSmallNoise, g);
        LweCiphertext out(LweDimension{700});
        lwe_ciphertext_add(out, ca, cb);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), (a + b) % p);
        lwe_ciphertext_sub(out, ca, cb);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), (a - b + p) % p);
        out = ca;
        lwe_ciphertext_add_assign(out, cb);
        lwe_ciphertext_sub_assign(out, cb);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), a);
        out = ca;
        lwe_ciphertext_opposite_assign(out);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), (p - a) % p);
        out = ca;
        lwe_ciphertext_cleartext_mul_assign(out, c);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p),
                  static_cast<uint64_t>(static_cast<int64_t>(a) * c) % p);
        out = ca;
        lwe_ciphertext_plaintext_add_assign(out, encode_message(b, p));
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), (a + b) % p);
        lwe_ciphertext_plaintext_sub_assign(out, encode_message(b, p));
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, out), p), a);
    }
    // Dot product of 20 ciphertexts with signed weights, both overloads.
    std::vector<LweCiphertext> inputs;
    std::vector<int64_t> weights;
    int64_t expected = 0;
    for (int i = 0; i < 20; ++i) {
        const uint64_t m = rng() % p;
        const int64_t w = static_cast<int64_t>(rng() % 11) - 5;
        inputs.push_back(allocate_and_encrypt_new_lwe_ciphertext(key, encode_message(m, p), kSmallNoise, g));
        weights.push_back(w);
        expected += w * static_cast<int64_t>(m);
    }
    LweCiphertext dot(LweDimension{700});
    lwe_ciphertext_dot_product(dot, std::span<const LweCiphertext>(inputs), weights);
    const uint64_t want = static_cast<uint64_t>(expected) % p;
    EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(key, dot), p), want);
    std::vector<const LweCiphertext *> pointers;
    for (const LweCiphertext & c : inputs) pointers.push_back(&c);
    LweCiphertext dot2(LweDimension{700});
    lwe_ciphertext_dot_product(dot2, std::span<const LweCiphertext * const>(pointers), weights);
    EXPECT_EQ(dot, dot2);
}

TEST(TfheGlwe, EncryptDecryptAndSampleExtraction) {
    RandomGenerator g = RandomGenerator::from_os();
    for (auto [k, n] : {std::pair<size_t, size_t>{1, 1024}, {2, 512}, {4, 64}}) {
        const GlweSecretKey key = generate_binary_glwe_secret_key(GlweDimension{k}, PolynomialSize{n}, g);
        const LweSecretKey big = key.as_lwe_secret_key();
        std::vector<uint64_t> plaintext(n), phase(n);
        std::mt19937_64 rng(8);
        for (auto & x : plaintext) x = encode_message(rng() % 16, 16);
        GlweCiphertext c(GlweDimension{k}, PolynomialSize{n});
        encrypt_glwe_ciphertext(key, c, plaintext, kSmallNoise, g, g);
        decrypt_glwe_ciphertext(key, c, phase);
        for (size_t t = 0; t < n; ++t) EXPECT_EQ(decode_message(phase[t], 16), decode_message(plaintext[t], 16));
        LweCiphertext lwe(LweDimension{k * n});
        for (size_t h : {size_t{0}, size_t{1}, n / 2, n - 1}) {
            extract_lwe_sample_from_glwe_ciphertext(c, h, lwe);
            EXPECT_EQ(decrypt_lwe_ciphertext(big, lwe), phase[h]) << "coefficient " << h;
        }
    }
}

TEST(TfheGgsw, ExternalProductAndCmux) {
    RandomGenerator g = RandomGenerator::from_os();
    for (auto [k, n, base_log, levels] :
         {std::tuple<size_t, size_t, size_t, size_t>{1, 1024, 23, 1}, {2, 512, 12, 2}, {1, 256, 8, 3}}) {
        const GlweSecretKey key = generate_binary_glwe_secret_key(GlweDimension{k}, PolynomialSize{n}, g);
        std::vector<uint64_t> plaintext(n), phase(n);
        std::mt19937_64 rng(9);
        for (auto & x : plaintext) x = encode_message(rng() % 8, 8);
        GlweCiphertext c(GlweDimension{k}, PolynomialSize{n});
        encrypt_glwe_ciphertext(key, c, plaintext, kSmallNoise, g, g);
        ExternalProductScratch scratch(GlweDimension{k}, PolynomialSize{n}, DecompositionLevelCount{levels});
        for (int64_t m : {0, 1, -1, 3}) {
            GgswCiphertext ggsw(GlweDimension{k}, PolynomialSize{n}, DecompositionBaseLog{base_log},
                                DecompositionLevelCount{levels});
            encrypt_ggsw_ciphertext(key, ggsw, m, kSmallNoise, g, g);
            const FourierGgswCiphertext fourier = convert_to_fourier_ggsw_ciphertext(ggsw);
            GlweCiphertext out(GlweDimension{k}, PolynomialSize{n});
            add_external_product_assign(out.data, view_of(fourier), c.data, scratch);
            decrypt_glwe_ciphertext(key, out, phase);
            for (size_t t = 0; t < n; ++t)
                ASSERT_EQ(decode_message(phase[t], 8), decode_message(plaintext[t] * static_cast<uint64_t>(m), 8))
                    << "m = " << m << " t = " << t;
            if (m != 0 && m != 1) continue;
            // CMux: acc * X^(power m).
            for (size_t power : {size_t{0}, size_t{1}, n - 1, n, 2 * n - 3}) {
                GlweCiphertext acc = c;
                cmux_rotate_assign(acc.data, view_of(fourier), power, scratch);
                decrypt_glwe_ciphertext(key, acc, phase);
                std::vector<uint64_t> expected(n);
                polynomial_monomial_mul(expected, plaintext, m == 1 ? power : 0);
                for (size_t t = 0; t < n; ++t) ASSERT_EQ(decode_message(phase[t], 8), decode_message(expected[t], 8));
            }
        }
    }
}

TEST(TfheKeyswitch, SwitchesKeysAndGroupsMatch) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey big = generate_binary_lwe_secret_key(LweDimension{1024}, g);
    const LweSecretKey small = generate_binary_lwe_secret_key(LweDimension{200}, g);
    const LweKeyswitchKey ksk = generate_lwe_keyswitch_key(big, small, DecompositionBaseLog{4},
                                                           DecompositionLevelCount{5}, NoiseDistribution::t_uniform(38));
    EXPECT_EQ(ksk.data.size(), 1024u * 5 * 201);
    const uint64_t p = 16;
    std::vector<LweCiphertext> inputs, singles;
    std::mt19937_64 rng(10);
    std::vector<uint64_t> messages;
    for (int i = 0; i < 12; ++i) {
        messages.push_back(rng() % p);
        inputs.push_back(allocate_and_encrypt_new_lwe_ciphertext(big, encode_message(messages.back(), p), kSmallNoise, g));
        LweCiphertext out(LweDimension{200});
        keyswitch_lwe_ciphertext(ksk, inputs.back(), out);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(small, out), p), messages.back());
        EXPECT_LT(relative_noise(decrypt_lwe_ciphertext(small, out), messages.back(), p), 0.05);
        // The output has 32-bit precision.
        for (uint64_t x : out.data) EXPECT_EQ(x & 0xffffffffu, 0u);
        singles.push_back(out);
    }
    std::vector<const LweCiphertext *> in;
    std::vector<LweCiphertext> outs(12, LweCiphertext(LweDimension{200}));
    std::vector<LweCiphertext *> out;
    for (int i = 0; i < 12; ++i) {
        in.push_back(&inputs[i]);
        out.push_back(&outs[i]);
    }
    std::vector<uint32_t> scratch(12 * 201);
    keyswitch_lwe_ciphertext_group(ksk, in, out, scratch);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(outs[i], singles[i]);
}

// The key switch is exact integer arithmetic mod 2^32: its output equals the definition
// body - sum_i sum_level d_(i,level) * row_(i,level), for 1 to 8 levels (up to 6 rows are summed in
// one pass, more in two) and an output size that is not a multiple of the vector width.
TEST(TfheKeyswitch, MatchesTheDefinitionAtEveryLevelCount) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey big = generate_binary_lwe_secret_key(LweDimension{64}, g);
    const LweSecretKey small = generate_binary_lwe_secret_key(LweDimension{37}, g);
    std::mt19937_64 rng(11);
    for (size_t levels = 1; levels <= 8; ++levels) {
        const DecompositionBaseLog base_log{4};
        const LweKeyswitchKey ksk = generate_lwe_keyswitch_key(big, small, base_log, DecompositionLevelCount{levels},
                                                               NoiseDistribution::t_uniform(38));
        LweCiphertext input(LweDimension{64});
        for (uint64_t & x : input.data) x = rng();
        LweCiphertext out(LweDimension{37});
        keyswitch_lwe_ciphertext(ksk, input, out);
        const SignedDecomposer decomposer(base_log, DecompositionLevelCount{levels});
        std::vector<uint32_t> expected(38, 0u);
        expected[37] = torus_to_u32(input.body());
        std::vector<int64_t> digits(levels);
        for (size_t i = 0; i < 64; ++i) {
            decomposer.decompose(input.data[i], digits);
            for (size_t level = 0; level < levels; ++level)
                for (size_t j = 0; j < 38; ++j)
                    expected[j] -= static_cast<uint32_t>(digits[level]) * ksk.data[(i * levels + level) * 38 + j];
        }
        for (size_t j = 0; j < 38; ++j)
            ASSERT_EQ(out.data[j], static_cast<uint64_t>(expected[j]) << 32) << levels << " levels, j=" << j;
    }
}

TEST(TfheKeyswitch, SeededKeyDecompressesDeterministically) {
    RandomGenerator g = RandomGenerator::from_os();
    const LweSecretKey big = generate_binary_lwe_secret_key(LweDimension{512}, g);
    const LweSecretKey small = generate_binary_lwe_secret_key(LweDimension{100}, g);
    const Seed seed = Seed::from_os();
    const SeededLweKeyswitchKey seeded = generate_seeded_lwe_keyswitch_key(
        big, small, DecompositionBaseLog{4}, DecompositionLevelCount{4}, NoiseDistribution::t_uniform(38), seed);
    EXPECT_EQ(seeded.bodies.size(), 512u * 4);
    const LweKeyswitchKey a = decompress_seeded_lwe_keyswitch_key(seeded), b = decompress_seeded_lwe_keyswitch_key(seeded);
    EXPECT_EQ(a, b);
    EXPECT_LT(seeded.size_bytes() * 50, a.size_bytes());
    for (uint64_t m = 0; m < 8; ++m) {
        LweCiphertext c = allocate_and_encrypt_new_lwe_ciphertext(big, encode_message(m, 8), kSmallNoise, g);
        LweCiphertext out(LweDimension{100});
        keyswitch_lwe_ciphertext(a, c, out);
        EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(small, out), 8), m);
    }
}

TEST(TfheBootstrapKey, SeededKeyDecompressesAndBootstraps) {
    const TfheParameters & params = parameters_by_name("INSECURE_TEST_2BIT");
    const ClientKey client = generate_client_key(params);
    const CompressedServerKey compressed = generate_compressed_server_key(client);
    const LweBootstrapKey a = decompress_seeded_lwe_bootstrap_key(compressed.bootstrap_key);
    const LweBootstrapKey b = decompress_seeded_lwe_bootstrap_key(compressed.bootstrap_key);
    EXPECT_EQ(a, b);
    EXPECT_EQ(compressed.bootstrap_key.bodies.size() * (params.glwe_dimension.value + 1), a.data.size());
    const ServerKey server = decompress_server_key(compressed);
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(server);
    const uint64_t p = params.message_modulus();
    const LookupTable lut = generate_lookup_table(server, p, p, [&](uint64_t m) { return (m + 1) % p; });
    for (uint64_t m = 0; m < p; ++m) {
        LweCiphertext out = allocate_lwe_ciphertext(server);
        keyswitch_bootstrap(server, encrypt_message(client, m, p), out, lut, workspace);
        EXPECT_EQ(decrypt_message(client, out, p), (m + 1) % p);
    }
    // Seeded client ciphertexts.
    const Seed seed = Seed::from_os();
    for (uint64_t m = 0; m < p; ++m) {
        const LweCiphertext c = decompress_seeded_lwe_ciphertext(encrypt_message_seeded(client, m, p, seed, m));
        EXPECT_EQ(decrypt_message(client, c, p), m);
    }
}
