// How one quantized head (quant/quantized_head.h) at n positions sits on the torus: the scale
// of every kind of value, and every table's entries (quant/head_stages.h, where calibration
// reads them too) encoded at their scale, shared by the circuit (head_circuit.h) and its exact
// reference (head_reference.h) so that the three cannot drift.
#pragma once

#include "quant/quantized_head.h"

#include <cstdint>
#include <vector>

namespace fhegpt::circuit {

struct HeadEncoding {
    int lut_bits = 0;
    int grid = 0;               // log2 scale of L-bit table inputs: 63 - L
    int input_width = 0;        // the widest accumulator encoding, headroom bit included
    int input_scale = 0;        // x: 63 - input_width
    int score_scale = 0;        // S and the score products P: 63 - (B_S + 1)
    int fine_scale = 0;         // u' (the relative score): 63 - fine_width
    int output_scale = 0;       // O: 63 - output_bits(n) (or the width asked for)
    // Column c of projection p: encoding width and the power of two its weights take to move x
    // to that width's scale. No headroom bit: the L-bit bucket fills an L-bit table read.
    int column_width(const quant::QuantizedHead & head, int p, int32_t c) const { return head.column_bits(p, c); }
    int column_scale(const quant::QuantizedHead & head, int p, int32_t c) const { return 63 - column_width(head, p, c); }
};

struct HeadTables {
    HeadEncoding encoding;
    std::vector<uint64_t> code;            // bucket h -> its log code on the grid (q, k and v alike)
    std::vector<uint64_t> score_product;   // P(x) at the score scale, read at code_q + code_k
    std::vector<uint64_t> output_product;  // A(x) at the output scale, read at alpha + code_v
    std::vector<uint64_t> max_step;        // c - m + 2^V -> max(c - m, 0) on the grid (row maximum)
    std::vector<uint64_t> window;          // d -> (K - min(d, K)) 2^s at the score scale
    std::vector<uint64_t> attention;       // z -> the attention code alpha on the grid
};

// output_width: the signed width of O's encoding, headroom included (0: head.output_bits(n));
// a whole attention block (attention_circuit.h) encodes O at its own rounding width.
HeadEncoding head_encoding(const quant::QuantizedHead & head, int32_t n, int output_width = 0);
HeadTables build_head_tables(const quant::QuantizedHead & head, int32_t n, int output_width = 0);

// What depends on the row: row i sums i + 1 exp values, so its sum D has its own width.
struct RowTables {
    int denominator_bits = 0, denominator_shift = 0;
    int denominator_scale = 0;             // D: 63 - denominator_bits
    std::vector<uint64_t> exp;             // fine bucket -> e at the denominator scale
    std::vector<uint64_t> log;             // denominator bucket -> 2^(L-2) - Lg on the grid
};
RowTables build_row_tables(const quant::QuantizedHead & head, int32_t row_length);

} // namespace fhegpt::circuit
