// Text generation and perplexity on top of a Gpt2Context: prefill the prompt in one batch, then
// decode one token at a time from the KV cache, streaming each token as it is chosen.
#pragma once

#include "model/gpt2_forward.h"
#include "model/sampling.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace fhegpt::model {

struct GenerateParams {
    int32_t n_predict = 32;  // most tokens to generate
    int32_t stop_token = -1; // generation ends when this token is chosen (GPT-2: <|endoftext|>); -1: none
    SamplingParams sampling;
};

enum class StopReason {
    length,       // n_predict tokens generated
    stop_token,   // the stop token was chosen (it is neither streamed nor returned)
    context_full, // the context holds no more positions
    callback,     // the token callback returned false
};

const char * stop_reason_name(StopReason reason);

struct GenerateResult {
    std::vector<int32_t> tokens; // generated, prompt excluded
    StopReason stop = StopReason::length;
    int32_t n_prompt = 0;
    double prefill_seconds = 0; // the prompt's forward pass
    int32_t n_decode = 0;       // one-token forward passes
    double decode_seconds = 0;  // those passes and the sampling of their tokens

    double prefill_tokens_per_second() const { return prefill_seconds > 0 ? n_prompt / prefill_seconds : 0; }
    double decode_tokens_per_second() const { return decode_seconds > 0 ? n_decode / decode_seconds : 0; }
};

// Called with each generated token as soon as it is chosen; returning false stops generation.
using TokenCallback = std::function<bool(int32_t token)>;

// Resets `ctx`, evaluates `prompt` and generates up to params.n_predict tokens. Throws
// fhegpt::Error for an empty prompt or one longer than the context.
GenerateResult generate(Gpt2Context & ctx, std::span<const int32_t> prompt, const GenerateParams & params,
                        const TokenCallback & on_token = {});

struct PerplexityResult {
    double nll_sum = 0;      // sum over predicted tokens of -log p(token | its window before it)
    int64_t n_predicted = 0;
    int32_t n_windows = 0;
    double seconds = 0;

    double mean_nll() const { return n_predicted > 0 ? nll_sum / static_cast<double>(n_predicted) : 0; }
    double perplexity() const;
};

// Called after each window with the totals so far.
using PerplexityProgress = std::function<void(int32_t window, int32_t n_windows, const PerplexityResult & so_far)>;
// Called with the logits of consecutive tokens of the windows, in text order: [rows, n_vocab],
// row i after the tokens of its window up to and including that token (so the logits of every
// token but a dropped final single one, including each window's last, which predicts nothing).
using PerplexityLogits = std::function<void(std::span<const float> rows)>;

// Splits `tokens` into consecutive non-overlapping windows of `window` tokens (the last one may
// be shorter) and predicts every token of a window but its first from the tokens before it in
// the window. Throws fhegpt::Error if window is not in [2, ctx.n_ctx()] or nothing is predicted
// (fewer than two tokens).
PerplexityResult evaluate_perplexity(Gpt2Context & ctx, std::span<const int32_t> tokens, int32_t window,
                                     const PerplexityProgress & progress = {}, const PerplexityLogits & on_logits = {});

} // namespace fhegpt::model
