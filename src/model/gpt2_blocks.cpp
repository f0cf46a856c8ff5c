#include "model/gpt2_blocks.h"

#include "common/check.h"
#include "common/thread_pool.h"

#include <algorithm>
#include <bit>
#include <cblas.h>
#include <cmath>
#include <functional>

// Elementwise kernels get one clone per instruction set, picked at load time (ifunc).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FHEGPT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FHEGPT_VECTOR_CLONES
#endif

namespace fhegpt::model {

namespace {

// Lanes of the partial sums in reductions: wide enough for 16 floats (one AVX-512 register),
// so that sums vectorize without -ffast-math.
constexpr int kLanes = 16;

// exp(x) for x in [-87, 88], relative error ~2e-7 (Cephes' expf polynomial). Written without
// branches or calls so that loops over it vectorize.
inline float fast_exp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    // Round x / ln 2 to the nearest integer n with the 1.5 * 2^23 trick; n's bits end up in t.
    const float t = x * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    const int32_t n_int = std::bit_cast<int32_t>(t) - 0x4B400000;
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f; // x - n ln 2, in two steps
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * std::bit_cast<float>((n_int + 127) << 23);
}

FHEGPT_VECTOR_CLONES
void gelu_tanh_kernel(float * x, size_t count) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    for (size_t i = 0; i < count; ++i) {
        const float v = x[i];
        const float u = kSqrt2OverPi * (v + 0.044715f * v * v * v);
        // 1 + tanh(u) = 2 - 2 / (exp(2u) + 1) = 2 exp(2u) / (exp(2u) + 1)
        const float e = fast_exp(2.0f * u);
        x[i] = v * (e / (e + 1.0f));
    }
}

FHEGPT_VECTOR_CLONES
void add_bias_kernel(float * y, const float * b, size_t count) {
    for (size_t i = 0; i < count; ++i) y[i] += b[i];
}

FHEGPT_VECTOR_CLONES
void add_kernel(float * y, const float * x, size_t count) {
    for (size_t i = 0; i < count; ++i) y[i] += x[i];
}

FHEGPT_VECTOR_CLONES
void layer_norm_row(const float * x, int32_t n_embd, const float * g, const float * b, float eps, float * y) {
    float lanes[kLanes] = {};
    int32_t i = 0;
    for (; i + kLanes <= n_embd; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
    float sum = 0.0f;
    for (; i < n_embd; ++i) sum += x[i];
    for (float lane : lanes) sum += lane;
    const float mean = sum / static_cast<float>(n_embd);

    float sq_lanes[kLanes] = {};
    i = 0;
    for (; i + kLanes <= n_embd; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const float d = x[i + l] - mean;
            sq_lanes[l] += d * d;
        }
    float sq = 0.0f;
    for (; i < n_embd; ++i) sq += (x[i] - mean) * (x[i] - mean);
    for (float lane : sq_lanes) sq += lane;
    const float inv_std = 1.0f / std::sqrt(sq / static_cast<float>(n_embd) + eps);

    for (i = 0; i < n_embd; ++i) y[i] = (x[i] - mean) * inv_std * g[i] + b[i];
}

// scores[j] = scale * sum_d q[d] k_t[d * n_ctx + j] for j < len: head_dim passes over a row
// that stays in L1, four key components at a time.
FHEGPT_VECTOR_CLONES
void head_scores(const float * q, const float * k_t, int32_t n_ctx, int32_t head_dim, int32_t len, float scale,
                 float * scores) {
    std::fill(scores, scores + len, 0.0f);
    int32_t d = 0;
    for (; d + 4 <= head_dim; d += 4) {
        const float q0 = q[d] * scale, q1 = q[d + 1] * scale, q2 = q[d + 2] * scale, q3 = q[d + 3] * scale;
        const float * k0 = k_t + static_cast<size_t>(d) * n_ctx;
        const float * k1 = k0 + n_ctx;
        const float * k2 = k1 + n_ctx;
        const float * k3 = k2 + n_ctx;
        for (int32_t j = 0; j < len; ++j) scores[j] += q0 * k0[j] + q1 * k1[j] + q2 * k2[j] + q3 * k3[j];
    }
    for (; d < head_dim; ++d) {
        const float qd = q[d] * scale;
        const float * kd = k_t + static_cast<size_t>(d) * n_ctx;
        for (int32_t j = 0; j < len; ++j) scores[j] += qd * kd[j];
    }
}

// scores[0..len) = softmax(scores[0..len)).
FHEGPT_VECTOR_CLONES
void softmax_in_place(float * scores, int32_t len) {
    float max_lanes[kLanes];
    std::fill(max_lanes, max_lanes + kLanes, -INFINITY);
    int32_t j = 0;
    for (; j + kLanes <= len; j += kLanes)
        for (int l = 0; l < kLanes; ++l) max_lanes[l] = std::max(max_lanes[l], scores[j + l]);
    float max = -INFINITY;
    for (; j < len; ++j) max = std::max(max, scores[j]);
    for (float lane : max_lanes) max = std::max(max, lane);

    float sum_lanes[kLanes] = {};
    j = 0;
    for (; j + kLanes <= len; j += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const float e = fast_exp(scores[j + l] - max);
            scores[j + l] = e;
            sum_lanes[l] += e;
        }
    float sum = 0.0f;
    for (; j < len; ++j) {
        scores[j] = fast_exp(scores[j] - max);
        sum += scores[j];
    }
    for (float lane : sum_lanes) sum += lane;
    const float inv = 1.0f / sum;
    for (j = 0; j < len; ++j) scores[j] *= inv;
}

// out[0..head_dim) = sum_j p[j] v[j * head_dim ..], four positions at a time.
FHEGPT_VECTOR_CLONES
void weighted_values(const float * p, const float * v, int32_t head_dim, int32_t len, float * out) {
    std::fill(out, out + head_dim, 0.0f);
    const size_t stride = static_cast<size_t>(head_dim);
    int32_t j = 0;
    for (; j + 4 <= len; j += 4) {
        const float p0 = p[j], p1 = p[j + 1], p2 = p[j + 2], p3 = p[j + 3];
        const float * v0 = v + j * stride;
        const float * v1 = v0 + stride;
        const float * v2 = v1 + stride;
        const float * v3 = v2 + stride;
        for (int32_t d = 0; d < head_dim; ++d) out[d] += p0 * v0[d] + p1 * v1[d] + p2 * v2[d] + p3 * v3[d];
    }
    for (; j < len; ++j) {
        const float * vj = v + j * stride;
        for (int32_t d = 0; d < head_dim; ++d) out[d] += p[j] * vj[d];
    }
}

FHEGPT_VECTOR_CLONES
float lane_sum_exp(const float * x, size_t count, float max) {
    float lanes[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= count; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += fast_exp(x[i + l] - max);
    float sum = 0.0f;
    for (; i < count; ++i) sum += fast_exp(x[i] - max);
    for (float lane : lanes) sum += lane;
    return sum;
}

void apply_epilogue(float * y, int32_t n, int32_t ldy, int32_t c0, int32_t c1, const float * b, Activation act) {
    for (int32_t r = 0; r < n; ++r) {
        float * row = y + static_cast<size_t>(r) * ldy + c0;
        if (b != nullptr) add_bias_kernel(row, b + c0, static_cast<size_t>(c1 - c0));
        switch (act) {
        case Activation::none: break;
        case Activation::gelu_tanh: gelu_tanh_kernel(row, static_cast<size_t>(c1 - c0)); break;
        case Activation::gelu_erf: gelu_erf_in_place(row, static_cast<size_t>(c1 - c0)); break;
        }
    }
}

// Columns are handed to threads in blocks of this many (one cache line).
constexpr int32_t kColumnBlock = 16;
// Below this many multiply-adds a product runs on the calling thread: waking the pool costs more.
constexpr double kMinParallelWork = 1 << 18;

// Below this many multiply-adds (queries x keys x n_embd) the heads run serially. Measured on
// 2 cores: a 512-token prefill gains ~1.3x from parallel heads; one decoded token does not
// (its attention is ~1 ms of ~20 even at position 900), so decode stays serial.
constexpr double kMinParallelAttention = 1 << 20;

// Runs fn(c0, c1) over [0, n_out) split into column blocks over the pool.
template <typename Fn>
void split_columns(ThreadPool * pool, int32_t n_out, double work, const Fn & fn) {
    if (pool == nullptr || pool->size() == 1 || work < kMinParallelWork || n_out < 2 * kColumnBlock) {
        fn(0, n_out);
        return;
    }
    const size_t blocks = static_cast<size_t>((n_out + kColumnBlock - 1) / kColumnBlock);
    pool->parallel_for(blocks, [&fn, n_out](size_t begin, size_t end, size_t) {
        const int32_t c0 = static_cast<int32_t>(begin) * kColumnBlock;
        const int32_t c1 = std::min(n_out, static_cast<int32_t>(end) * kColumnBlock);
        fn(c0, c1);
    });
}

} // namespace

void linear(ThreadPool * pool, const float * x, int32_t n, int32_t n_in, int32_t ldx, const float * w, int32_t ldw,
            const float * b, int32_t n_out, float * y, int32_t ldy, Activation act) {
    FHEGPT_CHECK(n > 0 && n_in > 0 && n_out > 0, "linear: n %d, n_in %d, n_out %d", n, n_in, n_out);
    FHEGPT_CHECK(ldx >= n_in && ldw >= n_out && ldy >= n_out, "linear: ldx %d < n_in %d, ldw %d or ldy %d < n_out %d",
                 ldx, n_in, ldw, ldy, n_out);
    const double work = static_cast<double>(n) * n_in * n_out;
    split_columns(pool, n_out, work, [&](int32_t c0, int32_t c1) {
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, n_in, c1 - c0, 1.0f, w + c0, ldw, x, 1, 0.0f, y + c0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, c1 - c0, n_in, 1.0f, x, ldx, w + c0, ldw, 0.0f,
                        y + c0, ldy);
        apply_epilogue(y, n, ldy, c0, c1, b, act);
    });
}

void linear_transposed(ThreadPool * pool, const float * x, int32_t n, int32_t n_in, const float * w, int32_t n_out,
                       float * y, int32_t ldy) {
    FHEGPT_CHECK(n > 0 && n_in > 0 && n_out > 0 && ldy >= n_out, "linear_transposed: n %d, n_in %d, n_out %d, ldy %d",
                 n, n_in, n_out, ldy);
    const double work = static_cast<double>(n) * n_in * n_out;
    split_columns(pool, n_out, work, [&](int32_t c0, int32_t c1) {
        const float * w_rows = w + static_cast<size_t>(c0) * n_in;
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, c1 - c0, n_in, 1.0f, w_rows, n_in, x, 1, 0.0f, y + c0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c1 - c0, n_in, 1.0f, x, n_in, w_rows, n_in, 0.0f,
                        y + c0, ldy);
    });
}

void layer_norm(const float * x, int32_t n, int32_t n_embd, const float * g, const float * b, float eps, float * y) {
    for (int32_t r = 0; r < n; ++r) {
        const size_t offset = static_cast<size_t>(r) * n_embd;
        layer_norm_row(x + offset, n_embd, g, b, eps, y + offset);
    }
}

void add_in_place(float * y, const float * x, size_t count) { add_kernel(y, x, count); }

void gelu_tanh_in_place(float * x, size_t count) { gelu_tanh_kernel(x, count); }

void gelu_erf_in_place(float * x, size_t count) {
    constexpr float kInvSqrt2 = 0.7071067811865476f;
    for (size_t i = 0; i < count; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

void store_head_kv(const HeadKvView & cache, int32_t n_past, int32_t n_new, const float * k, int32_t ldk,
                   const float * v, int32_t ldv) {
    FHEGPT_CHECK(n_past >= 0 && n_new >= 0 && n_past + n_new <= cache.n_ctx, "store_head_kv: n_past %d + n_new %d > n_ctx %d",
                 n_past, n_new, cache.n_ctx);
    for (int32_t i = 0; i < n_new; ++i) {
        const int32_t pos = n_past + i;
        const float * k_row = k + static_cast<size_t>(i) * ldk;
        for (int32_t d = 0; d < cache.head_dim; ++d) cache.k_t[static_cast<size_t>(d) * cache.n_ctx + pos] = k_row[d];
        std::copy(v + static_cast<size_t>(i) * ldv, v + static_cast<size_t>(i) * ldv + cache.head_dim,
                  cache.v + static_cast<size_t>(pos) * cache.head_dim);
    }
}

void attend_head(const HeadKvView & cache, int32_t n_past, int32_t n_new, const float * q, int32_t ldq, float * scores,
                 float * out, int32_t ldo) {
    FHEGPT_CHECK(n_past >= 0 && n_new >= 0 && n_past + n_new <= cache.n_ctx, "attend_head: n_past %d + n_new %d > n_ctx %d",
                 n_past, n_new, cache.n_ctx);
    const float scale = 1.0f / std::sqrt(static_cast<float>(cache.head_dim));
    for (int32_t i = 0; i < n_new; ++i) {
        const int32_t len = n_past + i + 1; // causal: position n_past + i sees 0..n_past + i
        head_scores(q + static_cast<size_t>(i) * ldq, cache.k_t, cache.n_ctx, cache.head_dim, len, scale, scores);
        softmax_in_place(scores, len);
        weighted_values(scores, cache.v, cache.head_dim, len, out + static_cast<size_t>(i) * ldo);
    }
}

void attention_heads(ThreadPool * pool, const Gpt2Layer & layer, const LayerKvView & cache, std::span<const uint8_t> computed,
                     const float * x, int32_t n_new, int32_t n_past, float * qkv, float * scores, float * kqv) {
    const int32_t n_head = cache.n_head;
    const int32_t head_dim = cache.head_dim;
    const int32_t n_embd = n_head * head_dim;
    const int32_t ld_qkv = 3 * n_embd;
    FHEGPT_CHECK(computed.empty() || static_cast<int32_t>(computed.size()) == n_head, "attention_heads: %zu flags, %d heads",
                 computed.size(), n_head);
    FHEGPT_CHECK_EQ(layer.attn_w.size(), static_cast<size_t>(n_embd) * ld_qkv);
    auto is_computed = [&](int32_t h) { return computed.empty() || computed[static_cast<size_t>(h)] != 0; };

    // c_attn, [n_new, n_embd] x [n_embd, 3*n_embd]: one product when every head is computed,
    // else one per run of consecutive computed heads in each of q, k, v.
    if (std::all_of(computed.begin(), computed.end(), [](uint8_t c) { return c != 0; })) {
        linear(pool, x, n_new, n_embd, n_embd, layer.attn_w.data(), ld_qkv, layer.attn_b.data(), ld_qkv, qkv, ld_qkv);
    } else {
        for (int32_t third = 0; third < 3; ++third) {
            for (int32_t h0 = 0; h0 < n_head;) {
                if (!is_computed(h0)) {
                    ++h0;
                    continue;
                }
                int32_t h1 = h0 + 1;
                while (h1 < n_head && is_computed(h1)) ++h1;
                const int32_t col = third * n_embd + h0 * head_dim;
                linear(pool, x, n_new, n_embd, n_embd, layer.attn_w.data() + col, ld_qkv, layer.attn_b.data() + col,
                       (h1 - h0) * head_dim, qkv + col, ld_qkv);
                h0 = h1;
            }
        }
    }

    // Causal attention, one head per task.
    auto run_heads = [&](size_t begin, size_t end, size_t thread) {
        float * row_scores = scores + thread * static_cast<size_t>(cache.n_ctx);
        for (size_t hh = begin; hh < end; ++hh) {
            const int32_t h = static_cast<int32_t>(hh);
            if (!is_computed(h)) continue;
            const HeadKvView head = cache.head(h);
            const float * q = qkv + h * head_dim;
            store_head_kv(head, n_past, n_new, q + n_embd, ld_qkv, q + 2 * n_embd, ld_qkv);
            attend_head(head, n_past, n_new, q, ld_qkv, row_scores, kqv + h * head_dim, n_embd);
        }
    };
    const double work = static_cast<double>(n_new) * (n_past + n_new) * n_embd;
    if (pool == nullptr || work < kMinParallelAttention)
        run_heads(0, static_cast<size_t>(n_head), 0);
    else
        pool->parallel_for(static_cast<size_t>(n_head), std::ref(run_heads)); // std::ref: no allocation
}

double log_sum_exp(const float * x, size_t count) {
    FHEGPT_CHECK(count > 0, "log_sum_exp of nothing");
    const float max = *std::max_element(x, x + count);
    return static_cast<double>(max) + std::log(static_cast<double>(lane_sum_exp(x, count, max)));
}

} // namespace fhegpt::model
