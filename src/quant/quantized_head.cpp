// The quantized head's semantics (quantized_head.h): widths, levels and every table's entries.
#include "quant/quantized_head.h"

#include "common/error.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fhegpt::quant {

namespace {

int bit_width_of(int64_t magnitude) { return static_cast<int>(std::bit_width(static_cast<uint64_t>(magnitude))); }

// Lower edge + half a bucket: the centre of bucket h of width 2^shift (exact when shift == 0).
double bucket_centre(int64_t bucket, int shift) {
    return static_cast<double>(bucket) * std::ldexp(1.0, shift) + (shift > 0 ? std::ldexp(1.0, shift - 1) : 0.0);
}

double round_clip(double x, double lo, double hi) { return std::clamp(std::nearbyint(x), lo, hi); }

} // namespace

int rounding_bootstraps(int shift, int chunk_bits) {
    if (shift <= 0) return 0;
    return 2 * ((shift + chunk_bits - 1) / chunk_bits);
}

int64_t QuantizedHead::accumulator_offset(int p, int32_t c) const { return int64_t{1} << (column_bits(p, c) - 1); }

double QuantizedHead::score_bucket_width() const { return std::ldexp(1.0, fine_shift()) * score_unit; }

int QuantizedHead::denominator_bits(int32_t n) const {
    return std::max(bit_width_of(exp_max() * n), lut_bits);
}

int QuantizedHead::output_bits(int32_t n) const {
    if (output_width > 0) return output_width;
    // Every weight is at most 1 and every level at most T < 2^V: |O| <= n Lambda 2^V.
    return bit_width_of(int64_t{n} * output_factor() * (int64_t{1} << value_bits)) + 1;
}

int64_t QuantizedHead::accumulator(int p, int32_t column, std::span<const int64_t> x_row) const {
    const QuantizedMatrix & w = weights[p];
    int64_t acc = bias[p][static_cast<size_t>(column)];
    for (int32_t r = 0; r < n_embd; ++r) acc += w.values[size_t(r) * w.cols + column] * x_row[static_cast<size_t>(r)];
    return acc;
}

std::vector<int64_t> QuantizedHead::quantize_inputs(std::span<const float> x) const {
    if (n_embd <= 0 || x.size() % size_t(n_embd) != 0) fail("quantized head: {} inputs, rows of {}", x.size(), n_embd);
    std::vector<int64_t> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = quantize_input(x[i], int32_t(i % size_t(n_embd)));
    return out;
}

namespace {

double level_ratio(int lut_bits, int64_t top_code) {
    return std::pow(std::ldexp(1.0, lut_bits) - 1.0, 1.0 / double(top_code)); // rho
}

// The index in [0, last] whose value(index) is nearest to target (the lowest on a tie), for an
// increasing value(): a binary search for the first value at or above target, then the nearer
// of it and the one below (calibration reads every table entry many times: 2^L entries, up to
// 2^(L-1) + 1 levels).
template <class Value> int64_t nearest_index(int64_t last, Value value, double target) {
    int64_t lo = 0, hi = last; // the first index with value >= target, or last
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (value(mid) < target) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && std::fabs(value(lo - 1) - target) <= std::fabs(value(lo) - target)) return lo - 1;
    return lo;
}

} // namespace

double QuantizedHead::level(int64_t m) const {
    const double top = std::ldexp(1.0, value_bits) - 0.5; // T
    return top * std::pow(level_ratio(lut_bits, top_code()), double(m - top_code()));
}

int64_t QuantizedHead::code_entry(int64_t h) const {
    const double centre = double(h - (int64_t{1} << value_bits)) + 0.5;
    const int64_t m = nearest_index(top_code(), [&](int64_t i) { return level(i); }, std::fabs(centre));
    return centre > 0 ? m : (int64_t{1} << lut_bits) + m;
}

double QuantizedHead::code_value(int64_t code) const {
    const int64_t p = int64_t{1} << lut_bits;
    return code >= p ? -level(code - p) : level(code);
}

int64_t QuantizedHead::score_product_entry(int64_t x) const {
    // level(m_q) level(m_k) with x = m_q + m_k
    const double product = level(top_code()) * level(x - top_code());
    return static_cast<int64_t>(std::nearbyint(double(product_scale()) * product));
}

double QuantizedHead::attention_weight(int64_t alpha) const {
    return std::pow(level_ratio(lut_bits, top_code()), double(alpha - top_attention_code()));
}

int64_t QuantizedHead::output_product_entry(int64_t x) const {
    // weight(alpha) level(m) with x = alpha + m
    const double product = attention_weight(x - top_code()) * level(top_code());
    return static_cast<int64_t>(std::nearbyint(double(output_factor()) * product));
}

int64_t QuantizedHead::read_negacyclic(int64_t (QuantizedHead::*f)(int64_t) const, int64_t x) const {
    const int64_t p = int64_t{1} << lut_bits;
    x &= 2 * p - 1;
    return x < p ? (this->*f)(x) : -(this->*f)(x - p);
}

int64_t QuantizedHead::window_entry(int64_t d) const {
    const int64_t K = (int64_t{1} << window_bits) - 1;
    return (K - std::min(d, K)) * (int64_t{1} << score_shift());
}

double QuantizedHead::relative_score(int64_t fine_bucket) const {
    return (bucket_centre(fine_bucket, fine_shift()) - std::ldexp(1.0, score_shift() + window_bits)) * score_unit;
}

int64_t QuantizedHead::exp_value(int64_t fine_bucket) const {
    const double e = double(exp_max()) * std::exp(relative_score(fine_bucket) - exp_reference);
    return static_cast<int64_t>(round_clip(e, 0.0, double(exp_max())));
}

int64_t QuantizedHead::log_value(int64_t denominator_bucket, int32_t n) const {
    const int64_t lo = -(int64_t{1} << (lut_bits - 2)) + 1, hi = int64_t{1} << (lut_bits - 2);
    const double centre = bucket_centre(denominator_bucket, denominator_shift(n));
    if (centre <= 0) return lo;
    const double lg = std::log(centre / double(exp_max())) / score_bucket_width();
    return static_cast<int64_t>(round_clip(lg, double(lo), double(hi)));
}

int64_t QuantizedHead::attention_code(int64_t z) const {
    const int64_t diff = z - (int64_t{1} << (lut_bits - 2)); // g - Lg
    const double s = double(diff) * score_bucket_width() + relative_score(0) - exp_reference;
    return nearest_index(top_attention_code(), [&](int64_t alpha) { return attention_weight(alpha); },
                         std::exp(std::min(s, 0.0)));
}

} // namespace fhegpt::quant
