// One GPT-2 attention head in integers: the quantized model that the circuit
// (circuit/head_circuit.h) evaluates on ciphertexts. circuit/head_reference.h computes it
// exactly, reading every table as the circuit stores it.
//
// Every table lookup reads at most `lut_bits` = L bits (the parameter set's message bits: 4 for
// the cheap set), so every intermediate is chosen to fit. V = value_bits = L - 1, M = 2^V - 1.
//   x        n_bits signed, one scale per input channel r, s_r (client side; per tensor with
//            input_per_channel off; clipped on the calibration inputs: quantize_head). The scales
//            are folded into the weights: W'_rc = W_rc s_r.
//   acc      = W' x + b over n_embd inputs (column c of projection p: acc_bits[p] + e_pc bits)
//            (W' rounded by GPTQ on the calibration inputs by default: quant/weight_rounding.h)
//   bucket   the accumulator rounded down to L bits by a power of two, exactly:
//              h = (acc + 2^(B-1)) >> shift in [0, 2^L), centre mu = h - 2^(L-1) + 1/2 steps
//            (one step = out_scale[p]). The circuit keeps the lowest kept_bits of the
//            accumulator under h as a residue that the code table tolerates (circuit_builder.h).
//            Per-channel weights use power-of-two column scales w'_p 2^-e_pc (e_pc >= 0 extra
//            bits) with shift_pc = acc_bits[p] + e_pc - L, so that every column has the same step.
//   code     Products of two ciphertexts are the costly part, and a product read of q + k
//            linear buckets would cost q and k one bit each. Instead every q/k/v bucket is read
//            once into a log code: sign and magnitude index m in [0, 2^V), the magnitude being
//            the level T rho^(m - M) nearest to |mu| (T = 2^V - 1/2 the top bucket's centre,
//            rho^M = 2^L - 1 so that the lowest level is the lowest centre, 1/2). The code is m
//            for mu > 0 and 2^L + m for mu < 0: the padding bit carries the sign. Then a product
//            of two values is a function of the sum of their codes alone, T^2 rho^(m_q + m_k - 2M),
//            and a negacyclic read of code_q + code_k (mod 2^(L+1)) flips the sign exactly when one
//            of the two is negative: one bootstrap per product, on the operands' full L-bit
//            buckets.
//   S_ij     = sum_c P(code_q + code_k), P(x) = round(K T^2 rho^(x - 2M)), K = product_scale(): the
//            score in units of step_q step_k / K.
//            u_S = S + 2^(B_S-1) mod 2^(B_S+1); coarse bucket c_ij = u_S >> s (V bits, s = B_S + 1 - L)
//   M_i      = max_j c_ij (a chain of relu lookups on differences mod 2^L); d_ij = M_i - c_ij
//   u'_ij    = (u_S - c_ij 2^s) + (K' - min(d_ij, K')) 2^s, K' = 2^k' - 1: the score relative to
//            the top of the row's best coarse bucket, exact for d <= K' (further below, where exp
//            is negligible, it aliases to d = K'); fine bucket g_ij = u' >> (s + k' - V) (V bits)
//   e_ij     = round(E exp(r(g) - m)), E = 2^V - 1, r(g) the relative score of g (m: calibrated)
//   D_i      = sum_j e_ij; Lg_i = round(log(D_i / E) / w) (w: fine bucket width)
//   alpha_ij = the attention code of g_ij - Lg_i: the weight rho^(alpha - 2^V), alpha in
//            [0, 2^V], nearest to the normalized softmax exp(r(g) - m - Lg w) (capped at 1), so
//            that alpha + m_v < 2^L: attention weights are log codes too (never exactly 0: the
//            lowest weight is rho^-(2^V), 1/(rho (2^L - 1))).
//   O_id     = sum_j A(alpha_ij + code_v,jd), A(x) = round(Lambda T rho^(x - 2^V - M)),
//            Lambda = 2^(V+1); out = O step_v / Lambda
// Only pairs j <= i are computed (causal).
//
// Table entries are defined on every input of L bits (also beyond the calibrated range), so
// that the reference and the circuit agree on every input, in range or not.
#pragma once

#include "model/attention.h"
#include "quant/quantizer.h"
#include "quant/weight_rounding.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

struct HeadQuantConfig {
    int n_bits = 4;       // activations (x) and, unless weight_bits is set, weights
    int weight_bits = 0;  // 0: n_bits
    bool per_channel = false;      // power-of-two column scales for the weights (extra rounding bootstraps)
    bool input_per_channel = true; // one scale per input channel, folded into the weights
    WeightRounding weight_rounding = WeightRounding::gptq; // on the calibration inputs (weight_rounding.h)
    bool calibrated_clipping = true; // input and weight scales clipped on the calibration inputs (else absmax)
    int lut_bits = 0;     // 0: max(3, min(n_bits, 12))
    int rounding_chunk_bits = 0; // 0: lut_bits; bits one chunk of the score and softmax roundings removes
                                 // (CircuitBuilder::remove_low_bits)
};

enum Projection { kQuery = 0, kKey = 1, kValue = 2 };

struct QuantizedHead {
    HeadQuantConfig config;
    int32_t n_embd = 0, head_dim = 0;
    int x_bits = 0, lut_bits = 0, value_bits = 0;
    std::vector<double> x_scales;              // [n_embd]: s_r
    QuantizedMatrix weights[3];                // W' [n_embd, head_dim]; column scales w'_p 2^-e_pc
    std::vector<int64_t> bias[3];              // [head_dim], accumulator units of the column
    std::vector<int> column_exponent[3];       // e_pc >= 0
    int acc_bits[3] = {0, 0, 0};               // B_p: signed accumulator bits at e = 0
    double out_scale[3] = {1, 1, 1};           // real value of one bucket step of q, k, v
    int score_bits = 0;                        // B_S: twice the widest calibrated row of S fits 2^B_S
    double score_unit = 1;                     // real score q.k / sqrt(d) of one unit of S
    int window_bits = 0;                       // k': the window spans 2^k' coarse buckets
    double exp_reference = 0;                  // m, a relative score
    int output_width = 0;                      // O's encoding, headroom included; 0: output_bits(n)

    // K = 2^product_scale_log2, the scale of the score products P: a product of two bucket
    // centres in units of 1/K step^2. 4 up to L = 4, 1 above, unless finer q and k steps
    // (calibrated clips) would widen the scores: then coarser, so that they keep the width of
    // absmax scales. A finer unit makes the score's lowest bits, which its exact rounding reads,
    // more fragile: at L = 5, K = 4 left PARAM_5BIT_2M128 at p_fail 2^-12.6 per read (K = 1:
    // 2^-75) for the same mean KL (0.0024); at L = 4 it lowers the KL from 0.018 to 0.016 and
    // the L2 set keeps its margin.
    int product_scale_log2 = 0;
    double product_scale() const { return std::ldexp(1.0, product_scale_log2); }
    static int default_product_scale_log2(int lut_bits) { return 2 * std::clamp(5 - lut_bits, 0, 1); }

    int64_t exp_max() const { return (int64_t{1} << value_bits) - 1; } // E
    int64_t top_code() const { return (int64_t{1} << value_bits) - 1; } // M: codes 0..M per sign
    int64_t top_attention_code() const { return int64_t{1} << value_bits; } // attention codes 0..2^V
    // Column c of projection p: signed accumulator width, and the bits rounding removes.
    int column_bits(int p, int32_t c) const { return acc_bits[p] + column_exponent[p][size_t(c)]; }
    int column_shift(int p, int32_t c) const { return column_bits(p, c) - lut_bits; }
    // Low accumulator bits the rounding of column c keeps in place (one sign bootstrap per other
    // removed bit): at most lut_bits, so that the first sign read has the margin of an L-bit read,
    // and few enough that the residue stays under 1/8 of a box: the code read keeps 3/8.
    int kept_bits(int p, int32_t c) const { return std::clamp(column_shift(p, c) - 2, 0, lut_bits); }
    int rounding_bootstraps(int p, int32_t c) const { return column_shift(p, c) - kept_bits(p, c); }
    // u = acc + offset: bucket h = u >> shift (round down; the value is the bucket's centre), in
    // [0, 2^L) in range.
    int64_t accumulator_offset(int p, int32_t c) const;
    int64_t accumulator(int p, int32_t column, std::span<const int64_t> x_row) const;
    // u_S is encoded on B_S + 1 bits (a headroom bit) so that its bucket lands on lut_bits - 1 bits.
    int score_shift() const { return score_bits + 1 - lut_bits; }     // s
    int fine_width() const { return score_shift() + window_bits + 1; } // u' encoding, headroom included
    int fine_shift() const { return score_shift() + window_bits - value_bits; }
    double score_bucket_width() const;  // w, of a fine bucket
    double relative_score(int64_t fine_bucket) const; // r(g), real (nats)
    // Bits of the row sum D of a row of n positions (row n - 1), and how many of them are
    // removed before the log table: per row, so that a row's result does not depend on how
    // many positions follow it (an incremental evaluation equals a whole-sequence one).
    int denominator_bits(int32_t n) const;
    int denominator_shift(int32_t n) const { return denominator_bits(n) - lut_bits; }
    // Signed width of O with a headroom bit: the calibrated output_width, or the worst case at
    // n positions (circuit::calibrate_output_width sets the former).
    int output_bits(int32_t n) const;
    int chunk_bits() const { return config.rounding_chunk_bits ? config.rounding_chunk_bits : lut_bits; }

    int64_t quantize_input(float x, int32_t channel) const {
        return quantize_value(x, x_scales[size_t(channel)], x_bits);
    }
    // Rows of n_embd reals -> the client's integers.
    std::vector<int64_t> quantize_inputs(std::span<const float> x) const;

    // Table entries, for every input j in [0, 2^L).
    // The log code of bucket h (the same for q, k and v): m, or 2^L + m for a negative value.
    int64_t code_entry(int64_t h) const;
    double level(int64_t m) const; // T rho^(m - M), in bucket steps
    double code_value(int64_t code) const; // the signed level a code stands for (calibration, tests)
    // P(x), x = m_q + m_k, in units of step_q step_k / K; read negacyclically from code_q + code_k.
    int64_t score_product_entry(int64_t x) const;
    // A(x), x = alpha + m_v, in units of step_v / Lambda; read negacyclically from alpha + code_v.
    int64_t output_product_entry(int64_t x) const;
    double attention_weight(int64_t alpha) const; // rho^(alpha - 2^V)
    // Row maximum step: m + max(z - 2^V, 0) for z = c - m + 2^V.
    int64_t max_step_entry(int64_t z) const { return std::max<int64_t>(z - (int64_t{1} << value_bits), 0); }
    // (K - min(d, K)) 2^s, in units of S.
    int64_t window_entry(int64_t d) const;
    int64_t exp_value(int64_t score_bucket) const;
    // Lg in [-(2^(L-2)) + 1, 2^(L-2)].
    int64_t log_value(int64_t denominator_bucket, int32_t n) const;
    // z = h - Lg + 2^(L-2) in [0, 2^L - 2] -> the attention code alpha.
    int64_t attention_code(int64_t z) const;
    int64_t output_factor() const { return int64_t{2} << value_bits; } // Lambda
    double output_scale() const { return out_scale[kValue] / static_cast<double>(output_factor()); }
    // A negacyclic read of an L-bit table f at x in [0, 2^(L+1)): f(x), or -f(x - 2^L).
    int64_t read_negacyclic(int64_t (QuantizedHead::*f)(int64_t) const, int64_t x) const;
};

// Defined by concern: the semantics above in quantized_head.cpp, the integer stages and tables
// in head_stages.h, quantize_head in projection_calibration.cpp, the softmax calibration below
// in softmax_calibration.cpp.

// Calibrates and quantizes a head from its float weights and calibration inputs x
// ([sum(lengths), n_embd], the ln_1 outputs of whole sequences, one after the other).
// With calibrated_clipping (the default) the scales are chosen on those inputs, never at the cost
// of a bootstrap or of a wider score (whose exact roundings would then need a costlier parameter
// set):
//   - input scales: each channel's least-squared-error clip (mse_scale), or absmax where the
//     clipped inputs widen an accumulator past what its sign bootstraps round;
//   - v's weight clip (a fraction of the absmax of W', 0.30 .. 1.00): the least squared error of
//     its codes against the float values;
//   - q's and k's clips, and k's bias with or without its calibration mean (a constant on every
//     key is a constant on every row of scores, which softmax ignores): by coordinate descent,
//     the pair whose circuit attention (window calibrated as below) comes nearest to the float
//     attention. The product scale K drops where finer q and k steps would widen the scores;
//   - the softmax window and m against the float attention of the calibration rows.
// On fhegpt-tiny layer 0 (mean KL, eval prompts) a 4-bit head went from 0.0114 to 0.0089, a
// 5-bit one from 0.0024 to 0.0016, the 4-bit block from 0.088 to 0.050, with no bootstrap more.
QuantizedHead quantize_head(const model::HeadQkvWeights & weights, std::span<const float> x,
                            std::span<const int32_t> lengths, const HeadQuantConfig & config);

// Softmax calibration. The scores S_ij of every row of the calibration sequences (x_int: the
// quantized inputs, [sum(lengths), n_embd]), as the circuit computes them from q and k codes.
std::vector<std::vector<int64_t>> calibration_scores(const QuantizedHead & head, std::span<const int64_t> x_int,
                                                    std::span<const int32_t> lengths);
// Mean over rows of sum_j |a_ij - p_ij|: a the weight of the attention code the circuit reaches
// (fine bucket, exp, row sum, log, code), p the float softmax of the same scores.
double attention_error(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores);
// Sets window_bits and exp_reference (score_bits set): of the windows of 2^k' coarse buckets, a
// wider one aliases fewer low scores up into it, a narrower one has finer buckets; the head takes
// the one with the least attention_error. (The fixed rule E exp(-K coarse) < 1/2 it replaces gave
// a 4-bit fhegpt-tiny head a mean KL of 0.016; this, 0.011.) m is a high percentile (0.9) over rows
// of the largest relative score. quantize_head does the same against the float attention, which
// only it knows.
void calibrate_softmax(QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores);

// Number of rounding bootstraps to remove `shift` low bits in chunks of `chunk_bits`:
// two per chunk (circuit_builder.h).
int rounding_bootstraps(int shift, int chunk_bits);

} // namespace fhegpt::quant
