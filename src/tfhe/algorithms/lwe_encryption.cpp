#include "tfhe/algorithms/lwe_encryption.h"

#include "common/check.h"

namespace fhegpt::tfhe {

uint64_t lwe_mask_key_product(std::span<const uint64_t> mask, std::span<const uint64_t> key) {
    FHEGPT_CHECK_EQ(mask.size(), key.size());
    uint64_t sum = 0;
    for (size_t i = 0; i < mask.size(); ++i) sum += mask[i] * key[i];
    return sum;
}

void encrypt_lwe_ciphertext(const LweSecretKey & key, LweCiphertext & output, uint64_t plaintext,
                            const NoiseDistribution & noise, RandomGenerator & mask_generator,
                            RandomGenerator & noise_generator) {
    FHEGPT_CHECK_EQ(output.lwe_dimension().value, key.lwe_dimension().value);
    mask_generator.fill_uniform(output.mask());
    output.body() = lwe_mask_key_product(output.mask(), key.data) + plaintext +
                    static_cast<uint64_t>(sample_noise(noise_generator, noise));
}

LweCiphertext allocate_and_encrypt_new_lwe_ciphertext(const LweSecretKey & key, uint64_t plaintext,
                                                      const NoiseDistribution & noise,
                                                      RandomGenerator & secret_generator) {
    LweCiphertext ciphertext(key.lwe_dimension());
    encrypt_lwe_ciphertext(key, ciphertext, plaintext, noise, secret_generator, secret_generator);
    return ciphertext;
}

void trivially_encrypt_lwe_ciphertext(LweCiphertext & output, uint64_t plaintext) {
    FHEGPT_CHECK(!output.data.empty(), "trivial encryption into an unallocated LWE ciphertext");
    std::fill(output.data.begin(), output.data.end(), 0);
    output.body() = plaintext;
}

uint64_t decrypt_lwe_ciphertext(const LweSecretKey & key, const LweCiphertext & ciphertext) {
    FHEGPT_CHECK_EQ(ciphertext.lwe_dimension().value, key.lwe_dimension().value);
    return ciphertext.body() - lwe_mask_key_product(ciphertext.mask(), key.data);
}

SeededLweCiphertext encrypt_seeded_lwe_ciphertext(const LweSecretKey & key, uint64_t plaintext,
                                                  const NoiseDistribution & noise, const Seed & seed, uint64_t stream,
                                                  RandomGenerator & noise_generator) {
    LweCiphertext full(key.lwe_dimension());
    RandomGenerator mask_generator(seed, stream);
    encrypt_lwe_ciphertext(key, full, plaintext, noise, mask_generator, noise_generator);
    SeededLweCiphertext seeded;
    seeded.lwe_dimension = key.lwe_dimension();
    seeded.seed = seed;
    seeded.stream = stream;
    seeded.body = full.body();
    return seeded;
}

LweCiphertext decompress_seeded_lwe_ciphertext(const SeededLweCiphertext & seeded) {
    LweCiphertext ciphertext(seeded.lwe_dimension);
    RandomGenerator mask_generator(seeded.seed, seeded.stream);
    mask_generator.fill_uniform(ciphertext.mask());
    ciphertext.body() = seeded.body;
    return ciphertext;
}

} // namespace fhegpt::tfhe
