#include "tfhe/algorithms/glwe_encryption.h"

#include "common/check.h"

#include <algorithm>
#include <vector>

namespace fhegpt::tfhe {

void encrypt_glwe_ciphertext(BinaryKeyMultiplier & multiplier, std::span<uint64_t> output,
                             std::span<const uint64_t> plaintext, GlweDimension glwe_dimension,
                             PolynomialSize polynomial_size, const NoiseDistribution & noise,
                             RandomGenerator & mask_generator, RandomGenerator & noise_generator) {
    const size_t k = glwe_dimension.value, n = polynomial_size.value;
    FHEGPT_CHECK_EQ(output.size(), (k + 1) * n);
    FHEGPT_CHECK_EQ(plaintext.size(), n);
    mask_generator.fill_uniform(output.subspan(0, k * n));
    std::span<uint64_t> body = output.subspan(k * n, n);
    std::copy(plaintext.begin(), plaintext.end(), body.begin());
    add_noise(noise_generator, noise, body);
    for (size_t j = 0; j < k; ++j) multiplier.add_mul(body, output.subspan(j * n, n), j);
}

void encrypt_glwe_ciphertext(const GlweSecretKey & key, GlweCiphertext & output, std::span<const uint64_t> plaintext,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator) {
    FHEGPT_CHECK_EQ(output.glwe_dimension.value, key.glwe_dimension.value);
    FHEGPT_CHECK_EQ(output.polynomial_size.value, key.polynomial_size.value);
    BinaryKeyMultiplier multiplier(key.data, key.polynomial_size);
    encrypt_glwe_ciphertext(multiplier, output.data, plaintext, key.glwe_dimension, key.polynomial_size, noise,
                            mask_generator, noise_generator);
}

void decrypt_glwe_ciphertext(const GlweSecretKey & key, const GlweCiphertext & ciphertext, std::span<uint64_t> phase) {
    FHEGPT_CHECK_EQ(ciphertext.glwe_dimension.value, key.glwe_dimension.value);
    FHEGPT_CHECK_EQ(ciphertext.polynomial_size.value, key.polynomial_size.value);
    FHEGPT_CHECK_EQ(phase.size(), key.polynomial_size.value);
    const size_t k = key.glwe_dimension.value, n = key.polynomial_size.value;
    // phase = B - sum_j A_j S_j: accumulate sum_j A_j S_j, then subtract from B.
    std::vector<uint64_t> product(n, 0);
    BinaryKeyMultiplier multiplier(key.data, key.polynomial_size);
    for (size_t j = 0; j < k; ++j) multiplier.add_mul(product, ciphertext.polynomial(j), j);
    std::span<const uint64_t> body = ciphertext.body();
    for (size_t t = 0; t < n; ++t) phase[t] = body[t] - product[t];
}

void encrypt_ggsw_ciphertext(const GlweSecretKey & key, BinaryKeyMultiplier & multiplier, std::span<uint64_t> output,
                             DecompositionBaseLog base_log, DecompositionLevelCount level_count, int64_t message,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator) {
    const size_t k = key.glwe_dimension.value, n = key.polynomial_size.value;
    const size_t row_size = (k + 1) * n;
    FHEGPT_CHECK_EQ(output.size(), level_count.value * (k + 1) * row_size);
    FHEGPT_CHECK(base_log.value * level_count.value <= 64, "GGSW gadget %zu x %zu exceeds 64 bits", base_log.value,
                 level_count.value);
    std::vector<uint64_t> plaintext(n);
    const uint64_t m = static_cast<uint64_t>(message);
    for (size_t level = 0; level < level_count.value; ++level) {
        const uint64_t gadget = m << (64 - base_log.value * (level + 1)); // m / B^(level+1)
        for (size_t j = 0; j <= k; ++j) {
            if (j < k) {
                // -m S_j / B^i
                std::span<const uint64_t> s = key.polynomial(j);
                for (size_t t = 0; t < n; ++t) plaintext[t] = 0 - gadget * s[t];
            } else {
                std::fill(plaintext.begin(), plaintext.end(), 0);
                plaintext[0] = gadget;
            }
            std::span<uint64_t> row = output.subspan((level * (k + 1) + j) * row_size, row_size);
            encrypt_glwe_ciphertext(multiplier, row, plaintext, key.glwe_dimension, key.polynomial_size, noise,
                                    mask_generator, noise_generator);
        }
    }
}

void encrypt_ggsw_ciphertext(const GlweSecretKey & key, GgswCiphertext & output, int64_t message,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator) {
    FHEGPT_CHECK_EQ(output.glwe_dimension.value, key.glwe_dimension.value);
    FHEGPT_CHECK_EQ(output.polynomial_size.value, key.polynomial_size.value);
    BinaryKeyMultiplier multiplier(key.data, key.polynomial_size);
    encrypt_ggsw_ciphertext(key, multiplier, output.data, output.base_log, output.level_count, message, noise,
                            mask_generator, noise_generator);
}

} // namespace fhegpt::tfhe
