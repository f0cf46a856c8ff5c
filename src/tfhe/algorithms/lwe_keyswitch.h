// LWE key switching: key generation (plain and seeded) and the key switch itself.
//
// keyswitch: (a', b') under s' (dimension n') -> (0, round32(b')) - sum_{i,j} d_{i,j} KSK(i, j)
// under s (dimension n), where d_{i,j} are the signed digits of a'_i (base_log, levels of the
// key). Computed mod 2^32 on the stored top halves (lwe_keyswitch_key.h); the output torus
// elements have their low 32 bits zero. The KSK is streamed once per call: the batched form
// applies each KSK entry to a whole group of ciphertexts while it is in cache.
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/noise_distribution.h"
#include "tfhe/entities/lwe_ciphertext.h"
#include "tfhe/entities/lwe_keyswitch_key.h"
#include "tfhe/entities/lwe_secret_key.h"
#include "tfhe/entities/seeded_lwe_keyswitch_key.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

// Masks from a fresh OS seed, noise from OS-seeded generators; parallel over the thread pool.
LweKeyswitchKey generate_lwe_keyswitch_key(const LweSecretKey & input_key, const LweSecretKey & output_key,
                                           DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                           const NoiseDistribution & noise);
SeededLweKeyswitchKey generate_seeded_lwe_keyswitch_key(const LweSecretKey & input_key,
                                                        const LweSecretKey & output_key,
                                                        DecompositionBaseLog base_log,
                                                        DecompositionLevelCount level_count,
                                                        const NoiseDistribution & noise, const Seed & seed);
LweKeyswitchKey decompress_seeded_lwe_keyswitch_key(const SeededLweKeyswitchKey & seeded);

// output (dimension n) = key switch of input (dimension n'). scratch: n + 1 elements.
void keyswitch_lwe_ciphertext(const LweKeyswitchKey & ksk, const LweCiphertext & input, LweCiphertext & output,
                              std::span<uint32_t> scratch);
// Same, allocating its scratch.
void keyswitch_lwe_ciphertext(const LweKeyswitchKey & ksk, const LweCiphertext & input, LweCiphertext & output);

// Key switches inputs[c] into outputs[c] for c < count (count <= kMaxKeyswitchGroup), reading
// the key once. scratch: count (n + 1) elements.
inline constexpr size_t kMaxKeyswitchGroup = 16;
void keyswitch_lwe_ciphertext_group(const LweKeyswitchKey & ksk, std::span<const LweCiphertext * const> inputs,
                                    std::span<LweCiphertext * const> outputs, std::span<uint32_t> scratch);

} // namespace fhegpt::tfhe
