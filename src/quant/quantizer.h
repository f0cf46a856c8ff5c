// Symmetric uniform quantizers (the founding document's post-training quantization): a real x
// becomes the integer clip(round(x / scale), -L, L) with L = 2^(bits-1) - 1, and
// scale = absmax / L from calibration. Narrow range [-L, L] keeps the grid symmetric.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

// Largest level of a signed `bits`-bit symmetric quantizer (bits >= 2).
int64_t max_level(int bits);
// absmax / max_level(bits); a zero range gets scale 1 (every value quantizes to 0).
double symmetric_scale(double absmax, int bits);
int64_t quantize_value(double x, double scale, int bits);
double absmax(std::span<const float> values);
// The scale of the clip c absmax / max_level(bits), c in 0.20, 0.21, .., 1.00, whose quantization
// of `values` has the least squared error. At 4 bits a channel's absmax is often an outlier that
// leaves most of its values on two or three levels; clipping the outlier costs less.
double mse_scale(std::span<const float> values, int bits);

// A [rows, cols] row-major float matrix quantized column-wise: per_channel gives every column
// its own scale, otherwise one scale for the whole matrix.
struct QuantizedMatrix {
    int32_t rows = 0, cols = 0;
    std::vector<int64_t> values;  // [rows, cols]
    std::vector<double> scales;   // [cols] (all equal when per-tensor)
};
// Reads a strided matrix: element (r, c) at data[r * ld + c].
QuantizedMatrix quantize_matrix(const float * data, int32_t rows, int32_t cols, int32_t ld, int bits,
                                bool per_channel);

} // namespace fhegpt::quant
