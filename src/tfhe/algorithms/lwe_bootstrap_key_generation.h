// Bootstrapping key generation (plain and seeded), decompression and conversion to the
// Fourier domain. GGSW i encrypts bit i of the input LWE key under the GLWE key (grouping factor
// g > 1: the product of key bits of entities/lwe_multi_bit_bootstrap_key.h), its masks drawn
// from RandomGenerator(seed, i) (so generation runs in parallel and a seeded key regenerates
// them), its noise from OS-seeded generators.
#pragma once

#include "tfhe/commons/csprng.h"
#include "tfhe/commons/noise_distribution.h"
#include "tfhe/entities/fourier_lwe_bootstrap_key.h"
#include "tfhe/entities/glwe_secret_key.h"
#include "tfhe/entities/lwe_bootstrap_key.h"
#include "tfhe/entities/lwe_secret_key.h"
#include "tfhe/entities/seeded_lwe_bootstrap_key.h"

namespace fhegpt::tfhe {

LweBootstrapKey generate_lwe_bootstrap_key(const LweSecretKey & input_key, const GlweSecretKey & output_key,
                                           DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                           const NoiseDistribution & noise,
                                           LweBskGroupingFactor grouping_factor = LweBskGroupingFactor{});
SeededLweBootstrapKey generate_seeded_lwe_bootstrap_key(const LweSecretKey & input_key,
                                                        const GlweSecretKey & output_key,
                                                        DecompositionBaseLog base_log,
                                                        DecompositionLevelCount level_count,
                                                        const NoiseDistribution & noise, const Seed & seed,
                                                        LweBskGroupingFactor grouping_factor = LweBskGroupingFactor{});
LweBootstrapKey decompress_seeded_lwe_bootstrap_key(const SeededLweBootstrapKey & seeded);
// Forward FFT of every polynomial, parallel over the thread pool.
FourierLweBootstrapKey convert_to_fourier_lwe_bootstrap_key(const LweBootstrapKey & key);

} // namespace fhegpt::tfhe
