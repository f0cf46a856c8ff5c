// The circuit of a whole quantized attention block (quantized_attention.h) at n positions:
// every head on the shared inputs x_int [n, n_embd], each head's output rounded to an L-bit
// o, and c_proj as a linear node; the outputs are out [n, n_embd] (times out_unit: the
// block's output). attention_reference_forward computes the same integers without a graph.
#pragma once

#include "circuit/circuit.h"
#include "circuit/quantized_attention.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

Circuit build_attention_circuit(const QuantizedAttention & attention, int32_t n);

// Rows first..n-1 on the heads' key/value caches (see build_head_row_circuit): inputs x of the
// new positions, then for every head its four cache parts ([first, head_dim] each); outputs out
// of the new rows, then for every head its four parts for the new positions.
Circuit build_attention_row_circuit(const QuantizedAttention & attention, int32_t first, int32_t n);

std::vector<int64_t> attention_reference_forward(const QuantizedAttention & attention, std::span<const int64_t> x_int,
                                                 int32_t n);

} // namespace fhegpt::circuit
