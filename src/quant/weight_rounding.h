// Error-compensating weight rounding on calibration inputs, after GPTQ (Frantar et al., "GPTQ:
// Accurate Post-Training Quantization for Generative Pre-trained Transformers", 2022).
//
// Rounding every weight to its nearest level makes errors that add up in W x. GPTQ rounds the
// rows (input channels) one at a time and moves each row's rounding error onto the rows not yet
// rounded, weighted by how the calibration inputs correlate (the Gram matrix H = X^T X), so that
// the output W x moves as little as possible. The bias is the last, never rounded row: it takes
// the mean error too. The inputs are the quantized ones the circuit sees (x_int).
//
// Measured on fhegpt-tiny layer 0 (fhegpt eval, mean KL of the next-token distributions): it
// lowers the KL of one head at 3-5 bits (0.098 -> 0.077 at 3 bits) and of the attention block
// at 4-6 bits (0.182 -> 0.152 at 4 bits); elsewhere both are within 2%. A least-squares refit
// of the weights to the float outputs before rounding was tried: it overfits the calibration
// prompts (the KL at 8 bits went up sixfold).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

enum class WeightRounding {
    nearest, // every weight to its nearest level
    gptq,    // error-compensating, on the calibration inputs, from 3 weight bits on
};

// What `requested` does at `bits` weight bits: 2-bit weights (levels -1, 0, 1) round to
// nearest, because there GPTQ's compensation overshoots (measured on fhegpt-tiny layer 0: the
// KL of one head doubled, of the block went up by 28%).
inline WeightRounding effective_weight_rounding(WeightRounding requested, int bits) {
    return bits < 3 ? WeightRounding::nearest : requested;
}
inline const char * weight_rounding_name(WeightRounding rounding) {
    return rounding == WeightRounding::gptq ? "gptq" : "nearest";
}

// Relative damping of the Gram matrix (GPTQ's default): keeps H invertible where calibration
// inputs are few or collinear.
inline constexpr double kGptqDamping = 0.01;

// H = A^T A of the inputs with a constant 1 appended: [(dim + 1), (dim + 1)] row-major.
// x: [samples, dim] row-major.
std::vector<double> augmented_gram(std::span<const int64_t> x, int64_t samples, int32_t dim);

struct RoundedWeights {
    std::vector<int64_t> values; // [dim, cols], each in [-max_level(bits), max_level(bits)]
    std::vector<double> bias;    // [cols], real, in units of the column's scale
};

// The factor GPTQ's updates read: the upper Cholesky factor U of (H + damping)^-1 (stored as the
// lower factor of H^-1, [(dim + 1), (dim + 1)]). It depends on the inputs alone, so one serves
// every matrix rounded on them (a head's calibration rounds each projection at many clips).
struct GptqFactor {
    int32_t dim = 0;
    std::vector<double> lower;
};
GptqFactor gptq_factor(std::span<const double> gram, int32_t dim, double damp);

// Rounds w ([(dim + 1), cols], the last row the bias; real values) to integers times scales[c]
// in column c, GPTQ order 0..dim-1, the bias row absorbing what is left.
RoundedWeights round_weights_gptq(std::span<const double> w, int32_t dim, int32_t cols,
                                  std::span<const double> scales, int bits, const GptqFactor & factor);
RoundedWeights round_weights_gptq(std::span<const double> w, int32_t dim, int32_t cols,
                                  std::span<const double> scales, int bits, std::span<const double> gram, double damp);

} // namespace fhegpt::quant
