#include "tfhe/commons/noise_model.h"

#include "common/check.h"

#include <cmath>
#include <numbers>

namespace fhegpt::tfhe {

namespace {
double digit_square_mean(size_t base_log) {
    const double b = std::ldexp(1.0, static_cast<int>(base_log));
    return (b * b + 2.0) / 12.0;
}
double two_pow(double e) { return std::exp2(e); }
} // namespace

double keyswitch_additive_variance(LweDimension input_dimension, LweDimension output_dimension,
                                   DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                   const NoiseDistribution & key_noise) {
    const double n_in = static_cast<double>(input_dimension.value), n_out = static_cast<double>(output_dimension.value);
    const double levels = static_cast<double>(level_count.value);
    const double storage_rounding = (n_out / 2.0 + 1.0) * two_pow(-64) / 12.0;
    const double key_term = n_in * levels * digit_square_mean(base_log.value) * (key_noise.variance() + storage_rounding);
    const double dropped = n_in / 2.0 * two_pow(-2.0 * base_log.value * levels) / 12.0;
    return key_term + dropped + two_pow(-64) / 12.0;
}

double modulus_switch_additive_variance(LweDimension dimension, PolynomialSize polynomial_size,
                                        ModulusSwitchType type) {
    const double c = type == ModulusSwitchType::CenteredMeanNoiseReduction ? 1.0 / 48.0 : 1.0 / 24.0;
    const double two_n = 2.0 * static_cast<double>(polynomial_size.value);
    return (static_cast<double>(dimension.value) * c + 1.0 / 12.0) / (two_n * two_n);
}

double fft_coefficient_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                DecompositionBaseLog base_log, DecompositionLevelCount level_count) {
    const double b = std::ldexp(1.0, static_cast<int>(base_log.value));
    const double n = static_cast<double>(polynomial_size.value);
    return kFftErrorCoefficient * std::log2(n) * b * b * static_cast<double>(level_count.value) *
           static_cast<double>(glwe_dimension.value + 1) * n;
}

double fft_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                             DecompositionBaseLog base_log, DecompositionLevelCount level_count) {
    const double key_weight = 1.0 + static_cast<double>(glwe_dimension.value * polynomial_size.value) / 2.0;
    return key_weight * fft_coefficient_variance(glwe_dimension, polynomial_size, base_log, level_count);
}

double cmux_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                              DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                              const NoiseDistribution & key_noise) {
    const double k = static_cast<double>(glwe_dimension.value), n = static_cast<double>(polynomial_size.value);
    const double levels = static_cast<double>(level_count.value);
    const double key_term = (k + 1.0) * levels * n * digit_square_mean(base_log.value) * key_noise.variance();
    const double dropped = 0.5 * (k * n / 2.0 + 1.0) * two_pow(-2.0 * base_log.value * levels) / 12.0;
    return key_term + dropped + fft_additive_variance(glwe_dimension, polynomial_size, base_log, level_count);
}

double multi_bit_fft_coefficient_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                          DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                          LweBskGroupingFactor grouping_factor) {
    return kMultiBitFftStepFactor * static_cast<double>(grouping_factor.ggsw_per_group()) *
           fft_coefficient_variance(glwe_dimension, polynomial_size, base_log, level_count);
}

double multi_bit_group_additive_variance(GlweDimension glwe_dimension, PolynomialSize polynomial_size,
                                         DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                         const NoiseDistribution & key_noise, LweBskGroupingFactor grouping_factor) {
    const double k = static_cast<double>(glwe_dimension.value), n = static_cast<double>(polynomial_size.value);
    const double levels = static_cast<double>(level_count.value);
    const double ggsws = static_cast<double>(grouping_factor.ggsw_per_group());
    const double key_term = (k + 1.0) * levels * n * digit_square_mean(base_log.value) * key_noise.variance();
    const double fft = (1.0 + k * n / 2.0) *
                       multi_bit_fft_coefficient_variance(glwe_dimension, polynomial_size, base_log, level_count,
                                                          grouping_factor);
    const double dropped = (k * n / 2.0 + 1.0) * two_pow(-2.0 * base_log.value * levels) / 12.0;
    return ggsws * key_term + kMultiBitFftChainFactor * fft + dropped;
}

double multi_bit_modulus_switch_additive_variance(LweDimension dimension, PolynomialSize polynomial_size,
                                                  LweBskGroupingFactor grouping_factor) {
    const double g = static_cast<double>(grouping_factor.value);
    const double groups = static_cast<double>(dimension.value / grouping_factor.value);
    const double two_n = 2.0 * static_cast<double>(polynomial_size.value);
    return (groups * (1.0 - std::exp2(-g)) / 12.0 + 1.0 / 12.0) / (two_n * two_n);
}

double programmable_bootstrap_variance(const TfheParameters & params) {
    if (params.is_multi_bit())
        return static_cast<double>(params.lwe_dimension.value / params.grouping_factor.value) *
               multi_bit_group_additive_variance(params.glwe_dimension, params.polynomial_size, params.pbs_base_log,
                                                 params.pbs_level_count, params.glwe_noise, params.grouping_factor);
    return static_cast<double>(params.lwe_dimension.value) *
           cmux_additive_variance(params.glwe_dimension, params.polynomial_size, params.pbs_base_log,
                                  params.pbs_level_count, params.glwe_noise);
}

double dot_product_variance(std::span<const int64_t> weights, double variance) {
    double sum = 0;
    for (int64_t w : weights) sum += static_cast<double>(w) * static_cast<double>(w);
    return sum * variance;
}

double log2_failure_probability(double variance, uint64_t message_modulus) {
    FHEGPT_CHECK(message_modulus >= 1, "modulus %llu", (unsigned long long)message_modulus);
    return log2_failure_probability_at_margin(variance, 1.0 / (4.0 * static_cast<double>(message_modulus)));
}

double log2_failure_probability_at_margin(double variance, double margin) {
    FHEGPT_CHECK(variance > 0, "variance %g", variance);
    if (margin <= 0) return 0;
    const double x = margin / std::sqrt(2.0 * variance);
    const double p = std::erfc(x);
    if (p > 1e-300) return std::log2(p);
    // erfc(x) ~ exp(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4)) for large x.
    const double series = 1.0 - 1.0 / (2 * x * x) + 3.0 / (4 * x * x * x * x);
    return (-x * x - std::log(x * std::sqrt(std::numbers::pi)) + std::log(series)) / std::numbers::ln2;
}

NoiseBudget bootstrap_noise_budget(const TfheParameters & params, double norm2, uint64_t message_modulus) {
    if (norm2 <= 0) norm2 = params.max_norm2;
    if (message_modulus == 0) message_modulus = params.message_modulus();
    NoiseBudget budget;
    budget.fresh = params.glwe_noise.variance();
    budget.pbs_output = programmable_bootstrap_variance(params);
    budget.linear_input = norm2 * norm2 * budget.pbs_output;
    budget.keyswitch = keyswitch_additive_variance(params.big_lwe_dimension(), params.lwe_dimension,
                                                   params.ks_base_log, params.ks_level_count, params.lwe_noise);
    budget.modulus_switch =
        params.is_multi_bit()
            ? multi_bit_modulus_switch_additive_variance(params.lwe_dimension, params.polynomial_size,
                                                         params.grouping_factor)
            : modulus_switch_additive_variance(params.lwe_dimension, params.polynomial_size, params.modulus_switch);
    budget.total = budget.linear_input + budget.keyswitch + budget.modulus_switch;
    budget.log2_p_fail = log2_failure_probability(budget.total, message_modulus);
    return budget;
}

} // namespace fhegpt::tfhe
