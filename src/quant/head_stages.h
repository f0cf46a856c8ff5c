// The quantized head's integer pipeline (quantized_head.h), stage by stage, on plain integers,
// defined once: calibration evaluates these stages, and circuit/head_tables.h encodes these
// tables on the torus for the circuit and its exact reference (circuit/head_reference.h), whose
// stages (circuit/head_circuit.cpp) compute the same operations on ciphertexts.
//
// Values wrap as the circuit's encodings wrap: a value on the L-bit grid (a code, a coarse or
// fine bucket, the row's top) lives modulo 2^(L+1), the padding bit included, and a table read
// at x >= 2^L gives the negated entry at x - 2^L (negacyclic); a bucket is taken of its value
// modulo 2^width (CircuitBuilder::remove_low_bits). So these integers equal the reference's on
// every calibration input (test-circuit-head: CalibrationStagesEqualTheReference). The one
// exception: an accumulator must fit its column (the calibration's do, by the choice of acc_bits).
#pragma once

#include "quant/quantized_head.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

// Every table the head reads, entry j for j in [0, 2^L): the integers head_tables.h encodes.
struct HeadTableEntries {
    std::vector<int64_t> code;           // bucket h -> its log code (q, k and v alike)
    std::vector<int64_t> score_product;  // P, read at code_q + code_k
    std::vector<int64_t> output_product; // A, read at alpha + code_v
    std::vector<int64_t> max_step;       // c - m + 2^V -> max(c - m, 0) (row maximum)
    std::vector<int64_t> window;         // d -> (K' - min(d, K')) 2^s, in units of S
    std::vector<int64_t> attention;      // z -> the attention code alpha
};
// Needs a calibrated head (score_bits, window_bits, exp_reference set).
HeadTableEntries head_table_entries(const QuantizedHead & head);
// One of them: the entry function's value at every L-bit input.
std::vector<int64_t> table_entries(const QuantizedHead & head, int64_t (QuantizedHead::*entry)(int64_t) const);
// The tables calibration reads before the head is calibrated further: the codes (from the
// projections' widths) and the score products (from the product scale as well).
std::vector<int64_t> code_table(const QuantizedHead & head);
std::vector<int64_t> score_product_table(const QuantizedHead & head);

// What depends on the row: row i sums i + 1 exp values, so its sum D has its own width.
struct RowTableEntries {
    int denominator_bits = 0, denominator_shift = 0;
    std::vector<int64_t> exp; // fine bucket -> e
    std::vector<int64_t> log; // denominator bucket -> 2^(L-2) - Lg
};
RowTableEntries row_table_entries(const QuantizedHead & head, int32_t row_length);

// A read of an L-bit table at x on the L-bit grid (x modulo 2^(L+1), negacyclic).
int64_t read_table(std::span<const int64_t> table, int64_t x);

// The stages, in circuit order.
// 1. Projection p's accumulators W' x + b of n positions, [n, d], and their codes: each
//    accumulator's L-bit bucket read into its log code.
std::vector<int64_t> projection_accumulators(const QuantizedHead & head, int p, std::span<const int64_t> x_int, int32_t n);
std::vector<int64_t> projection_codes(const QuantizedHead & head, std::span<const int64_t> code_table, int p,
                                      std::span<const int64_t> x_int, int32_t n);
// 2. The score S_ij of a query's and a key's codes ([d] each), without its encoding's offset.
int64_t score_of_codes(const QuantizedHead & head, std::span<const int64_t> score_product_table, const int64_t * q_codes,
                       const int64_t * k_codes);
// 3-5. A row's fine buckets g_ij from its scores: coarse buckets, the row's top by a chain of
//    steps, and each score relative to the top of the window below it.
//    (Needs score_bits and window_bits; max_step and window: the head's tables.)
std::vector<int64_t> fine_buckets(const QuantizedHead & head, std::span<const int64_t> max_step,
                                  std::span<const int64_t> window, std::span<const int64_t> scores);
// 6-7. The log table's read for a row: exp of every fine bucket, their sum D, its bucket, and
//    the log code 2^(L-2) - Lg that the attention code's index g + 2^(L-2) - Lg adds.
int64_t row_log_entry(const RowTableEntries & r, std::span<const int64_t> fine);
// 8. The attention codes alpha_ij of a row: the attention table read at g_ij + log_entry (where
//    calibration's attention_error reads the weights the codes stand for).
std::vector<int64_t> attention_codes(std::span<const int64_t> attention, std::span<const int64_t> fine, int64_t log_entry);
// 9. Row i's outputs O_id = sum_j A(alpha_ij + code_v,jd) (v_codes: [positions, d]), as the
//    circuit's output decodes them from `width` signed bits, headroom included.
std::vector<int64_t> row_outputs(const QuantizedHead & head, std::span<const int64_t> output_product,
                                 std::span<const int64_t> alpha, std::span<const int64_t> v_codes, int width);
// The whole head at n positions, every stage above in turn: O [n, d].
std::vector<int64_t> head_stages_forward(const QuantizedHead & head, std::span<const int64_t> x_int, int32_t n,
                                         int output_width = 0);

} // namespace fhegpt::quant
