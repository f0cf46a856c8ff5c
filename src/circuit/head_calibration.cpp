#include "circuit/head_calibration.h"

#include "circuit/head_reference.h"

#include <algorithm>
#include <bit>

namespace fhegpt::circuit {

quant::QuantizedHead quantize_head_for_circuit(const model::HeadQkvWeights & weights, std::span<const float> x,
                                               std::span<const int32_t> lengths, const quant::HeadQuantConfig & config) {
    quant::QuantizedHead head = quant::quantize_head(weights, x, lengths, config);
    const std::vector<int64_t> x_int = head.quantize_inputs(x);
    int64_t absmax = 0;
    size_t offset = 0;
    for (int32_t len : lengths) {
        const auto o = head_reference_forward(head, std::span(x_int).subspan(offset, size_t(len) * head.n_embd), len);
        for (int64_t v : o) absmax = std::max(absmax, v < 0 ? -v : v);
        offset += size_t(len) * head.n_embd;
    }
    head.output_width = static_cast<int>(std::bit_width(static_cast<uint64_t>(absmax))) + 2;
    return head;
}

} // namespace fhegpt::circuit
