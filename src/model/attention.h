// The attention seam: where encrypted or quantized implementations replace parts of GPT-2's
// attention. A Gpt2Context (gpt2_forward.h) can install
//   - a LayerAttention for a layer: the whole attention block of that layer (c_attn, causal
//     attention of every head, c_proj incl. bias), and
//   - a HeadAttention for a (layer, head): one head's share of c_attn and its causal attention,
//     up to the context vectors before c_proj.
// Replacements keep their own state (a KV cache, possibly encrypted on a server) and are driven
// position by position: each call brings the next n_new positions, n_past..n_past+n_new-1,
// where n_past is the number of positions given since the last reset(). The default path skips
// whatever is replaced: a replaced layer's c_attn/c_proj weights and a replaced head's columns
// of c_attn are never read.
//
// FloatLayerAttention and FloatHeadAttention are the float references: they compute exactly
// what the default path computes, from the same blocks (gpt2_blocks.h).
#pragma once

#include "model/gpt2_model.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::model {

// Replaces the attention block of one layer.
class LayerAttention {
public:
    virtual ~LayerAttention() = default;

    // x:   [n_new, n_embd] the ln_1-normalized hidden states of positions n_past..n_past+n_new-1.
    // out: [n_new, n_embd] the block's output: c_proj(attention) + c_proj bias, before the
    //      residual addition.
    virtual void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) = 0;

    // Forgets every position (a new sequence starts at position 0).
    virtual void reset() = 0;
};

// Replaces one head of one layer.
class HeadAttention {
public:
    virtual ~HeadAttention() = default;

    // x:   [n_new, n_embd] the ln_1-normalized hidden states of positions n_past..n_past+n_new-1.
    // out: [n_new, head_dim] the head's context vectors softmax(q k^T / sqrt(head_dim)) v, with
    //      q, k, v from the head's columns h*head_dim.. of c_attn (incl. bias); c_proj is applied
    //      by the caller together with the other heads.
    virtual void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) = 0;

    virtual void reset() = 0;
};

// One head's share of a layer's c_attn ([n_embd, 3*n_embd], q | k | v): columns
// h*head_dim..(h+1)*head_dim-1 of each third. Row r of the q block starts at w_q + r * ldw.
struct HeadQkvWeights {
    const float * w_q;
    const float * w_k;
    const float * w_v;
    int32_t ldw;         // 3 * n_embd
    const float * b_q;   // [head_dim]
    const float * b_k;
    const float * b_v;
    int32_t n_embd;
    int32_t head_dim;
};

HeadQkvWeights head_qkv_weights(const Gpt2Model & model, int32_t layer, int32_t head);

// The float reference of a head: its own q/k/v projection and KV cache of n_ctx positions.
class FloatHeadAttention final : public HeadAttention {
public:
    // n_ctx == 0: the model's context length. The model must outlive this object.
    FloatHeadAttention(const Gpt2Model & model, int32_t layer, int32_t head, int32_t n_ctx = 0);

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { n_past_ = 0; }

    int32_t n_past() const { return n_past_; }

private:
    HeadQkvWeights weights_;
    int32_t n_ctx_;
    int32_t n_past_ = 0;
    std::vector<float> k_t_, v_;     // [head_dim, n_ctx], [n_ctx, head_dim]
    std::vector<float> qkv_, scores_; // scratch, grown on demand
};

// The float reference of a layer's whole attention block.
class FloatLayerAttention final : public LayerAttention {
public:
    // n_ctx == 0: the model's context length. pool: threads for the products (null: caller's).
    FloatLayerAttention(const Gpt2Model & model, int32_t layer, int32_t n_ctx = 0, ThreadPool * pool = nullptr);

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { n_past_ = 0; }

    int32_t n_past() const { return n_past_; }

private:
    const Gpt2Model & model_;
    int32_t layer_;
    int32_t n_ctx_;
    ThreadPool * pool_;
    int32_t n_past_ = 0;
    std::vector<float> k_t_, v_;              // [n_head, head_dim, n_ctx], [n_head, n_ctx, head_dim]
    std::vector<float> qkv_, kqv_, scores_;   // scratch, grown on demand
};

} // namespace fhegpt::model
