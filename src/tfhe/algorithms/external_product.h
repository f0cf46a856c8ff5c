// External product GGSW x GLWE -> GLWE in the Fourier domain, and the CMux built on it.
//
// out += ggsw [x] in: the k + 1 polynomials of `in` are decomposed into l signed digit
// polynomials each (rounded gadget decomposition, commons/decomposition.h), the (k + 1) l digit
// polynomials are transformed, multiplied by the Fourier rows of the GGSW and summed per output
// column, and the k + 1 sums are transformed back and added to `out`: (k + 1) l forward FFTs,
// k + 1 inverse FFTs and (k + 1)^2 l pointwise products. The digits are extracted inside the
// forward FFTs' first pass (NegacyclicFft::forward_decomposition_level) and the products are
// summed by NegacyclicFft::backward_add_sum_of_products, never written out as digits.
// CMux for the blind rotation: acc += ggsw(s) [x] (X^a acc - acc), i.e. acc * X^(a s); where the
// FFT kernel can (NegacyclicFft::fuses_rotation), X^a acc - acc is formed inside the forward
// FFTs' first pass from acc, never written out.
// Scratch is caller-owned (ExternalProductScratch) and nothing here allocates.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/entities/fourier_ggsw_ciphertext.h"
#include "tfhe/entities/ggsw_ciphertext.h"
#include "tfhe/fft/negacyclic_fft.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct ExternalProductScratch {
    GlweDimension glwe_dimension;
    PolynomialSize polynomial_size;
    DecompositionLevelCount level_count;
    const NegacyclicFft * fft = nullptr;   // fft_plan(N), looked up once
    std::vector<uint64_t> rotated;         // (k + 1) N: X^a acc - acc (kernels that do not fuse it)
    std::vector<uint64_t> state;           // (k + 1) N: decomposition state (bases past 52 bits)
    std::vector<int64_t> digits;           // (k + 1) l N, row-major like the GGSW rows (same)
    aligned_vector<double> digits_fourier; // (k + 1) l N
    aligned_vector<double> output_fourier; // (k + 1) N

    ExternalProductScratch() = default;
    // kernel: the FFT kernel (Auto: the best this CPU has; others for testing / benchmarking).
    ExternalProductScratch(GlweDimension k, PolynomialSize n, DecompositionLevelCount levels,
                           FftKernel kernel = FftKernel::Auto);
    // Bytes an ExternalProductScratch of this shape holds.
    static size_t size_bytes(GlweDimension k, PolynomialSize n, DecompositionLevelCount levels);
};

// Transforms a GGSW (layout of GgswCiphertext::data) to the Fourier layout (fourier_ggsw_ciphertext.h).
void convert_ggsw_to_fourier(std::span<const uint64_t> ggsw, std::span<double> fourier, GlweDimension k,
                             PolynomialSize n, DecompositionLevelCount levels, const NegacyclicFft & fft);
FourierGgswCiphertext convert_to_fourier_ggsw_ciphertext(const GgswCiphertext & ggsw);

// out += ggsw [x] in; out and in are GLWE ciphertexts ((k + 1) N torus elements), distinct.
void add_external_product_assign(std::span<uint64_t> out, const FourierGgswView & ggsw, std::span<const uint64_t> in,
                                 ExternalProductScratch & scratch);

// acc += ggsw [x] (X^power acc - acc), power in [0, 2N); nothing to do for power 0.
void cmux_rotate_assign(std::span<uint64_t> accumulator, const FourierGgswView & ggsw, size_t power,
                        ExternalProductScratch & scratch);

} // namespace fhegpt::tfhe
