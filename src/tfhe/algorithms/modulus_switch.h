// Modulus switch of an LWE ciphertext from the torus 2^64 to Z_2N, the input of a blind rotation.
//
// Mask: a~_i = round(a_i 2N / 2^64) mod 2N, rounding error r_i = a~_i / 2N - a_i (torus units).
// Body: the phase error of the switch is r_b - sum_i r_i s_i. With binary keys, E[s_i] = 1/2, so
// half of sum_i r_i is a known mean: CenteredMeanNoiseReduction adds sum_i r_i / 2 to the body
// before rounding it, leaving r_b - sum_i r_i (s_i - 1/2), whose variance is half the
// standard one (n / 48 instead of n / 24, in units of (2N)^-2; noise_model.h). Both kinds
// also subtract half a unit (1 / 4N) from the body: the discrete box of message m is
// [m w - w/2, m w + w/2) (lookup_table.h), so the phases that round into it are centred on m w.
#pragma once

#include "tfhe/commons/parameters.h"
#include "tfhe/entities/lwe_ciphertext.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

// out[i] = a~_i for i < n, out[n] = b~; out.size() == n + 1, values in [0, 2N).
void modulus_switch_lwe_ciphertext(const LweCiphertext & input, PolynomialSize polynomial_size,
                                   ModulusSwitchType type, std::span<uint32_t> out);

} // namespace fhegpt::tfhe
