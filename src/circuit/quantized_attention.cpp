#include "circuit/quantized_attention.h"

#include "circuit/head_reference.h"
#include "common/error.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fhegpt::circuit {

QuantizedAttention quantize_attention_heads(const model::Gpt2Model & model, int32_t layer, std::span<const float> x,
                                            std::span<const int32_t> lengths, const quant::HeadQuantConfig & config) {
    const model::Gpt2HParams & hp = model.hparams;
    if (layer < 0 || layer >= hp.n_layer) fail("attention: layer {} of a {}-layer model", layer, hp.n_layer);
    QuantizedAttention att;
    att.n_embd = hp.n_embd;
    att.n_head = hp.n_head;
    att.head_dim = hp.n_embd / hp.n_head;
    for (int32_t h = 0; h < hp.n_head; ++h)
        att.heads.push_back(quant::quantize_head(model::head_qkv_weights(model, layer, h), x, lengths, config));
    att.lut_bits = att.heads[0].lut_bits;
    const int L = att.lut_bits;
    const int32_t n_embd = att.n_embd;

    // Head outputs O on the calibration sequences (exact integers), and each head's k.
    const std::vector<int64_t> x_int = att.quantize_inputs(x);
    for (int32_t h = 0; h < hp.n_head; ++h) {
        int64_t lo = 0, hi = 0, offset = 0;
        for (int32_t len : lengths) {
            const auto o = head_reference_forward(att.heads[h], std::span(x_int).subspan(size_t(offset) * n_embd,
                                                                                       size_t(len) * n_embd), len);
            for (int64_t v : o) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
            offset += len;
        }
        int k = 1;
        // O + 2^(k+L-1) + 2^(k-1) in [0, 2^(k+L)).
        while (lo + (int64_t{1} << (k + L - 1)) + (int64_t{1} << (k - 1)) < 0 ||
               hi + (int64_t{1} << (k + L - 1)) + (int64_t{1} << (k - 1)) >= (int64_t{1} << (k + L)))
            ++k;
        att.context_shift.push_back(k);
    }
    return att;
}

std::vector<int64_t> attention_context(const QuantizedAttention & att, std::span<const int64_t> x_int,
                                       std::span<const int32_t> lengths) {
    const int32_t n_embd = att.n_embd, d = att.head_dim, L = att.lut_bits;
    const size_t positions = x_int.size() / size_t(n_embd);
    std::vector<int64_t> o(positions * size_t(n_embd));
    for (int32_t h = 0; h < att.n_head; ++h) {
        size_t offset = 0;
        for (int32_t len : lengths) {
            const auto context = head_reference_forward(att.heads[h], x_int.subspan(offset * n_embd, size_t(len) * n_embd), len);
            for (int32_t i = 0; i < len; ++i)
                for (int32_t c = 0; c < d; ++c) {
                    const int64_t u = context[size_t(i) * d + c] + att.context_offset(h);
                    o[(offset + size_t(i)) * n_embd + size_t(h * d + c)] = (u >> att.context_shift[h]) - (int64_t{1} << (L - 1));
                }
            offset += size_t(len);
        }
    }
    return o;
}

QuantizedAttention quantize_attention(const model::Gpt2Model & model, int32_t layer, std::span<const float> x,
                                      std::span<const int32_t> lengths, const quant::HeadQuantConfig & config) {
    QuantizedAttention att = quantize_attention_heads(model, layer, x, lengths, config);
    const int32_t d = att.head_dim, n_embd = att.n_embd;
    const std::vector<int64_t> x_int = att.quantize_inputs(x);

    // c_proj with each head's o unit folded into its rows, per-tensor scale.
    const model::Gpt2Layer & l = model.layers[size_t(layer)];
    std::vector<float> folded(size_t(n_embd) * n_embd);
    for (int32_t r = 0; r < n_embd; ++r) {
        const double unit = att.context_unit(r / d);
        for (int32_t j = 0; j < n_embd; ++j)
            folded[size_t(r) * n_embd + j] = static_cast<float>(double(l.attn_proj_w[size_t(r) * n_embd + j]) * unit);
    }
    const int weight_bits = config.weight_bits ? config.weight_bits : config.n_bits;
    att.proj = quant::quantize_matrix(folded.data(), n_embd, n_embd, n_embd, weight_bits, false);
    att.out_unit = att.proj.scales[0];
    att.proj_bias.resize(static_cast<size_t>(n_embd));
    for (int32_t j = 0; j < n_embd; ++j)
        att.proj_bias[j] = static_cast<int64_t>(std::nearbyint(double(l.attn_proj_b[j]) / att.out_unit));

    // c_proj's inputs on the calibration sequences: the heads' outputs rounded to L bits.
    const size_t positions = x_int.size() / size_t(n_embd);
    const std::vector<int64_t> o = attention_context(att, x_int, lengths);
    if (quant::effective_weight_rounding(config.weight_rounding, weight_bits) == quant::WeightRounding::gptq) {
        std::vector<double> with_bias(folded.begin(), folded.end());
        for (int32_t j = 0; j < n_embd; ++j) with_bias.push_back(l.attn_proj_b[j]);
        const quant::RoundedWeights rounded =
            quant::round_weights_gptq(with_bias, n_embd, n_embd, att.proj.scales, weight_bits,
                                      quant::augmented_gram(o, int64_t(positions), n_embd), quant::kGptqDamping);
        att.proj.values = rounded.values;
        for (int32_t j = 0; j < n_embd; ++j) att.proj_bias[j] = static_cast<int64_t>(std::nearbyint(rounded.bias[j]));
    }

    // Output width from the calibration outputs.
    int64_t out_absmax = 0;
    for (size_t i = 0; i < positions; ++i)
        for (int32_t j = 0; j < n_embd; ++j) {
            int64_t acc = att.proj_bias[j];
            for (int32_t r = 0; r < n_embd; ++r) acc += att.proj.values[size_t(r) * n_embd + j] * o[i * size_t(n_embd) + size_t(r)];
            out_absmax = std::max(out_absmax, acc < 0 ? -acc : acc);
        }
    att.out_bits = static_cast<int>(std::bit_width(static_cast<uint64_t>(out_absmax))) + 2; // sign + headroom
    return att;
}

} // namespace fhegpt::circuit
