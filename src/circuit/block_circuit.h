// The circuit of a run of quantized blocks (quantized_blocks.h), built from named stages the
// way llama.cpp builds GPT-2 from build_norm / build_attn / build_ffn:
//   build_block:    build_layer_norm -> build_attention -> build_residual
//                   -> build_layer_norm -> build_mlp -> build_residual
//   the run:        build_block per layer (section "layerL" in the cost report), then
//                   build_layer_norm for ln_f (section "ln_f")
// The first LayerNorm of the run is the client's (quantized_blocks.h). blocks_reference_forward
// evaluates the same stages without a graph.
//
// Ports, for rows first..n-1 (the positions before `first` live in the key/value caches):
//   inputs   per new position: the stream (n_embd, at residual.scale()), then the first stage's
//            normalized input (n_embd, at first_input_scale()); then the caches: for every block
//            with attention, for every head, its key codes and value codes ([first, head_dim]
//            each, head_circuit.h);
//   outputs  per new row: the stream where the run ends, or ln_f's output (n_embd, at
//            output_scale()); then the caches' entries of the new positions, in the same order.
// A new token therefore costs O(n) per layer (its own row), and the row circuit plugs into a
// part server as served_attention's does.
#pragma once

#include "circuit/circuit.h"
#include "circuit/circuit_builder.h"
#include "circuit/head_circuit.h"
#include "circuit/quantized_blocks.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

// x + delta, element by element (the residual addition: both at the stream's scale and units).
std::vector<ValueId> build_residual(CircuitBuilder & b, std::span<const ValueId> x, std::span<const ValueId> delta);

// One block on rows first..n-1: x the stream of the new rows; normalized: the first stage's
// input when the block has no LayerNorm of its own before it (else empty); caches: one per head.
// Returns the stream after the block.
std::vector<ValueId> build_block(CircuitBuilder & b, const QuantizedBlocks & blocks, const QuantizedBlock & block,
                                 int32_t first, int32_t n, std::span<const ValueId> x, std::span<const ValueId> normalized,
                                 std::vector<HeadCache> & caches);

// The whole sequence (no cache ports), or rows first..n-1 with the cache as ports.
Circuit build_blocks_circuit(const QuantizedBlocks & blocks, int32_t n);
Circuit build_blocks_row_circuit(const QuantizedBlocks & blocks, int32_t first, int32_t n);
// The whole sequence's outputs [n, n_embd] without a graph; inputs as quantize_inputs gives them.
std::vector<int64_t> blocks_reference_forward(const QuantizedBlocks & blocks, std::span<const int64_t> inputs, int32_t n);
// Rows first..n-1 without a graph, with the caches as integers (inputs: the new positions'
// inputs, then the caches, as the row circuit's ports); outputs as the row circuit's.
std::vector<int64_t> blocks_reference_rows(const QuantizedBlocks & blocks, std::span<const int64_t> inputs, int32_t first,
                                           int32_t n);

// The integers of the whole sequence at every point of a block (the sequential calibration of
// block_calibration.h reads them): the stream before the block, in the middle (empty: the
// block has no attention) and after it, at residual.scale(); the attention's and the MLP's input
// integers (empty where the stage is absent), as the LayerNorms (or the client) write them.
struct BlockTaps {
    std::vector<int64_t> before, attention_in, middle, mlp_in, after; // [n, n_embd] each
};
// The first `count` blocks of the run on the whole sequence ([n, inputs_per_position()]).
std::vector<BlockTaps> blocks_reference_taps(const QuantizedBlocks & blocks, std::span<const int64_t> inputs, int32_t n,
                                             size_t count);

} // namespace fhegpt::circuit
