// Sample extraction: coefficient h of a GLWE ciphertext (A_0, ..., A_{k-1}, B) under S as an LWE
// ciphertext of dimension k N under the LWE reading of S (glwe_secret_key.h):
// a[j N + t] = A_j[h - t] for t <= h, -A_j[N + h - t] for t > h; b = B[h].
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/entities/glwe_ciphertext.h"
#include "tfhe/entities/lwe_ciphertext.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

void extract_lwe_sample_from_glwe_ciphertext(std::span<const uint64_t> glwe, GlweDimension glwe_dimension,
                                             PolynomialSize polynomial_size, size_t coefficient,
                                             LweCiphertext & output);
void extract_lwe_sample_from_glwe_ciphertext(const GlweCiphertext & glwe, size_t coefficient, LweCiphertext & output);

} // namespace fhegpt::tfhe
