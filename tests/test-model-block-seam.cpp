// The block seam and the folded model: replacing runs of blocks by their float reference leaves
// the logits unchanged through prefill and decode (with and without ln_f, from the MLP half of a
// layer), the default path never reads the replaced blocks' weights (NaN weights), a folded
// model's blocks (LayerNorm gains and biases in the next linear layer, centred c_proj outputs)
// give the original logits, and bad ranges are refused.
#include "common/error.h"
#include "model/block_range.h"
#include "model/gpt2_fold.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

namespace {

using namespace fhegpt::model;

Gpt2Model block_model() {
    Gpt2HParams hp;
    hp.n_vocab = 97;
    hp.n_ctx = 24;
    hp.n_embd = 64;
    hp.n_head = 2;
    hp.n_layer = 3;
    Gpt2Model m = make_random_gpt2_model(hp, 7, 0.1f);
    // LayerNorm gains and biases away from 1 and 0, so that folding them is tested.
    std::vector<float> g(64), b(64);
    for (int32_t k = 0; k < 64; ++k) {
        g[size_t(k)] = 0.5f + 0.02f * float(k);
        b[size_t(k)] = 0.01f * float(k % 7) - 0.03f;
    }
    for (Gpt2Layer & l : m.layers) {
        l.ln_1_g = l.ln_2_g = m.own(g);
        l.ln_1_b = l.ln_2_b = m.own(b);
    }
    return m;
}

// Logits of a prefill of 12 tokens (all positions), then of 4 single-token decodes.
std::vector<float> run(Gpt2Context & ctx) {
    std::vector<int32_t> tokens(16);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 31 + 5) % 97);
    std::vector<float> out;
    const auto all = ctx.eval(std::span(tokens).first(12), Logits::all);
    out.assign(all.begin(), all.end());
    for (size_t i = 12; i < tokens.size(); ++i) {
        const auto logits = ctx.eval(std::span(tokens).subspan(i, 1));
        out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
}

double relative_error(const std::vector<float> & a, const std::vector<float> & b) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - b[i]));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

const BlockRangeSpec kSpecs[] = {{0, 0, false, false}, {0, 2, false, true}, {1, 2, true, false}, {2, 2, true, true},
                                 {0, 1, false, false}};

TEST(BlockSeam, FloatReplacementGivesTheSameLogits) {
    const Gpt2Model model = block_model();
    Gpt2Context plain(model);
    const std::vector<float> baseline = run(plain);
    for (const BlockRangeSpec & spec : kSpecs) {
        Gpt2Context ctx(model);
        ctx.set_block_range(spec, std::make_unique<FloatBlockRange>(model, spec));
        EXPECT_LT(relative_error(run(ctx), baseline), 1e-5) << spec.first << ".." << spec.last;
        ctx.reset();
        EXPECT_LT(relative_error(run(ctx), baseline), 1e-5) << "after reset";
    }
}

TEST(BlockSeam, FoldedBlocksGiveTheSameLogits) {
    // The folded blocks return a centred residual (and ln_f's output); the original model's
    // LayerNorms downstream do not see the difference.
    const Gpt2Model model = block_model();
    const Gpt2Model folded = fold_layer_norms(model);
    Gpt2Context plain(model);
    const std::vector<float> baseline = run(plain);
    for (const BlockRangeSpec & spec : kSpecs) {
        Gpt2Context ctx(model);
        ctx.set_block_range(spec, std::make_unique<FloatBlockRange>(folded, spec));
        EXPECT_LT(relative_error(run(ctx), baseline), 1e-4) << spec.first << ".." << spec.last;
    }
    // The folded model alone is the same model too, and its c_proj outputs sum to zero.
    Gpt2Context ctx(folded);
    EXPECT_LT(relative_error(run(ctx), baseline), 1e-4);
    for (const Gpt2Layer & l : folded.layers)
        for (size_t r = 0; r < 64; ++r) {
            double sum = 0;
            for (size_t k = 0; k < 64; ++k) sum += l.attn_proj_w[r * 64 + k];
            ASSERT_LT(std::abs(sum), 1e-5);
        }
}

TEST(BlockSeam, DefaultPathNeverReadsReplacedBlocks) {
    const Gpt2Model model = block_model();
    Gpt2Context plain(model);
    const std::vector<float> baseline = run(plain);
    const BlockRangeSpec spec{1, 2, true, true};
    // Layer 1's MLP half, layer 2 and ln_f are NaN where the context looks; the replacement
    // reads the real weights.
    Gpt2Model poisoned = block_model();
    const auto nan = [&](std::span<const float> & t) {
        t = poisoned.own(std::vector<float>(t.size(), std::numeric_limits<float>::quiet_NaN()));
    };
    Gpt2Layer & l1 = poisoned.layers[1];
    for (std::span<const float> * t : {&l1.ln_2_g, &l1.ln_2_b, &l1.fc_w, &l1.fc_b, &l1.mlp_proj_w, &l1.mlp_proj_b}) nan(*t);
    Gpt2Layer & l2 = poisoned.layers[2];
    for (std::span<const float> * t : {&l2.ln_1_g, &l2.ln_1_b, &l2.attn_w, &l2.attn_b, &l2.attn_proj_w, &l2.attn_proj_b,
                                       &l2.ln_2_g, &l2.ln_2_b, &l2.fc_w, &l2.fc_b, &l2.mlp_proj_w, &l2.mlp_proj_b})
        nan(*t);
    nan(poisoned.ln_f_g);
    nan(poisoned.ln_f_b);
    Gpt2Context ctx(poisoned);
    ctx.set_block_range(spec, std::make_unique<FloatBlockRange>(model, spec));
    const std::vector<float> logits = run(ctx);
    EXPECT_LT(relative_error(logits, baseline), 1e-5);
    // Without the replacement the NaNs show.
    Gpt2Context broken(poisoned);
    const std::vector<float> bad = run(broken);
    EXPECT_TRUE(std::any_of(bad.begin(), bad.end(), [](float v) { return std::isnan(v); }));
}

TEST(BlockSeam, RefusesBadRanges) {
    const Gpt2Model model = block_model();
    EXPECT_THROW(FloatBlockRange(model, {2, 1, false, false}), fhegpt::Error);
    EXPECT_THROW(FloatBlockRange(model, {0, 3, false, false}), fhegpt::Error);
    EXPECT_THROW(FloatBlockRange(model, {0, 1, false, true}), fhegpt::Error);
}

} // namespace
