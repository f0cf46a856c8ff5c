// The encrypted residual stream and a LayerNorm on it, in integers: what layer_norm_circuit.h
// evaluates on ciphertexts.
//
// Residual stream (ResidualEncoding). Channel k of a position is the signed integer
// x_k = round(x_k real / unit_k), |x_k| < 2^(B-1), at the torus scale 2^(63 - B): one scale for
// every channel, so that additions are plain sums, and a unit per channel. It is kept centred
// (its mean over the channels is 0: the client centres its input, every c_proj writing into it
// is centred, model/gpt2_fold.h), so a LayerNorm of it is x / rms(x). Its integers must be exact
// (their noise far below one unit): the LayerNorms round them.
//
// LayerNorm (QuantizedLayerNorm), L = lut_bits, b = bucket_bits <= L, per position:
//   u_k      = x_k + 2^(w_k - 1) on w_k <= B bits (the channel's calibrated range at this point)
//   bucket   h_k = u_k >> (w_k - b), rounded exactly keeping its lowest bits as a residue
//            (CircuitBuilder::round_keeping_low_bits and kept_bits_for); centre c(h) = h - 2^(b-1)
//            + 1/2 steps of step_k = 2^(w_k - b) unit_k
//   square   q_k = round((c(h_k) step_k)^2 / square_unit)      one lookup per channel
//   S        = sum_k q_k on W_S bits; its L-bit bucket g = S >> (W_S - L), exactly
//   r code   m_r = the level r_level(m) = r_low rho^m (m in [0, B_r)) nearest to
//            1 / sqrt(S(g) square_unit / n + eps)                one lookup per position
//   x code   m_x = the level x_level(m) = rho^m / 2 (m in [0, A)) nearest to |c(h_k)|, written
//            on the L-bit grid as m_x (c > 0) or 2^L + m_x (c < 0): the padding bit carries the
//            sign                                                   one lookup
//   product  y_k = P_k(code_k + m_r), P_k(s) = round(rho^s r_low step_k gain_k / out_scale_k / 2),
//            clamped to +-out_max: x_level(m_x) r_level(m_r) depends on m_x + m_r alone, so one
//            negacyclic read gives the signed product (A + B <= 2^L + 1 keeps m_x + m_r < 2^L);
//            then + out_offset_k                                 one lookup per channel
// The x and r levels share the ratio rho: (2^b - 1)^(1/(A - 1)), with B_r as small as covers the
// calibrated spread of r (a token's rms varies by about 2x on fhegpt-tiny), so x keeps most of
// the L-bit table. The outputs are the next linear layer's input integers (gain 1: LayerNorm's
// own gain and bias are folded into that layer), or for ln_f the final hidden state itself
// (gain gamma_k, offset beta_k / out_scale_k).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::circuit {

struct ResidualEncoding {
    int width = 0;             // B
    std::vector<double> unit;  // [n_embd]
    int scale() const { return 63 - width; }
    int64_t max_value() const { return (int64_t{1} << (width - 1)) - 1; }
    // Rows of n_embd reals -> the stream's integers: each row centred, divided by the units,
    // rounded and clamped to +-max_value().
    std::vector<int64_t> quantize(std::span<const float> x) const;
};

struct QuantizedLayerNorm {
    int32_t n_embd = 0;
    int lut_bits = 0;              // L
    int bucket_bits = 0;           // b
    int residual_width = 0;        // B of the stream it reads
    std::vector<int> width;        // [n_embd] w_k in [b, B]
    std::vector<double> step;      // [n_embd] real value of one bucket step of channel k
    int sum_width = 0;             // W_S
    double square_unit = 1;        // real value (squared) of one unit of S
    float eps = 1e-5f;
    int x_levels = 0, r_levels = 0; // A, B_r
    double ratio = 1;              // rho
    double r_low = 1;              // r_level(0)
    std::vector<double> out_scale;  // [n_embd] real value of one unit of y_k
    std::vector<double> gain;       // [n_embd]
    std::vector<int64_t> out_offset; // [n_embd]
    int64_t out_max = 0;
    int out_delta = 0;              // torus scale of the outputs: y at 2^out_delta

    int shift(int32_t k) const { return width[size_t(k)] - bucket_bits; }
    int kept(int32_t k) const;
    int64_t offset(int32_t k) const { return int64_t{1} << (width[size_t(k)] - 1); }
    int sum_shift() const { return sum_width - lut_bits; }
    int sum_kept() const;
    double centre(int64_t h) const { return double(h - (int64_t{1} << (bucket_bits - 1))) + 0.5; }
    double x_level(int64_t m) const;
    double r_level(int64_t m) const;

    // Table entries for every b-bit bucket h, every L-bit S bucket g and every L-bit sum s.
    int64_t code_entry(int64_t h) const;                  // m_x, or 2^L + m_x for a negative centre
    int64_t square_entry(int32_t k, int64_t h) const;     // q_k
    int64_t r_code_entry(int64_t g) const;                // m_r of S bucket g
    int64_t product_entry(int32_t k, int64_t s) const;    // P_k(s), s = m_x + m_r
    // The rms reciprocal r of S bucket g (calibration, tests).
    double r_of_bucket(int64_t g) const;
};

// The ratio and level counts for L-bit product lookups, b-bit buckets and a spread r_max / r_min
// of r: the fewest r levels (B_r >= 2) whose span rho^(B_r - 1) covers the spread, with
// rho^(A - 1) = 2^b - 1 and A + B_r = 2^L + 1.
struct LevelSplit {
    int x_levels, r_levels;
    double ratio;
};
LevelSplit layer_norm_levels(int lut_bits, int bucket_bits, double r_spread);


} // namespace fhegpt::circuit
