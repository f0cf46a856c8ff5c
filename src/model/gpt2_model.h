// GPT-2 weights as plain structs (hparams, layer, model), in the layouts of Hugging Face's
// GPT2LMHeadModel. Linear layers are GPT-2 Conv1D: weight [in, out] row-major, y = x W + b,
// so a BLAS sgemm with no transpose applies them directly.
//
// Every tensor is an f32 view: into the memory-mapped safetensors file when the tensor is
// stored as aligned F32, into a buffer the model owns when it had to be converted (F16, BF16)
// or when the model was built in memory (tests, benchmarks).
#pragma once

#include "common/mapped_file.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace fhegpt::model {

struct Gpt2HParams {
    int32_t n_vocab = 50257;
    int32_t n_ctx = 1024; // n_positions
    int32_t n_embd = 768;
    int32_t n_head = 12;
    int32_t n_layer = 12;
    float layer_norm_epsilon = 1e-5f;
    std::string activation_function = "gelu_new";
    bool tie_word_embeddings = true; // lm_head is wte (config.json "tie_word_embeddings")

    int32_t head_dim() const { return n_embd / n_head; }
};

struct Gpt2Layer {
    std::span<const float> ln_1_g, ln_1_b;           // [n_embd]
    std::span<const float> attn_w, attn_b;           // c_attn: [n_embd, 3*n_embd], [3*n_embd] (q | k | v)
    std::span<const float> attn_proj_w, attn_proj_b; // attn.c_proj: [n_embd, n_embd], [n_embd]
    std::span<const float> ln_2_g, ln_2_b;           // [n_embd]
    std::span<const float> fc_w, fc_b;               // mlp.c_fc: [n_embd, 4*n_embd], [4*n_embd]
    std::span<const float> mlp_proj_w, mlp_proj_b;   // mlp.c_proj: [4*n_embd, n_embd], [n_embd]
};

struct Gpt2Model {
    Gpt2HParams hparams;
    std::span<const float> wte;          // [n_vocab, n_embd]
    std::span<const float> wpe;          // [n_ctx, n_embd]
    std::span<const float> ln_f_g, ln_f_b; // [n_embd]
    std::span<const float> lm_head;      // [n_vocab, n_embd]; the same memory as wte when tied
    std::vector<Gpt2Layer> layers;

    // Storage behind the views above.
    std::unique_ptr<MappedFile> weights_file;
    std::vector<std::vector<float>> owned_tensors;

    // Keeps `values` alive inside the model and returns a view of it.
    std::span<const float> own(std::vector<float> values) {
        owned_tensors.push_back(std::move(values));
        return owned_tensors.back();
    }
};

// Loads a checkpoint directory as written by save_pretrained: config.json and
// model.safetensors (F32, F16 or BF16; names with or without the "transformer." prefix;
// lm_head tied to wte when absent). Throws fhegpt::Error naming the file and the problem.
Gpt2Model load_gpt2_model(const std::string & dir);

// A model with weights drawn from N(0, stddev) (LayerNorm gains 1, biases small), for tests
// and benchmarks that need a given shape and no checkpoint.
Gpt2Model make_random_gpt2_model(const Gpt2HParams & hparams, uint64_t seed, float stddev = 0.02f);

} // namespace fhegpt::model
