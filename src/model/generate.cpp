#include "model/generate.h"

#include "common/error.h"
#include "model/gpt2_blocks.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace fhegpt::model {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

} // namespace

const char * stop_reason_name(StopReason reason) {
    switch (reason) {
    case StopReason::length: return "length";
    case StopReason::stop_token: return "end of text";
    case StopReason::context_full: return "context full";
    case StopReason::callback: return "stopped by caller";
    }
    return "?";
}

GenerateResult generate(Gpt2Context & ctx, std::span<const int32_t> prompt, const GenerateParams & params,
                        const TokenCallback & on_token) {
    if (prompt.empty()) fail("generate: the prompt has no tokens");
    if (prompt.size() > static_cast<size_t>(ctx.n_ctx()))
        fail("generate: the prompt has {} tokens, the context holds {}", prompt.size(), ctx.n_ctx());
    if (params.n_predict < 0) fail("generate: cannot generate {} tokens", params.n_predict);

    GenerateResult result;
    result.n_prompt = static_cast<int32_t>(prompt.size());
    result.tokens.reserve(static_cast<size_t>(params.n_predict));
    Sampler sampler(params.sampling);
    ctx.reset();
    if (params.n_predict == 0) return result;

    Clock::time_point start = Clock::now();
    std::span<const float> logits = ctx.eval(prompt);
    result.prefill_seconds = seconds_since(start);

    start = Clock::now();
    double callback_seconds = 0;
    for (;;) {
        const int32_t token = sampler.sample(logits);
        if (token == params.stop_token) {
            result.stop = StopReason::stop_token;
            break;
        }
        result.tokens.push_back(token);
        if (on_token) {
            const Clock::time_point callback_start = Clock::now();
            const bool go_on = on_token(token);
            callback_seconds += seconds_since(callback_start);
            if (!go_on) {
                result.stop = StopReason::callback;
                break;
            }
        }
        if (result.tokens.size() == static_cast<size_t>(params.n_predict)) {
            result.stop = StopReason::length;
            break;
        }
        if (ctx.n_past() == ctx.n_ctx()) {
            result.stop = StopReason::context_full;
            break;
        }
        logits = ctx.eval({&token, 1});
        ++result.n_decode;
    }
    result.decode_seconds = result.n_decode > 0 ? seconds_since(start) - callback_seconds : 0;
    return result;
}

double PerplexityResult::perplexity() const { return std::exp(mean_nll()); }

PerplexityResult evaluate_perplexity(Gpt2Context & ctx, std::span<const int32_t> tokens, int32_t window,
                                     const PerplexityProgress & progress, const PerplexityLogits & on_logits) {
    if (window < 2 || window > ctx.n_ctx())
        fail("perplexity: window of {} tokens, must be in [2, {}] (the context)", window, ctx.n_ctx());
    const size_t n_tokens = tokens.size();
    const size_t step = static_cast<size_t>(window);
    // Windows of at least two tokens predict something; a final single token is dropped.
    size_t n_windows = n_tokens / step + (n_tokens % step >= 2 ? 1 : 0);
    if (n_windows == 0) fail("perplexity: {} tokens, at least 2 are needed", n_tokens);

    const size_t n_vocab = static_cast<size_t>(ctx.n_vocab());
    for (size_t i = 0; i < n_tokens; ++i)
        if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= n_vocab)
            fail("perplexity: token {} at index {} is outside the vocabulary of {} tokens", tokens[i], i, n_vocab);
    const Clock::time_point start = Clock::now();
    PerplexityResult result;
    for (size_t w = 0; w < n_windows; ++w) {
        const std::span<const int32_t> text = tokens.subspan(w * step, std::min(step, n_tokens - w * step));
        ctx.reset();
        // In chunks of the context's batch size, so that the logits of a chunk stay small.
        for (size_t begin = 0; begin < text.size(); begin += static_cast<size_t>(ctx.n_batch())) {
            const size_t count = std::min(static_cast<size_t>(ctx.n_batch()), text.size() - begin);
            const std::span<const float> logits = ctx.eval(text.subspan(begin, count), Logits::all);
            if (on_logits) on_logits(logits.first(count * n_vocab));
            for (size_t i = 0; i < count; ++i) {
                const size_t position = begin + i;
                if (position + 1 >= text.size()) break;
                const float * row = logits.data() + i * n_vocab;
                const int32_t next = text[position + 1];
                result.nll_sum += log_sum_exp(row, n_vocab) - static_cast<double>(row[next]);
                ++result.n_predicted;
            }
        }
        ++result.n_windows;
        result.seconds = seconds_since(start);
        if (progress) progress(static_cast<int32_t>(w + 1), static_cast<int32_t>(n_windows), result);
    }
    return result;
}

} // namespace fhegpt::model
