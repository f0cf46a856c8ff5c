// The external product of a multi-bit blind rotation step: acc <- (sum_S X^(e_S) GGSW_S) [x] acc
// for one group of the key (S over the 2^g subsets of the group, e_{} = 0), for several
// ciphertexts at once, and the layout of multi-bit Fourier keys it reads.
//
// The GGSW sum is never stored: for each block of Fourier points it is built in registers
// (the GGSWs' points times the transforms of X^(e_S), fourier_monomials.h) and multiplied at
// once by the accumulator's digits. So a step is: decompose and transform the accumulator
// (as external_product.h does), one fused pass over the key group for every ciphertext, and
// k + 1 inverse transforms.
//
// Layout: a FourierLweBootstrapKey of grouping factor g > 1 stores each group (2^g GGSWs of
// P = l (k + 1)^2 Fourier polynomials, the same doubles as 2^g standard GGSWs) by blocks of
// kMultiBitPointBlock Fourier points: block b, subset S, polynomial p at
//     ((b 2^g + S) P + p) 2B   (B real parts, then B imaginary parts),
// so that a block of points reads one contiguous run of the key (the standard layout would
// have it read 2^g P scattered streams, which hardware prefetchers cannot follow). The run of
// a block is reused from L1 by every ciphertext of the group.
#pragma once

#include "tfhe/algorithms/external_product.h"
#include "tfhe/algorithms/fourier_monomials.h"
#include "tfhe/entities/fourier_lwe_bootstrap_key.h"

#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

inline constexpr size_t kMultiBitPointBlock = 4;

// Auto: AVX2 + FMA where the CPU has them, else Generic (any x86-64). The others are testing hooks.
// Generic reads the factor of every point from the monomial table; AVX2 one per block of 4 points
// (FourierMonomialTable::blocks_are_quarter_turns), keeps the block's sums in registers and
// multiplies complex numbers with 3 FMAs (Karatsuba, the key's side formed once per block), for
// GGSWs of up to 16 polynomials ((k + 1)^2 l: every set's); larger ones go to Generic.
enum class MultiBitKernel { Auto, Generic, Avx2 };
bool multi_bit_kernel_available(MultiBitKernel kernel);

// Rewrites every group of a multi-bit key from the standard GGSW layout (as
// convert_ggsw_to_fourier writes it) to the block layout above. Parallel over the thread pool.
void interleave_multi_bit_fourier_key(FourierLweBootstrapKey & key);

// Doubles between the Fourier buffers of consecutive ciphertexts: `polynomials` N and one cache
// line. Without the line, the rows of every ciphertext (all 4 kB apart) would compete for the
// same few cache sets.
size_t multi_bit_fourier_stride(PolynomialSize polynomial_size, size_t polynomials);

// For c < exponents.size(): output[c] = sum over rows r of digits[c][r] (x) G[r][col] for each
// column col < k + 1, G = sum_S X^(e_S) GGSW_S of group `group`, e_S = exponents[c][S - 1] for S in
// [1, 2^g) (values in [0, 2N)). digits: (k + 1) l transformed digit polynomials per ciphertext,
// output: k + 1 Fourier polynomials per ciphertext, both multi_bit_fourier_stride apart.
void multiply_multi_bit_ggsw_sums(const FourierLweBootstrapKey & bsk, size_t group,
                                  std::span<const uint32_t * const> exponents, const FourierMonomialTable & table,
                                  std::span<const double> digits, std::span<double> output,
                                  MultiBitKernel kernel = MultiBitKernel::Auto);

// acc_c <- G_c [x] acc_c for c < exponents.size() (accumulators[c]: (k + 1) N torus elements, G_c
// as above); spare[c]: a buffer of the same size, which may end up holding the result instead:
// the two are swapped (the caller follows the pointers). digits / output: scratch of
// exponents.size() multi_bit_fourier_stride((k + 1) l) / ((k + 1)) doubles. kernel: that of
// multiply_multi_bit_ggsw_sums.
void multi_bit_external_product_assign(const FourierLweBootstrapKey & bsk, size_t group,
                                       std::span<const uint32_t * const> exponents,
                                       std::span<uint64_t *> accumulators, std::span<uint64_t *> spare,
                                       const FourierMonomialTable & table, ExternalProductScratch & scratch,
                                       std::span<double> digits, std::span<double> output,
                                       MultiBitKernel kernel = MultiBitKernel::Auto);

} // namespace fhegpt::tfhe
