// The exact clear reference of a quantized head: the integers the circuit computes, in torus
// arithmetic (mod 2^64) with every table read as the circuit stores it, negacyclic reads
// included. It evaluates the head's stages (head_circuit.h) without building a graph, so it is
// fast enough for calibration and accuracy studies over long sequences; tests check that the
// circuit's simulation and its encrypted run equal it. Defined in head_circuit.cpp.
#pragma once

#include "quant/quantized_head.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::circuit {

// O [n, head_dim] for n positions of quantized inputs x_int [n, n_embd] (out = O * output_scale()),
// read from an encoding of output_width bits (0: head.output_bits(n); see head_tables.h).
std::vector<int64_t> head_reference_forward(const quant::QuantizedHead & head, std::span<const int64_t> x_int,
                                            int32_t n, int output_width = 0);

} // namespace fhegpt::circuit
