// Programmable bootstrapping (PBS) of LWE ciphertexts under the small key (dimension n):
// modulus switch to Z_2N (modulus_switch.h), blind rotation of the lookup table
// (acc = X^(-b~) V, then acc <- CMux(BSK_i, acc, X^(a~_i) acc) for i < n, i.e. acc = X^(-phi) V),
// sample extraction of coefficient 0 (or j * slot_stride for output j of a many-LUT). The
// output is under the big LWE key (dimension k N) with a fresh, input-independent noise.
//
// Scratch (ProgrammableBootstrapScratch) is allocated once per thread and reused; the
// bootstrap itself never allocates. A group of up to `group_capacity` ciphertexts is
// blind-rotated together, each GGSW of the key applied to all of them while it is in cache:
// the key is streamed once per group instead of once per ciphertext. A key with a grouping
// factor g > 1 goes to the multi-bit PBS (lwe_multi_bit_programmable_bootstrap.h).
#pragma once

#include "tfhe/algorithms/external_product.h"
#include "tfhe/algorithms/lwe_multi_bit_programmable_bootstrap.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/entities/fourier_lwe_bootstrap_key.h"
#include "tfhe/entities/lookup_table.h"
#include "tfhe/entities/lwe_ciphertext.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct ProgrammableBootstrapScratch {
    size_t group_capacity = 0;
    ExternalProductScratch external_product;
    std::vector<uint64_t> accumulators; // group_capacity (k + 1) N
    std::vector<uint32_t> switched;     // group_capacity (n + 1)
    MultiBitBlindRotationScratch multi_bit; // multi-bit keys only

    ProgrammableBootstrapScratch() = default;
    ProgrammableBootstrapScratch(const FourierLweBootstrapKey & bsk, size_t group_capacity = 1);
    // Bytes a scratch for this key and group size holds.
    static size_t size_bytes(const FourierLweBootstrapKey & bsk, size_t group_capacity);
};

// A FourierGgswView of GGSW i of the key.
FourierGgswView fourier_ggsw_of(const FourierLweBootstrapKey & bsk, size_t i);

// acc = (0, ..., 0, X^(-body) V) for the switched body of the input, V the table's polynomial.
void initialize_accumulator(std::span<uint64_t> accumulator, const LookupTable & lut, uint32_t body, size_t k);
// Checks (FHEGPT_CHECK) that the table fits the key: polynomial size, function slots.
void check_lut(const LookupTable & lut, const FourierLweBootstrapKey & bsk);

// acc = X^(-phi) acc for phi = (modulus-switched input) (switched: n + 1 values in Z_2N, the
// body last). acc is a GLWE ciphertext ((k + 1) N), the lookup table rotated by -b~ on entry.
void blind_rotate_assign(std::span<uint64_t> accumulator, std::span<const uint32_t> switched,
                         const FourierLweBootstrapKey & bsk, ExternalProductScratch & scratch);

// output (dimension k N) = PBS(input (dimension n), lut).
void programmable_bootstrap_lwe_ciphertext(const LweCiphertext & input, LweCiphertext & output,
                                           const LookupTable & lut, const FourierLweBootstrapKey & bsk,
                                           ModulusSwitchType modulus_switch, ProgrammableBootstrapScratch & scratch);
// outputs[j] = function j of a many-LUT (outputs.size() == lut.function_count).
void programmable_bootstrap_lwe_ciphertext_many_lut(const LweCiphertext & input, std::span<LweCiphertext> outputs,
                                                    const LookupTable & lut, const FourierLweBootstrapKey & bsk,
                                                    ModulusSwitchType modulus_switch,
                                                    ProgrammableBootstrapScratch & scratch);
// A group of inputs (inputs.size() <= scratch.group_capacity), one lookup table each;
// outputs[c * F + j] is function j of input c, F = luts[c]->function_count (the same for all).
void programmable_bootstrap_lwe_ciphertext_group(std::span<const LweCiphertext * const> inputs,
                                                 std::span<LweCiphertext * const> outputs,
                                                 std::span<const LookupTable * const> luts,
                                                 const FourierLweBootstrapKey & bsk,
                                                 ModulusSwitchType modulus_switch,
                                                 ProgrammableBootstrapScratch & scratch);

} // namespace fhegpt::tfhe
