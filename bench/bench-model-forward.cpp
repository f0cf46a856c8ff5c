// Prefill and decode speed of the clear forward pass: the GPT-2-small shape with random
// weights (124M parameters; speed does not depend on the values), and the bundled model
// models/fhegpt-tiny when it is present.
//
//   bench-model-forward [--benchmark_filter=...]
// Counters: tokens/s (wall clock). Arguments: threads (0: the process-wide pool), position.
#include "bench-main.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace fhegpt::model;

const Gpt2Model & gpt2_small() {
    static const Gpt2Model model = make_random_gpt2_model(Gpt2HParams{}, 1);
    return model;
}

const std::string kTinyDir = FHEGPT_SOURCE_DIR "/models/fhegpt-tiny";

const Gpt2Model & fhegpt_tiny() {
    static const Gpt2Model model = load_gpt2_model(kTinyDir);
    return model;
}

std::vector<int32_t> bench_tokens(size_t count, int32_t n_vocab) {
    std::vector<int32_t> tokens(count);
    for (size_t i = 0; i < count; ++i) tokens[i] = static_cast<int32_t>((i * 7919 + 101) % static_cast<size_t>(n_vocab));
    return tokens;
}

Gpt2ContextParams params_for(const benchmark::State & state) {
    Gpt2ContextParams params;
    params.n_threads = static_cast<int32_t>(state.range(0));
    return params;
}

// A prompt of range(1) tokens evaluated in one batch (logits of the last position).
void prefill(benchmark::State & state, const Gpt2Model & (*get_model)()) {
    const Gpt2Model & model = get_model();
    Gpt2Context ctx(model, params_for(state));
    // Models with a shorter context get a prompt that fills it.
    const int64_t n_prompt = std::min<int64_t>(state.range(1), ctx.n_ctx());
    const std::vector<int32_t> prompt = bench_tokens(static_cast<size_t>(n_prompt), model.hparams.n_vocab);
    state.SetLabel(std::to_string(n_prompt) + " tokens");
    for (auto _ : state) {
        ctx.reset();
        benchmark::DoNotOptimize(ctx.eval(prompt).data());
    }
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(prompt.size()),
                           benchmark::Counter::kIsRate);
}

// One token at a time from the KV cache, starting at position range(1).
void decode(benchmark::State & state, const Gpt2Model & (*get_model)()) {
    const Gpt2Model & model = get_model();
    Gpt2Context ctx(model, params_for(state));
    const int64_t position = std::max<int64_t>(1, std::min<int64_t>(state.range(1), ctx.n_ctx() - 64));
    const std::vector<int32_t> prompt = bench_tokens(static_cast<size_t>(position), model.hparams.n_vocab);
    state.SetLabel("from position " + std::to_string(position));
    const int32_t token = 42;
    // At most 64 positions beyond the prompt, so that every step attends to about as much.
    const int32_t last = std::min(ctx.n_ctx(), static_cast<int32_t>(prompt.size()) + 64);
    ctx.eval(prompt);
    for (auto _ : state) {
        if (ctx.n_past() == last) {
            state.PauseTiming();
            ctx.reset();
            ctx.eval(prompt);
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(ctx.eval({&token, 1}).data());
    }
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_model(const std::string & name, const Gpt2Model & (*get_model)()) {
    benchmark::RegisterBenchmark(("prefill/" + name).c_str(), prefill, get_model)
        ->ArgNames({"threads", "tokens"})
        ->Args({0, 128})
        ->Args({1, 128})
        ->Args({0, 512})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("decode/" + name).c_str(), decode, get_model)
        ->ArgNames({"threads", "position"})
        ->Args({0, 128})
        ->Args({1, 128})
        ->Args({0, 896})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

} // namespace

int main(int argc, char ** argv) {
    register_model("gpt2-small-shape", gpt2_small);
    if (std::filesystem::exists(kTinyDir + "/model.safetensors"))
        register_model("fhegpt-tiny", fhegpt_tiny);
    else
        std::fprintf(stderr, "bench-model-forward: %s absent, skipping it\n", kTinyDir.c_str());
    return fhegpt::bench::run_registered_benchmarks(argc, argv);
}
