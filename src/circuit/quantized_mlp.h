// A GPT-2 MLP in integers, writing into the encrypted residual stream (quantized_layer_norm.h):
// what mlp_circuit.h evaluates on ciphertexts. L = lut_bits, per position:
//   y_r      the ln_2 outputs: x_bits integers, y_r x_scales[r] real (gains and biases of ln_2
//            folded into c_fc, model/gpt2_fold.h)
//   acc_c    = sum_r W_rc y_r + b_c: c_fc with the input scales folded into its weights, one
//            weight scale, so one accumulator unit (fc_unit) for every column
//   bucket   h_c = (acc_c + 2^(w_c - 1)) >> (w_c - b) on the column's calibrated width w_c
//            (b = bucket_bits <= L), rounded exactly keeping its lowest bits as a residue
//            (CircuitBuilder::kept_bits_for)
//   g_c      = round(gelu averaged over the bucket / gelu_unit_c): GELU fused with the rounding,
//            one lookup per column, written at the residual stream's scale
//   out_k    = sum_c V_ck g_c + d_k: c_proj in the stream's units (V = W gelu_unit_c / unit_k,
//            rounded on the calibration inputs; W centred, so the stream stays centred). The
//            GELU units trade g's precision against V's under the stream's noise budget
//            (block_calibration.h).
#pragma once

#include "quant/quantizer.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::circuit {

struct QuantizedMlp {
    int32_t n_embd = 0, n_hidden = 0;
    int lut_bits = 0, bucket_bits = 0, x_bits = 0;
    std::vector<double> x_scales;   // [n_embd]
    std::vector<int64_t> fc;        // [n_embd, n_hidden]
    std::vector<int64_t> fc_bias;   // [n_hidden], accumulator units
    double fc_unit = 1;             // real value of one accumulator unit
    std::vector<int> width;         // [n_hidden] w_c, signed, in [b, 62]
    std::vector<double> gelu_unit;  // [n_hidden] real value of one unit of g_c
    bool gelu_tanh = true;          // gelu_new (tanh approximation) or the erf GELU
    std::vector<int64_t> proj;      // [n_hidden, n_embd], residual units
    std::vector<int64_t> proj_bias; // [n_embd], residual units

    int shift(int32_t c) const { return width[size_t(c)] - bucket_bits; }
    int kept(int32_t c) const;
    int64_t offset(int32_t c) const { return int64_t{1} << (width[size_t(c)] - 1); }
    // The inputs' torus scale: every column's accumulator fits the torus at its own width.
    int input_scale() const;
    int64_t gelu_entry(int32_t c, int64_t h) const;
    double gelu_mean(int32_t c, int64_t h) const; // the real value g_c stands for
    double gelu(double x) const;
    // The client's (or ln_2's) integers of rows of normalized inputs.
    std::vector<int64_t> quantize_inputs(std::span<const float> x) const;
};

} // namespace fhegpt::circuit
