// Noise model of this implementation: variances (on the torus, units of 1) after each
// operation, from the parameters, and the failure probability they imply.
//
// Notation: E[d^2] = (B^2 + 2) / 12 for the signed digits of a uniform torus element
// (decomposition.h); binary keys with E[s^2] = E[s] = 1/2.
// - encryption: the variance of the noise distribution.
// - leveled: add v1 + v2, times c: c^2 v, dot product sum w_i^2 v_i.
// - key switch (n' -> n, base B, l levels, key noise v_k):
//     n' l E[d^2] (v_k + (n/2 + 1) 2^-64 / 12)   key noise (+ the 32-bit rounding of the key)
//   + n' / 2 * B^-2l / 12                         dropped low bits of the input mask
//   + 2^-64 / 12                                  rounding of the input body to 32 bits.
// - modulus switch to 2N (n mask elements): (n c + 1/12) (2N)^-2 with c = 1/24 (standard) or
//   1/48 (centred mean reduction, modulus_switch.h).
// - external product / CMux with a GGSW of a bit (key noise v_g, E[m^2] = 1/2):
//     (k + 1) l N E[d^2] v_g + 1/2 (k N / 2 + 1) B^-2l / 12 + FFT error
//   FFT error: the double-precision products leave an error of variance
//     v_c = c_fft log2(N) B^2 l (k + 1) N  on every output coefficient (measured on this FFT,
//   c_fft = kFftErrorCoefficient; tests/test-tfhe-noise.cpp checks it), and the phase reads
//   the k N mask coefficients through the key: (1 + k N / 2) v_c per CMux, whatever the bit.
//   (TFHE-rs models its own FFT as 2.07e-33 B^2 l (k + 1) N^2, about 3x ours at N = 2048.)
// - PBS output: n times the CMux variance (blind rotation; sample extraction adds nothing).
// - Multi-bit (grouping factor g, entities/lwe_multi_bit_bootstrap_key.h): per group, one
//   external product with sum_S X^(e_S) GGSW_S, whose noise and Fourier-domain magnitude are
//   those of 2^g GGSWs and whose message is a monomial (E[m^2] = 1):
//     2^g (k + 1) l N E[d^2] v_g + c_chain (1 + k N / 2) v_mb + (k N / 2 + 1) B^-2l / 12,
//   n / g of them per PBS. One external product's FFT error is v_mb = c_step 2^g v_c per
//   coefficient (the 2^g GGSWs' magnitude, and c_step = kMultiBitFftStepFactor for the
//   rounding of the twiddle products) and (1 + k N / 2) v_mb in phase, as for independent
//   errors (both checked); but along a blind rotation these errors add up to
//   c_chain = kMultiBitFftChainFactor times that (measured on the 4-bit sets and on toy sets
//   whose noise is mostly FFT error; the same rotation with exact integer GGSW sums gives the
//   independent-error total, so the excess comes from the Fourier-domain sums, correlated from
//   one group to the next). Its modulus
//   switch rounds one sum of mask elements per group, which carries an error only when the
//   group's key bits are not all 0:
//     ((n / g) (1 - 2^-g) / 12 + 1/12) (2N)^-2.
// - Failure: the input phase error of a bootstrap e = (linear combination of PBS outputs,
//   2-norm nu) + key switch + modulus switch must stay within half a box, 1 / (4 p) for p
//   messages with padding; P(fail) = erfc(1 / (4 p sqrt(2 v))) for a Gaussian of variance v.
#pragma once

#include "tfhe/commons/parameters.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

// Per-coefficient FFT error of an external product, / (log2(N) B^2 l (k + 1) N); fitted on
// NegacyclicFft for N = 256 .. 8192 (every kernel is checked against it in test-tfhe-noise).
inline constexpr double kFftErrorCoefficient = 1.122e-34; // 2^-112.78
// The FFT error of one multi-bit external product over 2^g v_c (fitted: 1.08-1.26 on the 4-bit
// sets, tests/test-tfhe-noise.cpp), and how much more a multi-bit blind rotation accumulates
// than independent per-group errors would give (fitted on measured PBS variances, same test).
inline constexpr double kMultiBitFftStepFactor = 1.2;
inline constexpr double kMultiBitFftChainFactor = 10.0;
// Variance of the FFT error on one output coefficient of an external product.
double fft_coefficient_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                DecompositionBaseLog base_log, DecompositionLevelCount level_count);

double keyswitch_additive_variance(LweDimension input_dimension, LweDimension output_dimension,
                                   DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                   const NoiseDistribution & key_noise);
double modulus_switch_additive_variance(LweDimension dimension, PolynomialSize polynomial_size,
                                        ModulusSwitchType type);
// One CMux of a blind rotation (the GGSW encrypts a uniform bit).
double cmux_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                              DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                              const NoiseDistribution & key_noise);
// The FFT part of cmux_additive_variance: (1 + k N / 2) fft_coefficient_variance.
double fft_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                             DecompositionBaseLog base_log, DecompositionLevelCount level_count);
// Variance of the FFT error on one output coefficient of a multi-bit external product.
double multi_bit_fft_coefficient_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                          DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                          LweBskGroupingFactor grouping_factor);
// One group of a multi-bit blind rotation (grouping factor g > 1).
double multi_bit_group_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                         DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                         const NoiseDistribution & key_noise, LweBskGroupingFactor grouping_factor);
// The modulus switch of a multi-bit bootstrap (grouping factor g > 1).
double multi_bit_modulus_switch_additive_variance(LweDimension dimension, PolynomialSize polynomial_size,
                                                  LweBskGroupingFactor grouping_factor);
// Variance of the output of a PBS (blind rotation of n CMux, or of n / g multi-bit groups).
double programmable_bootstrap_variance(const TfheParameters & params);
// Variance of sum_i w_i c_i for independent c_i of variance v.
double dot_product_variance(std::span<const int64_t> weights, double variance);

// log2 P(|e| > 1 / (4 p)) for a centred Gaussian e of this variance; accurate far in the tail.
double log2_failure_probability(double variance, uint64_t message_modulus);
// log2 P(|e| > margin) (margin as a fraction of the torus): a read whose input sits off its box
// centre by a known amount keeps only the rest of the half box. 0 when the margin is gone.
double log2_failure_probability_at_margin(double variance, double margin);

struct NoiseBudget {
    double fresh = 0;            // fresh encryption under the big key
    double pbs_output = 0;       // output of a PBS
    double linear_input = 0;     // nu^2 pbs_output: the largest linear combination allowed
    double keyswitch = 0;        // added by the key switch
    double modulus_switch = 0;   // added by the modulus switch
    double total = 0;            // at the blind rotation input
    double log2_p_fail = 0;      // per bootstrap
};
// The budget of a bootstrap whose input is a combination of PBS outputs with 2-norm `norm2`
// (0: the set's max_norm2) and messages modulo `message_modulus` (0: the set's).
NoiseBudget bootstrap_noise_budget(const TfheParameters & params, double norm2 = 0, uint64_t message_modulus = 0);

} // namespace fhegpt::tfhe
