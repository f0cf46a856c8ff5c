// GLWE and GGSW encryption under a binary GLWE key.
//
// GLWE: masks A_j uniform (mask generator), B = sum_j A_j S_j + M + E, E with independent
// coefficients from the noise distribution (noise generator, secret). Decryption returns the
// phase B - sum_j A_j S_j = M + E. GGSW: the rows of ggsw_ciphertext.h, each a GLWE encryption
// (masks drawn row after row from the mask generator, so a seeded GGSW regenerates them).
// The products A_j S_j are exact (BinaryKeyMultiplier); pass one in to reuse its FFT of the key.
#pragma once

#include "tfhe/algorithms/polynomial.h"
#include "tfhe/commons/csprng.h"
#include "tfhe/commons/noise_distribution.h"
#include "tfhe/entities/ggsw_ciphertext.h"
#include "tfhe/entities/glwe_ciphertext.h"
#include "tfhe/entities/glwe_secret_key.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

void encrypt_glwe_ciphertext(const GlweSecretKey & key, GlweCiphertext & output, std::span<const uint64_t> plaintext,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator);
// Same with a caller's multiplier for `key` (built from key.data).
void encrypt_glwe_ciphertext(BinaryKeyMultiplier & multiplier, std::span<uint64_t> output,
                             std::span<const uint64_t> plaintext, GlweDimension glwe_dimension,
                             PolynomialSize polynomial_size, const NoiseDistribution & noise,
                             RandomGenerator & mask_generator, RandomGenerator & noise_generator);

// phase = B - sum_j A_j S_j (N coefficients).
void decrypt_glwe_ciphertext(const GlweSecretKey & key, const GlweCiphertext & ciphertext, std::span<uint64_t> phase);

void encrypt_ggsw_ciphertext(const GlweSecretKey & key, GgswCiphertext & output, int64_t message,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator);
// Same with a caller's multiplier for `key`; output is one GGSW laid out as GgswCiphertext::data.
void encrypt_ggsw_ciphertext(const GlweSecretKey & key, BinaryKeyMultiplier & multiplier, std::span<uint64_t> output,
                             DecompositionBaseLog base_log, DecompositionLevelCount level_count, int64_t message,
                             const NoiseDistribution & noise, RandomGenerator & mask_generator,
                             RandomGenerator & noise_generator);

} // namespace fhegpt::tfhe
