// Generation (stop conditions, streaming, statistics), perplexity windows, and the
// `fhegpt generate` / `fhegpt perplexity` commands end to end on the reference checkpoint.
#include "common/error.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "reference/reference_checkpoints.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

using namespace fhegpt::model;
using fhegpt::test::ReferenceCheckpoints;

Gpt2HParams gen_hparams() {
    Gpt2HParams hp;
    hp.n_vocab = 200;
    hp.n_ctx = 32;
    hp.n_embd = 64;
    hp.n_head = 4;
    hp.n_layer = 2;
    return hp;
}

const std::vector<int32_t> kPrompt = {5, 17, 99, 3, 150};

// Greedy continuation computed by hand: argmax, eval one token, repeat.
std::vector<int32_t> greedy_by_hand(const Gpt2Model & model, std::vector<int32_t> tokens, int n) {
    Gpt2Context ctx(model);
    std::vector<int32_t> out;
    std::span<const float> logits = ctx.eval(tokens);
    for (int i = 0; i < n; ++i) {
        const int32_t next = argmax(logits);
        out.push_back(next);
        if (i + 1 < n) logits = ctx.eval({&next, 1});
    }
    return out;
}

TEST(Generate, GreedyMatchesArgmaxByHand) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 1, 0.2f);
    Gpt2Context ctx(model);
    GenerateParams params;
    params.n_predict = 12;
    std::vector<int32_t> streamed;
    const GenerateResult result = generate(ctx, kPrompt, params, [&](int32_t t) {
        streamed.push_back(t);
        return true;
    });
    EXPECT_EQ(result.tokens, greedy_by_hand(model, kPrompt, 12));
    EXPECT_EQ(streamed, result.tokens);
    EXPECT_EQ(result.stop, StopReason::length);
    EXPECT_EQ(result.n_prompt, 5);
    EXPECT_EQ(result.n_decode, 11); // the first token comes from the prefill, the last is not evaluated
    EXPECT_GT(result.prefill_tokens_per_second(), 0);
    EXPECT_GT(result.decode_tokens_per_second(), 0);
    EXPECT_EQ(ctx.n_past(), 5 + 11);

    // generate() resets the context: a second call gives the same tokens.
    EXPECT_EQ(generate(ctx, kPrompt, params).tokens, result.tokens);
}

TEST(Generate, StopsAtTheStopToken) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 1, 0.2f);
    const std::vector<int32_t> greedy = greedy_by_hand(model, kPrompt, 12);
    // The first greedy token that did not occur before it.
    size_t stop_at = 1;
    while (std::find(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(stop_at), greedy[stop_at]) !=
           greedy.begin() + static_cast<std::ptrdiff_t>(stop_at))
        ++stop_at;
    ASSERT_LT(stop_at, greedy.size());

    Gpt2Context ctx(model);
    GenerateParams params;
    params.n_predict = 12;
    params.stop_token = greedy[stop_at];
    int streamed = 0;
    const GenerateResult result = generate(ctx, kPrompt, params, [&](int32_t) { return ++streamed, true; });
    EXPECT_EQ(result.stop, StopReason::stop_token);
    EXPECT_EQ(result.tokens, std::vector<int32_t>(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(stop_at)));
    EXPECT_EQ(streamed, static_cast<int>(stop_at)); // the stop token is not streamed
}

TEST(Generate, StopsWhenTheCallbackSaysSo) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 2, 0.2f);
    Gpt2Context ctx(model);
    GenerateParams params;
    params.n_predict = 20;
    int calls = 0;
    const GenerateResult result = generate(ctx, kPrompt, params, [&](int32_t) { return ++calls < 3; });
    EXPECT_EQ(result.stop, StopReason::callback);
    EXPECT_EQ(result.tokens.size(), 3u);
}

TEST(Generate, StopsWhenTheContextIsFull) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 3, 0.2f);
    Gpt2ContextParams cp;
    cp.n_ctx = 12;
    Gpt2Context ctx(model, cp);
    GenerateParams params;
    params.n_predict = 50;
    const GenerateResult result = generate(ctx, kPrompt, params);
    EXPECT_EQ(result.stop, StopReason::context_full);
    // The prompt takes 5 positions and 7 generated tokens the other 7; the 8th, chosen from the
    // logits of position 11, needs no position of its own.
    EXPECT_EQ(result.tokens.size(), 8u);
    EXPECT_EQ(ctx.n_past(), 12);
}

TEST(Generate, SampledGenerationIsReproducible) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 4, 0.2f);
    Gpt2Context ctx(model);
    GenerateParams params;
    params.n_predict = 16;
    params.sampling.temperature = 1.0f;
    params.sampling.top_k = 20;
    params.sampling.top_p = 0.9f;
    params.sampling.seed = 77;
    const std::vector<int32_t> a = generate(ctx, kPrompt, params).tokens;
    const std::vector<int32_t> b = generate(ctx, kPrompt, params).tokens;
    params.sampling.seed = 78;
    const std::vector<int32_t> c = generate(ctx, kPrompt, params).tokens;
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

TEST(Generate, RejectsBadPrompts) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 5);
    Gpt2Context ctx(model);
    EXPECT_THROW(generate(ctx, {}, {}), fhegpt::Error);
    const std::vector<int32_t> long_prompt(33, 1);
    EXPECT_THROW(generate(ctx, long_prompt, {}), fhegpt::Error);
    const std::vector<int32_t> full_prompt(32, 1); // fills the context: one token can still come out
    GenerateParams params;
    params.n_predict = 4;
    const GenerateResult result = generate(ctx, full_prompt, params);
    EXPECT_EQ(result.tokens.size(), 1u);
    EXPECT_EQ(result.stop, StopReason::context_full);
}

TEST(Perplexity, WindowsAreIndependentAndCoverTheText) {
    const Gpt2Model model = make_random_gpt2_model(gen_hparams(), 6, 0.2f);
    std::vector<int32_t> tokens(45);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + 11) % 200);
    const size_t n_vocab = 200;

    // By hand: windows [0,16), [16,32), [32,45); each from an empty context.
    double nll = 0;
    int64_t predicted = 0;
    Gpt2Context ctx(model);
    std::vector<float> window_logits; // every token's row, window by window
    for (size_t begin = 0; begin < tokens.size(); begin += 16) {
        const size_t count = std::min<size_t>(16, tokens.size() - begin);
        ctx.reset();
        std::span<const float> logits = ctx.eval(std::span(tokens).subspan(begin, count), Logits::all);
        window_logits.insert(window_logits.end(), logits.begin(), logits.begin() + std::ptrdiff_t(count * n_vocab));
        for (size_t i = 0; i + 1 < count; ++i) {
            const float * row = logits.data() + i * n_vocab;
            double sum = 0;
            for (size_t j = 0; j < n_vocab; ++j) sum += std::exp(static_cast<double>(row[j]));
            nll += std::log(sum) - row[tokens[begin + i + 1]];
            ++predicted;
        }
    }
    Gpt2ContextParams small_batches;
    small_batches.n_batch = 5; // windows evaluated in several chunks
    Gpt2Context chunked(model, small_batches);
    int progress_calls = 0;
    std::vector<float> reported_logits;
    const PerplexityResult result = evaluate_perplexity(
        chunked, tokens, 16,
        [&](int32_t done, int32_t total, const PerplexityResult &) {
            EXPECT_EQ(done, ++progress_calls);
            EXPECT_EQ(total, 3);
        },
        [&](std::span<const float> rows) { reported_logits.insert(reported_logits.end(), rows.begin(), rows.end()); });
    // The logits it scored with: every token's row in text order, each window's last included.
    ASSERT_EQ(reported_logits.size(), window_logits.size());
    float worst = 0;
    for (size_t k = 0; k < window_logits.size(); ++k) worst = std::max(worst, std::fabs(reported_logits[k] - window_logits[k]));
    EXPECT_LT(worst, 1e-4f);
    EXPECT_EQ(result.n_windows, 3);
    EXPECT_EQ(result.n_predicted, predicted);
    EXPECT_NEAR(result.nll_sum, nll, 1e-6 * std::abs(nll) + 1e-4);
    EXPECT_NEAR(result.perplexity(), std::exp(nll / static_cast<double>(predicted)), 1e-5 * result.perplexity());

    // A trailing single token predicts nothing and is dropped.
    const PerplexityResult trailing = evaluate_perplexity(ctx, std::span(tokens).first(33), 16);
    EXPECT_EQ(trailing.n_windows, 2);
    EXPECT_EQ(trailing.n_predicted, 30);

    EXPECT_THROW(evaluate_perplexity(ctx, std::span(tokens).first(1), 16), fhegpt::Error);
    EXPECT_THROW(evaluate_perplexity(ctx, tokens, 1), fhegpt::Error);
    EXPECT_THROW(evaluate_perplexity(ctx, tokens, 33), fhegpt::Error);
}

// ---- the commands -----------------------------------------------------------------------------

struct CommandResult {
    int exit_code;
    std::string out;
    std::string err;
};

CommandResult run_command(const std::string & args, const std::filesystem::path & scratch) {
    const std::string out = (scratch / "stdout.txt").string(), err = (scratch / "stderr.txt").string();
    const std::string command = std::string(FHEGPT_BINARY) + " " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(command.c_str());
    auto slurp = [](const std::string & path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::string shell_quoted(const std::string & text) { return "'" + text + "'"; }

class Commands : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ref_ = ReferenceCheckpoints::create(why_not_); }
    static void TearDownTestSuite() { ref_.reset(); }
    void SetUp() override {
        if (!ref_) GTEST_SKIP() << why_not_;
    }
    static inline std::optional<ReferenceCheckpoints> ref_;
    static inline std::string why_not_;
};

TEST_F(Commands, GenerateStreamsTheGreedyContinuation) {
    const std::string dir = ref_->model_dir("f32");
    const Gpt2Model model = load_gpt2_model(dir);
    const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(dir);
    const std::string prompt = "It was the best of times";
    Gpt2Context ctx(model);
    GenerateParams params;
    params.n_predict = 10;
    params.stop_token = tokenizer.eot_token();
    const GenerateResult expected = generate(ctx, tokenizer.encode(prompt), params);

    const CommandResult r = run_command("generate -m " + shell_quoted(dir) + " -p " + shell_quoted(prompt) + " -n 10 --temperature 0", ref_->dir());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, tokenizer.decode(expected.tokens) + "\n");
    EXPECT_NE(r.err.find("prompt: " + std::to_string(expected.n_prompt) + " tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("decode"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;

    // Sampling with a seed is reproducible from the command line too.
    const std::string sampled = "generate -m " + shell_quoted(dir) + " -p " + shell_quoted(prompt) + " -n 10 --temperature 1 --seed 5";
    const CommandResult a = run_command(sampled, ref_->dir());
    const CommandResult b = run_command(sampled, ref_->dir());
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
}

TEST_F(Commands, PerplexityPrintsTheNumberLast) {
    const std::string dir = ref_->model_dir("f32");
    const Gpt2Model model = load_gpt2_model(dir);
    const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(dir);
    const std::string text =
        "It was the best of times, it was the worst of times, it was the age of wisdom. There were a king with a "
        "large jaw and a queen with a plain face, on the throne of England; and the spring of hope.";
    const std::filesystem::path file = ref_->dir() / "text.txt";
    std::ofstream(file) << text;

    for (int window : {64, 16}) {
        Gpt2Context ctx(model);
        std::vector<float> logits;
        const double expected = evaluate_perplexity(ctx, tokenizer.encode(text), window, {}, [&](std::span<const float> rows) {
                                    logits.insert(logits.end(), rows.begin(), rows.end());
                                }).perplexity();
        const std::filesystem::path logits_file = ref_->dir() / "logits.f32";
        const CommandResult r = run_command("perplexity -m " + shell_quoted(dir) + " -f " + shell_quoted(file.string()) +
                                                " --ctx " + std::to_string(window) + " --logits " + shell_quoted(logits_file.string()),
                                            ref_->dir());
        ASSERT_EQ(r.exit_code, 0) << r.err;
        // --logits: the rows it scored with, float32, in text order.
        std::vector<float> written(logits.size() + 1);
        std::ifstream in(logits_file, std::ios::binary);
        in.read(reinterpret_cast<char *>(written.data()), std::streamsize(written.size() * sizeof(float)));
        ASSERT_EQ(size_t(in.gcount()), logits.size() * sizeof(float)) << "window " << window;
        written.pop_back();
        float worst = 0;
        for (size_t k = 0; k < logits.size(); ++k) worst = std::max(worst, std::fabs(written[k] - logits[k]));
        EXPECT_LT(worst, 1e-4f) << "window " << window;
        std::string last = r.out.substr(0, r.out.size() - 1); // drop the final newline
        last = last.substr(last.find_last_of('\n') + 1);
        size_t used = 0;
        const double printed = std::stod(last, &used);
        EXPECT_EQ(used, last.size()) << "last line: '" << last << "'";
        EXPECT_NEAR(printed, expected, 1e-5 * expected) << "window " << window;
        EXPECT_NE(r.err.find("perplexity"), std::string::npos); // progress on stderr
    }
}

TEST_F(Commands, ReportErrorsClearly) {
    const std::string dir = ref_->model_dir("f32");
    const CommandResult missing = run_command("generate -m /nonexistent/model -p hi", ref_->dir());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("fhegpt: error: "), std::string::npos) << missing.err;

    std::string long_prompt;
    for (int i = 0; i < 100; ++i) long_prompt += "it was the age ";
    const CommandResult too_long = run_command("generate -m " + shell_quoted(dir) + " -p " + shell_quoted(long_prompt), ref_->dir());
    EXPECT_EQ(too_long.exit_code, 1);
    EXPECT_NE(too_long.err.find("context"), std::string::npos) << too_long.err;

    for (const char * bad : {"--top-p 0", "--top-p 1.5", "--temperature -1", "-n -2", "--top-k x", "--bogus"}) {
        const CommandResult r = run_command("generate -m " + shell_quoted(dir) + " " + bad, ref_->dir());
        EXPECT_NE(r.exit_code, 0) << bad;
        EXPECT_FALSE(r.err.empty()) << bad;
        EXPECT_EQ(r.err.find("internal error"), std::string::npos) << bad << ": " << r.err;
    }
    const CommandResult no_file = run_command("perplexity -m " + shell_quoted(dir) + " -f /nonexistent.txt", ref_->dir());
    EXPECT_EQ(no_file.exit_code, 1);
    EXPECT_NE(no_file.err.find("/nonexistent.txt"), std::string::npos) << no_file.err;
    const CommandResult big_ctx = run_command("perplexity -m " + shell_quoted(dir) + " -f /dev/null --ctx 65", ref_->dir());
    EXPECT_EQ(big_ctx.exit_code, 1);
    const std::filesystem::path text = ref_->dir() / "short.txt";
    std::ofstream(text) << "it was the age of wisdom";
    const CommandResult bad_logits = run_command(
        "perplexity -m " + shell_quoted(dir) + " -f " + shell_quoted(text.string()) + " --logits /nonexistent/logits.f32",
        ref_->dir());
    EXPECT_EQ(bad_logits.exit_code, 1);
    EXPECT_NE(bad_logits.err.find("/nonexistent/logits.f32: cannot create"), std::string::npos) << bad_logits.err;

    const CommandResult help = run_command("generate --help", ref_->dir());
    EXPECT_EQ(help.exit_code, 0);
    for (const char * option : {"--model", "--prompt", "--n-predict", "--temperature", "--top-k", "--top-p", "--seed", "--threads"})
        EXPECT_NE(help.out.find(option), std::string::npos) << option;
    const CommandResult ppl_help = run_command("perplexity --help", ref_->dir());
    for (const char * option : {"--model", "--file", "--ctx", "--threads", "--logits"})
        EXPECT_NE(ppl_help.out.find(option), std::string::npos) << option;
}

} // namespace
