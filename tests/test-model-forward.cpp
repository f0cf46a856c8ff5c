// The clear forward pass against the independent PyTorch reference (tests/reference), and its
// own consistency: prefill vs token-by-token decode, batch splitting, threads, reset, errors.
//
// Relative error of a row of logits a against the reference b: max_j |a_j - b_j| / max_j |b_j|.
#include "common/error.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "reference/reference_checkpoints.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace fhegpt::model;
using fhegpt::test::ReferenceCheckpoints;

constexpr double kReferenceTolerance = 1e-4;

double relative_error(std::span<const float> a, std::span<const double> b) {
    EXPECT_EQ(a.size(), b.size());
    double diff = 0, scale = 0;
    for (size_t j = 0; j < std::min(a.size(), b.size()); ++j) {
        diff = std::max(diff, std::abs(static_cast<double>(a[j]) - b[j]));
        scale = std::max(scale, std::abs(b[j]));
    }
    return diff / scale;
}

double relative_error(std::span<const float> a, std::span<const float> b) {
    std::vector<double> wide(b.begin(), b.end());
    return relative_error(a, std::span<const double>(wide));
}

// Runs the reference script once per test program.
class ReferenceForward : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        ref_ = ReferenceCheckpoints::create(why_not_);
    }
    static void TearDownTestSuite() { ref_.reset(); }

    void SetUp() override {
        if (!ref_) GTEST_SKIP() << why_not_;
    }

    // Checks prefill, prefill split in batches, and prefill + token-by-token decode.
    void check_variant(const std::string & variant) {
        const Gpt2Model model = load_gpt2_model(ref_->model_dir(variant));
        const std::vector<int32_t> & tokens = ref_->tokens();
        const std::vector<double> expected = ref_->logits(variant);
        const size_t n_vocab = static_cast<size_t>(model.hparams.n_vocab);
        const size_t n = tokens.size();
        ASSERT_EQ(expected.size(), n * n_vocab);
        auto expected_row = [&](size_t i) { return std::span<const double>(expected).subspan(i * n_vocab, n_vocab); };

        Gpt2Context ctx(model);
        ASSERT_EQ(ctx.n_ctx(), static_cast<int32_t>(n)); // the sequence fills the context

        // Full prefill, every position.
        std::span<const float> all = ctx.eval(tokens, Logits::all);
        ASSERT_EQ(all.size(), n * n_vocab);
        double worst = 0;
        for (size_t i = 0; i < n; ++i) worst = std::max(worst, relative_error(all.subspan(i * n_vocab, n_vocab), expected_row(i)));
        EXPECT_LE(worst, kReferenceTolerance) << variant << ": all-position prefill";
        EXPECT_EQ(ctx.n_past(), static_cast<int32_t>(n));

        // Full prefill, last position only.
        ctx.reset();
        std::span<const float> last = ctx.eval(tokens);
        EXPECT_LE(relative_error(last, expected_row(n - 1)), kReferenceTolerance) << variant << ": last-position prefill";

        // Prefill of a prefix, then one token at a time from the KV cache.
        for (size_t prefix : {size_t{1}, size_t{13}}) {
            ctx.reset();
            std::span<const float> logits = ctx.eval(std::span(tokens).first(prefix));
            worst = relative_error(logits, expected_row(prefix - 1));
            for (size_t i = prefix; i < n; ++i) {
                logits = ctx.eval(std::span(tokens).subspan(i, 1));
                worst = std::max(worst, relative_error(logits, expected_row(i)));
            }
            EXPECT_LE(worst, kReferenceTolerance) << variant << ": prefill of " << prefix << " then decode";
        }

        // Batches of 7 tokens (the last one shorter), several batches per eval.
        Gpt2ContextParams params;
        params.n_batch = 7;
        Gpt2Context batched(model, params);
        std::span<const float> first = batched.eval(std::span(tokens).first(30), Logits::all);
        worst = 0;
        for (size_t i = 0; i < 30; ++i) worst = std::max(worst, relative_error(first.subspan(i * n_vocab, n_vocab), expected_row(i)));
        std::span<const float> rest = batched.eval(std::span(tokens).subspan(30), Logits::all);
        for (size_t i = 30; i < n; ++i)
            worst = std::max(worst, relative_error(rest.subspan((i - 30) * n_vocab, n_vocab), expected_row(i)));
        EXPECT_LE(worst, kReferenceTolerance) << variant << ": batches of 7";
    }

    static inline std::optional<ReferenceCheckpoints> ref_;
    static inline std::string why_not_;
};

TEST_F(ReferenceForward, F32MatchesPyTorch) { check_variant("f32"); }
TEST_F(ReferenceForward, F16MatchesPyTorch) { check_variant("f16"); }
TEST_F(ReferenceForward, BF16MatchesPyTorch) { check_variant("bf16"); }
TEST_F(ReferenceForward, UntiedLmHeadMatchesPyTorch) { check_variant("f32_untied"); }

TEST_F(ReferenceForward, PerplexityMatchesReferenceLogits) {
    const Gpt2Model model = load_gpt2_model(ref_->model_dir("f32"));
    const std::vector<int32_t> & tokens = ref_->tokens();
    const std::vector<double> expected = ref_->logits("f32");
    const size_t n_vocab = static_cast<size_t>(model.hparams.n_vocab);

    // One window of the whole sequence: every token but the first, from the reference logits.
    double nll = 0;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const double * row = expected.data() + i * n_vocab;
        const double max = *std::max_element(row, row + n_vocab);
        double sum = 0;
        for (size_t j = 0; j < n_vocab; ++j) sum += std::exp(row[j] - max);
        nll += max + std::log(sum) - row[tokens[i + 1]];
    }
    const double expected_ppl = std::exp(nll / static_cast<double>(tokens.size() - 1));

    Gpt2Context ctx(model);
    const PerplexityResult result = evaluate_perplexity(ctx, tokens, ctx.n_ctx());
    EXPECT_EQ(result.n_predicted, static_cast<int64_t>(tokens.size() - 1));
    EXPECT_EQ(result.n_windows, 1);
    EXPECT_NEAR(result.perplexity(), expected_ppl, 1e-4 * expected_ppl);
}

// ---- consistency on random models (no Python needed) ----------------------------------------

Gpt2HParams small_hparams() {
    Gpt2HParams hp;
    hp.n_vocab = 300;
    hp.n_ctx = 48;
    hp.n_embd = 64;
    hp.n_head = 4;
    hp.n_layer = 2;
    return hp;
}

std::vector<int32_t> some_tokens(size_t count, int32_t n_vocab) {
    std::vector<int32_t> tokens(count);
    for (size_t i = 0; i < count; ++i) tokens[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(n_vocab));
    return tokens;
}

std::vector<float> copy_of(std::span<const float> values) { return {values.begin(), values.end()}; }

TEST(Forward, DecodeMatchesPrefill) {
    const Gpt2Model model = make_random_gpt2_model(small_hparams(), 1, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(40, model.hparams.n_vocab);
    const size_t n_vocab = static_cast<size_t>(model.hparams.n_vocab);
    Gpt2Context ctx(model);
    const std::vector<float> full = copy_of(ctx.eval(tokens, Logits::all));
    ASSERT_EQ(full.size(), tokens.size() * n_vocab);
    ctx.reset();
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::span<const float> row = ctx.eval(std::span(tokens).subspan(i, 1));
        EXPECT_LE(relative_error(row, std::span<const float>(full).subspan(i * n_vocab, n_vocab)), 1e-5) << "position " << i;
    }
}

TEST(Forward, LastLogitsAreTheLastRowOfAll) {
    const Gpt2Model model = make_random_gpt2_model(small_hparams(), 2, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(17, model.hparams.n_vocab);
    const size_t n_vocab = static_cast<size_t>(model.hparams.n_vocab);
    Gpt2Context ctx(model);
    const std::vector<float> all = copy_of(ctx.eval(tokens, Logits::all));
    ctx.reset();
    const std::vector<float> last = copy_of(ctx.eval(tokens, Logits::last));
    ASSERT_EQ(last.size(), n_vocab);
    EXPECT_LE(relative_error(last, std::span<const float>(all).subspan((tokens.size() - 1) * n_vocab)), 1e-6);
}

TEST(Forward, ResetReproducesExactly) {
    const Gpt2Model model = make_random_gpt2_model(small_hparams(), 3, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(20, model.hparams.n_vocab);
    Gpt2Context ctx(model);
    const std::vector<float> first = copy_of(ctx.eval(tokens));
    ctx.eval(std::span(tokens).first(5)); // more state to forget
    ctx.reset();
    EXPECT_EQ(ctx.n_past(), 0);
    EXPECT_EQ(copy_of(ctx.eval(tokens)), first);
}

TEST(Forward, ThreadCountDoesNotChangeTheResult) {
    Gpt2HParams hp = small_hparams();
    hp.n_embd = 128; // large enough that the products and the heads are split over threads
    hp.n_ctx = 128;
    const Gpt2Model model = make_random_gpt2_model(hp, 4, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(100, hp.n_vocab);
    std::vector<std::vector<float>> results;
    for (int32_t threads : {1, 2, 3}) {
        Gpt2ContextParams params;
        params.n_threads = threads;
        Gpt2Context ctx(model, params);
        // With 3 threads, also with a replaced head: the parallel heads skip it.
        if (threads == 3) ctx.set_head_attention(1, 2, std::make_unique<FloatHeadAttention>(model, 1, 2));
        results.push_back(copy_of(ctx.eval(tokens, Logits::all)));
    }
    EXPECT_LE(relative_error(results[1], results[0]), 1e-5);
    EXPECT_LE(relative_error(results[2], results[0]), 1e-5);
}

TEST(Forward, RandomModelIsReproducibleAndSeeded) {
    const Gpt2Model a = make_random_gpt2_model(small_hparams(), 7);
    const Gpt2Model b = make_random_gpt2_model(small_hparams(), 7);
    const Gpt2Model c = make_random_gpt2_model(small_hparams(), 8);
    EXPECT_TRUE(std::equal(a.wte.begin(), a.wte.end(), b.wte.begin()));
    EXPECT_TRUE(std::equal(a.layers[1].fc_w.begin(), a.layers[1].fc_w.end(), b.layers[1].fc_w.begin()));
    EXPECT_FALSE(std::equal(a.wte.begin(), a.wte.end(), c.wte.begin()));
    EXPECT_EQ(a.lm_head.data(), a.wte.data()); // tied
    EXPECT_EQ(a.layers[0].ln_1_g[5], 1.0f);
    double sum = 0, sq = 0;
    for (float w : a.layers[0].attn_w) {
        sum += w;
        sq += static_cast<double>(w) * w;
    }
    const double n = static_cast<double>(a.layers[0].attn_w.size());
    EXPECT_NEAR(sum / n, 0.0, 0.002);
    EXPECT_NEAR(std::sqrt(sq / n), 0.02, 0.001);
}

TEST(Forward, RejectsBadInput) {
    const Gpt2Model model = make_random_gpt2_model(small_hparams(), 5);
    Gpt2ContextParams params;
    params.n_ctx = 10;
    Gpt2Context ctx(model, params);
    EXPECT_EQ(ctx.n_ctx(), 10);
    EXPECT_THROW(ctx.eval({}), fhegpt::Error);
    const std::vector<int32_t> bad = {1, 2, 300};
    EXPECT_THROW(ctx.eval(bad), fhegpt::Error);
    const std::vector<int32_t> negative = {-1};
    EXPECT_THROW(ctx.eval(negative), fhegpt::Error);
    EXPECT_EQ(ctx.n_past(), 0); // nothing was evaluated
    const std::vector<int32_t> eleven = some_tokens(11, 300);
    EXPECT_THROW(ctx.eval(eleven), fhegpt::Error);
    ctx.eval(std::span(eleven).first(10));
    EXPECT_THROW(ctx.eval(std::span(eleven).first(1)), fhegpt::Error);

    params.n_ctx = 49; // the model has 48 positions
    EXPECT_THROW(Gpt2Context(model, params), fhegpt::Error);
    Gpt2Model relu = make_random_gpt2_model(small_hparams(), 5);
    relu.hparams.activation_function = "relu";
    EXPECT_THROW(Gpt2Context(relu, {}), fhegpt::Error);
}

TEST(Forward, TensorCallbackReportsEveryNamedValue) {
    const Gpt2Model model = make_random_gpt2_model(small_hparams(), 6, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(9, model.hparams.n_vocab);
    Gpt2Context ctx(model);
    std::map<std::string, int> seen;
    std::vector<float> last_l_out;
    ctx.set_tensor_callback([&](const Gpt2Tensor & t) {
        seen[std::string(t.name) + "." + std::to_string(t.layer)]++;
        EXPECT_EQ(t.data.size(), static_cast<size_t>(t.rows) * t.cols) << t.name;
        if (std::string(t.name) == "l_out" && t.layer == 1) last_l_out.assign(t.data.begin(), t.data.end());
        if (std::string(t.name) == "result_output") {
            EXPECT_EQ(t.rows, 1);
            EXPECT_EQ(t.n_past, 8); // the last position only
        }
    });
    ctx.eval(tokens);
    for (const char * name : {"attn_norm", "kqv_out", "attn_out", "ffn_inp", "ffn_norm", "ffn_act", "ffn_out", "l_out"})
        for (int layer = 0; layer < 2; ++layer) EXPECT_EQ((seen[std::string(name) + "." + std::to_string(layer)]), 1) << name;
    EXPECT_EQ(seen["inp_embd.-1"], 1);
    EXPECT_EQ(seen["result_norm.-1"], 1);
    EXPECT_EQ(seen["result_output.-1"], 1);
    EXPECT_EQ(last_l_out.size(), tokens.size() * 64);
}

TEST(Forward, GeluErfModelRuns) {
    Gpt2Model model = make_random_gpt2_model(small_hparams(), 9, 0.1f);
    const std::vector<int32_t> tokens = some_tokens(5, model.hparams.n_vocab);
    Gpt2Context tanh_ctx(model);
    const std::vector<float> tanh_logits = copy_of(tanh_ctx.eval(tokens));
    model.hparams.activation_function = "gelu";
    Gpt2Context erf_ctx(model);
    const std::vector<float> erf_logits = copy_of(erf_ctx.eval(tokens));
    // The two GELUs differ by < 1e-3: close, not equal.
    EXPECT_GT(relative_error(erf_logits, tanh_logits), 0.0);
    EXPECT_LT(relative_error(erf_logits, tanh_logits), 1e-2);
}

} // namespace
