#include "circuit/quantized_mlp.h"

#include "circuit/circuit_builder.h"
#include "common/error.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace fhegpt::circuit {

int QuantizedMlp::kept(int32_t c) const { return CircuitBuilder::kept_bits_for(shift(c), bucket_bits, lut_bits); }

int QuantizedMlp::input_scale() const {
    const int widest = *std::max_element(width.begin(), width.end());
    return 63 - widest;
}

double QuantizedMlp::gelu(double x) const {
    if (gelu_tanh) return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

double QuantizedMlp::gelu_mean(int32_t c, int64_t h) const {
    // The bucket holds the accumulators h 2^s - 2^(w-1) .. (h + 1) 2^s - 2^(w-1) - 1: the mean
    // of GELU over them (32 slices of the interval they cover), which a bucket on GELU's bend
    // needs more than its value at the centre.
    const int s = shift(c);
    const int64_t first = h * (int64_t{1} << s) - offset(c);
    if (s == 0) return gelu(double(first) * fc_unit);
    const double lo = (double(first) - 0.5) * fc_unit, span = std::ldexp(1.0, s) * fc_unit;
    double sum = 0;
    constexpr int kSlices = 32;
    for (int i = 0; i < kSlices; ++i) sum += gelu(lo + span * (double(i) + 0.5) / kSlices);
    return sum / kSlices;
}

int64_t QuantizedMlp::gelu_entry(int32_t c, int64_t h) const {
    return static_cast<int64_t>(std::nearbyint(gelu_mean(c, h) / gelu_unit[size_t(c)]));
}

std::vector<int64_t> QuantizedMlp::quantize_inputs(std::span<const float> x) const {
    if (n_embd <= 0 || x.size() % size_t(n_embd) != 0) fail("quantized MLP: {} inputs, rows of {}", x.size(), n_embd);
    std::vector<int64_t> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = quant::quantize_value(x[i], x_scales[i % size_t(n_embd)], x_bits);
    return out;
}

} // namespace fhegpt::circuit
