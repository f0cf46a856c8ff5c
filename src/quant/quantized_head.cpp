#include "quant/quantized_head.h"

#include "common/error.h"
#include "quant/weight_rounding.h"

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

// The q/k/v bucket of an accumulator that fits its column (calibration only).
int64_t bucket_of(const QuantizedHead & head, int p, int32_t c, int64_t acc) {
    return (acc + head.accumulator_offset(p, c)) >> head.column_shift(p, c);
}

// q (or k) log codes of n positions (code_entry).
std::vector<int64_t> project(const QuantizedHead & head, int p, std::span<const int64_t> x_int, int32_t n) {
    const int32_t d = head.head_dim;
    std::vector<int64_t> out(size_t(n) * d);
    for (int32_t i = 0; i < n; ++i)
        for (int32_t c = 0; c < d; ++c) {
            const int64_t acc = head.accumulator(p, c, x_int.subspan(size_t(i) * head.n_embd, head.n_embd));
            out[size_t(i) * d + c] = head.code_entry(bucket_of(head, p, c, acc));
        }
    return out;
}

// Does every accumulator of column c fit its encoding (u = acc + 2^(width-1) in [0, 2^width))?
bool fits(std::span<const int64_t> accs, int width) {
    const int64_t offset = int64_t{1} << (width - 1);
    for (int64_t a : accs)
        if (a + offset < 0 || a + offset >= (int64_t{1} << width)) return false;
    return true;
}

// The fine buckets g_ij of calibration rows of scores S_ij, as the circuit computes them
// (quantized_head.h): u_S modulo its encoding, the row's top by a chain of steps on differences
// modulo 2^L, and the score relative to it.
std::vector<std::vector<int64_t>> fine_buckets(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    const int s = head.score_shift(), V = head.value_bits;
    const int64_t u_mask = (int64_t{1} << (head.score_bits + 1)) - 1, c_mask = (int64_t{1} << head.lut_bits) - 1;
    std::vector<std::vector<int64_t>> out;
    out.reserve(scores.size());
    for (const auto & row : scores) {
        std::vector<int64_t> u(row.size()), c(row.size()), fine(row.size());
        for (size_t j = 0; j < row.size(); ++j) {
            u[j] = (row[j] + (int64_t{1} << (head.score_bits - 1))) & u_mask;
            c[j] = u[j] >> s;
        }
        int64_t top = c[0];
        for (size_t j = 1; j < row.size(); ++j)
            top = (top + head.max_step_entry((c[j] - top + (int64_t{1} << V)) & c_mask)) & c_mask;
        for (size_t j = 0; j < row.size(); ++j)
            fine[j] = (u[j] - (c[j] << s) + head.window_entry((top - c[j]) & c_mask)) >> head.fine_shift();
        out.push_back(std::move(fine));
    }
    return out;
}

// m: a high percentile over rows of the largest relative score, so that most rows keep their
// top attention weights inside the exp table's range without saturating. The 90th: measured
// on fhegpt-tiny layer 0 (quantiles 0.1 .. 1.0), it kept the best top-1 agreement from 4 to 8
// bits; the maximum underflows typical rows, the median saturates too many.
double exp_reference_of(const std::vector<std::vector<int64_t>> & fine, const QuantizedHead & head) {
    std::vector<double> row_max;
    for (const auto & row : fine) {
        double best = -1e300;
        for (int64_t g : row) best = std::max(best, head.relative_score(g));
        row_max.push_back(best);
    }
    std::sort(row_max.begin(), row_max.end());
    return row_max[std::min(row_max.size() - 1, size_t(0.9 * double(row_max.size())))];
}

// Mean over rows of sum_j |a_ij - p_ij|: a the weight of the circuit's attention code, p the
// softmax of the row's scores.
double attention_error(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores,
                       const std::vector<std::vector<int64_t>> & fine) {
    const int L = head.lut_bits;
    double total = 0;
    for (size_t r = 0; r < scores.size(); ++r) {
        const auto & row = scores[r];
        const int32_t n = static_cast<int32_t>(row.size());
        int64_t denominator = 0;
        for (int64_t g : fine[r]) denominator += head.exp_value(g);
        const int64_t log = head.log_value(denominator >> head.denominator_shift(n), n);
        const int64_t top = *std::max_element(row.begin(), row.end());
        double sum = 0;
        for (int64_t v : row) sum += std::exp(double(v - top) * head.score_unit);
        for (int32_t j = 0; j < n; ++j) {
            const double p = std::exp(double(row[j] - top) * head.score_unit) / sum;
            const int64_t z = fine[r][j] + (int64_t{1} << (L - 2)) - log;
            // Outside [0, 2^L) the circuit's read is negacyclic: no weight it could mean.
            const double a = z >= 0 && z < (int64_t{1} << L) ? head.attention_weight(head.attention_code(z)) : 1.0 + p;
            total += std::fabs(a - p);
        }
    }
    return total / double(scores.size());
}

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

// The index in [0, last] whose value(index) is nearest to target (the lowest on a tie).
template <class Value> int64_t nearest_index(int64_t last, Value value, double target) {
    int64_t best = 0;
    for (int64_t i = 1; i <= last; ++i)
        if (std::fabs(value(i) - target) < std::fabs(value(best) - target)) best = i;
    return best;
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

QuantizedHead quantize_head(const model::HeadQkvWeights & w, std::span<const float> x, std::span<const int32_t> lengths,
                            const HeadQuantConfig & config) {
    if (config.n_bits < 2 || config.n_bits > 16) fail("quantize: n_bits {} outside 2..16", config.n_bits);
    const int weight_bits = config.weight_bits ? config.weight_bits : config.n_bits;
    if (weight_bits < 2 || weight_bits > 16) fail("quantize: weight bits {} outside 2..16", weight_bits);
    const int lut_bits = config.lut_bits ? config.lut_bits : std::max(3, std::min(config.n_bits, 12));
    if (lut_bits < 3 || lut_bits > 12) fail("quantize: lookup width {} outside 3..12", lut_bits);
    if (config.rounding_chunk_bits < 0 || config.rounding_chunk_bits > lut_bits)
        fail("quantize: rounding chunks of {} bits with {}-bit lookups", config.rounding_chunk_bits, lut_bits);
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
    const int32_t d = w.head_dim, n_embd = w.n_embd;
    std::vector<double> channel_absmax(static_cast<size_t>(n_embd), 0.0);
    for (size_t i = 0; i < x.size(); ++i)
        channel_absmax[i % size_t(n_embd)] = std::max(channel_absmax[i % size_t(n_embd)], double(std::fabs(x[i])));
    const double tensor_absmax = *std::max_element(channel_absmax.begin(), channel_absmax.end());
    head.x_scales.resize(static_cast<size_t>(n_embd));
    for (int32_t r = 0; r < n_embd; ++r)
        head.x_scales[r] = symmetric_scale(config.input_per_channel ? channel_absmax[r] : tensor_absmax, head.x_bits);
    const int chunk = head.chunk_bits();
    const float * w_p[3] = {w.w_q, w.w_k, w.w_v};
    const float * b_p[3] = {w.b_q, w.b_k, w.b_v};

    const std::vector<int64_t> x_int = head.quantize_inputs(x);
    const bool gptq = effective_weight_rounding(config.weight_rounding, weight_bits) == WeightRounding::gptq;
    const std::vector<double> gram = gptq ? augmented_gram(x_int, total, n_embd) : std::vector<double>();
    // W' = W with the input scales folded in, [n_embd, d] per projection.
    std::vector<double> folded(size_t(n_embd) * d);

    for (int p = 0; p < 3; ++p) {
        // Column absmax of W' and the per-tensor scale w'_p.
        std::vector<double> col_absmax(static_cast<size_t>(d), 0.0);
        for (int32_t r = 0; r < n_embd; ++r)
            for (int32_t c = 0; c < d; ++c) {
                const double v = double(w_p[p][size_t(r) * w.ldw + c]) * head.x_scales[r];
                folded[size_t(r) * d + c] = v;
                col_absmax[c] = std::max(col_absmax[c], std::fabs(v));
            }
        const double tensor_scale = symmetric_scale(*std::max_element(col_absmax.begin(), col_absmax.end()), weight_bits);

        // Quantizes with column exponents e, returns the smallest B that fits every accumulator.
        auto quantize_with = [&](const std::vector<int> & e) {
            head.column_exponent[p] = e;
            QuantizedMatrix & m = head.weights[p];
            m.rows = n_embd;
            m.cols = d;
            m.values.resize(size_t(n_embd) * d);
            m.scales.resize(static_cast<size_t>(d));
            for (int32_t c = 0; c < d; ++c) m.scales[c] = std::ldexp(tensor_scale, -e[c]);
            head.bias[p].resize(static_cast<size_t>(d));
            if (gptq) {
                std::vector<double> with_bias(folded);
                for (int32_t c = 0; c < d; ++c) with_bias.push_back(b_p[p][c]);
                const RoundedWeights rounded =
                    round_weights_gptq(with_bias, n_embd, d, m.scales, weight_bits, gram, kGptqDamping);
                m.values = rounded.values;
                for (int32_t c = 0; c < d; ++c) head.bias[p][c] = static_cast<int64_t>(std::nearbyint(rounded.bias[c]));
            } else {
                for (int32_t r = 0; r < n_embd; ++r)
                    for (int32_t c = 0; c < d; ++c)
                        m.values[size_t(r) * d + c] = quantize_value(folded[size_t(r) * d + c], m.scales[c], weight_bits);
                for (int32_t c = 0; c < d; ++c)
                    head.bias[p][c] = static_cast<int64_t>(std::nearbyint(b_p[p][c] / m.scales[c]));
            }
            int B = lut_bits;
            std::vector<int64_t> accs(static_cast<size_t>(total));
            for (int32_t c = 0; c < d; ++c) {
                for (int64_t i = 0; i < total; ++i)
                    accs[size_t(i)] = head.accumulator(p, c, std::span(x_int).subspan(size_t(i) * n_embd, n_embd));
                while (!fits(accs, B + e[c])) ++B;
            }
            return B;
        };
        const int tensor_bits = quantize_with(std::vector<int>(static_cast<size_t>(d), 0));
        head.acc_bits[p] = tensor_bits;
        if (config.per_channel) {
            // Extra column bits, at most the spare bits of the lut_bits chunks the widest column's
            // rounding spans. Each costs one more sign bootstrap per value of the column.
            const int removed = tensor_bits - lut_bits;
            const int free_bits = (removed + chunk - 1) / chunk * chunk - removed;
            std::vector<int> e(static_cast<size_t>(d));
            for (int32_t c = 0; c < d; ++c) {
                const double ideal = symmetric_scale(col_absmax[c], weight_bits);
                const int natural = col_absmax[c] > 0 ? static_cast<int>(std::floor(std::log2(tensor_scale / ideal))) : free_bits;
                e[c] = std::clamp(natural, 0, free_bits);
            }
            head.acc_bits[p] = quantize_with(e);
        }
        head.out_scale[p] = tensor_scale * std::ldexp(1.0, head.acc_bits[p] - lut_bits);
    }
    head.score_unit = head.out_scale[kQuery] * head.out_scale[kKey] / double(head.product_scale()) /
                      std::sqrt(double(d));

    // Only differences within a row matter (S is read modulo its encoding, quantized_head.h), and
    // the row maximum works while a row spans fewer than 2^V coarse buckets, 2^B_S units: B_S
    // leaves twice the widest calibrated row. Sized by the absolute range instead, the coarse
    // and fine buckets were twice as wide (4-bit head: mean KL 0.016 against 0.026).
    const std::vector<std::vector<int64_t>> scores = calibration_scores(head, x_int, lengths);
    int64_t score_spread = 0;
    for (const auto & row : scores) {
        const auto [lo, hi] = std::minmax_element(row.begin(), row.end());
        score_spread = std::max(score_spread, *hi - *lo);
    }
    head.score_bits = std::max(bit_width_of(score_spread) + 1, lut_bits - 1);
    calibrate_softmax(head, scores);
    return head;
}

std::vector<std::vector<int64_t>> calibration_scores(const QuantizedHead & head, std::span<const int64_t> x_int,
                                                    std::span<const int32_t> lengths) {
    const int32_t d = head.head_dim, n_embd = head.n_embd;
    std::vector<std::vector<int64_t>> scores;
    int64_t offset = 0;
    for (int32_t len : lengths) {
        if (len <= 0 || size_t(offset + len) * n_embd > x_int.size())
            fail("calibration scores: {} inputs for sequences of {} positions", x_int.size(), len);
        const auto xs = x_int.subspan(size_t(offset) * n_embd, size_t(len) * n_embd);
        const std::vector<int64_t> q = project(head, kQuery, xs, len), k = project(head, kKey, xs, len);
        for (int32_t i = 0; i < len; ++i) {
            std::vector<int64_t> row;
            for (int32_t j = 0; j <= i; ++j) {
                int64_t s = 0;
                for (int32_t c = 0; c < d; ++c)
                    s += head.read_negacyclic(&QuantizedHead::score_product_entry, q[size_t(i) * d + c] + k[size_t(j) * d + c]);
                row.push_back(s);
            }
            scores.push_back(std::move(row));
        }
        offset += len;
    }
    return scores;
}

double attention_error(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    return attention_error(head, scores, fine_buckets(head, scores));
}

void calibrate_softmax(QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    if (scores.empty()) fail("calibrate softmax: no calibration rows");
    const int V = head.value_bits;
    double best_error = 0, best_reference = 0;
    int best_window = 0;
    for (int window = std::max(1, V - head.score_shift()); window <= V; ++window) {
        head.window_bits = window;
        const std::vector<std::vector<int64_t>> fine = fine_buckets(head, scores);
        head.exp_reference = exp_reference_of(fine, head);
        const double error = attention_error(head, scores, fine);
        if (best_window == 0 || error < best_error) {
            best_error = error;
            best_window = window;
            best_reference = head.exp_reference;
        }
    }
    head.window_bits = best_window;
    head.exp_reference = best_reference;
}

} // namespace fhegpt::quant
