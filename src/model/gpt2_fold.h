// GPT-2 with its LayerNorm affine parts folded into the linear layers that follow them, and its
// residual stream kept centred: the form the encrypted blocks compute.
//
//   LN(x) W + b = xhat (diag(g) W) + (beta W + b), xhat = (x - mean) / sqrt(var + eps):
//   ln_1's and ln_2's gains and biases move into c_attn and c_fc, which then read the plain
//   normalized xhat.
//   Every c_proj (attention and MLP) has each row's mean over its outputs taken off, and so has
//   its bias: what it adds to the residual stream has mean 0 over the channels. A LayerNorm
//   subtracts a token's mean anyway, so the model's output does not change; with a centred
//   input, the residual stream stays centred, and a LayerNorm of it needs no mean: it is
//   x / rms(x).
// ln_f, the embeddings and the LM head are left as they are (wte is tied to the LM head).
#pragma once

#include "model/gpt2_model.h"

namespace fhegpt::model {

// The folded model views `model`'s unchanged tensors: `model` must outlive it.
Gpt2Model fold_layer_norms(const Gpt2Model & model);

// x / sqrt(mean(x^2) + eps) of every row of n_embd values after its mean is removed: the
// LayerNorm without gain and bias (xhat above). In place.
void normalize_rows(std::span<float> x, int32_t n_embd, float eps);

// Removes each row's mean over its n_embd values. In place.
void centre_rows(std::span<float> x, int32_t n_embd);

} // namespace fhegpt::model
