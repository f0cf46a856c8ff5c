#include "model/block_range.h"

#include "common/check.h"
#include "common/error.h"
#include "model/gpt2_blocks.h"

#include <algorithm>

namespace fhegpt::model {

FloatBlockRange::FloatBlockRange(const Gpt2Model & model, const BlockRangeSpec & spec, ThreadPool * pool)
    : model_(model), spec_(spec), pool_(pool) {
    const Gpt2HParams & hp = model.hparams;
    if (spec.first < 0 || spec.first > spec.last || spec.last >= hp.n_layer)
        fail("block range: layers {}..{} of a {}-layer model", spec.first, spec.last, hp.n_layer);
    if (spec.final_norm && spec.last != hp.n_layer - 1) fail("block range: ln_f follows only the last layer");
    for (int32_t il = spec.first; il <= spec.last; ++il)
        attention_.push_back(il == spec.first && spec.from_mlp ? nullptr : std::make_unique<FloatLayerAttention>(model, il, 0, pool));
}

void FloatBlockRange::reset() {
    for (auto & a : attention_)
        if (a) a->reset();
}

void FloatBlockRange::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const Gpt2HParams & hp = model_.hparams;
    const int32_t n_embd = hp.n_embd, n_ff = 4 * n_embd;
    const size_t rows = size_t(n_new) * n_embd;
    FHEGPT_CHECK(x.size() >= rows && out.size() >= rows, "block range: %zu inputs for %d positions", x.size(), n_new);
    const Activation gelu = hp.activation_function == "gelu" ? Activation::gelu_erf : Activation::gelu_tanh;
    std::copy_n(x.data(), rows, out.data());
    norm_.resize(rows);
    delta_.resize(rows);
    hidden_.resize(size_t(n_new) * n_ff);
    for (int32_t il = spec_.first; il <= spec_.last; ++il) {
        const Gpt2Layer & l = model_.layers[size_t(il)];
        if (FloatLayerAttention * attention = attention_[size_t(il - spec_.first)].get()) {
            layer_norm(out.data(), n_new, n_embd, l.ln_1_g.data(), l.ln_1_b.data(), hp.layer_norm_epsilon, norm_.data());
            attention->forward(norm_, n_new, n_past, delta_);
            add_in_place(out.data(), delta_.data(), rows);
        }
        layer_norm(out.data(), n_new, n_embd, l.ln_2_g.data(), l.ln_2_b.data(), hp.layer_norm_epsilon, norm_.data());
        linear(pool_, norm_.data(), n_new, n_embd, n_embd, l.fc_w.data(), n_ff, l.fc_b.data(), n_ff, hidden_.data(), n_ff, gelu);
        linear(pool_, hidden_.data(), n_new, n_ff, n_ff, l.mlp_proj_w.data(), n_embd, l.mlp_proj_b.data(), n_embd,
               delta_.data(), n_embd);
        add_in_place(out.data(), delta_.data(), rows);
    }
    if (spec_.final_norm)
        layer_norm(out.data(), n_new, n_embd, model_.ln_f_g.data(), model_.ln_f_b.data(), hp.layer_norm_epsilon, out.data());
}

} // namespace fhegpt::model
