// How one quantized head (quant/quantized_head.h) at n positions sits on the torus: the scale
// of every kind of value and the contents of every table, shared by the circuit
// (head_circuit.h) and its exact reference (head_reference.h) so that the two cannot drift.
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
    int score_scale = 0;        // S, and the score square terms: 63 - (B_S + 1)
    int fine_scale = 0;         // u' (the relative score): 63 - fine_width
    int output_scale = 0;       // O: 63 - output_bits(n) (or the width asked for)
    // Column c of projection p: encoding width (headroom bit included) and the power of two its
    // weights take to move x to that width's scale.
    int column_width(const quant::QuantizedHead & head, int p, int32_t c) const { return head.column_bits(p, c) + 1; }
    int column_scale(const quant::QuantizedHead & head, int p, int32_t c) const { return 63 - column_width(head, p, c); }
};

struct HeadTables {
    HeadEncoding encoding;
    std::vector<uint64_t> square[3];       // k (score scale) and v (output scale), from a bucket; none for q (Q_i stays in)
    std::vector<uint64_t> score_product;   // z^2 at the score scale, z = h_q + h_k
    std::vector<uint64_t> output_product;  // z^2 at the output scale, z = a + h_v
    std::vector<uint64_t> max_step;        // c - m + 2^V -> max(c - m, 0) on the grid (row maximum)
    std::vector<uint64_t> window;          // d -> (K - min(d, K)) 2^s at the score scale
    std::vector<uint64_t> attention;       // z -> a on the grid
    std::vector<uint64_t> attention_square;// z -> a^2 + 2^V a at the output scale
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
