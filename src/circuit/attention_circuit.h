// The circuit of a whole quantized attention block (quantized_attention.h) at n positions:
// every head on the shared inputs x_int [n, n_embd], each head's output rounded to an L-bit
// o, and c_proj as a linear node; the outputs are out [n, n_embd] (times out_unit: the
// block's output). attention_reference_forward evaluates the same stages without a graph.
#pragma once

#include "circuit/circuit.h"
#include "circuit/circuit_builder.h"
#include "circuit/head_circuit.h"
#include "circuit/quantized_attention.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

Circuit build_attention_circuit(const QuantizedAttention & attention, int32_t n);

// The attention stage: rows first..n-1 of every head on the shared inputs x (the new positions,
// at 2^input_scale, at most attention_input_scale()) and the heads' caches (extended with the
// new positions), each head's O rounded exactly to an L-bit o that a table writes at the output
// scale 2^(63 - out_bits), and c_proj with its bias. Returns out [rows, n_embd].
std::vector<ValueId> build_attention(CircuitBuilder & b, const QuantizedAttention & attention, int32_t first, int32_t n,
                                     std::span<const ValueId> x, int input_scale, std::vector<HeadCache> & caches);
// The scale every head can take its inputs at (the smallest of the heads' input scales).
int attention_input_scale(const QuantizedAttention & attention);

// Rows first..n-1 on the heads' key/value caches (see build_head_row_circuit): inputs x of the
// new positions, then for every head its four cache parts ([first, head_dim] each); outputs out
// of the new rows, then for every head its four parts for the new positions.
Circuit build_attention_row_circuit(const QuantizedAttention & attention, int32_t first, int32_t n);

std::vector<int64_t> attention_reference_forward(const QuantizedAttention & attention, std::span<const int64_t> x_int,
                                                 int32_t n);

} // namespace fhegpt::circuit
