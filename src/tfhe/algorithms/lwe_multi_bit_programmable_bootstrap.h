// Multi-bit programmable bootstrapping: the PBS of lwe_programmable_bootstrap.h with a key of
// grouping factor g > 1 (entities/lwe_multi_bit_bootstrap_key.h).
//
// Modulus switch: for group j and every non-empty subset S of it, e_S = round(2N sum_{b in S}
// a_{j g + b} / 2^64) mod 2N (the sum is rounded, so the selected subset carries one rounding
// error per group); the body as the standard switch of modulus_switch.h. Blind rotation: for
// each group, one external product acc <- (sum_S X^(e_S) GGSW_S) [x] acc, the sum built in the
// Fourier domain (the empty set's GGSW as it is, the others times the transform of X^(e_S):
// pointwise products) and never stored (multi_bit_external_product.h). A group of ciphertexts
// is rotated together: each group of the key is read once for all of them.
// programmable_bootstrap_lwe_ciphertext_group (and everything above it: the batch, the server
// key calls) hands multi-bit keys to the functions here.
#pragma once

#include "tfhe/algorithms/external_product.h"
#include "tfhe/algorithms/fourier_monomials.h"
#include "tfhe/algorithms/multi_bit_external_product.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/entities/fourier_lwe_bootstrap_key.h"
#include "tfhe/entities/lookup_table.h"
#include "tfhe/entities/lwe_ciphertext.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct ProgrammableBootstrapScratch;

// Values a multi-bit modulus switch gives per ciphertext: (n / g) (2^g - 1) subset exponents,
// then the body.
size_t multi_bit_switched_size(LweDimension lwe_dimension, LweBskGroupingFactor grouping_factor);

// out[j (2^g - 1) + S - 1] = e_S of group j for S in [1, 2^g); out.back() = the switched body.
// out.size() == multi_bit_switched_size(n, g), values in [0, 2N).
void modulus_switch_multi_bit_lwe_ciphertext(const LweCiphertext & input, PolynomialSize polynomial_size,
                                             LweBskGroupingFactor grouping_factor, std::span<uint32_t> out);

// The multi-bit part of a ProgrammableBootstrapScratch (empty for a classic key).
struct MultiBitBlindRotationScratch {
    size_t group_capacity = 0;
    std::vector<uint32_t> switched;        // group_capacity multi_bit_switched_size(n, g)
    aligned_vector<double> digits_fourier; // group_capacity transformed digits ((k + 1) l polynomials each)
    aligned_vector<double> output_fourier; // group_capacity external products in the Fourier domain (k + 1)
    std::vector<uint64_t> products;        // group_capacity (k + 1) N: external product outputs
    const FourierMonomialTable * monomials = nullptr;
    MultiBitKernel kernel = MultiBitKernel::Auto; // the Fourier-domain products' kernel (testing hook)

    MultiBitBlindRotationScratch() = default;
    MultiBitBlindRotationScratch(const FourierLweBootstrapKey & bsk, size_t group_capacity);
    static size_t size_bytes(const FourierLweBootstrapKey & bsk, size_t group_capacity);
};

// acc = X^(-phi) acc (phi: the switched phase) for one ciphertext; switched as
// modulus_switch_multi_bit_lwe_ciphertext writes it.
void multi_bit_blind_rotate_assign(std::span<uint64_t> accumulator, std::span<const uint32_t> switched,
                                   const FourierLweBootstrapKey & bsk, ExternalProductScratch & external_product,
                                   MultiBitBlindRotationScratch & scratch);

// programmable_bootstrap_lwe_ciphertext_group for a multi-bit key (same contract).
void multi_bit_programmable_bootstrap_lwe_ciphertext_group(std::span<const LweCiphertext * const> inputs,
                                                           std::span<LweCiphertext * const> outputs,
                                                           std::span<const LookupTable * const> luts,
                                                           const FourierLweBootstrapKey & bsk,
                                                           ModulusSwitchType modulus_switch,
                                                           ProgrammableBootstrapScratch & scratch);

} // namespace fhegpt::tfhe
