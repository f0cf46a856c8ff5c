// Softmax calibration (quantized_head.h, softmax_calibration.h): the scores of the calibration
// rows through the head's stages (head_stages.h), and the window and exp reference that bring
// the circuit's attention nearest to the float one.
#include "quant/softmax_calibration.h"

#include "common/error.h"
#include "quant/head_stages.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>

namespace fhegpt::quant {

namespace {

// The fine buckets g_ij of calibration rows of scores S_ij (head_stages.h).
std::vector<std::vector<int64_t>> fine_buckets(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    const std::vector<int64_t> max_step = table_entries(head, &QuantizedHead::max_step_entry);
    const std::vector<int64_t> window = table_entries(head, &QuantizedHead::window_entry);
    std::vector<std::vector<int64_t>> out;
    out.reserve(scores.size());
    for (const auto & row : scores) out.push_back(quant::fine_buckets(head, max_step, window, row));
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
// softmax of the row's scores, or `reference` where given.
double attention_error(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores,
                       const std::vector<std::vector<int64_t>> & fine,
                       const std::vector<std::vector<double>> * reference = nullptr) {
    const int64_t entries = int64_t{1} << head.lut_bits;
    // The attention code of every index z and the weight it stands for, read as tables; the
    // exp and log tables of every row length.
    const std::vector<int64_t> attention = table_entries(head, &QuantizedHead::attention_code);
    std::vector<double> weight_table(static_cast<size_t>(entries));
    for (int64_t z = 0; z < entries; ++z) weight_table[size_t(z)] = head.attention_weight(attention[size_t(z)]);
    std::map<int32_t, RowTableEntries> row_tables;
    double total = 0;
    for (size_t r = 0; r < scores.size(); ++r) {
        const auto & row = scores[r];
        const int32_t n = static_cast<int32_t>(row.size());
        auto it = row_tables.find(n);
        if (it == row_tables.end()) it = row_tables.emplace(n, row_table_entries(head, n)).first;
        const int64_t log_entry = row_log_entry(it->second, fine[r]);
        const int64_t top = *std::max_element(row.begin(), row.end());
        double sum = 0;
        if (!reference)
            for (int64_t v : row) sum += std::exp(double(v - top) * head.score_unit);
        for (int32_t j = 0; j < n; ++j) {
            const double p = reference ? (*reference)[r][size_t(j)] : std::exp(double(row[j] - top) * head.score_unit) / sum;
            const int64_t z = fine[r][j] + log_entry; // attention_codes reads the attention table here
            // Outside [0, 2^L) the circuit's read is negacyclic: no weight it could mean.
            const double a = z >= 0 && z < entries ? weight_table[size_t(z)] : 1.0 + p;
            total += std::fabs(a - p);
        }
    }
    return total / double(scores.size());
}

} // namespace

std::vector<int64_t> calibration_codes(const QuantizedHead & head, int p, std::span<const int64_t> x_int, int32_t n) {
    return projection_codes(head, code_table(head), p, x_int, n);
}

std::vector<std::vector<int64_t>> scores_of_codes(const QuantizedHead & head, std::span<const int64_t> q,
                                                  std::span<const int64_t> k, std::span<const int32_t> lengths) {
    const int32_t d = head.head_dim;
    const std::vector<int64_t> product = score_product_table(head);
    std::vector<std::vector<int64_t>> scores;
    size_t offset = 0;
    for (int32_t len : lengths) {
        for (int32_t i = 0; i < len; ++i) {
            std::vector<int64_t> row;
            const int64_t * q_row = q.data() + (offset + size_t(i)) * d;
            for (int32_t j = 0; j <= i; ++j) {
                row.push_back(score_of_codes(head, product, q_row, k.data() + (offset + size_t(j)) * d));
            }
            scores.push_back(std::move(row));
        }
        offset += size_t(len);
    }
    return scores;
}

double calibrate_window(QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores,
                        const std::vector<std::vector<double>> * reference) {
    const int V = head.value_bits;
    double best_error = 0, best_reference = 0;
    int best_window = 0;
    for (int window = std::max(1, V - head.score_shift()); window <= V; ++window) {
        head.window_bits = window;
        const std::vector<std::vector<int64_t>> fine = fine_buckets(head, scores);
        head.exp_reference = exp_reference_of(fine, head);
        const double error = attention_error(head, scores, fine, reference);
        if (best_window == 0 || error < best_error) {
            best_error = error;
            best_window = window;
            best_reference = head.exp_reference;
        }
    }
    head.window_bits = best_window;
    head.exp_reference = best_reference;
    return best_error;
}

int score_bits_of(const std::vector<std::vector<int64_t>> & scores, int lut_bits) {
    int64_t spread = 0;
    for (const auto & row : scores) {
        const auto [lo, hi] = std::minmax_element(row.begin(), row.end());
        spread = std::max(spread, *hi - *lo);
    }
    return std::max(static_cast<int>(std::bit_width(static_cast<uint64_t>(spread))) + 1, lut_bits - 1);
}

namespace {

std::vector<double> softmax(std::span<const double> scores) {
    const double top = *std::max_element(scores.begin(), scores.end());
    std::vector<double> p(scores.size());
    double sum = 0;
    for (size_t j = 0; j < scores.size(); ++j) sum += p[j] = std::exp(scores[j] - top);
    for (double & v : p) v /= sum;
    return p;
}

} // namespace

std::vector<std::vector<double>> reference_attention(const std::vector<double> & q, const std::vector<double> & k,
                                                     std::span<const int32_t> lengths, int32_t d) {
    std::vector<std::vector<double>> rows;
    size_t offset = 0;
    for (int32_t len : lengths) {
        for (int32_t i = 0; i < len; ++i) {
            std::vector<double> scores;
            for (int32_t j = 0; j <= i; ++j) {
                double s = 0;
                for (int32_t c = 0; c < d; ++c) s += q[(offset + size_t(i)) * d + c] * k[(offset + size_t(j)) * d + c];
                scores.push_back(s / std::sqrt(double(d)));
            }
            rows.push_back(softmax(scores));
        }
        offset += size_t(len);
    }
    return rows;
}

std::vector<std::vector<int64_t>> calibration_scores(const QuantizedHead & head, std::span<const int64_t> x_int,
                                                    std::span<const int32_t> lengths) {
    int64_t total = 0;
    for (int32_t len : lengths) {
        if (len <= 0) fail("calibration scores: a sequence of {} positions", len);
        total += len;
    }
    if (size_t(total) * size_t(head.n_embd) != x_int.size())
        fail("calibration scores: {} inputs for {} positions of {}", x_int.size(), total, head.n_embd);
    const auto total_positions = static_cast<int32_t>(total);
    return scores_of_codes(head, calibration_codes(head, kQuery, x_int, total_positions),
                           calibration_codes(head, kKey, x_int, total_positions),
                           lengths);
}

double attention_error(const QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    return attention_error(head, scores, fine_buckets(head, scores));
}

void calibrate_softmax(QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores) {
    if (scores.empty()) fail("calibrate softmax: no calibration rows");
    calibrate_window(head, scores, nullptr);
}

} // namespace fhegpt::quant
