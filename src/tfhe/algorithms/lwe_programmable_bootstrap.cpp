#include "tfhe/algorithms/lwe_programmable_bootstrap.h"

#include "common/check.h"
#include "tfhe/algorithms/glwe_sample_extraction.h"
#include "tfhe/algorithms/modulus_switch.h"
#include "tfhe/algorithms/polynomial.h"

#include <algorithm>
#include <array>

namespace fhegpt::tfhe {

ProgrammableBootstrapScratch::ProgrammableBootstrapScratch(const FourierLweBootstrapKey & bsk, size_t capacity)
    : group_capacity(capacity), external_product(bsk.glwe_dimension, bsk.polynomial_size, bsk.level_count),
      accumulators(capacity * (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value),
      switched(capacity * (bsk.input_lwe_dimension.value + 1)), multi_bit(bsk, capacity) {
    FHEGPT_CHECK(capacity >= 1, "bootstrap group capacity %zu", capacity);
}

size_t ProgrammableBootstrapScratch::size_bytes(const FourierLweBootstrapKey & bsk, size_t capacity) {
    return ExternalProductScratch::size_bytes(bsk.glwe_dimension, bsk.polynomial_size, bsk.level_count) +
           capacity * (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value * 8 +
           capacity * (bsk.input_lwe_dimension.value + 1) * 4 + MultiBitBlindRotationScratch::size_bytes(bsk, capacity);
}

FourierGgswView fourier_ggsw_of(const FourierLweBootstrapKey & bsk, size_t i) {
    FHEGPT_CHECK(i < bsk.input_lwe_dimension.value, "GGSW %zu of a key of %zu", i, bsk.input_lwe_dimension.value);
    return {bsk.glwe_dimension, bsk.polynomial_size, bsk.base_log, bsk.level_count, bsk.ggsw(i)};
}

void initialize_accumulator(std::span<uint64_t> accumulator, const LookupTable & lut, uint32_t body, size_t k) {
    const size_t n = lut.polynomial_size.value;
    std::fill(accumulator.begin(), accumulator.begin() + k * n, 0);
    const size_t power = (2 * n - body) % (2 * n);
    polynomial_monomial_mul(accumulator.subspan(k * n, n), lut.polynomial, power);
}

void check_lut(const LookupTable & lut, const FourierLweBootstrapKey & bsk) {
    FHEGPT_CHECK_EQ(lut.polynomial_size.value, bsk.polynomial_size.value);
    FHEGPT_CHECK_EQ(lut.polynomial.size(), bsk.polynomial_size.value);
    FHEGPT_CHECK(lut.function_count >= 1 && (lut.function_count - 1) * lut.slot_stride < lut.polynomial.size(),
                 "lookup table with %zu functions of stride %zu", lut.function_count, lut.slot_stride);
}

void blind_rotate_assign(std::span<uint64_t> accumulator, std::span<const uint32_t> switched,
                         const FourierLweBootstrapKey & bsk, ExternalProductScratch & scratch) {
    const size_t n = bsk.input_lwe_dimension.value;
    FHEGPT_CHECK(!bsk.grouping_factor.is_multi_bit(), "multi-bit key: use multi_bit_blind_rotate_assign");
    FHEGPT_CHECK_EQ(switched.size(), n + 1);
    FHEGPT_CHECK_EQ(accumulator.size(), (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value);
    for (size_t i = 0; i < n; ++i) cmux_rotate_assign(accumulator, fourier_ggsw_of(bsk, i), switched[i], scratch);
}

void programmable_bootstrap_lwe_ciphertext_group(std::span<const LweCiphertext * const> inputs,
                                                 std::span<LweCiphertext * const> outputs,
                                                 std::span<const LookupTable * const> luts,
                                                 const FourierLweBootstrapKey & bsk,
                                                 ModulusSwitchType modulus_switch,
                                                 ProgrammableBootstrapScratch & scratch) {
    if (bsk.grouping_factor.is_multi_bit())
        return multi_bit_programmable_bootstrap_lwe_ciphertext_group(inputs, outputs, luts, bsk, modulus_switch, scratch);
    const size_t count = inputs.size();
    const size_t n = bsk.input_lwe_dimension.value, k = bsk.glwe_dimension.value, big_n = bsk.polynomial_size.value;
    const size_t glwe = (k + 1) * big_n;
    FHEGPT_CHECK(count <= scratch.group_capacity, "group of %zu > scratch capacity %zu", count, scratch.group_capacity);
    FHEGPT_CHECK_EQ(scratch.accumulators.size(), scratch.group_capacity * glwe);
    FHEGPT_CHECK_EQ(scratch.switched.size(), scratch.group_capacity * (n + 1));
    FHEGPT_CHECK_EQ(luts.size(), count);
    if (count == 0) return;
    const size_t functions = luts[0]->function_count;
    FHEGPT_CHECK_EQ(outputs.size(), count * functions);
    for (size_t c = 0; c < count; ++c) {
        FHEGPT_CHECK_EQ(inputs[c]->lwe_dimension().value, n);
        check_lut(*luts[c], bsk);
        FHEGPT_CHECK_EQ(luts[c]->function_count, functions);
        std::span<uint32_t> switched(scratch.switched.data() + c * (n + 1), n + 1);
        modulus_switch_lwe_ciphertext(*inputs[c], bsk.polynomial_size, modulus_switch, switched);
        initialize_accumulator(std::span<uint64_t>(scratch.accumulators.data() + c * glwe, glwe), *luts[c],
                               switched[n], k);
    }
    for (LweCiphertext * output : outputs) FHEGPT_CHECK_EQ(output->lwe_dimension().value, k * big_n);

    // GGSW i is applied to the whole group before moving on: it stays in cache.
    for (size_t i = 0; i < n; ++i) {
        const FourierGgswView ggsw = fourier_ggsw_of(bsk, i);
        for (size_t c = 0; c < count; ++c)
            cmux_rotate_assign(std::span<uint64_t>(scratch.accumulators.data() + c * glwe, glwe), ggsw,
                               scratch.switched[c * (n + 1) + i], scratch.external_product);
    }

    for (size_t c = 0; c < count; ++c) {
        std::span<const uint64_t> accumulator(scratch.accumulators.data() + c * glwe, glwe);
        for (size_t j = 0; j < functions; ++j)
            extract_lwe_sample_from_glwe_ciphertext(accumulator, bsk.glwe_dimension, bsk.polynomial_size,
                                                    j * luts[c]->slot_stride, *outputs[c * functions + j]);
    }
}

void programmable_bootstrap_lwe_ciphertext(const LweCiphertext & input, LweCiphertext & output,
                                           const LookupTable & lut, const FourierLweBootstrapKey & bsk,
                                           ModulusSwitchType modulus_switch, ProgrammableBootstrapScratch & scratch) {
    FHEGPT_CHECK_EQ(lut.function_count, size_t{1});
    const LweCiphertext * in[1] = {&input};
    LweCiphertext * out[1] = {&output};
    const LookupTable * tables[1] = {&lut};
    programmable_bootstrap_lwe_ciphertext_group(in, out, tables, bsk, modulus_switch, scratch);
}

void programmable_bootstrap_lwe_ciphertext_many_lut(const LweCiphertext & input, std::span<LweCiphertext> outputs,
                                                    const LookupTable & lut, const FourierLweBootstrapKey & bsk,
                                                    ModulusSwitchType modulus_switch,
                                                    ProgrammableBootstrapScratch & scratch) {
    FHEGPT_CHECK_EQ(outputs.size(), lut.function_count);
    const LweCiphertext * in[1] = {&input};
    const LookupTable * tables[1] = {&lut};
    constexpr size_t kMaxFunctions = 256;
    FHEGPT_CHECK(outputs.size() <= kMaxFunctions, "%zu functions in one many-LUT (at most %zu)", outputs.size(),
                 kMaxFunctions);
    std::array<LweCiphertext *, kMaxFunctions> out{};
    for (size_t j = 0; j < outputs.size(); ++j) out[j] = &outputs[j];
    programmable_bootstrap_lwe_ciphertext_group(in, std::span<LweCiphertext * const>(out.data(), outputs.size()),
                                                tables, bsk, modulus_switch, scratch);
}

} // namespace fhegpt::tfhe
