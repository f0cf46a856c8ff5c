// ServedPart (part_server.h) of a quantized head or attention block: the public manifest a
// client needs (input quantizer, encodings, output unit; never a weight) and the row circuits
// the server evaluates on each session's encrypted key/value cache.
#pragma once

#include "circuit/quantized_attention.h"
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

} // namespace fhegpt::net
