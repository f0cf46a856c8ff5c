// Quantizing a head for its circuit: quant::quantize_head, then the width of O's encoding from
// the exact reference on the calibration sequences (two bits above their largest |O|: sign and
// headroom) instead of the worst case at n positions, which grows with n until the output's
// decryption noise no longer fits (compile shows it: beyond ~100 positions with 4-bit lookups).
#pragma once

#include "model/attention.h"
#include "quant/quantized_head.h"

#include <cstdint>
#include <span>

namespace fhegpt::circuit {

quant::QuantizedHead quantize_head_for_circuit(const model::HeadQkvWeights & weights, std::span<const float> x,
                                               std::span<const int32_t> lengths, const quant::HeadQuantConfig & config);

} // namespace fhegpt::circuit
