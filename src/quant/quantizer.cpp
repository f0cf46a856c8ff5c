#include "quant/quantizer.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>

namespace fhegpt::quant {

int64_t max_level(int bits) {
    if (bits < 2 || bits > 24) fail("quantizer: {} bits, supported 2..24", bits);
    return (int64_t{1} << (bits - 1)) - 1;
}

double symmetric_scale(double absmax, int bits) {
    const int64_t levels = max_level(bits);
    return absmax > 0 ? absmax / static_cast<double>(levels) : 1.0;
}

int64_t quantize_value(double x, double scale, int bits) {
    const int64_t levels = max_level(bits);
    const double q = std::nearbyint(x / scale);
    return static_cast<int64_t>(std::clamp(q, -static_cast<double>(levels), static_cast<double>(levels)));
}

double absmax(std::span<const float> values) {
    double m = 0;
    for (float v : values) m = std::max(m, static_cast<double>(std::fabs(v)));
    return m;
}

double mse_scale(std::span<const float> values, int bits) {
    const double top = absmax(values), levels = static_cast<double>(max_level(bits));
    if (top == 0) return 1.0;
    double best_error = 0, best_scale = 0;
    for (int percent = 100; percent >= 20; --percent) {
        const double scale = top * percent / 100.0 / levels;
        double error = 0;
        for (float v : values) {
            const double e = std::clamp(std::nearbyint(v / scale), -levels, levels) * scale - v;
            error += e * e;
        }
        if (best_scale == 0 || error < best_error) {
            best_error = error;
            best_scale = scale;
        }
    }
    return best_scale;
}

QuantizedMatrix quantize_matrix(const float * data, int32_t rows, int32_t cols, int32_t ld, int bits,
                                bool per_channel) {
    QuantizedMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.values.resize(static_cast<size_t>(rows) * cols);
    m.scales.assign(static_cast<size_t>(cols), 0.0);
    std::vector<double> col_absmax(static_cast<size_t>(cols), 0.0);
    for (int32_t r = 0; r < rows; ++r)
        for (int32_t c = 0; c < cols; ++c)
            col_absmax[c] = std::max(col_absmax[c], static_cast<double>(std::fabs(data[size_t(r) * ld + c])));
    const double tensor_absmax = *std::max_element(col_absmax.begin(), col_absmax.end());
    for (int32_t c = 0; c < cols; ++c)
        m.scales[c] = symmetric_scale(per_channel ? col_absmax[c] : tensor_absmax, bits);
    for (int32_t r = 0; r < rows; ++r)
        for (int32_t c = 0; c < cols; ++c)
            m.values[size_t(r) * cols + c] = quantize_value(data[size_t(r) * ld + c], m.scales[c], bits);
    return m;
}

} // namespace fhegpt::quant
