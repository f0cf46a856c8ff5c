// Leveled operations on LWE ciphertexts (no bootstrap): the phase of the result is the same
// linear function of the input phases, the noise variance grows accordingly
// (noise_model.h): add / sub -> v1 + v2, neg -> v, times c -> c^2 v, dot product with weights
// w -> sum_i w_i^2 v_i, plaintext add -> v. Arithmetic is mod 2^64 on every element.
#pragma once

#include "tfhe/entities/lwe_ciphertext.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

void lwe_ciphertext_add_assign(LweCiphertext & lhs, const LweCiphertext & rhs);
void lwe_ciphertext_add(LweCiphertext & output, const LweCiphertext & lhs, const LweCiphertext & rhs);
void lwe_ciphertext_sub_assign(LweCiphertext & lhs, const LweCiphertext & rhs);
void lwe_ciphertext_sub(LweCiphertext & output, const LweCiphertext & lhs, const LweCiphertext & rhs);
void lwe_ciphertext_opposite_assign(LweCiphertext & ciphertext);
// ciphertext *= cleartext (a signed integer, not encoded).
void lwe_ciphertext_cleartext_mul_assign(LweCiphertext & ciphertext, int64_t cleartext);
// body += plaintext (an encoded torus element, e.g. encode_message(m, p)).
void lwe_ciphertext_plaintext_add_assign(LweCiphertext & ciphertext, uint64_t plaintext);
void lwe_ciphertext_plaintext_sub_assign(LweCiphertext & ciphertext, uint64_t plaintext);
// output = sum_i weights[i] * inputs[i] (all of the same dimension as output).
void lwe_ciphertext_dot_product(LweCiphertext & output, std::span<const LweCiphertext> inputs,
                                std::span<const int64_t> weights);
void lwe_ciphertext_dot_product(LweCiphertext & output, std::span<const LweCiphertext * const> inputs,
                                std::span<const int64_t> weights);
// output += weight * input.
void lwe_ciphertext_cleartext_mul_add_assign(LweCiphertext & output, const LweCiphertext & input, int64_t weight);

} // namespace fhegpt::tfhe
