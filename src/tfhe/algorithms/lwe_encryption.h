// LWE encryption and decryption.
//
// encrypt: a uniform (from the mask generator), b = <a, s> + plaintext + e, e from the noise
// distribution (noise generator: always a secret one). decrypt returns the phase
// b - <a, s> = plaintext + e; decode it with decode_message (commons/torus.h).
// Seeded encryption draws a from RandomGenerator(seed, stream) and keeps only (seed, stream, b).
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/noise_distribution.h"
#include "tfhe/entities/lwe_ciphertext.h"
#include "tfhe/entities/lwe_secret_key.h"
#include "tfhe/entities/seeded_lwe_ciphertext.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

void encrypt_lwe_ciphertext(const LweSecretKey & key, LweCiphertext & output, uint64_t plaintext,
                            const NoiseDistribution & noise, RandomGenerator & mask_generator,
                            RandomGenerator & noise_generator);
// Mask and noise from the same secret generator.
LweCiphertext allocate_and_encrypt_new_lwe_ciphertext(const LweSecretKey & key, uint64_t plaintext,
                                                      const NoiseDistribution & noise,
                                                      RandomGenerator & secret_generator);
// (0, ..., 0, plaintext): a noiseless "encryption" under any key of that dimension.
void trivially_encrypt_lwe_ciphertext(LweCiphertext & output, uint64_t plaintext);

// The phase b - <a, s>.
uint64_t decrypt_lwe_ciphertext(const LweSecretKey & key, const LweCiphertext & ciphertext);
// <a, s> mod 2^64 for a mask a and a binary key s.
uint64_t lwe_mask_key_product(std::span<const uint64_t> mask, std::span<const uint64_t> key);

SeededLweCiphertext encrypt_seeded_lwe_ciphertext(const LweSecretKey & key, uint64_t plaintext,
                                                  const NoiseDistribution & noise, const Seed & seed, uint64_t stream,
                                                  RandomGenerator & noise_generator);
LweCiphertext decompress_seeded_lwe_ciphertext(const SeededLweCiphertext & seeded);

} // namespace fhegpt::tfhe
