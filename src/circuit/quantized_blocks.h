// A run of whole GPT-2 blocks in integers (a part `layerL.mlp`, `layerL`, `layersA-B` or `all`),
// with the residual stream encrypted from the first block to the last: what block_circuit.h
// evaluates on ciphertexts. Each block is
//   ln_1 -> attention (every head, c_proj into the stream) -> residual -> ln_2 -> MLP -> residual
// (quantized_layer_norm.h, quantized_attention.h, quantized_mlp.h), and `all` ends with ln_f.
//
// The client's share. Per position it encrypts the residual stream where the run starts (the
// embeddings, or the residual after the blocks it runs itself) and the first stage's normalized
// input: x / rms(x) of that same centred residual, quantized to the first stage's input
// integers. The first LayerNorm has no weight of its own left (its gain and bias are folded into
// the next linear layer, model/gpt2_fold.h), so the client computes it exactly and the server
// saves a LayerNorm. It decrypts the residual where the run ends, or the final hidden state.
#pragma once

#include "circuit/quantized_attention.h"
#include "circuit/quantized_layer_norm.h"
#include "circuit/quantized_mlp.h"
#include "model/block_range.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace fhegpt::circuit {

struct QuantizedBlock {
    int32_t layer = 0;
    std::optional<QuantizedLayerNorm> ln_1;       // absent: the client's (first stage) or no attention
    std::optional<QuantizedAttention> attention;  // absent: the run starts at this block's MLP
    std::optional<QuantizedLayerNorm> ln_2;       // absent: the client's (the run starts here)
    QuantizedMlp mlp;
};

struct QuantizedBlocks {
    model::BlockRangeSpec spec;
    int32_t n_embd = 0;
    int lut_bits = 0;
    float eps = 1e-5f;
    ResidualEncoding residual;
    double stream_noise_log2 = 0; // the c_proj inputs' noise the stream is calibrated for (log2, 2^64 torus)
    // The set whose noise the stream is calibrated for: the noise analysis's choice for one new
    // token at position parameter_positions - 1 on the cache. Empty: no production set runs the
    // blocks (simulation only), or the noise was forced (BlocksQuantConfig::fine_noise_log2).
    std::string parameter_set;
    int32_t parameter_positions = 0;
    std::vector<QuantizedBlock> blocks;
    std::optional<QuantizedLayerNorm> ln_f; // spec.final_norm

    // The first stage's inputs (the client's normalization): per-channel scales, bits, torus scale.
    const std::vector<double> & first_scales() const;
    int first_bits() const;
    int first_input_scale() const;
    // The outputs per position: the stream (units residual.unit, at residual.scale()), or ln_f's
    // hidden state (units ln_f->out_scale, at ln_f->out_delta).
    int output_scale() const;
    double output_unit(int32_t k) const;

    // Rows of the residual stream where the run starts -> the client's integers, per position
    // [residual n_embd | normalized input n_embd].
    std::vector<int64_t> quantize_inputs(std::span<const float> x) const;
    int32_t inputs_per_position() const { return 2 * n_embd; }
    // Key/value cache parts: two per head of every block with attention (block_circuit.h).
    int32_t cache_parts() const;
    int32_t head_dim() const;
};

// The client's share on its own (a remote client has the stream's encoding, eps and the first
// stage's quantizer, never a weight): rows of n_embd reals -> per position [stream | normalized].
std::vector<int64_t> quantize_block_inputs(const ResidualEncoding & residual, float eps, std::span<const double> first_scales,
                                           int first_bits, std::span<const float> x);

} // namespace fhegpt::circuit
