// The MLP stage (quantized_mlp.h): c_fc as a linear node per hidden column, its accumulator
// rounded exactly to an L-bit bucket and read once by the GELU table (which writes at the
// residual stream's scale), and c_proj into the stream's units. Cost per position:
// sum_c (shift_c - kept_c + 1) bootstraps.
#pragma once

#include "circuit/circuit_builder.h"
#include "circuit/quantized_mlp.h"

#include <span>
#include <vector>

namespace fhegpt::circuit {

// y: [rows, n_embd] the MLP's inputs at 2^input_scale (at most mlp.input_scale()). Returns
// out [rows, n_embd] at 2^residual_scale: what the MLP adds to the stream.
std::vector<ValueId> build_mlp(CircuitBuilder & b, const QuantizedMlp & mlp, std::span<const ValueId> y, int input_scale,
                               int residual_scale);

} // namespace fhegpt::circuit
