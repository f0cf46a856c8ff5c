// One GPT-2 attention head in integers: the quantized model that the circuit
// (circuit/head_circuit.h) evaluates on ciphertexts, and its exact clear reference.
//
// Every table lookup of the circuit reads a value of `lut_bits` bits (the parameter set's
// message bits: 4 for the cheap set), so every intermediate is chosen to fit:
//   x        n_bits signed, scale x_scale (client side)
//   acc      = W x + b over n_embd inputs (wide); u = acc + 2^(B-1) in [0, 2^B)
//   bucket   h = u >> (B - lut_bits), removed exactly (circuit_builder.h)
//   q, k, v  value_bits = lut_bits - 1 signed, from a table of h (rounding, scale, clipping)
//   S_ij     = 2 q_i . k_j (exact, via squares); u_S = S + 2^(B_S-1); bucket of lut_bits - 1 bits
//   e_ij     = round(E exp(score - m)), E = 2^value_bits - 1  (m: calibrated reference score)
//   D_i      = sum_j e_ij; Lg_i = round(log(D_i / E) / w) (w: score bucket width)
//   a_ij     = round(E exp(score_ij - m - Lg_i w)): normalized softmax, from h_ij - Lg_i alone
//   O_id     = 2 sum_j a_ij v_jd (exact, via squares); out = O s_v / (2 E)
// Only pairs j <= i are computed (causal).
#pragma once

#include "model/attention.h"
#include "quant/quantizer.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

struct HeadQuantConfig {
    int n_bits = 4;       // activations (x) and, unless weight_bits is set, weights
    int weight_bits = 0;  // 0: n_bits
    bool per_channel = false;
    int lut_bits = 0;     // 0: max(3, min(n_bits, 12))
};

enum Projection { kQuery = 0, kKey = 1, kValue = 2 };

struct QuantizedHead {
    HeadQuantConfig config;
    int32_t n_embd = 0, head_dim = 0;
    int x_bits = 0, lut_bits = 0, value_bits = 0;
    double x_scale = 1;
    QuantizedMatrix weights[3];        // [n_embd, head_dim] per projection
    std::vector<int64_t> bias[3];      // [head_dim], accumulator units
    double out_scale[3] = {1, 1, 1};   // real value of one unit of q, k, v
    int acc_bits = 0;                  // B
    int score_bits = 0;                // B_S
    double score_unit = 1;             // real score q.k / sqrt(d) of one unit of S
    double exp_reference = 0;          // m

    int64_t value_min() const { return -(int64_t{1} << (value_bits - 1)); }
    int64_t value_max() const { return (int64_t{1} << (value_bits - 1)) - 1; }
    int64_t exp_max() const { return (int64_t{1} << value_bits) - 1; } // E
    int acc_shift() const { return acc_bits - lut_bits; }
    // u_S is encoded on B_S + 1 bits (a headroom bit) so that its bucket lands on lut_bits - 1 bits.
    int score_shift() const { return score_bits + 1 - lut_bits; }
    double score_bucket_width() const;  // w
    // Bits of D at n positions and how many of them are removed before the log table.
    int denominator_bits(int32_t n) const;
    int denominator_shift(int32_t n) const { return denominator_bits(n) - lut_bits; }
    int output_bits(int32_t n) const;   // signed width of O

    int64_t quantize_input(float x) const { return quantize_value(x, x_scale, x_bits); }
    int64_t accumulator(int p, int32_t column, std::span<const int64_t> x_row) const;
    // Tables (inputs are buckets, i.e. the lookup's message).
    int64_t projection_value(int p, int32_t column, int64_t bucket) const;
    int64_t exp_value(int64_t score_bucket) const;
    // Lg in [-(2^(L-2)) + 1, 2^(L-2)].
    int64_t log_value(int64_t denominator_bucket, int32_t n) const;
    // z = h - Lg + 2^(L-2) in [0, 2^L - 2].
    int64_t attention_value(int64_t z) const;
    double output_scale() const { return out_scale[kValue] / (2.0 * static_cast<double>(exp_max())); }
};

// Calibrates and quantizes a head from its float weights and calibration inputs x
// ([sum(lengths), n_embd], the ln_1 outputs of whole sequences, one after the other).
QuantizedHead quantize_head(const model::HeadQkvWeights & weights, std::span<const float> x,
                            std::span<const int32_t> lengths, const HeadQuantConfig & config);

// The exact integer reference: O [n, head_dim] for n positions of quantized inputs
// x_int [n, n_embd]. The circuit's clear simulation and its encrypted run must equal it.
std::vector<int64_t> quantized_head_forward(const QuantizedHead & head, std::span<const int64_t> x_int, int32_t n);

} // namespace fhegpt::quant
