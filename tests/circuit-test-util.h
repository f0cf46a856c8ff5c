// Shared by the circuit tests: a small GPT-2 shape (n_embd 64, 2 heads of 32) and standard
// normal inputs from a fixed seed.
#pragma once

#include "model/gpt2_model.h"

#include <cstdint>
#include <random>
#include <vector>

namespace fhegpt::test {

inline model::Gpt2HParams small_attention_hparams() {
    model::Gpt2HParams hp;
    hp.n_vocab = 64;
    hp.n_ctx = 16;
    hp.n_embd = 64;
    hp.n_head = 2; // head_dim 32
    hp.n_layer = 1;
    return hp;
}

inline std::vector<float> normal_x(size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(count);
    for (float & v : x) v = normal(rng);
    return x;
}

} // namespace fhegpt::test
