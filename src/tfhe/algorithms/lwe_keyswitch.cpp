#include "tfhe/algorithms/lwe_keyswitch.h"

#include "common/check.h"
#include "common/thread_pool.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/commons/decomposition.h"

#include <algorithm>
#include <array>
#include <vector>

namespace fhegpt::tfhe {

namespace {

// Generates the KSK entries of input coefficients [begin, end): masks from (seed, i), bodies
// with fresh noise. Writes the rounded entries to `plain` and/or the rounded bodies to `bodies`.
void generate_entries(const LweSecretKey & input_key, const LweSecretKey & output_key, DecompositionBaseLog base_log,
                      DecompositionLevelCount level_count, const NoiseDistribution & noise, const Seed & seed,
                      LweKeyswitchKey * plain, std::vector<uint32_t> * bodies) {
    const size_t n_in = input_key.lwe_dimension().value, n_out = output_key.lwe_dimension().value;
    const size_t levels = level_count.value;
    ThreadPool::global().parallel_for(n_in, [&](size_t begin, size_t end, size_t) {
        RandomGenerator noise_generator = RandomGenerator::from_os();
        std::vector<uint64_t> masks(levels * n_out);
        for (size_t i = begin; i < end; ++i) {
            RandomGenerator mask_generator(seed, i);
            mask_generator.fill_uniform(masks);
            for (size_t level = 0; level < levels; ++level) {
                std::span<const uint64_t> mask(masks.data() + level * n_out, n_out);
                const uint64_t message = input_key.data[i] << (64 - base_log.value * (level + 1));
                const uint64_t body = lwe_mask_key_product(mask, output_key.data) + message +
                                      static_cast<uint64_t>(sample_noise(noise_generator, noise));
                const size_t entry = i * levels + level;
                if (bodies != nullptr) (*bodies)[entry] = torus_to_u32(body);
                if (plain != nullptr) {
                    uint32_t * dst = plain->data.data() + entry * (n_out + 1);
                    for (size_t j = 0; j < n_out; ++j) dst[j] = torus_to_u32(mask[j]);
                    dst[n_out] = torus_to_u32(body);
                }
            }
        }
    });
}

void check_ksk_shape(const LweSecretKey & input_key, const LweSecretKey & output_key, DecompositionBaseLog base_log,
                     DecompositionLevelCount level_count) {
    FHEGPT_CHECK(input_key.lwe_dimension().value > 0 && output_key.lwe_dimension().value > 0, "empty LWE key");
    FHEGPT_CHECK(base_log.value >= 1 && level_count.value >= 1 && base_log.value * level_count.value <= 32,
                 "key switch decomposition %zu x %zu must fit in the 32 stored bits", base_log.value,
                 level_count.value);
}

// acc[j] -= sum_r digits[r] * rows[r * size + j] mod 2^32 over Rows consecutive rows (levels) of
// `size` entries: the inner loop of every key switch, the accumulator loaded and stored once for
// all Rows rows. Integer arithmetic mod 2^32: the same result in any order.
template <size_t Rows>
__attribute__((always_inline)) inline void subtract_scaled_rows(uint32_t * __restrict acc,
                                                                const uint32_t * __restrict rows,
                                                                const uint32_t * digits, size_t size) {
    uint32_t d[Rows];
    for (size_t r = 0; r < Rows; ++r) d[r] = digits[r];
    for (size_t j = 0; j < size; ++j) {
        uint32_t a = acc[j];
        for (size_t r = 0; r < Rows; ++r) a -= d[r] * rows[r * size + j];
        acc[j] = a;
    }
}

// Up to kRowsPerPass rows (levels) in one pass. Compiled for several instruction sets, picked at
// run time (the build stays portable).
constexpr size_t kRowsPerPass = 6;
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void subtract_scaled_rows(uint32_t * __restrict acc, const uint32_t * __restrict rows, const uint32_t * digits,
                          size_t row_count, size_t size) {
    switch (row_count) {
    case 1: subtract_scaled_rows<1>(acc, rows, digits, size); break;
    case 2: subtract_scaled_rows<2>(acc, rows, digits, size); break;
    case 3: subtract_scaled_rows<3>(acc, rows, digits, size); break;
    case 4: subtract_scaled_rows<4>(acc, rows, digits, size); break;
    case 5: subtract_scaled_rows<5>(acc, rows, digits, size); break;
    case 6: subtract_scaled_rows<6>(acc, rows, digits, size); break;
    default: FHEGPT_CHECK(false, "%zu rows in one pass", row_count);
    }
}

} // namespace

LweKeyswitchKey generate_lwe_keyswitch_key(const LweSecretKey & input_key, const LweSecretKey & output_key,
                                           DecompositionBaseLog base_log, DecompositionLevelCount level_count,
                                           const NoiseDistribution & noise) {
    check_ksk_shape(input_key, output_key, base_log, level_count);
    LweKeyswitchKey ksk(input_key.lwe_dimension(), output_key.lwe_dimension(), base_log, level_count);
    Seed seed = Seed::from_os();
    generate_entries(input_key, output_key, base_log, level_count, noise, seed, &ksk, nullptr);
    return ksk;
}

SeededLweKeyswitchKey generate_seeded_lwe_keyswitch_key(const LweSecretKey & input_key,
                                                        const LweSecretKey & output_key,
                                                        DecompositionBaseLog base_log,
                                                        DecompositionLevelCount level_count,
                                                        const NoiseDistribution & noise, const Seed & seed) {
    check_ksk_shape(input_key, output_key, base_log, level_count);
    SeededLweKeyswitchKey seeded;
    seeded.input_lwe_dimension = input_key.lwe_dimension();
    seeded.output_lwe_dimension = output_key.lwe_dimension();
    seeded.base_log = base_log;
    seeded.level_count = level_count;
    seeded.seed = seed;
    seeded.bodies.resize(input_key.lwe_dimension().value * level_count.value);
    generate_entries(input_key, output_key, base_log, level_count, noise, seed, nullptr, &seeded.bodies);
    return seeded;
}

LweKeyswitchKey decompress_seeded_lwe_keyswitch_key(const SeededLweKeyswitchKey & seeded) {
    const size_t n_in = seeded.input_lwe_dimension.value, n_out = seeded.output_lwe_dimension.value;
    const size_t levels = seeded.level_count.value;
    FHEGPT_CHECK_EQ(seeded.bodies.size(), n_in * levels);
    LweKeyswitchKey ksk(seeded.input_lwe_dimension, seeded.output_lwe_dimension, seeded.base_log, seeded.level_count);
    ThreadPool::global().parallel_for(n_in, [&](size_t begin, size_t end, size_t) {
        std::vector<uint64_t> masks(levels * n_out);
        for (size_t i = begin; i < end; ++i) {
            RandomGenerator mask_generator(seeded.seed, i);
            mask_generator.fill_uniform(masks);
            for (size_t level = 0; level < levels; ++level) {
                const size_t entry = i * levels + level;
                uint32_t * dst = ksk.data.data() + entry * (n_out + 1);
                const uint64_t * mask = masks.data() + level * n_out;
                for (size_t j = 0; j < n_out; ++j) dst[j] = torus_to_u32(mask[j]);
                dst[n_out] = seeded.bodies[entry];
            }
        }
    });
    return ksk;
}

void keyswitch_lwe_ciphertext_group(const LweKeyswitchKey & ksk, std::span<const LweCiphertext * const> inputs,
                                    std::span<LweCiphertext * const> outputs, std::span<uint32_t> scratch) {
    const size_t count = inputs.size();
    const size_t n_in = ksk.input_lwe_dimension.value, n_out = ksk.output_lwe_dimension.value;
    const size_t levels = ksk.level_count.value, entry = n_out + 1;
    FHEGPT_CHECK_EQ(outputs.size(), count);
    FHEGPT_CHECK(count <= kMaxKeyswitchGroup, "key switch group of %zu > %zu", count, kMaxKeyswitchGroup);
    FHEGPT_CHECK(scratch.size() >= count * entry, "key switch scratch of %zu < %zu", scratch.size(), count * entry);
    for (size_t c = 0; c < count; ++c) {
        FHEGPT_CHECK_EQ(inputs[c]->lwe_dimension().value, n_in);
        FHEGPT_CHECK_EQ(outputs[c]->lwe_dimension().value, n_out);
        uint32_t * acc = scratch.data() + c * entry;
        std::fill(acc, acc + n_out, 0u);
        acc[n_out] = torus_to_u32(inputs[c]->body());
    }
    SignedDecomposer decomposer(ksk.base_log, ksk.level_count);
    std::array<int64_t, 64> digits{};
    std::array<uint32_t, 64> digits32{};
    FHEGPT_CHECK(levels <= 64, "%zu key switch levels", levels);
    for (size_t i = 0; i < n_in; ++i) {
        // The group's ciphertexts in turn over the same rows (levels x entry, L1-resident).
        const uint32_t * rows = ksk.data.data() + i * levels * entry;
        for (size_t c = 0; c < count; ++c) {
            decomposer.decompose(inputs[c]->data[i], std::span<int64_t>(digits.data(), levels));
            for (size_t level = 0; level < levels; ++level) digits32[level] = static_cast<uint32_t>(digits[level]);
            uint32_t * acc = scratch.data() + c * entry;
            for (size_t level = 0; level < levels; level += kRowsPerPass)
                subtract_scaled_rows(acc, rows + level * entry, digits32.data() + level,
                                     std::min(kRowsPerPass, levels - level), entry);
        }
    }
    for (size_t c = 0; c < count; ++c) {
        const uint32_t * acc = scratch.data() + c * entry;
        uint64_t * out = outputs[c]->data.data();
        for (size_t j = 0; j < entry; ++j) out[j] = static_cast<uint64_t>(acc[j]) << 32;
    }
}

void keyswitch_lwe_ciphertext(const LweKeyswitchKey & ksk, const LweCiphertext & input, LweCiphertext & output,
                              std::span<uint32_t> scratch) {
    const LweCiphertext * in[1] = {&input};
    LweCiphertext * out[1] = {&output};
    keyswitch_lwe_ciphertext_group(ksk, in, out, scratch);
}

void keyswitch_lwe_ciphertext(const LweKeyswitchKey & ksk, const LweCiphertext & input, LweCiphertext & output) {
    std::vector<uint32_t> scratch(ksk.output_lwe_dimension.value + 1);
    keyswitch_lwe_ciphertext(ksk, input, output, scratch);
}

} // namespace fhegpt::tfhe
