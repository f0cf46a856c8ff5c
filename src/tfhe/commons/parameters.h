// TFHE parameter sets: runtime values, one struct each, looked up by name.
//
// A set designed for p = 2^message_bits (padding bit not counted) bootstraps any input whose
// message modulus is p or smaller (a smaller p leaves wider boxes, so more noise margin; a
// many-LUT can use the spare precision for several functions). Its failure probability holds
// for an input that is a linear combination, with a 2-norm of at most max_norm2, of outputs of
// bootstraps with the same keys (or of fresh encryptions, which have less noise).
//
// Production sets are taken from TFHE-rs v1.4 `shortint/parameters` (constant name in
// `source`): 128-bit security by the lattice estimator and the failure probability that
// TFHE-rs states for them. noise_model.h recomputes the failure probability for this
// implementation (bench pbs prints both). Sets whose name starts with INSECURE_TEST_ have toy
// dimensions for fast unit tests: no security at all, never picked by a default.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/commons/noise_distribution.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::tfhe {

// How the modulus switch to 2N rounds (see algorithms/modulus_switch.h).
enum class ModulusSwitchType {
    Standard,                  // round every element
    CenteredMeanNoiseReduction // also remove the mean of sum_i s_i r_i (TFHE-rs v1.4 name)
};

struct TfheParameters {
    std::string name;
    std::string source;          // where the values come from (TFHE-rs constant name)
    uint32_t message_bits = 0;   // log2 p of the PBS input, padding bit not counted
    LweDimension lwe_dimension;  // n: small LWE key (bootstrap input, key switch output)
    GlweDimension glwe_dimension;     // k
    PolynomialSize polynomial_size;   // N; the big LWE key has dimension k N
    NoiseDistribution lwe_noise;      // encryptions under the small key (key-switching key)
    NoiseDistribution glwe_noise;     // encryptions under the GLWE / big key (bootstrapping key, fresh ciphertexts)
    DecompositionBaseLog pbs_base_log;
    DecompositionLevelCount pbs_level_count;
    DecompositionBaseLog ks_base_log;
    DecompositionLevelCount ks_level_count;
    ModulusSwitchType modulus_switch = ModulusSwitchType::Standard;
    uint32_t max_norm2 = 1;       // 2-norm of the linear combinations of bootstrap outputs allowed before a bootstrap
    double security_bits = 0;     // claimed by the source (0: insecure)
    double source_log2_p_fail = 0; // failure probability per bootstrap claimed by the source, log2
    bool insecure = false;
    // Optional second bootstrapping key of the same secret keys with a finer blind-rotation
    // decomposition (0 levels: none). Its outputs are less noisy; the circuit analysis sends
    // only the lookups whose outputs enter long sums through it (circuit/noise_analysis.h). Extra
    // GGSW encryptions of the same key bits under the same GLWE key and noise leave the
    // security of the set unchanged.
    DecompositionBaseLog fine_pbs_base_log{0};
    DecompositionLevelCount fine_pbs_level_count{0};
    // 1: classic blind rotation; 2..4: multi-bit (TFHE-rs multi_bit sets): the bootstrapping
    // keys hold (n / g) 2^g GGSWs and a blind rotation makes n / g external products
    // (entities/lwe_multi_bit_bootstrap_key.h). Multi-bit sets use ModulusSwitchType::Standard.
    LweBskGroupingFactor grouping_factor;

    bool has_fine_bootstrap() const { return fine_pbs_level_count.value > 0; }
    bool is_multi_bit() const { return grouping_factor.is_multi_bit(); }
    // The set as its fine bootstrapping key sees it: the fine decomposition in place of
    // pbs_base_log/pbs_level_count, no second key. Requires has_fine_bootstrap().
    TfheParameters fine_bootstrap_parameters() const;
    uint64_t message_modulus() const { return uint64_t{1} << message_bits; }
    LweDimension big_lwe_dimension() const { return LweDimension{glwe_dimension.value * polynomial_size.value}; }
};

// Every set, production first.
const std::vector<TfheParameters> & all_parameter_sets();
// The production sets (not INSECURE_TEST_).
std::vector<const TfheParameters *> production_parameter_sets();
// By name, case-insensitive; fhegpt::Error listing the known names if there is none.
const TfheParameters & parameters_by_name(std::string_view name);
// The default production set for inputs of `message_bits` bits (1..7): the fastest set with
// a failure probability of 2^-128 or less designed for exactly that precision.
const TfheParameters & default_parameters(uint32_t message_bits);
// The widest message that a production set reads.
uint32_t widest_production_message_bits();

} // namespace fhegpt::tfhe
