#include "tfhe/algorithms/lwe_multi_bit_programmable_bootstrap.h"

#include "common/check.h"
#include "tfhe/algorithms/glwe_sample_extraction.h"
#include "tfhe/algorithms/lwe_keyswitch.h"
#include "tfhe/algorithms/lwe_programmable_bootstrap.h"
#include "tfhe/algorithms/multi_bit_external_product.h"
#include "tfhe/entities/lwe_multi_bit_bootstrap_key.h"

#include <algorithm>
#include <array>
#include <bit>

namespace fhegpt::tfhe {

size_t multi_bit_switched_size(LweDimension lwe_dimension, LweBskGroupingFactor grouping_factor) {
    return lwe_dimension.value / grouping_factor.value * (grouping_factor.ggsw_per_group() - 1) + 1;
}

void modulus_switch_multi_bit_lwe_ciphertext(const LweCiphertext & input, PolynomialSize polynomial_size,
                                             LweBskGroupingFactor grouping_factor, std::span<uint32_t> out) {
    const size_t n = input.lwe_dimension().value, g = grouping_factor.value;
    const size_t subsets = grouping_factor.ggsw_per_group();
    FHEGPT_CHECK(grouping_factor.is_multi_bit() && valid_grouping_factor(input.lwe_dimension(), grouping_factor),
                 "grouping factor %zu for an LWE dimension of %zu", g, n);
    FHEGPT_CHECK_EQ(out.size(), multi_bit_switched_size(input.lwe_dimension(), grouping_factor));
    FHEGPT_CHECK(std::has_single_bit(polynomial_size.value) && polynomial_size.value >= 2 &&
                     polynomial_size.value <= (size_t{1} << 20),
                 "polynomial size %zu is not a power of two in [2, 2^20]", polynomial_size.value);
    const unsigned shift = 64 - (static_cast<unsigned>(std::countr_zero(polynomial_size.value)) + 1);
    const uint64_t mod_mask = 2 * polynomial_size.value - 1;
    const auto round_to_2n = [&](uint64_t x) { return static_cast<uint32_t>((((x >> (shift - 1)) + 1) >> 1) & mod_mask); };
    const uint64_t * a = input.data.data();
    std::array<uint64_t, size_t{1} << kMaxGroupingFactor> sums{};
    uint32_t * next = out.data();
    for (size_t group = 0; group < n / g; ++group) {
        const uint64_t * mask = a + group * g;
        // Subset sums by adding the lowest member to the sum of the rest (wrapping, like the torus).
        for (size_t s = 1; s < subsets; ++s) {
            const unsigned lowest = static_cast<unsigned>(std::countr_zero(s));
            sums[s] = sums[s & (s - 1)] + mask[lowest];
            *next++ = round_to_2n(sums[s]);
        }
    }
    // The body as ModulusSwitchType::Standard switches it, half a unit down (modulus_switch.h).
    *next = round_to_2n(a[n] - (uint64_t{1} << (shift - 1)));
}

MultiBitBlindRotationScratch::MultiBitBlindRotationScratch(const FourierLweBootstrapKey & bsk, size_t capacity) {
    if (!bsk.grouping_factor.is_multi_bit()) return;
    const size_t glwe = (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value;
    group_capacity = capacity;
    switched.resize(capacity * multi_bit_switched_size(bsk.input_lwe_dimension, bsk.grouping_factor));
    digits_fourier.resize(capacity * multi_bit_fourier_stride(bsk.polynomial_size, bsk.row_count()));
    output_fourier.resize(capacity * multi_bit_fourier_stride(bsk.polynomial_size, bsk.glwe_dimension.value + 1));
    products.resize(capacity * glwe);
    monomials = &fourier_monomial_table(bsk.polynomial_size);
}

size_t MultiBitBlindRotationScratch::size_bytes(const FourierLweBootstrapKey & bsk, size_t capacity) {
    if (!bsk.grouping_factor.is_multi_bit()) return 0;
    const size_t glwe = (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value;
    return capacity * (multi_bit_switched_size(bsk.input_lwe_dimension, bsk.grouping_factor) * 4 +
                       multi_bit_fourier_stride(bsk.polynomial_size, bsk.row_count()) * 8 +
                       multi_bit_fourier_stride(bsk.polynomial_size, bsk.glwe_dimension.value + 1) * 8 + glwe * 8);
}

namespace {

// Rotates count <= scratch.group_capacity accumulators; switched[c] as
// modulus_switch_multi_bit_lwe_ciphertext writes it. Each external product writes into the other
// buffer of a pair (accumulator, scratch.products[c]); the result ends in the accumulator.
void blind_rotate_group_assign(uint64_t * const * accumulators, const uint32_t * const * switched, size_t count,
                               const FourierLweBootstrapKey & bsk, ExternalProductScratch & external_product,
                               MultiBitBlindRotationScratch & scratch) {
    const size_t glwe = (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value;
    const size_t groups = bsk.input_lwe_dimension.value / bsk.grouping_factor.value;
    const size_t per_group = bsk.grouping_factor.ggsw_per_group() - 1;
    const size_t digits = multi_bit_fourier_stride(bsk.polynomial_size, bsk.row_count());
    const size_t output = multi_bit_fourier_stride(bsk.polynomial_size, bsk.glwe_dimension.value + 1);
    std::array<uint64_t *, kMaxKeyswitchGroup> current{}, spare{};
    std::array<const uint32_t *, kMaxKeyswitchGroup> exponents{};
    FHEGPT_CHECK(count <= current.size() && count <= scratch.group_capacity, "multi-bit group of %zu ciphertexts",
                 count);
    for (size_t c = 0; c < count; ++c) {
        current[c] = accumulators[c];
        spare[c] = scratch.products.data() + c * glwe;
    }
    for (size_t group = 0; group < groups; ++group) {
        for (size_t c = 0; c < count; ++c) exponents[c] = switched[c] + group * per_group;
        multi_bit_external_product_assign(
            bsk, group, std::span<const uint32_t * const>(exponents.data(), count),
            std::span<uint64_t *>(current.data(), count), std::span<uint64_t *>(spare.data(), count),
            *scratch.monomials, external_product, std::span<double>(scratch.digits_fourier).first(count * digits),
            std::span<double>(scratch.output_fourier).first(count * output), scratch.kernel);
    }
    for (size_t c = 0; c < count; ++c)
        if (current[c] != accumulators[c]) std::copy_n(current[c], glwe, accumulators[c]);
}

void check_multi_bit_key(const FourierLweBootstrapKey & bsk, const MultiBitBlindRotationScratch & scratch) {
    FHEGPT_CHECK(bsk.grouping_factor.is_multi_bit() &&
                     valid_grouping_factor(bsk.input_lwe_dimension, bsk.grouping_factor),
                 "not a multi-bit key: grouping factor %zu, %zu key bits", bsk.grouping_factor.value,
                 bsk.input_lwe_dimension.value);
    FHEGPT_CHECK_EQ(scratch.products.size(),
                    scratch.group_capacity * (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value);
    FHEGPT_CHECK_EQ(scratch.switched.size(),
                    scratch.group_capacity * multi_bit_switched_size(bsk.input_lwe_dimension, bsk.grouping_factor));
}

} // namespace

void multi_bit_blind_rotate_assign(std::span<uint64_t> accumulator, std::span<const uint32_t> switched,
                                   const FourierLweBootstrapKey & bsk, ExternalProductScratch & external_product,
                                   MultiBitBlindRotationScratch & scratch) {
    check_multi_bit_key(bsk, scratch);
    FHEGPT_CHECK(scratch.group_capacity >= 1, "empty multi-bit scratch");
    FHEGPT_CHECK_EQ(switched.size(), multi_bit_switched_size(bsk.input_lwe_dimension, bsk.grouping_factor));
    FHEGPT_CHECK_EQ(accumulator.size(), (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value);
    uint64_t * accumulators[1] = {accumulator.data()};
    const uint32_t * switched_values[1] = {switched.data()};
    blind_rotate_group_assign(accumulators, switched_values, 1, bsk, external_product, scratch);
}

void multi_bit_programmable_bootstrap_lwe_ciphertext_group(std::span<const LweCiphertext * const> inputs,
                                                           std::span<LweCiphertext * const> outputs,
                                                           std::span<const LookupTable * const> luts,
                                                           const FourierLweBootstrapKey & bsk,
                                                           ModulusSwitchType modulus_switch,
                                                           ProgrammableBootstrapScratch & scratch) {
    MultiBitBlindRotationScratch & multi_bit = scratch.multi_bit;
    check_multi_bit_key(bsk, multi_bit);
    FHEGPT_CHECK(modulus_switch == ModulusSwitchType::Standard,
                 "the multi-bit bootstrap rounds sums of mask elements; it has no centred modulus switch");
    const size_t count = inputs.size();
    const size_t n = bsk.input_lwe_dimension.value, k = bsk.glwe_dimension.value, big_n = bsk.polynomial_size.value;
    const size_t glwe = (k + 1) * big_n;
    const size_t switched_size = multi_bit_switched_size(bsk.input_lwe_dimension, bsk.grouping_factor);
    FHEGPT_CHECK(count <= scratch.group_capacity && count <= multi_bit.group_capacity,
                 "group of %zu > scratch capacity %zu", count, scratch.group_capacity);
    FHEGPT_CHECK_EQ(scratch.accumulators.size(), scratch.group_capacity * glwe);
    FHEGPT_CHECK_EQ(luts.size(), count);
    if (count == 0) return;
    const size_t functions = luts[0]->function_count;
    FHEGPT_CHECK_EQ(outputs.size(), count * functions);
    std::array<uint64_t *, kMaxKeyswitchGroup> accumulators{};
    std::array<const uint32_t *, kMaxKeyswitchGroup> switched{};
    FHEGPT_CHECK(count <= accumulators.size(), "multi-bit group of %zu ciphertexts", count);
    for (size_t c = 0; c < count; ++c) {
        FHEGPT_CHECK_EQ(inputs[c]->lwe_dimension().value, n);
        check_lut(*luts[c], bsk);
        FHEGPT_CHECK_EQ(luts[c]->function_count, functions);
        std::span<uint32_t> values(multi_bit.switched.data() + c * switched_size, switched_size);
        modulus_switch_multi_bit_lwe_ciphertext(*inputs[c], bsk.polynomial_size, bsk.grouping_factor, values);
        accumulators[c] = scratch.accumulators.data() + c * glwe;
        switched[c] = values.data();
        initialize_accumulator(std::span<uint64_t>(accumulators[c], glwe), *luts[c], values.back(), k);
    }
    for (LweCiphertext * output : outputs) FHEGPT_CHECK_EQ(output->lwe_dimension().value, k * big_n);

    blind_rotate_group_assign(accumulators.data(), switched.data(), count, bsk, scratch.external_product, multi_bit);

    for (size_t c = 0; c < count; ++c) {
        std::span<const uint64_t> accumulator(accumulators[c], glwe);
        for (size_t j = 0; j < functions; ++j)
            extract_lwe_sample_from_glwe_ciphertext(accumulator, bsk.glwe_dimension, bsk.polynomial_size,
                                                    j * luts[c]->slot_stride, *outputs[c * functions + j]);
    }
}

} // namespace fhegpt::tfhe
