// The attention seam: replacing heads or whole layers by their float references leaves the
// logits unchanged through prefill and decode, the default path never reads a replaced part's
// weights, and a different replacement does change the logits.
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

namespace {

using namespace fhegpt::model;

constexpr float kTolerance = 1e-5f; // relative: max|a-b| / max|b|

Gpt2HParams seam_hparams() {
    Gpt2HParams hp;
    hp.n_vocab = 257;
    hp.n_ctx = 40;
    hp.n_embd = 128;
    hp.n_head = 4;
    hp.n_layer = 3;
    return hp;
}

Gpt2Model seam_model() { return make_random_gpt2_model(seam_hparams(), 42, 0.12f); }

std::vector<int32_t> seam_tokens() {
    std::vector<int32_t> tokens(30);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 131 + 7) % 257);
    return tokens;
}

double relative_error(std::span<const float> a, std::span<const float> b) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return diff / scale;
}

// The logits of a prefill of 20 tokens (all positions), then of 10 single-token decodes.
std::vector<std::vector<float>> run(Gpt2Context & ctx) {
    const std::vector<int32_t> tokens = seam_tokens();
    std::vector<std::vector<float>> out;
    std::span<const float> all = ctx.eval(std::span(tokens).first(20), Logits::all);
    out.emplace_back(all.begin(), all.end());
    for (size_t i = 20; i < tokens.size(); ++i) {
        std::span<const float> logits = ctx.eval(std::span(tokens).subspan(i, 1));
        out.emplace_back(logits.begin(), logits.end());
    }
    return out;
}

double worst_error(const std::vector<std::vector<float>> & a, const std::vector<std::vector<float>> & b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, relative_error(a[i], b[i]));
    return worst;
}

// Records how it is driven and delegates.
template <typename Base, typename Inner>
class Recording final : public Base {
public:
    explicit Recording(std::unique_ptr<Inner> inner, std::vector<std::pair<int32_t, int32_t>> * calls, int * resets)
        : inner_(std::move(inner)), calls_(calls), resets_(resets) {}
    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override {
        calls_->emplace_back(n_new, n_past);
        inner_->forward(x, n_new, n_past, out);
    }
    void reset() override {
        ++*resets_;
        inner_->reset();
    }

private:
    std::unique_ptr<Inner> inner_;
    std::vector<std::pair<int32_t, int32_t>> * calls_;
    int * resets_;
};

// A head that attends to nothing: all-zero context vectors.
class ZeroHead final : public HeadAttention {
public:
    void forward(std::span<const float>, int32_t, int32_t, std::span<float> out) override {
        std::fill(out.begin(), out.end(), 0.0f);
    }
    void reset() override {}
};

// Replaces `tensor` of `model` by a copy whose values at `columns` of every row are NaN.
void poison_columns(Gpt2Model & model, std::span<const float> & tensor, size_t row_length,
                    std::vector<std::pair<size_t, size_t>> columns) {
    std::vector<float> copy(tensor.begin(), tensor.end());
    for (size_t row = 0; row < copy.size() / row_length; ++row)
        for (auto [begin, end] : columns)
            for (size_t c = begin; c < end; ++c) copy[row * row_length + c] = std::numeric_limits<float>::quiet_NaN();
    tensor = model.own(std::move(copy));
}

class AttentionSeam : public ::testing::Test {
protected:
    void SetUp() override {
        Gpt2Context ctx(model_);
        baseline_ = run(ctx);
    }
    const Gpt2Model model_ = seam_model();
    std::vector<std::vector<float>> baseline_;
};

TEST_F(AttentionSeam, ReplacedHeadGivesTheSameLogits) {
    Gpt2Context ctx(model_);
    std::vector<std::pair<int32_t, int32_t>> calls;
    int resets = 0;
    ctx.set_head_attention(1, 2, std::make_unique<Recording<HeadAttention, FloatHeadAttention>>(
                                     std::make_unique<FloatHeadAttention>(model_, 1, 2), &calls, &resets));
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);

    // Driven once per eval, with the positions in order.
    ASSERT_EQ(calls.size(), 11u);
    EXPECT_EQ(calls[0], std::make_pair(20, 0));
    for (size_t i = 1; i < calls.size(); ++i) EXPECT_EQ(calls[i], std::make_pair(1, static_cast<int32_t>(19 + i)));

    // reset() reaches it, and a second sequence gives the same logits.
    ctx.reset();
    EXPECT_EQ(resets, 1);
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST_F(AttentionSeam, ReplacedLayerGivesTheSameLogits) {
    Gpt2Context ctx(model_);
    std::vector<std::pair<int32_t, int32_t>> calls;
    int resets = 0;
    ctx.set_layer_attention(0, std::make_unique<Recording<LayerAttention, FloatLayerAttention>>(
                                   std::make_unique<FloatLayerAttention>(model_, 0), &calls, &resets));
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
    EXPECT_EQ(calls.size(), 11u);
    ctx.reset();
    EXPECT_EQ(resets, 1);
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST_F(AttentionSeam, SeveralHeadsInSeveralLayersAndALayerGiveTheSameLogits) {
    Gpt2Context ctx(model_);
    for (auto [layer, head] : {std::pair{0, 0}, {0, 3}, {2, 1}, {2, 2}})
        ctx.set_head_attention(layer, head, std::make_unique<FloatHeadAttention>(model_, layer, head));
    ctx.set_layer_attention(1, std::make_unique<FloatLayerAttention>(model_, 1));
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST_F(AttentionSeam, EveryHeadOfALayerReplacedGivesTheSameLogits) {
    Gpt2Context ctx(model_);
    for (int32_t head = 0; head < 4; ++head) ctx.set_head_attention(2, head, std::make_unique<FloatHeadAttention>(model_, 2, head));
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST_F(AttentionSeam, ReplacedPartsWeightsAreNeverRead) {
    // A copy of the model whose replaced head's q/k/v columns and replaced layer's attention
    // weights are NaN: any read of them would poison the logits.
    Gpt2Model poisoned = seam_model();
    const size_t n_embd = 128, head_dim = 32;
    const size_t head = 3;
    std::vector<std::pair<size_t, size_t>> head_columns;
    for (size_t third = 0; third < 3; ++third)
        head_columns.emplace_back(third * n_embd + head * head_dim, third * n_embd + (head + 1) * head_dim);
    poison_columns(poisoned, poisoned.layers[0].attn_w, 3 * n_embd, head_columns);
    poison_columns(poisoned, poisoned.layers[0].attn_b, 3 * n_embd, head_columns);
    poison_columns(poisoned, poisoned.layers[2].attn_w, 3 * n_embd, {{0, 3 * n_embd}});
    poison_columns(poisoned, poisoned.layers[2].attn_b, 3 * n_embd, {{0, 3 * n_embd}});
    poison_columns(poisoned, poisoned.layers[2].attn_proj_w, n_embd, {{0, n_embd}});
    poison_columns(poisoned, poisoned.layers[2].attn_proj_b, n_embd, {{0, n_embd}});

    {
        Gpt2Context ctx(poisoned); // sanity: the poison shows when nothing is replaced
        const std::vector<int32_t> tokens = seam_tokens();
        std::span<const float> logits = ctx.eval(std::span(tokens).first(3));
        EXPECT_TRUE(std::isnan(logits[0]));
    }
    Gpt2Context ctx(poisoned);
    // The replacements hold the real weights (the server's copy).
    ctx.set_head_attention(0, static_cast<int32_t>(head), std::make_unique<FloatHeadAttention>(model_, 0, static_cast<int32_t>(head)));
    ctx.set_layer_attention(2, std::make_unique<FloatLayerAttention>(model_, 2));
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST_F(AttentionSeam, DifferentReplacementChangesTheLogits) {
    {
        Gpt2Context ctx(model_);
        ctx.set_head_attention(1, 2, std::make_unique<ZeroHead>());
        EXPECT_GT(worst_error(run(ctx), baseline_), 1e-2);
    }
    {
        // The right computation on the wrong head.
        Gpt2Context ctx(model_);
        ctx.set_head_attention(1, 2, std::make_unique<FloatHeadAttention>(model_, 1, 1));
        EXPECT_GT(worst_error(run(ctx), baseline_), 1e-2);
    }
    {
        Gpt2Context ctx(model_);
        ctx.set_layer_attention(1, std::make_unique<FloatLayerAttention>(model_, 0));
        EXPECT_GT(worst_error(run(ctx), baseline_), 1e-2);
    }
}

TEST_F(AttentionSeam, RemovingAReplacementRestoresTheDefault) {
    Gpt2Context ctx(model_);
    ctx.set_head_attention(1, 2, std::make_unique<ZeroHead>());
    ctx.set_layer_attention(0, std::make_unique<FloatLayerAttention>(model_, 1));
    ctx.set_head_attention(1, 2, nullptr);
    ctx.set_layer_attention(0, nullptr);
    EXPECT_EQ(ctx.head_attention(1, 2), nullptr);
    EXPECT_EQ(ctx.layer_attention(0), nullptr);
    EXPECT_LE(worst_error(run(ctx), baseline_), kTolerance);
}

TEST(AttentionSeamReference, FloatHeadsAssembleTheFloatLayer) {
    // The layer's attention = c_proj over the heads' context vectors side by side.
    const Gpt2Model model = seam_model();
    const int32_t n = 6, n_embd = 128, head_dim = 32;
    std::vector<float> x(static_cast<size_t>(n) * n_embd);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));

    FloatLayerAttention layer(model, 1);
    std::vector<float> expected(x.size());
    layer.forward(x, n, 0, expected);
    EXPECT_EQ(layer.n_past(), n);

    std::vector<float> kqv(x.size()), head_out(static_cast<size_t>(n) * head_dim);
    for (int32_t h = 0; h < 4; ++h) {
        FloatHeadAttention head(model, 1, h);
        head.forward(x, n, 0, head_out);
        for (int32_t i = 0; i < n; ++i)
            std::copy_n(head_out.data() + i * head_dim, head_dim, kqv.data() + i * n_embd + h * head_dim);
    }
    const Gpt2Layer & l = model.layers[1];
    std::vector<float> got(x.size());
    for (int32_t i = 0; i < n; ++i)
        for (int32_t c = 0; c < n_embd; ++c) {
            double sum = l.attn_proj_b[static_cast<size_t>(c)];
            for (int32_t k = 0; k < n_embd; ++k)
                sum += static_cast<double>(kqv[static_cast<size_t>(i * n_embd + k)]) * l.attn_proj_w[static_cast<size_t>(k * n_embd + c)];
            got[static_cast<size_t>(i * n_embd + c)] = static_cast<float>(sum);
        }
    EXPECT_LE(relative_error(got, expected), kTolerance);
}

TEST(AttentionSeamReference, HeadAttentionMatchesANaiveComputation) {
    // softmax(q k^T / sqrt(d)) v with the causal mask, computed in double from the weights.
    const Gpt2Model model = seam_model();
    const int32_t n = 5, n_embd = 128, head_dim = 32, layer = 2, h = 1;
    std::vector<float> x(static_cast<size_t>(n) * n_embd);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i * i % 97));
    const HeadQkvWeights w = head_qkv_weights(model, layer, h);
    auto project = [&](const float * wm, const float * b, int32_t i, int32_t d) {
        double sum = b[d];
        for (int32_t k = 0; k < n_embd; ++k) sum += static_cast<double>(x[static_cast<size_t>(i * n_embd + k)]) * wm[k * w.ldw + d];
        return sum;
    };
    std::vector<float> expected(static_cast<size_t>(n) * head_dim);
    for (int32_t i = 0; i < n; ++i) {
        std::vector<double> p(static_cast<size_t>(i + 1));
        double max = -1e300, total = 0;
        for (int32_t j = 0; j <= i; ++j) {
            double s = 0;
            for (int32_t d = 0; d < head_dim; ++d) s += project(w.w_q, w.b_q, i, d) * project(w.w_k, w.b_k, j, d);
            p[static_cast<size_t>(j)] = s / std::sqrt(static_cast<double>(head_dim));
            max = std::max(max, p[static_cast<size_t>(j)]);
        }
        for (double & v : p) total += (v = std::exp(v - max));
        for (int32_t d = 0; d < head_dim; ++d) {
            double sum = 0;
            for (int32_t j = 0; j <= i; ++j) sum += p[static_cast<size_t>(j)] / total * project(w.w_v, w.b_v, j, d);
            expected[static_cast<size_t>(i * head_dim + d)] = static_cast<float>(sum);
        }
    }
    // In two calls: a prefill of 3 positions, then 2 more from the head's own KV cache.
    FloatHeadAttention head(model, layer, h);
    std::vector<float> got(expected.size());
    head.forward(std::span<const float>(x).first(3 * n_embd), 3, 0, std::span(got).first(3 * head_dim));
    head.forward(std::span<const float>(x).subspan(3 * n_embd), 2, 3, std::span(got).subspan(3 * head_dim));
    EXPECT_LE(relative_error(got, expected), kTolerance);
}

} // namespace
