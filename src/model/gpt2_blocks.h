// The shared blocks of the clear GPT-2 forward pass: linear layers (OpenBLAS, split over the
// thread pool), LayerNorm, GELU, and causal attention of one head over its KV cache. The
// default path (gpt2_forward.cpp) and the float reference implementations of the attention
// seam (attention.cpp) are both built from these, so they compute the same values.
//
// Matrices are row-major f32. A "leading dimension" (ld*) is the distance between rows, so that
// a block of columns of a wider matrix (one head's share of c_attn) is passed without a copy.
// The elementwise kernels are compiled for AVX-512, AVX2+FMA and baseline x86-64 and chosen at
// run time, so the portable build runs them at full width.
#pragma once

#include "model/gpt2_model.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::model {

// What linear() applies to each output element after the bias.
enum class Activation { none, gelu_tanh, gelu_erf };

// y[n, n_out] = act(x[n, n_in] · w[n_in, n_out] + b[n_out]); b may be null. Rows of x, w, y are
// ldx, ldw, ldy floats apart. One token (n == 1) is a matrix-vector product. The output columns
// are split over `pool` (null: the calling thread alone).
void linear(ThreadPool * pool, const float * x, int32_t n, int32_t n_in, int32_t ldx,
            const float * w, int32_t ldw, const float * b, int32_t n_out, float * y, int32_t ldy,
            Activation act = Activation::none);

// y[n, n_out] = x[n, n_in] · w[n_out, n_in]^T (the tied lm_head: one row of w per output).
void linear_transposed(ThreadPool * pool, const float * x, int32_t n, int32_t n_in, const float * w,
                       int32_t n_out, float * y, int32_t ldy);

// y[n, n_embd] = LayerNorm(x) * g + b over each row, biased variance, eps inside the sqrt.
// y may alias x.
void layer_norm(const float * x, int32_t n, int32_t n_embd, const float * g, const float * b, float eps,
                float * y);

// y[i] += x[i].
void add_in_place(float * y, const float * x, size_t count);

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GPT-2's gelu_new, in place.
void gelu_tanh_in_place(float * x, size_t count);

// 0.5 x (1 + erf(x / sqrt(2))), in place.
void gelu_erf_in_place(float * x, size_t count);

// One attention head's KV cache: keys transposed, so that the scores of a query against all
// cached keys are head_dim contiguous multiply-adds, and values row by row.
struct HeadKvView {
    float * k_t; // [head_dim, n_ctx]: k_t[d * n_ctx + j] = key of position j, component d
    float * v;   // [n_ctx, head_dim]
    int32_t n_ctx;
    int32_t head_dim;
};

// Stores the keys and values of positions n_past..n_past+n_new-1: k and v are [n_new, head_dim]
// with rows ldk (ldv) floats apart.
void store_head_kv(const HeadKvView & cache, int32_t n_past, int32_t n_new, const float * k, int32_t ldk,
                   const float * v, int32_t ldv);

// Causal softmax(q k^T / sqrt(head_dim)) v for the queries of positions n_past..n_past+n_new-1
// (q: [n_new, head_dim], rows ldq apart) against the cached keys and values of positions
// 0..n_past+n_new-1 (which must be stored already). out: [n_new, head_dim], rows ldo apart.
// scores: scratch of at least n_past + n_new floats.
void attend_head(const HeadKvView & cache, int32_t n_past, int32_t n_new, const float * q, int32_t ldq,
                 float * scores, float * out, int32_t ldo);

// The KV caches of all heads of one layer, head after head.
struct LayerKvView {
    float * k_t; // [n_head, head_dim, n_ctx]
    float * v;   // [n_head, n_ctx, head_dim]
    int32_t n_ctx;
    int32_t n_head;
    int32_t head_dim;

    HeadKvView head(int32_t h) const {
        const size_t size = static_cast<size_t>(n_ctx) * head_dim;
        return {k_t + h * size, v + h * size, n_ctx, head_dim};
    }
};

// The default attention of a layer up to the context vectors, for the heads h with
// computed[h] != 0 (an empty span: every head): their q/k/v columns of c_attn, the KV cache
// update and attend_head. Columns of skipped heads are neither read from c_attn nor written.
//   x:      [n_new, n_embd] ln_1 output of positions n_past..n_past+n_new-1
//   qkv:    [n_new, 3*n_embd] scratch
//   scores: scratch of pool->size() * cache.n_ctx floats (one row per thread)
//   kqv:    [n_new, n_embd] context vectors, head h in columns h*head_dim..
void attention_heads(ThreadPool * pool, const Gpt2Layer & layer, const LayerKvView & cache, std::span<const uint8_t> computed,
                     const float * x, int32_t n_new, int32_t n_past, float * qkv, float * scores, float * kqv);

// log(sum(exp(x))) computed stably in double: the loss of a row of logits is
// log_sum_exp(row) - row[target].
double log_sum_exp(const float * x, size_t count);

} // namespace fhegpt::model
