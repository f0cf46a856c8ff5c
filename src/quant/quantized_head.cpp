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

// What a bootstrap reads from a value u whose low `shift` bits were removed exactly: the
// message j = (u >> shift) mod 2^(L+1); j >= 2^L (padding bit set, i.e. u out of range) reads
// the table negated (negacyclic). In range, this is table(u >> shift).
template <typename Table>
int64_t negacyclic_read(int64_t u, int shift, int lut_bits, const Table & table) {
    const int64_t p = int64_t{1} << lut_bits;
    const int64_t j = (u >> shift) & (2 * p - 1);
    return j < p ? table(j) : -table(j - p);
}

struct ProjectedInts {
    std::vector<int64_t> values[3]; // [n, head_dim]
};

ProjectedInts project(const QuantizedHead & head, std::span<const int64_t> x_int, int32_t n) {
    ProjectedInts out;
    const int32_t d = head.head_dim;
    for (int p = 0; p < 3; ++p) {
        out.values[p].resize(static_cast<size_t>(n) * d);
        for (int32_t i = 0; i < n; ++i)
            for (int32_t c = 0; c < d; ++c) {
                const int64_t u = head.accumulator(p, c, x_int.subspan(size_t(i) * head.n_embd, head.n_embd)) +
                                  (int64_t{1} << (head.acc_bits - 1));
                out.values[p][size_t(i) * d + c] = negacyclic_read(
                    u, head.acc_shift(), head.lut_bits, [&](int64_t h) { return head.projection_value(p, c, h); });
            }
    }
    return out;
}

int64_t dot_qk(const ProjectedInts & v, int32_t i, int32_t j, int32_t d) {
    int64_t s = 0;
    for (int32_t c = 0; c < d; ++c) s += v.values[kQuery][size_t(i) * d + c] * v.values[kKey][size_t(j) * d + c];
    return 2 * s;
}

} // namespace

double QuantizedHead::score_bucket_width() const { return std::ldexp(1.0, score_shift()) * score_unit; }

int QuantizedHead::denominator_bits(int32_t n) const {
    return std::max(bit_width_of(exp_max() * n), lut_bits);
}

int QuantizedHead::output_bits(int32_t n) const {
    return bit_width_of(2 * int64_t{n} * exp_max() * (int64_t{1} << (value_bits - 1))) + 1;
}

int64_t QuantizedHead::accumulator(int p, int32_t column, std::span<const int64_t> x_row) const {
    const QuantizedMatrix & w = weights[p];
    int64_t acc = bias[p][static_cast<size_t>(column)];
    for (int32_t r = 0; r < n_embd; ++r) acc += w.values[size_t(r) * w.cols + column] * x_row[static_cast<size_t>(r)];
    return acc;
}

int64_t QuantizedHead::projection_value(int p, int32_t column, int64_t bucket) const {
    const double acc = bucket_centre(bucket, acc_shift()) - std::ldexp(1.0, acc_bits - 1);
    const double real = acc * x_scale * weights[p].scales[static_cast<size_t>(column)];
    return static_cast<int64_t>(round_clip(real / out_scale[p], double(value_min()), double(value_max())));
}

int64_t QuantizedHead::exp_value(int64_t score_bucket) const {
    const double s = bucket_centre(score_bucket, score_shift()) - std::ldexp(1.0, score_bits - 1);
    const double e = double(exp_max()) * std::exp(s * score_unit - exp_reference);
    return static_cast<int64_t>(round_clip(e, 0.0, double(exp_max())));
}

int64_t QuantizedHead::log_value(int64_t denominator_bucket, int32_t n) const {
    const int64_t lo = -(int64_t{1} << (lut_bits - 2)) + 1, hi = int64_t{1} << (lut_bits - 2);
    const double centre = bucket_centre(denominator_bucket, denominator_shift(n));
    if (centre <= 0) return lo;
    const double lg = std::log(centre / double(exp_max())) / score_bucket_width();
    return static_cast<int64_t>(round_clip(lg, double(lo), double(hi)));
}

int64_t QuantizedHead::attention_value(int64_t z) const {
    const int64_t diff = z - (int64_t{1} << (lut_bits - 2)); // h - Lg
    const double offset = bucket_centre(0, score_shift()) - std::ldexp(1.0, score_bits - 1);
    const double s = double(diff) * score_bucket_width() + offset * score_unit - exp_reference;
    return static_cast<int64_t>(round_clip(double(exp_max()) * std::exp(s), 0.0, double(exp_max())));
}

std::vector<int64_t> quantized_head_forward(const QuantizedHead & head, std::span<const int64_t> x_int, int32_t n) {
    if (n <= 0 || x_int.size() != size_t(n) * head.n_embd)
        fail("quantized head: {} inputs for {} positions of {}", x_int.size(), n, head.n_embd);
    const int32_t d = head.head_dim;
    const int L = head.lut_bits;
    const ProjectedInts v = project(head, x_int, n);
    std::vector<int64_t> out(size_t(n) * d, 0);
    std::vector<int64_t> bucket(static_cast<size_t>(n)), a(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
        int64_t denominator = 0;
        for (int32_t j = 0; j <= i; ++j) {
            const int64_t u = dot_qk(v, i, j, d) + (int64_t{1} << (head.score_bits - 1));
            // Encoded on B_S + 1 bits: the read keeps L bits of which the top is the headroom bit.
            const int64_t h = (u >> head.score_shift()) & ((int64_t{1} << (L + 1)) - 1);
            bucket[j] = h;
            denominator += negacyclic_read(u, head.score_shift(), L, [&](int64_t b) { return head.exp_value(b); });
        }
        const int64_t lg = negacyclic_read(denominator, head.denominator_shift(n), L,
                                           [&](int64_t b) { return head.log_value(b, n); });
        for (int32_t j = 0; j <= i; ++j) {
            const int64_t z = bucket[j] + (int64_t{1} << (L - 2)) - lg;
            a[j] = negacyclic_read(z, 0, L, [&](int64_t b) { return head.attention_value(b); });
        }
        for (int32_t c = 0; c < d; ++c) {
            int64_t o = 0;
            for (int32_t j = 0; j <= i; ++j) o += 2 * a[j] * v.values[kValue][size_t(j) * d + c];
            out[size_t(i) * d + c] = o;
        }
    }
    return out;
}

QuantizedHead quantize_head(const model::HeadQkvWeights & w, std::span<const float> x, std::span<const int32_t> lengths,
                            const HeadQuantConfig & config) {
    if (config.n_bits < 2 || config.n_bits > 16) fail("quantize: n_bits {} outside 2..16", config.n_bits);
    const int weight_bits = config.weight_bits ? config.weight_bits : config.n_bits;
    if (weight_bits < 2 || weight_bits > 16) fail("quantize: weight bits {} outside 2..16", weight_bits);
    const int lut_bits = config.lut_bits ? config.lut_bits : std::max(3, std::min(config.n_bits, 12));
    if (lut_bits < 3 || lut_bits > 12) fail("quantize: lookup width {} outside 3..12", lut_bits);
    int64_t total = 0;
    for (int32_t len : lengths) {
        if (len <= 0) fail("quantize: empty calibration sequence");
        total += len;
    }
    if (total == 0 || x.size() != size_t(total) * w.n_embd)
        fail("quantize: {} calibration values for {} positions of {}", x.size(), total, w.n_embd);

    QuantizedHead head;
    head.config = config;
    head.n_embd = w.n_embd;
    head.head_dim = w.head_dim;
    head.x_bits = config.n_bits;
    head.lut_bits = lut_bits;
    head.value_bits = lut_bits - 1;
    head.x_scale = symmetric_scale(absmax(x), head.x_bits);
    const int32_t d = w.head_dim, n_embd = w.n_embd;
    const float * w_p[3] = {w.w_q, w.w_k, w.w_v};
    const float * b_p[3] = {w.b_q, w.b_k, w.b_v};

    std::vector<int64_t> x_int(x.size());
    for (size_t i = 0; i < x.size(); ++i) x_int[i] = head.quantize_input(x[i]);

    int64_t acc_absmax = 0;
    for (int p = 0; p < 3; ++p) {
        head.weights[p] = quantize_matrix(w_p[p], n_embd, d, w.ldw, weight_bits, config.per_channel);
        head.bias[p].resize(static_cast<size_t>(d));
        double float_absmax = 0;
        for (int32_t c = 0; c < d; ++c)
            head.bias[p][c] = static_cast<int64_t>(std::nearbyint(b_p[p][c] / (head.x_scale * head.weights[p].scales[c])));
        for (int64_t i = 0; i < total; ++i) {
            for (int32_t c = 0; c < d; ++c) {
                double f = b_p[p][c];
                for (int32_t r = 0; r < n_embd; ++r) f += double(x[size_t(i) * n_embd + r]) * w_p[p][size_t(r) * w.ldw + c];
                float_absmax = std::max(float_absmax, std::fabs(f));
                const int64_t acc = head.accumulator(p, c, std::span(x_int).subspan(size_t(i) * n_embd, n_embd));
                acc_absmax = std::max(acc_absmax, acc < 0 ? -acc : acc);
            }
        }
        head.out_scale[p] = symmetric_scale(float_absmax, head.value_bits);
    }
    head.acc_bits = std::max(bit_width_of(acc_absmax) + 1, lut_bits);
    head.score_unit = head.out_scale[kQuery] * head.out_scale[kKey] / 2.0 / std::sqrt(double(d));

    // Score range and reference from the quantized q, k of the calibration sequences.
    int64_t score_absmax = 0;
    std::vector<std::vector<int64_t>> scores;
    int64_t offset = 0;
    for (int32_t len : lengths) {
        const ProjectedInts v = project(head, std::span(x_int).subspan(size_t(offset) * n_embd, size_t(len) * n_embd), len);
        for (int32_t i = 0; i < len; ++i) {
            std::vector<int64_t> row;
            for (int32_t j = 0; j <= i; ++j) {
                row.push_back(dot_qk(v, i, j, d));
                score_absmax = std::max(score_absmax, std::abs(row.back()));
            }
            scores.push_back(std::move(row));
        }
        offset += len;
    }
    head.score_bits = std::max(bit_width_of(score_absmax) + 1, lut_bits - 1);
    // m: a high percentile over rows of the largest (bucketed) score, so that most rows keep
    // their top attention weights inside the exp table's range without saturating.
    std::vector<double> row_max;
    for (const auto & row : scores) {
        double best = -1e300;
        for (int64_t s : row) {
            const int64_t u = s + (int64_t{1} << (head.score_bits - 1));
            const int64_t h = u >> head.score_shift();
            const double centre = bucket_centre(h, head.score_shift()) - std::ldexp(1.0, head.score_bits - 1);
            best = std::max(best, centre * head.score_unit);
        }
        row_max.push_back(best);
    }
    // The 90th percentile: measured on fhegpt-tiny layer 0 (quantiles 0.1 .. 1.0), it keeps the
    // best top-1 agreement from 4 to 8 bits; the maximum underflows typical rows, the median
    // saturates too many.
    std::sort(row_max.begin(), row_max.end());
    head.exp_reference = row_max[std::min(row_max.size() - 1, size_t(0.9 * double(row_max.size())))];
    return head;
}

} // namespace fhegpt::quant
