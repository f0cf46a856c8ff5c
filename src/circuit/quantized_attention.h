// A whole GPT-2 attention block in integers: every head of a layer (quant/quantized_head.h,
// sharing the input x and its scales) and c_proj.
//   O_h      each head's output, encoded on context_width(h) = k_h + L bits
//   o        = round(O_h / 2^k_h): an L-bit bucket (exact rounding), value o = bucket - 2^(L-1);
//            k_h is calibrated so that every O_h of the calibration prompts fits
//   out_j    = sum_r W'_rj o_r + b_j: c_proj with each head's unit folded into its rows, per-tensor
//            scale; out_j * out_unit is the block's output (c_proj bias included). Inside a whole
//            block (quantized_blocks.h) c_proj writes into the residual stream instead, and the o
//            table may write round(o gain_h) for a calibrated gain.
// The o table writes o at the output's scale, so that c_proj is a plain linear node and the
// client decrypts the block's output directly. Calibration needs the head's exact reference,
// which lives in this library, hence this file beside it.
#pragma once

#include "model/gpt2_model.h"
#include "quant/quantized_head.h"
#include "quant/quantizer.h"

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::circuit {

struct QuantizedAttention {
    std::vector<quant::QuantizedHead> heads;
    int32_t n_embd = 0, n_head = 0, head_dim = 0;
    int lut_bits = 0;
    std::vector<int> context_shift;      // k_h
    std::vector<double> context_gain;    // per head, empty: 1; the o table writes round(o gain_h)
    // The rounding of O keeps its lowest bits as a residue (CircuitBuilder::round_keeping_low_bits:
    // two sign bootstraps) instead of removing them in chunks (two per chunk); whole blocks.
    bool context_keeps_low_bits = false;
    quant::QuantizedMatrix proj;         // W' [n_embd (head h, column c: row h d + c), n_embd]
    std::vector<int64_t> proj_bias;      // [n_embd], output units
    int out_bits = 0;                    // signed width of out's encoding, headroom included
    double out_unit = 1;                 // real value of one unit of out

    int context_width(int32_t h) const { return context_shift[size_t(h)] + lut_bits; }
    // u = O + offset: bucket u >> k_h in [0, 2^L) in range.
    int64_t context_offset(int32_t h) const {
        return (int64_t{1} << (context_width(h) - 1)) + (int64_t{1} << (context_shift[size_t(h)] - 1));
    }
    // Real value of one step of head h's rounded output o (before its gain).
    double context_unit(int32_t h) const {
        return heads[size_t(h)].output_scale() * std::ldexp(1.0, context_shift[size_t(h)]);
    }
    double gain(int32_t h) const { return context_gain.empty() ? 1.0 : context_gain[size_t(h)]; }
    // The o table's entry for bucket j of head h: round((j - 2^(L-1)) gain_h).
    int64_t context_entry(int32_t h, int64_t j) const {
        const int64_t o = j - (int64_t{1} << (lut_bits - 1));
        return context_gain.empty() ? o : static_cast<int64_t>(std::nearbyint(double(o) * gain(h)));
    }
    // The client's integers: every head shares the first head's input scales.
    std::vector<int64_t> quantize_inputs(std::span<const float> x) const { return heads.at(0).quantize_inputs(x); }
};

// Calibrates every head of `layer` and c_proj on x ([sum(lengths), n_embd], the layer's ln_1
// outputs). config.input_per_channel and the bit widths apply to every head.
QuantizedAttention quantize_attention(const model::Gpt2Model & model, int32_t layer, std::span<const float> x,
                                      std::span<const int32_t> lengths, const quant::HeadQuantConfig & config);
// The heads and their output rounding (k_h) only: c_proj, proj_bias, out_bits and out_unit are
// left for the caller (a block writes c_proj into the residual stream, quantized_blocks.h).
QuantizedAttention quantize_attention_heads(const model::Gpt2Model & model, int32_t layer, std::span<const float> x,
                                            std::span<const int32_t> lengths, const quant::HeadQuantConfig & config);
// c_proj's inputs: every head's output rounded to its L-bit o, [positions, n_embd] (head h,
// column c at h d + c), over sequences of the given lengths of quantized inputs.
std::vector<int64_t> attention_context(const QuantizedAttention & attention, std::span<const int64_t> x_int,
                                       std::span<const int32_t> lengths);

} // namespace fhegpt::circuit
