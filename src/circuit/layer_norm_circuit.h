// The LayerNorm stage (quantized_layer_norm.h) on the encrypted residual stream: per position,
// every channel rounded exactly to its L-bit bucket, its square and its log code (two lookups),
// the sum of squares rounded exactly and read into the code of 1/rms (one lookup), and one
// product lookup per channel. Cost per position: sum_k (shift_k - kept_k + 3) + the sum's
// rounding + 1 bootstraps.
#pragma once

#include "circuit/circuit_builder.h"
#include "circuit/quantized_layer_norm.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

// x: [rows, n_embd] the stream at 2^(63 - ln.residual_width). Returns y [rows, n_embd] at
// 2^ln.out_delta.
std::vector<ValueId> build_layer_norm(CircuitBuilder & b, const QuantizedLayerNorm & ln, std::span<const ValueId> x);

} // namespace fhegpt::circuit
