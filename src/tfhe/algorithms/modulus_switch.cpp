#include "tfhe/algorithms/modulus_switch.h"

#include "common/check.h"
#include "tfhe/commons/coefficient_ops.h"

#include <bit>

namespace fhegpt::tfhe {

void modulus_switch_lwe_ciphertext(const LweCiphertext & input, PolynomialSize polynomial_size,
                                   ModulusSwitchType type, std::span<uint32_t> out) {
    const size_t n = input.lwe_dimension().value;
    FHEGPT_CHECK_EQ(out.size(), n + 1);
    FHEGPT_CHECK(std::has_single_bit(polynomial_size.value) && polynomial_size.value >= 2 &&
                     polynomial_size.value <= (size_t{1} << 20),
                 "polynomial size %zu is not a power of two in [2, 2^20]", polynomial_size.value);
    const unsigned log_2n = modulus_switch_log_2n(polynomial_size.value);
    const unsigned shift = 64 - log_2n; // one unit of Z_2N is 2^shift on the torus
    const uint64_t mod_mask = (uint64_t{1} << log_2n) - 1;
    const uint64_t * a = input.data.data();
    int64_t half_error_sum = 0;
    if (type == ModulusSwitchType::CenteredMeanNoiseReduction) {
        for (size_t i = 0; i < n; ++i) {
            const uint64_t rounded = modulus_switch_rounded(a[i], shift);
            out[i] = static_cast<uint32_t>(rounded & mod_mask);
            // r_i = rounded / 2N - a_i, |r_i| <= 2^(shift - 1); halves summed exactly enough.
            half_error_sum += modulus_switch_half_error(a[i], rounded, shift);
        }
    } else {
        for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint32_t>(modulus_switch_rounded(a[i], shift) & mod_mask);
    }
    out[n] = modulus_switch_body(a[n], half_error_sum, shift, mod_mask);
}

} // namespace fhegpt::tfhe
