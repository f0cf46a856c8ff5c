// Shared by the circuit tests: a small GPT-2 shape (n_embd 64, 2 heads of 32), standard normal
// inputs and token sequences from a fixed seed.
#pragma once

#include "model/gpt2_model.h"

#include <cstdint>
#include <random>
#include <vector>

namespace fhegpt::test {

inline model::Gpt2HParams small_attention_hparams(int32_t n_layer = 1) {
    model::Gpt2HParams hp;
    hp.n_vocab = 64;
    hp.n_ctx = 16;
    hp.n_embd = 64;
    hp.n_head = 2; // head_dim 32
    hp.n_layer = n_layer;
    return hp;
}

// `count` sequences of `length` tokens of the small shape's vocabulary.
inline std::vector<std::vector<int32_t>> token_sequences(uint32_t seed, size_t count, size_t length) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> token(0, 63);
    std::vector<std::vector<int32_t>> out(count, std::vector<int32_t>(length));
    for (auto & s : out)
        for (int32_t & t : s) t = token(rng);
    return out;
}

inline std::vector<float> normal_x(size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(count);
    for (float & v : x) v = normal(rng);
    return x;
}

} // namespace fhegpt::test
