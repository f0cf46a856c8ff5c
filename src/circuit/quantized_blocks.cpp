#include "circuit/quantized_blocks.h"

#include "circuit/attention_circuit.h"
#include "circuit/head_circuit.h"
#include "common/error.h"
#include "model/gpt2_fold.h"
#include "quant/quantizer.h"

namespace fhegpt::circuit {

namespace {

const QuantizedBlock & first_block(const QuantizedBlocks & q) {
    if (q.blocks.empty()) fail("quantized blocks: none");
    return q.blocks.front();
}

} // namespace

const std::vector<double> & QuantizedBlocks::first_scales() const {
    const QuantizedBlock & b = first_block(*this);
    return b.attention ? b.attention->heads.at(0).x_scales : b.mlp.x_scales;
}

int QuantizedBlocks::first_bits() const {
    const QuantizedBlock & b = first_block(*this);
    return b.attention ? b.attention->heads.at(0).x_bits : b.mlp.x_bits;
}

int QuantizedBlocks::first_input_scale() const {
    const QuantizedBlock & b = first_block(*this);
    return b.attention ? attention_input_scale(*b.attention) : b.mlp.input_scale();
}

int QuantizedBlocks::output_scale() const { return ln_f ? ln_f->out_delta : residual.scale(); }

double QuantizedBlocks::output_unit(int32_t k) const {
    return ln_f ? ln_f->out_scale.at(size_t(k)) : residual.unit.at(size_t(k));
}

std::vector<int64_t> QuantizedBlocks::quantize_inputs(std::span<const float> x) const {
    if (n_embd <= 0 || residual.unit.size() != size_t(n_embd))
        fail("quantized blocks: {} inputs, rows of {}", x.size(), n_embd);
    return quantize_block_inputs(residual, eps, first_scales(), first_bits(), x);
}

std::vector<int64_t> quantize_block_inputs(const ResidualEncoding & residual, float eps, std::span<const double> scales,
                                           int bits, std::span<const float> x) {
    const size_t n_embd = residual.unit.size();
    if (n_embd == 0 || scales.size() != n_embd || x.size() % n_embd != 0)
        fail("quantized blocks: {} inputs, rows of {} ({} scales)", x.size(), n_embd, scales.size());
    const std::vector<int64_t> stream = residual.quantize(x);
    std::vector<float> normalized(x.begin(), x.end());
    model::normalize_rows(normalized, int32_t(n_embd), eps);
    std::vector<int64_t> out;
    out.reserve(2 * x.size());
    for (size_t row = 0; row < x.size(); row += n_embd) {
        out.insert(out.end(), stream.begin() + ptrdiff_t(row), stream.begin() + ptrdiff_t(row + n_embd));
        for (size_t k = 0; k < n_embd; ++k) out.push_back(quant::quantize_value(normalized[row + k], scales[k], bits));
    }
    return out;
}

int32_t QuantizedBlocks::cache_parts() const {
    int32_t parts = 0;
    for (const QuantizedBlock & b : blocks)
        if (b.attention) parts += kHeadCacheParts * b.attention->n_head;
    return parts;
}

int32_t QuantizedBlocks::head_dim() const {
    for (const QuantizedBlock & b : blocks)
        if (b.attention) return b.attention->head_dim;
    return 0;
}

} // namespace fhegpt::circuit
