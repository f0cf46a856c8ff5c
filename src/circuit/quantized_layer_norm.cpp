#include "circuit/quantized_layer_norm.h"

#include "circuit/circuit_builder.h"
#include "common/error.h"

#include <algorithm>
#include <cmath>

namespace fhegpt::circuit {

std::vector<int64_t> ResidualEncoding::quantize(std::span<const float> x) const {
    const size_t n_embd = unit.size();
    if (n_embd == 0 || x.size() % n_embd != 0) fail("residual stream: {} values in rows of {}", x.size(), n_embd);
    std::vector<int64_t> out(x.size());
    const double top = double(max_value());
    for (size_t row = 0; row < x.size(); row += n_embd) {
        double mean = 0;
        for (size_t k = 0; k < n_embd; ++k) mean += x[row + k];
        mean /= double(n_embd);
        for (size_t k = 0; k < n_embd; ++k)
            out[row + k] = static_cast<int64_t>(std::clamp(std::nearbyint((x[row + k] - mean) / unit[k]), -top, top));
    }
    return out;
}

int QuantizedLayerNorm::kept(int32_t k) const { return CircuitBuilder::kept_bits_for(shift(k), bucket_bits, lut_bits); }

int QuantizedLayerNorm::sum_kept() const { return std::clamp(sum_shift() - 2, 0, lut_bits); }

double QuantizedLayerNorm::x_level(int64_t m) const { return 0.5 * std::pow(ratio, double(m)); }

double QuantizedLayerNorm::r_level(int64_t m) const { return r_low * std::pow(ratio, double(m)); }

int64_t QuantizedLayerNorm::code_entry(int64_t h) const {
    const double c = centre(h);
    // Levels rho^m / 2: the nearest in log terms, as for the head's codes the nearest value.
    int64_t best = 0;
    for (int64_t m = 1; m < x_levels; ++m)
        if (std::fabs(x_level(m) - std::fabs(c)) < std::fabs(x_level(best) - std::fabs(c))) best = m;
    return c > 0 ? best : (int64_t{1} << lut_bits) + best;
}

int64_t QuantizedLayerNorm::square_entry(int32_t k, int64_t h) const {
    const double v = centre(h) * step[size_t(k)];
    return static_cast<int64_t>(std::nearbyint(v * v / square_unit));
}

double QuantizedLayerNorm::r_of_bucket(int64_t g) const {
    const double sum = (double(g) + 0.5) * std::ldexp(1.0, sum_shift()) * square_unit;
    return 1.0 / std::sqrt(sum / double(n_embd) + double(eps));
}

int64_t QuantizedLayerNorm::r_code_entry(int64_t g) const {
    const double m = std::log(r_of_bucket(g) / r_low) / std::log(ratio);
    return static_cast<int64_t>(std::clamp(std::nearbyint(m), 0.0, double(r_levels - 1)));
}

int64_t QuantizedLayerNorm::product_entry(int32_t k, int64_t s) const {
    const double v = 0.5 * std::pow(ratio, double(s)) * r_low * step[size_t(k)] * gain[size_t(k)] / out_scale[size_t(k)];
    return static_cast<int64_t>(std::clamp(std::nearbyint(v), -double(out_max), double(out_max)));
}

LevelSplit layer_norm_levels(int lut_bits, int bucket_bits, double r_spread) {
    if (lut_bits < 3 || lut_bits > 12 || bucket_bits < 2 || bucket_bits > lut_bits)
        fail("layer norm: {}-bit buckets, {}-bit lookups", bucket_bits, lut_bits);
    const double entries = std::ldexp(1.0, lut_bits), span = std::ldexp(1.0, bucket_bits) - 1;
    for (int r_levels = 2;; ++r_levels) {
        const int x_levels = int(entries) + 1 - r_levels;
        const double ratio = std::pow(span, 1.0 / double(x_levels - 1));
        if (std::pow(ratio, double(r_levels - 1)) >= r_spread || x_levels <= 2) return {x_levels, r_levels, ratio};
    }
}

} // namespace fhegpt::circuit
