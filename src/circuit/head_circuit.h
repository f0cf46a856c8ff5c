// The circuit of one quantized attention head (quant/quantized_head.h) at n positions: the
// client's inputs are the quantized ln_1 outputs x_int [n, n_embd], encoded at the widest
// accumulator scale (head_tables.h); the outputs are O [n, head_dim] (see
// QuantizedHead::output_scale). head_reference.h evaluates the same stages without a graph.
//
// Products of two ciphertexts are log codes added and read once (quantized_head.h): one
// bootstrap per product. A q/k/v accumulator is rounded to its L-bit bucket
// keeping its lowest bits as a residue (CircuitBuilder::round_keeping_low_bits) and read once
// into its code; attention weights come out of the softmax as codes. Only causal pairs j <= i
// are built. Every scale, bias and rounding sits inside the table that follows it.
#pragma once

#include "circuit/circuit.h"
#include "circuit/circuit_builder.h"
#include "quant/quantized_head.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

Circuit build_head_circuit(const quant::QuantizedHead & head, int32_t n);

// The key/value cache of a head: for every position so far, its key codes and value codes
// ([positions, head_dim] each), which later rows read.
struct HeadCache {
    std::vector<ValueId> key_code, value_code;
};
constexpr int32_t kHeadCacheParts = 2;
// How far the bucket of column c of projection p lies off its grid (its kept low bits).
uint64_t bucket_residue(const quant::QuantizedHead & head, int p, int32_t c);
// A cache of `count` values per part as circuit inputs, in the order of build_head_row_circuit.
// Codes lie exactly on the head's L-bit grid, so that is their encoding.
HeadCache add_cache_inputs(CircuitBuilder & b, const quant::QuantizedHead & head, size_t count);
// Marks every part's values from index `from` on as outputs, in the same order.
void mark_cache_outputs(CircuitBuilder & b, HeadCache & cache, const quant::QuantizedHead & head, size_t from);

// The head stage: rows first..n-1 only. x holds the inputs of positions first..n-1, encoded at
// 2^input_scale (at most the head's own input scale, head_tables.h), and `cache` the keys and
// values of positions 0..first-1; the new positions' keys and values are appended to it.
// Returns their O, encoded on output_width bits (0: head.output_bits(n)). Rows depend only on
// earlier positions, so the result equals that of the whole sequence. Its sub-stages, in
// order: the q/k/v codes of the new positions, then per row the scores, the softmax and the
// weighted values.
std::vector<ValueId> build_head(CircuitBuilder & b, const quant::QuantizedHead & head, int32_t first, int32_t n,
                                std::span<const ValueId> x, int input_scale, HeadCache & cache, int output_width = 0);

// A circuit for rows first..n-1 with the cache as inputs: inputs x of the new positions, then
// the cache (key codes, value codes, each [first, head_dim]); outputs O of the new rows, then
// their cache entries in the same order. output_width must be fixed (> 0) so that every call
// returns O at the same scale.
Circuit build_head_row_circuit(const quant::QuantizedHead & head, int32_t first, int32_t n, int output_width);

} // namespace fhegpt::circuit
