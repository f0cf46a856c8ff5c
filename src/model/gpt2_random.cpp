// make_random_gpt2_model: a GPT-2 of any shape with weights drawn from N(0, stddev), for tests
// and benchmarks that need no checkpoint. Each tensor has its own stream derived from the seed
// and the tensor's index, so tensors are filled in parallel and the result does not depend on
// the number of threads.
#include "model/gpt2_model.h"

#include "common/error.h"
#include "common/thread_pool.h"

#include <cmath>
#include <cstdint>
#include <numbers>

namespace fhegpt::model {

namespace {

// splitmix64: a fast, well-mixed 64-bit generator; plenty for test weights.
struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in (0, 1].
    double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
};

// Fills `values` with N(mean, stddev) by Box-Muller.
void fill_normal(std::vector<float> & values, uint64_t seed, float mean, float stddev) {
    SplitMix64 rng{seed};
    for (size_t i = 0; i < values.size(); i += 2) {
        double radius = std::sqrt(-2.0 * std::log(rng.uniform()));
        double angle = 2.0 * std::numbers::pi * rng.uniform();
        values[i] = mean + stddev * static_cast<float>(radius * std::cos(angle));
        if (i + 1 < values.size()) values[i + 1] = mean + stddev * static_cast<float>(radius * std::sin(angle));
    }
}

struct TensorSpec {
    std::span<const float> * view;
    size_t size;
    float mean;
    float stddev;
};

} // namespace

Gpt2Model make_random_gpt2_model(const Gpt2HParams & hparams, uint64_t seed, float stddev) {
    const Gpt2HParams & hp = hparams;
    if (hp.n_vocab <= 0 || hp.n_ctx <= 0 || hp.n_embd <= 0 || hp.n_head <= 0 || hp.n_layer <= 0)
        fail("random GPT-2: every dimension must be positive (n_vocab {}, n_ctx {}, n_embd {}, n_head {}, n_layer {})",
             hp.n_vocab, hp.n_ctx, hp.n_embd, hp.n_head, hp.n_layer);
    if (hp.n_embd % hp.n_head != 0) fail("random GPT-2: n_embd {} is not a multiple of n_head {}", hp.n_embd, hp.n_head);

    Gpt2Model model;
    model.hparams = hp;
    model.layers.resize(static_cast<size_t>(hp.n_layer));

    const size_t n_embd = static_cast<size_t>(hp.n_embd);
    const float bias_stddev = stddev * 0.5f;
    std::vector<TensorSpec> specs;
    specs.push_back({&model.wte, static_cast<size_t>(hp.n_vocab) * n_embd, 0.0f, stddev});
    specs.push_back({&model.wpe, static_cast<size_t>(hp.n_ctx) * n_embd, 0.0f, stddev * 0.5f});
    specs.push_back({&model.ln_f_g, n_embd, 1.0f, 0.0f});
    specs.push_back({&model.ln_f_b, n_embd, 0.0f, bias_stddev});
    for (Gpt2Layer & layer : model.layers) {
        specs.push_back({&layer.ln_1_g, n_embd, 1.0f, 0.0f});
        specs.push_back({&layer.ln_1_b, n_embd, 0.0f, bias_stddev});
        specs.push_back({&layer.attn_w, n_embd * 3 * n_embd, 0.0f, stddev});
        specs.push_back({&layer.attn_b, 3 * n_embd, 0.0f, bias_stddev});
        specs.push_back({&layer.attn_proj_w, n_embd * n_embd, 0.0f, stddev});
        specs.push_back({&layer.attn_proj_b, n_embd, 0.0f, bias_stddev});
        specs.push_back({&layer.ln_2_g, n_embd, 1.0f, 0.0f});
        specs.push_back({&layer.ln_2_b, n_embd, 0.0f, bias_stddev});
        specs.push_back({&layer.fc_w, n_embd * 4 * n_embd, 0.0f, stddev});
        specs.push_back({&layer.fc_b, 4 * n_embd, 0.0f, bias_stddev});
        specs.push_back({&layer.mlp_proj_w, 4 * n_embd * n_embd, 0.0f, stddev});
        specs.push_back({&layer.mlp_proj_b, n_embd, 0.0f, bias_stddev});
    }

    std::vector<std::vector<float>> values(specs.size());
    ThreadPool::global().parallel_for(specs.size(), [&](size_t begin, size_t end, size_t) {
        for (size_t i = begin; i < end; ++i) {
            values[i].resize(specs[i].size);
            fill_normal(values[i], seed * 0x100000001B3ull + i, specs[i].mean, specs[i].stddev);
        }
    });
    for (size_t i = 0; i < specs.size(); ++i) *specs[i].view = model.own(std::move(values[i]));
    model.lm_head = model.wte; // tied, as in GPT-2
    return model;
}

} // namespace fhegpt::model
