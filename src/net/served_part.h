// ServedPart (part_server.h) of a quantized head, attention block or run of whole blocks: the public manifest a
// client needs (input quantizer, encodings, output unit; never a weight) and the row circuits
// the server evaluates on each session's encrypted key/value cache.
#pragma once

#include "circuit/quantized_attention.h"
#include "circuit/quantized_blocks.h"
#include "net/part_server.h"
#include "quant/quantized_head.h"

#include <string>

namespace fhegpt::net {

// `name` ("layer0.head0"), n_bits and the parameter set go into the manifest. The head needs
// its calibrated output width (circuit::quantize_head_for_circuit).
ServedPart served_head(quant::QuantizedHead head, const std::string & name, int n_bits,
                       const tfhe::TfheParameters & params);
ServedPart served_attention(circuit::QuantizedAttention attention, const std::string & name, int n_bits,
                            const tfhe::TfheParameters & params);
// A run of whole blocks (layerL.mlp, layerL, layersA-B, all): the session's cache holds the
// keys and values of every head of every block of the run; the residual stream between blocks
// never leaves the circuit.
ServedPart served_blocks(circuit::QuantizedBlocks blocks, const std::string & name, int n_bits,
                         const tfhe::TfheParameters & params);

} // namespace fhegpt::net
