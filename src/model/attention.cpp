#include "model/attention.h"

#include "common/check.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/gpt2_blocks.h"

namespace fhegpt::model {

namespace {

int32_t checked_n_ctx(const Gpt2Model & model, int32_t n_ctx) {
    if (n_ctx == 0) return model.hparams.n_ctx;
    if (n_ctx < 0 || n_ctx > model.hparams.n_ctx)
        fail("attention: context of {} positions, the model has {}", n_ctx, model.hparams.n_ctx);
    return n_ctx;
}

template <typename T>
void grow(std::vector<T> & buffer, size_t size) {
    if (buffer.size() < size) buffer.resize(size);
}

} // namespace

HeadQkvWeights head_qkv_weights(const Gpt2Model & model, int32_t layer, int32_t head) {
    const Gpt2HParams & hp = model.hparams;
    FHEGPT_CHECK(layer >= 0 && layer < hp.n_layer, "layer %d of %d", layer, hp.n_layer);
    FHEGPT_CHECK(head >= 0 && head < hp.n_head, "head %d of %d", head, hp.n_head);
    const Gpt2Layer & l = model.layers[static_cast<size_t>(layer)];
    const int32_t head_dim = hp.head_dim();
    const size_t col = static_cast<size_t>(head) * head_dim;
    const size_t n_embd = static_cast<size_t>(hp.n_embd);
    return {l.attn_w.data() + col,
            l.attn_w.data() + n_embd + col,
            l.attn_w.data() + 2 * n_embd + col,
            3 * hp.n_embd,
            l.attn_b.data() + col,
            l.attn_b.data() + n_embd + col,
            l.attn_b.data() + 2 * n_embd + col,
            hp.n_embd,
            head_dim};
}

FloatHeadAttention::FloatHeadAttention(const Gpt2Model & model, int32_t layer, int32_t head, int32_t n_ctx)
    : weights_(head_qkv_weights(model, layer, head)), n_ctx_(checked_n_ctx(model, n_ctx)) {
    const size_t cache_size = static_cast<size_t>(n_ctx_) * weights_.head_dim;
    k_t_.assign(cache_size, 0.0f);
    v_.assign(cache_size, 0.0f);
    scores_.assign(static_cast<size_t>(n_ctx_), 0.0f);
}

void FloatHeadAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const HeadQkvWeights & w = weights_;
    FHEGPT_CHECK_EQ(n_past, n_past_);
    FHEGPT_CHECK(n_new > 0 && n_past + n_new <= n_ctx_, "n_past %d + n_new %d > n_ctx %d", n_past, n_new, n_ctx_);
    FHEGPT_CHECK_EQ(x.size(), static_cast<size_t>(n_new) * w.n_embd);
    FHEGPT_CHECK_EQ(out.size(), static_cast<size_t>(n_new) * w.head_dim);

    // [n_new, 3*head_dim]: q | k | v of this head
    const int32_t ld = 3 * w.head_dim;
    grow(qkv_, static_cast<size_t>(n_new) * ld);
    float * q = qkv_.data();
    linear(nullptr, x.data(), n_new, w.n_embd, w.n_embd, w.w_q, w.ldw, w.b_q, w.head_dim, q, ld);
    linear(nullptr, x.data(), n_new, w.n_embd, w.n_embd, w.w_k, w.ldw, w.b_k, w.head_dim, q + w.head_dim, ld);
    linear(nullptr, x.data(), n_new, w.n_embd, w.n_embd, w.w_v, w.ldw, w.b_v, w.head_dim, q + 2 * w.head_dim, ld);

    const HeadKvView cache{k_t_.data(), v_.data(), n_ctx_, w.head_dim};
    store_head_kv(cache, n_past, n_new, q + w.head_dim, ld, q + 2 * w.head_dim, ld);
    attend_head(cache, n_past, n_new, q, ld, scores_.data(), out.data(), w.head_dim);
    n_past_ += n_new;
}

FloatLayerAttention::FloatLayerAttention(const Gpt2Model & model, int32_t layer, int32_t n_ctx, ThreadPool * pool)
    : model_(model), layer_(layer), n_ctx_(checked_n_ctx(model, n_ctx)), pool_(pool) {
    const Gpt2HParams & hp = model.hparams;
    FHEGPT_CHECK(layer >= 0 && layer < hp.n_layer, "layer %d of %d", layer, hp.n_layer);
    const size_t cache_size = static_cast<size_t>(n_ctx_) * hp.n_embd;
    k_t_.assign(cache_size, 0.0f);
    v_.assign(cache_size, 0.0f);
}

void FloatLayerAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const Gpt2HParams & hp = model_.hparams;
    const Gpt2Layer & layer = model_.layers[static_cast<size_t>(layer_)];
    const int32_t n_embd = hp.n_embd;
    FHEGPT_CHECK_EQ(n_past, n_past_);
    FHEGPT_CHECK(n_new > 0 && n_past + n_new <= n_ctx_, "n_past %d + n_new %d > n_ctx %d", n_past, n_new, n_ctx_);
    FHEGPT_CHECK_EQ(x.size(), static_cast<size_t>(n_new) * n_embd);
    FHEGPT_CHECK_EQ(out.size(), static_cast<size_t>(n_new) * n_embd);

    const size_t threads = pool_ != nullptr ? pool_->size() : 1;
    grow(qkv_, static_cast<size_t>(n_new) * 3 * n_embd);
    grow(kqv_, static_cast<size_t>(n_new) * n_embd);
    grow(scores_, threads * static_cast<size_t>(n_ctx_));

    const LayerKvView cache{k_t_.data(), v_.data(), n_ctx_, hp.n_head, hp.head_dim()};
    attention_heads(pool_, layer, cache, {}, x.data(), n_new, n_past, qkv_.data(), scores_.data(), kqv_.data());
    // c_proj: [n_new, n_embd] x [n_embd, n_embd]
    linear(pool_, kqv_.data(), n_new, n_embd, n_embd, layer.attn_proj_w.data(), n_embd, layer.attn_proj_b.data(), n_embd,
           out.data(), n_embd);
    n_past_ += n_new;
}

} // namespace fhegpt::model
