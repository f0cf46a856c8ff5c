#include "model/gpt2_forward.h"

#include "common/check.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/gpt2_blocks.h"

#include <algorithm>
#include <cblas.h>
#include <string>

namespace fhegpt::model {

namespace {

void check_tensor(const char * name, int32_t layer, std::span<const float> tensor, size_t expected) {
    FHEGPT_CHECK(tensor.size() == expected, "GPT-2 tensor %s (layer %d) has %zu values, expected %zu", name, layer,
                 tensor.size(), expected);
}

// Every view of the model has its hparams' shape (the loader checks the file; this catches
// models assembled in code).
void check_model_shapes(const Gpt2Model & model) {
    const Gpt2HParams & hp = model.hparams;
    const size_t n_embd = static_cast<size_t>(hp.n_embd);
    check_tensor("wte", -1, model.wte, static_cast<size_t>(hp.n_vocab) * n_embd);
    check_tensor("wpe", -1, model.wpe, static_cast<size_t>(hp.n_ctx) * n_embd);
    check_tensor("ln_f.weight", -1, model.ln_f_g, n_embd);
    check_tensor("ln_f.bias", -1, model.ln_f_b, n_embd);
    check_tensor("lm_head", -1, model.lm_head, static_cast<size_t>(hp.n_vocab) * n_embd);
    FHEGPT_CHECK_EQ(model.layers.size(), static_cast<size_t>(hp.n_layer));
    for (int32_t il = 0; il < hp.n_layer; ++il) {
        const Gpt2Layer & l = model.layers[static_cast<size_t>(il)];
        check_tensor("ln_1.weight", il, l.ln_1_g, n_embd);
        check_tensor("ln_1.bias", il, l.ln_1_b, n_embd);
        check_tensor("attn.c_attn.weight", il, l.attn_w, n_embd * 3 * n_embd);
        check_tensor("attn.c_attn.bias", il, l.attn_b, 3 * n_embd);
        check_tensor("attn.c_proj.weight", il, l.attn_proj_w, n_embd * n_embd);
        check_tensor("attn.c_proj.bias", il, l.attn_proj_b, n_embd);
        check_tensor("ln_2.weight", il, l.ln_2_g, n_embd);
        check_tensor("ln_2.bias", il, l.ln_2_b, n_embd);
        check_tensor("mlp.c_fc.weight", il, l.fc_w, n_embd * 4 * n_embd);
        check_tensor("mlp.c_fc.bias", il, l.fc_b, 4 * n_embd);
        check_tensor("mlp.c_proj.weight", il, l.mlp_proj_w, 4 * n_embd * n_embd);
        check_tensor("mlp.c_proj.bias", il, l.mlp_proj_b, n_embd);
    }
}

// GPT-2 checkpoints name their activation; the tanh approximation is the usual one.
bool activation_is_tanh(const std::string & name) {
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return true;
    if (name == "gelu") return false;
    fail("GPT-2: activation function \"{}\" is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu)", name);
}

} // namespace

Gpt2Context::Gpt2Context(const Gpt2Model & model, const Gpt2ContextParams & params) : model_(model) {
    const Gpt2HParams & hp = model.hparams;
    check_model_shapes(model);
    FHEGPT_CHECK(hp.n_head > 0 && hp.n_embd % hp.n_head == 0, "n_embd %d, n_head %d", hp.n_embd, hp.n_head);
    activation_tanh_ = activation_is_tanh(hp.activation_function);

    if (params.n_ctx < 0 || params.n_ctx > hp.n_ctx)
        fail("context of {} tokens requested, the model has at most {}", params.n_ctx, hp.n_ctx);
    if (params.n_batch <= 0) fail("batch size must be positive, not {}", params.n_batch);
    if (params.n_threads < 0) fail("thread count must be positive, not {}", params.n_threads);
    n_ctx_ = params.n_ctx == 0 ? hp.n_ctx : params.n_ctx;
    n_batch_ = std::min(params.n_batch, n_ctx_);

    if (params.n_threads > 0) {
        own_pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(params.n_threads));
        pool_ = own_pool_.get();
    } else {
        pool_ = &ThreadPool::global();
    }
    // The products are split by columns over our pool, each part a single-threaded BLAS call.
    // Measured on 2 cores against OpenBLAS's own threads: the same prefill speed, a faster
    // decode (its threads spin between calls and compete with the pool for the cores).
    openblas_set_num_threads(1);

    const size_t n_embd = static_cast<size_t>(hp.n_embd);
    const size_t batch = static_cast<size_t>(n_batch_);
    const size_t cache = static_cast<size_t>(hp.n_layer) * n_ctx_ * n_embd;
    k_t_.assign(cache, 0.0f);
    v_.assign(cache, 0.0f);
    x_.assign(batch * n_embd, 0.0f);
    cur_.assign(batch * n_embd, 0.0f);
    qkv_.assign(batch * 3 * n_embd, 0.0f);
    kqv_.assign(batch * n_embd, 0.0f);
    out_.assign(batch * n_embd, 0.0f);
    ffn_.assign(batch * 4 * n_embd, 0.0f);
    head_out_.assign(batch * static_cast<size_t>(hp.head_dim()), 0.0f);
    scores_.assign(pool_->size() * static_cast<size_t>(n_ctx_), 0.0f);
    logits_.assign(static_cast<size_t>(hp.n_vocab), 0.0f);

    layer_attention_.resize(static_cast<size_t>(hp.n_layer));
    head_attention_.resize(static_cast<size_t>(hp.n_layer) * hp.n_head);
    head_computed_.assign(static_cast<size_t>(hp.n_layer) * hp.n_head, 1);
    layer_has_head_replacements_.assign(static_cast<size_t>(hp.n_layer), 0);
}

Gpt2Context::~Gpt2Context() = default;

void Gpt2Context::reset() {
    n_past_ = 0;
    for (auto & attention : layer_attention_)
        if (attention) attention->reset();
    for (auto & attention : head_attention_)
        if (attention) attention->reset();
    if (block_range_) block_range_->reset();
}

void Gpt2Context::set_layer_attention(int32_t layer, std::unique_ptr<LayerAttention> attention) {
    const Gpt2HParams & hp = model_.hparams;
    FHEGPT_CHECK(layer >= 0 && layer < hp.n_layer, "layer %d of %d", layer, hp.n_layer);
    FHEGPT_CHECK(n_past_ == 0, "attention replaced at n_past %d: replacements start with the sequence", n_past_);
    FHEGPT_CHECK(!layer_has_head_replacements_[static_cast<size_t>(layer)],
                 "layer %d has replaced heads: remove them before replacing the layer", layer);
    FHEGPT_CHECK(!in_block_range(layer), "layer %d is inside the replaced blocks", layer);
    layer_attention_[static_cast<size_t>(layer)] = std::move(attention);
}

void Gpt2Context::set_head_attention(int32_t layer, int32_t head, std::unique_ptr<HeadAttention> attention) {
    const Gpt2HParams & hp = model_.hparams;
    FHEGPT_CHECK(layer >= 0 && layer < hp.n_layer, "layer %d of %d", layer, hp.n_layer);
    FHEGPT_CHECK(head >= 0 && head < hp.n_head, "head %d of %d", head, hp.n_head);
    FHEGPT_CHECK(n_past_ == 0, "attention replaced at n_past %d: replacements start with the sequence", n_past_);
    FHEGPT_CHECK(!layer_attention_[static_cast<size_t>(layer)],
                 "layer %d is replaced as a whole: its heads cannot be replaced", layer);
    FHEGPT_CHECK(!in_block_range(layer), "layer %d is inside the replaced blocks", layer);
    const size_t index = static_cast<size_t>(layer) * hp.n_head + head;
    head_computed_[index] = attention ? 0 : 1;
    head_attention_[index] = std::move(attention);
    const auto first = head_computed_.begin() + static_cast<std::ptrdiff_t>(layer) * hp.n_head;
    layer_has_head_replacements_[static_cast<size_t>(layer)] =
        std::any_of(first, first + hp.n_head, [](uint8_t computed) { return computed == 0; }) ? 1 : 0;
}

bool Gpt2Context::in_block_range(int32_t layer) const {
    // The attention of a run that starts at the MLP half of its first layer stays on the default path.
    const BlockRangeSpec & r = block_range_spec_;
    return block_range_ && layer <= r.last && (layer > r.first || (layer == r.first && !r.from_mlp));
}

void Gpt2Context::set_block_range(const BlockRangeSpec & spec, std::unique_ptr<BlockRange> blocks) {
    const Gpt2HParams & hp = model_.hparams;
    FHEGPT_CHECK(spec.first >= 0 && spec.first <= spec.last && spec.last < hp.n_layer, "blocks %d..%d of %d", spec.first,
                 spec.last, hp.n_layer);
    FHEGPT_CHECK(!spec.final_norm || spec.last == hp.n_layer - 1, "ln_f follows only the last layer, not %d", spec.last);
    FHEGPT_CHECK(n_past_ == 0, "blocks replaced at n_past %d: replacements start with the sequence", n_past_);
    block_range_ = nullptr;
    if (!blocks) return;
    for (int32_t il = spec.first; il <= spec.last; ++il) {
        if (il == spec.first && spec.from_mlp) continue;
        FHEGPT_CHECK(!layer_attention_[size_t(il)] && !layer_has_head_replacements_[size_t(il)],
                     "layer %d has a replaced attention: remove it before replacing its block", il);
    }
    block_range_spec_ = spec;
    block_range_ = std::move(blocks);
}

LayerAttention * Gpt2Context::layer_attention(int32_t layer) const {
    FHEGPT_CHECK(layer >= 0 && layer < model_.hparams.n_layer, "layer %d of %d", layer, model_.hparams.n_layer);
    return layer_attention_[static_cast<size_t>(layer)].get();
}

HeadAttention * Gpt2Context::head_attention(int32_t layer, int32_t head) const {
    const Gpt2HParams & hp = model_.hparams;
    FHEGPT_CHECK(layer >= 0 && layer < hp.n_layer && head >= 0 && head < hp.n_head, "layer %d head %d", layer, head);
    return head_attention_[static_cast<size_t>(layer) * hp.n_head + head].get();
}

std::span<const float> Gpt2Context::eval(std::span<const int32_t> tokens, Logits which) {
    const Gpt2HParams & hp = model_.hparams;
    if (tokens.empty()) fail("eval: no tokens given");
    if (tokens.size() > static_cast<size_t>(n_ctx_ - n_past_))
        fail("context full: {} tokens given at position {}, the context holds {}", tokens.size(), n_past_, n_ctx_);
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i] < 0 || tokens[i] >= hp.n_vocab)
            fail("token {} at index {} is outside the vocabulary of {} tokens", tokens[i], i, hp.n_vocab);

    const int32_t n_tokens = static_cast<int32_t>(tokens.size());
    const size_t n_vocab = static_cast<size_t>(hp.n_vocab);
    const bool all = which == Logits::all;
    if (all && logits_.size() < tokens.size() * n_vocab) logits_.resize(tokens.size() * n_vocab);

    for (int32_t start = 0; start < n_tokens; start += n_batch_) {
        const int32_t n = std::min(n_batch_, n_tokens - start);
        const bool last_batch = start + n == n_tokens;
        float * logits = all ? logits_.data() + static_cast<size_t>(start) * n_vocab
                             : (last_batch ? logits_.data() : nullptr);
        eval_batch(tokens.data() + start, n, all, logits);
    }
    return {logits_.data(), all ? tokens.size() * n_vocab : n_vocab};
}

void Gpt2Context::report(const char * name, int32_t layer, const float * data, int32_t rows, int32_t cols,
                         int32_t first_row) const {
    if (!callback_) return;
    callback_(Gpt2Tensor{name, layer, n_past_ + first_row, rows, cols, {data, static_cast<size_t>(rows) * cols}});
}

// attn_norm (in cur_) -> attn_out (in out_) for layer il.
void Gpt2Context::build_attention(int32_t il, int32_t n) {
    const Gpt2HParams & hp = model_.hparams;
    const Gpt2Layer & layer = model_.layers[static_cast<size_t>(il)];
    const int32_t n_embd = hp.n_embd;
    const int32_t head_dim = hp.head_dim();
    const size_t rows = static_cast<size_t>(n) * n_embd;

    if (LayerAttention * replacement = layer_attention_[static_cast<size_t>(il)].get()) {
        replacement->forward({cur_.data(), rows}, n, n_past_, {out_.data(), rows});
        return;
    }

    const size_t layer_offset = static_cast<size_t>(il) * n_ctx_ * n_embd;
    const LayerKvView cache{k_t_.data() + layer_offset, v_.data() + layer_offset, n_ctx_, hp.n_head, head_dim};
    const bool heads_replaced = layer_has_head_replacements_[static_cast<size_t>(il)] != 0;
    std::span<const uint8_t> computed;
    if (heads_replaced) computed = {head_computed_.data() + static_cast<size_t>(il) * hp.n_head, static_cast<size_t>(hp.n_head)};
    attention_heads(pool_, layer, cache, computed, cur_.data(), n, n_past_, qkv_.data(), scores_.data(), kqv_.data());

    if (heads_replaced) {
        for (int32_t h = 0; h < hp.n_head; ++h) {
            HeadAttention * head = head_attention_[static_cast<size_t>(il) * hp.n_head + h].get();
            if (head == nullptr) continue;
            const size_t out_size = static_cast<size_t>(n) * head_dim;
            head->forward({cur_.data(), rows}, n, n_past_, {head_out_.data(), out_size});
            for (int32_t i = 0; i < n; ++i)
                std::copy_n(head_out_.data() + static_cast<size_t>(i) * head_dim, head_dim,
                            kqv_.data() + static_cast<size_t>(i) * n_embd + h * head_dim);
        }
    }
    report("kqv_out", il, kqv_.data(), n, n_embd);

    // c_proj: [n, n_embd] x [n_embd, n_embd] + bias
    linear(pool_, kqv_.data(), n, n_embd, n_embd, layer.attn_proj_w.data(), n_embd, layer.attn_proj_b.data(), n_embd,
           out_.data(), n_embd);
}

// ffn_norm (in cur_) -> ffn_out (in out_) for layer il.
void Gpt2Context::build_ffn(int32_t il, int32_t n) {
    const Gpt2Layer & layer = model_.layers[static_cast<size_t>(il)];
    const int32_t n_embd = model_.hparams.n_embd;
    // c_fc + gelu: [n, n_embd] x [n_embd, 4*n_embd]
    linear(pool_, cur_.data(), n, n_embd, n_embd, layer.fc_w.data(), 4 * n_embd, layer.fc_b.data(), 4 * n_embd,
           ffn_.data(), 4 * n_embd, activation_tanh_ ? Activation::gelu_tanh : Activation::gelu_erf);
    report("ffn_act", il, ffn_.data(), n, 4 * n_embd);
    // c_proj: [n, 4*n_embd] x [4*n_embd, n_embd]
    linear(pool_, ffn_.data(), n, 4 * n_embd, 4 * n_embd, layer.mlp_proj_w.data(), n_embd, layer.mlp_proj_b.data(),
           n_embd, out_.data(), n_embd);
}

void Gpt2Context::eval_batch(const int32_t * tokens, int32_t n, bool all_logits, float * logits) {
    const Gpt2HParams & hp = model_.hparams;
    const int32_t n_embd = hp.n_embd;
    const size_t rows = static_cast<size_t>(n) * n_embd;
    const float eps = hp.layer_norm_epsilon;

    // inp_embd: [n, n_embd]
    for (int32_t i = 0; i < n; ++i) {
        const float * tok = model_.wte.data() + static_cast<size_t>(tokens[i]) * n_embd;
        const float * pos = model_.wpe.data() + static_cast<size_t>(n_past_ + i) * n_embd;
        float * x = x_.data() + static_cast<size_t>(i) * n_embd;
        for (int32_t d = 0; d < n_embd; ++d) x[d] = tok[d] + pos[d];
    }
    report("inp_embd", -1, x_.data(), n, n_embd);

    bool normalized = false; // x_ holds the final hidden state (ln_f done by the block range)
    for (int32_t il = 0; il < hp.n_layer; ++il) {
        const Gpt2Layer & layer = model_.layers[static_cast<size_t>(il)];
        const bool range_starts = block_range_ && il == block_range_spec_.first;

        // attention block
        if (!range_starts || block_range_spec_.from_mlp) {
            layer_norm(x_.data(), n, n_embd, layer.ln_1_g.data(), layer.ln_1_b.data(), eps, cur_.data());
            report("attn_norm", il, cur_.data(), n, n_embd);
            build_attention(il, n);
            report("attn_out", il, out_.data(), n, n_embd);
            add_in_place(x_.data(), out_.data(), rows);
            report("ffn_inp", il, x_.data(), n, n_embd);
        }
        if (range_starts) {
            // The replaced blocks, from here to their last layer (and ln_f).
            block_range_->forward({x_.data(), rows}, n, n_past_, {out_.data(), rows});
            std::copy_n(out_.data(), rows, x_.data());
            il = block_range_spec_.last;
            normalized = block_range_spec_.final_norm;
            if (!normalized) report("l_out", il, x_.data(), n, n_embd);
            continue;
        }

        // feed-forward block
        layer_norm(x_.data(), n, n_embd, layer.ln_2_g.data(), layer.ln_2_b.data(), eps, cur_.data());
        report("ffn_norm", il, cur_.data(), n, n_embd);
        build_ffn(il, n);
        report("ffn_out", il, out_.data(), n, n_embd);
        add_in_place(x_.data(), out_.data(), rows);
        report("l_out", il, x_.data(), n, n_embd);
    }

    if (logits != nullptr) {
        // Only the rows whose logits are wanted go through ln_f and lm_head.
        const int32_t first = all_logits ? 0 : n - 1;
        const int32_t count = n - first;
        const float * x = x_.data() + static_cast<size_t>(first) * n_embd;
        if (normalized) std::copy_n(x, static_cast<size_t>(count) * n_embd, cur_.data());
        else layer_norm(x, count, n_embd, model_.ln_f_g.data(), model_.ln_f_b.data(), eps, cur_.data());
        report("result_norm", -1, cur_.data(), count, n_embd, first);
        // [count, n_embd] x [n_vocab, n_embd]^T
        linear_transposed(pool_, cur_.data(), count, n_embd, model_.lm_head.data(), hp.n_vocab, logits, hp.n_vocab);
        report("result_output", -1, logits, count, hp.n_vocab, first);
    }
    n_past_ += n;
}

} // namespace fhegpt::model
