#include "tfhe/algorithms/external_product.h"

#include "common/check.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/algorithms/polynomial.h"
#include "tfhe/commons/decomposition.h"

namespace fhegpt::tfhe {

ExternalProductScratch::ExternalProductScratch(GlweDimension k, PolynomialSize n, DecompositionLevelCount levels,
                                               FftKernel kernel)
    : glwe_dimension(k), polynomial_size(n), level_count(levels), fft(&fft_plan(n, kernel)),
      rotated((k.value + 1) * n.value),
      state((k.value + 1) * n.value), digits((k.value + 1) * levels.value * n.value),
      digits_fourier((k.value + 1) * levels.value * n.value), output_fourier((k.value + 1) * n.value) {}

size_t ExternalProductScratch::size_bytes(GlweDimension k, PolynomialSize n, DecompositionLevelCount levels) {
    const size_t glwe = (k.value + 1) * n.value;
    return glwe * 8 * 2 + glwe * levels.value * 8 * 2 + glwe * 8;
}

void convert_ggsw_to_fourier(std::span<const uint64_t> ggsw, std::span<double> fourier, GlweDimension k,
                             PolynomialSize n, DecompositionLevelCount levels, const NegacyclicFft & fft) {
    const size_t polynomials = levels.value * (k.value + 1) * (k.value + 1);
    FHEGPT_CHECK_EQ(ggsw.size(), polynomials * n.value);
    FHEGPT_CHECK_EQ(fourier.size(), polynomials * n.value);
    FHEGPT_CHECK_EQ(fft.polynomial_size(), n.value);
    for (size_t p = 0; p < polynomials; ++p)
        fft.forward_torus(ggsw.subspan(p * n.value, n.value), fourier.subspan(p * n.value, n.value));
}

FourierGgswCiphertext convert_to_fourier_ggsw_ciphertext(const GgswCiphertext & ggsw) {
    FourierGgswCiphertext out;
    out.glwe_dimension = ggsw.glwe_dimension;
    out.polynomial_size = ggsw.polynomial_size;
    out.base_log = ggsw.base_log;
    out.level_count = ggsw.level_count;
    out.data.resize(ggsw.data.size());
    convert_ggsw_to_fourier(ggsw.data, out.data, ggsw.glwe_dimension, ggsw.polynomial_size, ggsw.level_count,
                            fft_plan(ggsw.polynomial_size));
    return out;
}

namespace {

void check_scratch(const FourierGgswView & ggsw, const ExternalProductScratch & scratch) {
    FHEGPT_CHECK_EQ(scratch.glwe_dimension.value, ggsw.glwe_dimension.value);
    FHEGPT_CHECK_EQ(scratch.polynomial_size.value, ggsw.polynomial_size.value);
    FHEGPT_CHECK_EQ(scratch.level_count.value, ggsw.level_count.value);
}

// out += ggsw [x] in, `in` may be scratch.rotated. rotation: when nonzero, `in` is `out` and the
// product is taken of X^rotation in - in instead (the FFT rotates inside its first pass).
void external_product_core(std::span<uint64_t> out, const FourierGgswView & ggsw, const uint64_t * in,
                           size_t rotation, ExternalProductScratch & scratch) {
    const size_t k1 = ggsw.glwe_dimension.value + 1, n = ggsw.polynomial_size.value;
    const size_t levels = ggsw.level_count.value, rows = levels * k1, glwe = k1 * n;
    const size_t base_log = ggsw.base_log.value;
    const NegacyclicFft & fft = *scratch.fft;

    // Digit spectra, level-major over the whole GLWE: row r = level * (k + 1) + column, like the
    // GGSW. The FFT extracts the digits in its first pass; bases past 52 bits (no parameter set
    // has them) are decomposed into memory first.
    if (rotation != 0) {
        for (size_t level = 0; level < levels; ++level)
            for (size_t c = 0; c < k1; ++c)
                fft.forward_decomposition_level_of_rotation(
                    std::span<const uint64_t>(in + c * n, n), rotation, base_log, levels, level + 1,
                    std::span<uint64_t>(scratch.rotated.data() + c * n, n),
                    std::span<double>(scratch.digits_fourier.data() + (level * k1 + c) * n, n));
    } else if (base_log <= 52) {
        for (size_t level = 0; level < levels; ++level)
            for (size_t c = 0; c < k1; ++c)
                fft.forward_decomposition_level(std::span<const uint64_t>(in + c * n, n), base_log, levels, level + 1,
                                                std::span<double>(scratch.digits_fourier.data() + (level * k1 + c) * n, n));
    } else {
        SignedDecomposer decomposer(ggsw.base_log, ggsw.level_count);
        decomposer.decompose_slice(in, scratch.digits.data(), scratch.state.data(), glwe);
        for (size_t r = 0; r < rows; ++r)
            fft.forward_integer(std::span<const int64_t>(scratch.digits.data() + r * n, n),
                                std::span<double>(scratch.digits_fourier.data() + r * n, n));
    }
    fft.backward_add_sum_of_products(scratch.digits_fourier, std::span<const double>(ggsw.data, rows * k1 * n), rows,
                                     k1, scratch.output_fourier, out);
}

} // namespace

void add_external_product_assign(std::span<uint64_t> out, const FourierGgswView & ggsw, std::span<const uint64_t> in,
                                 ExternalProductScratch & scratch) {
    check_scratch(ggsw, scratch);
    const size_t glwe = (ggsw.glwe_dimension.value + 1) * ggsw.polynomial_size.value;
    FHEGPT_CHECK_EQ(out.size(), glwe);
    FHEGPT_CHECK_EQ(in.size(), glwe);
    external_product_core(out, ggsw, in.data(), 0, scratch);
}

void cmux_rotate_assign(std::span<uint64_t> accumulator, const FourierGgswView & ggsw, size_t power,
                        ExternalProductScratch & scratch) {
    check_scratch(ggsw, scratch);
    const size_t k1 = ggsw.glwe_dimension.value + 1, n = ggsw.polynomial_size.value;
    FHEGPT_CHECK_EQ(accumulator.size(), k1 * n);
    if (power == 0) return;
    // The FFT reads the accumulator and rotates it in its first pass where its kernel can (once
    // per level); otherwise the rotation is written out once for all levels.
    if (ggsw.base_log.value <= 52 && scratch.fft->fuses_rotation()) {
        external_product_core(accumulator, ggsw, accumulator.data(), power, scratch);
        return;
    }
    for (size_t c = 0; c < k1; ++c)
        polynomial_monomial_mul_sub(std::span<uint64_t>(scratch.rotated.data() + c * n, n),
                                    accumulator.subspan(c * n, n), power);
    external_product_core(accumulator, ggsw, scratch.rotated.data(), 0, scratch);
}

} // namespace fhegpt::tfhe
