// Building lookup tables (entities/lookup_table.h) for programmable bootstraps.
//
// A table maps input messages m in Z_p (p a power of two, p <= N) to outputs f(m) in Z_q,
// encoded with a padding bit (f(m) 2^63 / q); q may differ from p. The torus form takes any
// torus values. Many-LUT tables hold several functions of the same input, read back by one
// blind rotation (lwe_programmable_bootstrap.h).
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/entities/lookup_table.h"

#include <cstdint>
#include <functional>
#include <span>

namespace fhegpt::tfhe {

using MessageFunction = std::function<uint64_t(uint64_t)>;

// f(m) for m in [0, p) is reduced mod q.
LookupTable generate_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus, uint64_t output_modulus,
                                  const MessageFunction & f);
// table.size() == p, entries reduced mod q.
LookupTable generate_lookup_table_from_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                             uint64_t output_modulus, std::span<const uint64_t> table);
// f(m) is a torus element, stored as is (output_modulus 0).
LookupTable generate_torus_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                        const MessageFunction & torus_f);
// Several functions of the same input (function j = output j); needs functions.size() <=
// N / p. The noise bound of a parameter set allows at most max_many_lut_function_count().
LookupTable generate_many_lookup_table(PolynomialSize polynomial_size, uint64_t input_modulus,
                                       uint64_t output_modulus, std::span<const MessageFunction> functions);
// Same for a parameter set, checking that the functions fit its noise bound.
LookupTable generate_many_lookup_table(const TfheParameters & params, uint64_t input_modulus,
                                       uint64_t output_modulus, std::span<const MessageFunction> functions);
// How many functions of an input of modulus p one blind rotation can evaluate with `params`
// while keeping its failure probability: the set's message modulus / p.
size_t max_many_lut_function_count(const TfheParameters & params, uint64_t input_modulus);

} // namespace fhegpt::tfhe
