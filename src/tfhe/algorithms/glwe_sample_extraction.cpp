#include "tfhe/algorithms/glwe_sample_extraction.h"

#include "common/check.h"
#include "tfhe/commons/coefficient_ops.h"

namespace fhegpt::tfhe {

void extract_lwe_sample_from_glwe_ciphertext(std::span<const uint64_t> glwe, GlweDimension glwe_dimension,
                                             PolynomialSize polynomial_size, size_t coefficient,
                                             LweCiphertext & output) {
    const size_t k = glwe_dimension.value, n = polynomial_size.value, h = coefficient;
    FHEGPT_CHECK_EQ(glwe.size(), (k + 1) * n);
    FHEGPT_CHECK_EQ(output.lwe_dimension().value, k * n);
    FHEGPT_CHECK(h < n, "coefficient %zu of a polynomial of size %zu", h, n);
    uint64_t * out = output.data.data();
    for (size_t j = 0; j < k; ++j) {
        const uint64_t * a = glwe.data() + j * n;
        uint64_t * dst = out + j * n;
        for (size_t t = 0; t < n; ++t) dst[t] = sample_extract_mask_coefficient(a, n, h, t);
    }
    out[k * n] = glwe[k * n + h];
}

void extract_lwe_sample_from_glwe_ciphertext(const GlweCiphertext & glwe, size_t coefficient, LweCiphertext & output) {
    extract_lwe_sample_from_glwe_ciphertext(glwe.data, glwe.glwe_dimension, glwe.polynomial_size, coefficient, output);
}

} // namespace fhegpt::tfhe
