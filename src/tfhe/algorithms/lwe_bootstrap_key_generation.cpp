#include "tfhe/algorithms/lwe_bootstrap_key_generation.h"

#include "common/check.h"
#include "common/thread_pool.h"
#include "tfhe/algorithms/external_product.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/algorithms/glwe_encryption.h"
#include "tfhe/algorithms/multi_bit_external_product.h"
#include "tfhe/entities/lwe_multi_bit_bootstrap_key.h"

#include <algorithm>
#include <vector>

namespace fhegpt::tfhe {

namespace {

void check_bsk_shape(const LweSecretKey & input_key, const GlweSecretKey & output_key, DecompositionBaseLog base_log,
                     DecompositionLevelCount level_count, LweBskGroupingFactor grouping_factor) {
    FHEGPT_CHECK(input_key.lwe_dimension().value > 0, "empty LWE key");
    FHEGPT_CHECK(valid_grouping_factor(input_key.lwe_dimension(), grouping_factor),
                 "grouping factor %zu for an LWE key of dimension %zu", grouping_factor.value,
                 input_key.lwe_dimension().value);
    FHEGPT_CHECK(output_key.glwe_dimension.value > 0 && output_key.polynomial_size.value >= 2, "empty GLWE key");
    FHEGPT_CHECK(base_log.value >= 1 && level_count.value >= 1 && base_log.value * level_count.value <= 64,
                 "bootstrap decomposition %zu x %zu exceeds 64 bits", base_log.value, level_count.value);
}

// The message of GGSW i: key bit i (classic) or the subset indicator of a multi-bit key.
int64_t ggsw_message(const LweSecretKey & input_key, LweBskGroupingFactor grouping_factor, size_t i) {
    if (!grouping_factor.is_multi_bit()) return static_cast<int64_t>(input_key.data[i]);
    const size_t g = grouping_factor.value, per_group = grouping_factor.ggsw_per_group();
    const std::span<const uint64_t> group_bits(input_key.data.data() + i / per_group * g, g);
    return multi_bit_subset_indicator(group_bits, i % per_group);
}

// GGSW i for i in [0, ggsw count): into plain->ggsw(i) and/or the body polynomials into `bodies`.
void generate_ggsws(const LweSecretKey & input_key, const GlweSecretKey & output_key, DecompositionBaseLog base_log,
                    DecompositionLevelCount level_count, LweBskGroupingFactor grouping_factor,
                    const NoiseDistribution & noise, const Seed & seed, LweBootstrapKey * plain,
                    std::vector<uint64_t> * bodies) {
    const size_t k = output_key.glwe_dimension.value, n = output_key.polynomial_size.value;
    const size_t rows = level_count.value * (k + 1), row_size = (k + 1) * n;
    const size_t ggsw_size = rows * row_size;
    const size_t ggsw_count = grouping_factor.ggsw_count(input_key.lwe_dimension());
    ThreadPool::global().parallel_for(ggsw_count, [&](size_t begin, size_t end, size_t) {
        RandomGenerator noise_generator = RandomGenerator::from_os();
        BinaryKeyMultiplier multiplier(output_key.data, output_key.polynomial_size);
        std::vector<uint64_t> temporary(plain == nullptr ? ggsw_size : 0);
        for (size_t i = begin; i < end; ++i) {
            RandomGenerator mask_generator(seed, i);
            std::span<uint64_t> ggsw = plain != nullptr ? plain->ggsw(i) : std::span<uint64_t>(temporary);
            encrypt_ggsw_ciphertext(output_key, multiplier, ggsw, base_log, level_count,
                                    ggsw_message(input_key, grouping_factor, i), noise, mask_generator, noise_generator);
            if (bodies != nullptr)
                for (size_t r = 0; r < rows; ++r)
                    std::copy_n(ggsw.data() + r * row_size + k * n, n, bodies->data() + (i * rows + r) * n);
        }
    });
}

} // namespace

LweBootstrapKey generate_lwe_bootstrap_key(const LweSecretKey & input_key, const GlweSecretKey & output_key,
                                           DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                           const NoiseDistribution & noise, LweBskGroupingFactor grouping_factor) {
    check_bsk_shape(input_key, output_key, base_log, level_count, grouping_factor);
    LweBootstrapKey key(input_key.lwe_dimension(), output_key.glwe_dimension, output_key.polynomial_size, base_log,
                        level_count, grouping_factor);
    generate_ggsws(input_key, output_key, base_log, level_count, grouping_factor, noise, Seed::from_os(), &key,
                   nullptr);
    return key;
}

SeededLweBootstrapKey generate_seeded_lwe_bootstrap_key(const LweSecretKey & input_key,
                                                        const GlweSecretKey & output_key,
                                                        DecompositionBaseLog base_log,
                                                        DecompositionLevelCount level_count,
                                                        const NoiseDistribution & noise, const Seed & seed,
                                                        LweBskGroupingFactor grouping_factor) {
    check_bsk_shape(input_key, output_key, base_log, level_count, grouping_factor);
    SeededLweBootstrapKey seeded;
    seeded.input_lwe_dimension = input_key.lwe_dimension();
    seeded.glwe_dimension = output_key.glwe_dimension;
    seeded.polynomial_size = output_key.polynomial_size;
    seeded.base_log = base_log;
    seeded.level_count = level_count;
    seeded.grouping_factor = grouping_factor;
    seeded.seed = seed;
    const size_t rows = level_count.value * (output_key.glwe_dimension.value + 1);
    seeded.bodies.resize(seeded.ggsw_count() * rows * output_key.polynomial_size.value);
    generate_ggsws(input_key, output_key, base_log, level_count, grouping_factor, noise, seed, nullptr,
                   &seeded.bodies);
    return seeded;
}

LweBootstrapKey decompress_seeded_lwe_bootstrap_key(const SeededLweBootstrapKey & seeded) {
    const size_t k = seeded.glwe_dimension.value, n = seeded.polynomial_size.value;
    const size_t rows = seeded.level_count.value * (k + 1), row_size = (k + 1) * n;
    FHEGPT_CHECK(valid_grouping_factor(seeded.input_lwe_dimension, seeded.grouping_factor),
                 "grouping factor %zu for %zu key bits", seeded.grouping_factor.value, seeded.input_lwe_dimension.value);
    FHEGPT_CHECK_EQ(seeded.bodies.size(), seeded.ggsw_count() * rows * n);
    LweBootstrapKey key(seeded.input_lwe_dimension, seeded.glwe_dimension, seeded.polynomial_size, seeded.base_log,
                        seeded.level_count, seeded.grouping_factor);
    ThreadPool::global().parallel_for(seeded.ggsw_count(), [&](size_t begin, size_t end, size_t) {
        for (size_t i = begin; i < end; ++i) {
            RandomGenerator mask_generator(seeded.seed, i);
            std::span<uint64_t> ggsw = key.ggsw(i);
            for (size_t r = 0; r < rows; ++r) {
                mask_generator.fill_uniform(ggsw.subspan(r * row_size, k * n));
                std::copy_n(seeded.bodies.data() + (i * rows + r) * n, n, ggsw.data() + r * row_size + k * n);
            }
        }
    });
    return key;
}

FourierLweBootstrapKey convert_to_fourier_lwe_bootstrap_key(const LweBootstrapKey & key) {
    FourierLweBootstrapKey fourier(key.input_lwe_dimension, key.glwe_dimension, key.polynomial_size, key.base_log,
                                   key.level_count, key.grouping_factor);
    const NegacyclicFft & fft = fft_plan(key.polynomial_size);
    const size_t size = key.ggsw_size();
    ThreadPool::global().parallel_for(key.ggsw_count(), [&](size_t begin, size_t end, size_t) {
        for (size_t i = begin; i < end; ++i)
            convert_ggsw_to_fourier(key.ggsw(i), std::span<double>(fourier.ggsw(i), size), key.glwe_dimension,
                                    key.polynomial_size, key.level_count, fft);
    });
    if (key.grouping_factor.is_multi_bit()) interleave_multi_bit_fourier_key(fourier);
    return fourier;
}

} // namespace fhegpt::tfhe
