// config.json of a Hugging Face GPT-2 checkpoint <-> Gpt2HParams.
//
// Reading follows transformers' GPT2Config: an absent key takes GPT2Config's default
// (vocab_size 50257, n_positions 1024, n_embd 768, n_layer 12, n_head 12, layer_norm_epsilon
// 1e-5, activation_function "gelu_new", tie_word_embeddings true); the aliases hidden_size,
// max_position_embeddings, num_attention_heads and num_hidden_layers are accepted, and an old
// config with n_ctx but no n_positions uses n_ctx. Options that change the computation in ways
// this engine does not implement (another activation, n_inner != 4 * n_embd, unscaled or
// layer-scaled attention, cross attention) are rejected rather than silently ignored.
#pragma once

#include "model/gpt2_model.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace fhegpt::model {

// Upper bounds, so that a hostile config cannot ask for absurd allocations or overflow the
// size arithmetic downstream (GPT-2 XL: 48 layers, 25 heads, n_embd 1600, 1.6e9 parameters).
inline constexpr int32_t kGpt2MaxLayers = 1024;
inline constexpr int32_t kGpt2MaxHeads = 1024;
inline constexpr int32_t kGpt2MaxEmbd = 65536;
inline constexpr int32_t kGpt2MaxCtx = 1 << 20;
inline constexpr int32_t kGpt2MaxVocab = 1 << 22;
inline constexpr uint64_t kGpt2MaxParameters = uint64_t{1} << 36;
inline constexpr size_t kGpt2MaxConfigBytes = 16u << 20;

// Number of weights of a GPT-2 of these dimensions (lm_head counted once, as tied).
uint64_t gpt2_parameter_count(const Gpt2HParams & hparams);

// Throws fhegpt::Error naming `source` if a dimension is not positive or past the bounds
// above, n_embd is not a multiple of n_head, epsilon is not in (0, 1), or the activation is
// not gelu_new.
void check_gpt2_hparams(const Gpt2HParams & hparams, const std::string & source);

// Parses config.json text; `source` names it in messages. activation_function
// "gelu_pytorch_tanh" (the same function) is returned as "gelu_new".
Gpt2HParams parse_gpt2_config(std::string_view json_text, const std::string & source);

// Reads and parses the file at `path`.
Gpt2HParams read_gpt2_config(const std::string & path);

// config.json text that transformers' GPT2Config.from_pretrained reads back to these hparams.
std::string gpt2_config_json(const Gpt2HParams & hparams);

// Writes gpt2_config_json() to `path`; throws fhegpt::Error naming the path on I/O errors or
// hparams that check_gpt2_hparams() rejects.
void write_gpt2_config(const std::string & path, const Gpt2HParams & hparams);

} // namespace fhegpt::model
