// Monomials X^d in the Fourier domain of the negacyclic FFT, for rotating Fourier-domain
// polynomials without transforming them back.
//
// The negacyclic FFT evaluates a polynomial at N/2 of the 2N-th roots of unity
// zeta_j = exp(i pi e_j / N) (e_j odd, one root of each conjugate pair), in an order private to
// fft/negacyclic_fft.h, up to a constant factor. So the product by X^d is the pointwise product
// by zeta_j^d = root(e_j d mod 2N), root(t) = exp(i pi t / N). The table reads the exponents e_j
// off the FFT itself (the transforms of 1 and X) and checks that a shifted polynomial transforms
// as predicted: it follows whatever order and scaling the FFT kernels use.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/negacyclic_fft.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

class FourierMonomialTable {
public:
    explicit FourierMonomialTable(const NegacyclicFft & fft);

    size_t polynomial_size() const { return exponents_.size() * 2; }
    // e_j for the N/2 Fourier points, in the FFT's order.
    std::span<const uint32_t> exponents() const { return exponents_; }
    // cos and sin of pi t / N for t in [0, 2N).
    std::span<const double> root_real() const { return root_real_; }
    std::span<const double> root_imaginary() const { return root_imaginary_; }
    // The same interleaved: (cos, sin) of pi t / N at 2t, 2t + 1 (one 16-byte load per root).
    std::span<const double> roots() const { return roots_; }

    // Whether the points of each block of four (4q .. 4q + 3) are quarter turns apart with one
    // pattern for every block: e_{4q+i} = e_{4q} + k_i N/2 mod 2N (the FFT's order makes them so;
    // read off the exponents, not assumed). Then root(e_{4q+i} d) = root(e_{4q} d) i^(k_i d): one
    // table read gives the factors of four points.
    bool blocks_are_quarter_turns() const { return blocks_are_quarter_turns_; }
    // k_0 .. k_3 (in [0, 4)) when blocks_are_quarter_turns().
    const std::array<uint32_t, 4> & block_quarter_turns() const { return block_quarter_turns_; }

    // fourier = the transform of X^d (d in [0, 2N)) divided by the FFT's scale: the pointwise
    // factor that multiplies a transform by X^d. N doubles, the layout of negacyclic_fft.h.
    void monomial(uint32_t degree, std::span<double> fourier) const;

private:
    std::vector<uint32_t> exponents_;
    std::vector<double> root_real_, root_imaginary_;
    aligned_vector<double> roots_;
    bool blocks_are_quarter_turns_ = false;
    std::array<uint32_t, 4> block_quarter_turns_{};
};

// The table for polynomials of size N, built on first use (process-wide, read-only, thread-safe).
const FourierMonomialTable & fourier_monomial_table(PolynomialSize polynomial_size);

} // namespace fhegpt::tfhe
