#include "quant/head_stages.h"

#include "common/error.h"

#include <algorithm>
#include <bit>

namespace fhegpt::quant {

namespace {

// x modulo 2^bits, in [0, 2^bits).
int64_t wrap(int64_t x, int bits) { return static_cast<int64_t>(static_cast<uint64_t>(x) & ((uint64_t{1} << bits) - 1)); }

// x modulo 2^bits, signed: in [-2^(bits-1), 2^(bits-1)).
int64_t wrap_signed(int64_t x, int bits) {
    const int64_t u = wrap(x, bits);
    return u >= (int64_t{1} << (bits - 1)) ? u - (int64_t{1} << bits) : u;
}

} // namespace

std::vector<int64_t> table_entries(const QuantizedHead & head, int64_t (QuantizedHead::*entry)(int64_t) const) {
    std::vector<int64_t> out(size_t{1} << head.lut_bits);
    for (size_t j = 0; j < out.size(); ++j) out[j] = (head.*entry)(int64_t(j));
    return out;
}

std::vector<int64_t> code_table(const QuantizedHead & head) { return table_entries(head, &QuantizedHead::code_entry); }

std::vector<int64_t> score_product_table(const QuantizedHead & head) {
    return table_entries(head, &QuantizedHead::score_product_entry);
}

HeadTableEntries head_table_entries(const QuantizedHead & head) {
    HeadTableEntries t;
    t.code = code_table(head);
    t.score_product = score_product_table(head);
    t.output_product = table_entries(head, &QuantizedHead::output_product_entry);
    t.max_step = table_entries(head, &QuantizedHead::max_step_entry);
    t.window = table_entries(head, &QuantizedHead::window_entry);
    t.attention = table_entries(head, &QuantizedHead::attention_code);
    return t;
}

RowTableEntries row_table_entries(const QuantizedHead & head, int32_t row_length) {
    if (row_length <= 0 || row_length > 4096) fail("quantized head: a row of {} positions", row_length);
    const int L = head.lut_bits;
    RowTableEntries r;
    r.denominator_bits = head.denominator_bits(row_length);
    r.denominator_shift = head.denominator_shift(row_length);
    r.exp = table_entries(head, &QuantizedHead::exp_value);
    r.log.resize(size_t{1} << L);
    for (size_t h = 0; h < r.log.size(); ++h) r.log[h] = (int64_t{1} << (L - 2)) - head.log_value(int64_t(h), row_length);
    return r;
}

int64_t read_table(std::span<const int64_t> table, int64_t x) {
    const int64_t size = static_cast<int64_t>(table.size());
    const int64_t at = wrap(x, std::countr_zero(static_cast<uint64_t>(size)) + 1);
    return at < size ? table[size_t(at)] : -table[size_t(at - size)];
}

std::vector<int64_t> projection_accumulators(const QuantizedHead & head, int p, std::span<const int64_t> x_int, int32_t n) {
    const int32_t d = head.head_dim, n_embd = head.n_embd;
    if (n < 0 || x_int.size() < size_t(n) * n_embd)
        fail("quantized head: {} inputs for {} positions of {}", x_int.size(), n, n_embd);
    const std::vector<int64_t> & w = head.weights[p].values;
    std::vector<int64_t> out(size_t(n) * d);
    for (int32_t i = 0; i < n; ++i) { // over contiguous weight rows
        int64_t * row = out.data() + size_t(i) * d;
        std::copy(head.bias[p].begin(), head.bias[p].end(), row);
        for (int32_t r = 0; r < n_embd; ++r) {
            const int64_t x = x_int[size_t(i) * n_embd + r];
            if (x == 0) continue;
            const int64_t * w_row = w.data() + size_t(r) * d;
            for (int32_t c = 0; c < d; ++c) row[c] += x * w_row[c];
        }
    }
    return out;
}

std::vector<int64_t> projection_codes(const QuantizedHead & head, std::span<const int64_t> code_table, int p,
                                      std::span<const int64_t> x_int, int32_t n) {
    const size_t d = size_t(head.head_dim);
    std::vector<int64_t> out = projection_accumulators(head, p, x_int, n);
    for (size_t k = 0; k < out.size(); ++k) {
        const auto c = static_cast<int32_t>(k % d);
        out[k] = code_table[size_t((out[k] + head.accumulator_offset(p, c)) >> head.column_shift(p, c))];
    }
    return out;
}

int64_t score_of_codes(const QuantizedHead & head, std::span<const int64_t> score_product_table, const int64_t * q_codes,
                       const int64_t * k_codes) {
    int64_t s = 0;
    for (int32_t c = 0; c < head.head_dim; ++c) s += read_table(score_product_table, q_codes[c] + k_codes[c]);
    return s;
}

std::vector<int64_t> fine_buckets(const QuantizedHead & head, std::span<const int64_t> max_step,
                                  std::span<const int64_t> window, std::span<const int64_t> scores) {
    const int s = head.score_shift(), grid_bits = head.lut_bits + 1;
    const size_t n = scores.size();
    std::vector<int64_t> u(n), coarse(n), fine(n);
    for (size_t j = 0; j < n; ++j) {
        u[j] = wrap(scores[j] + (int64_t{1} << (head.score_bits - 1)), head.score_bits + 1);
        coarse[j] = u[j] >> s;
    }
    int64_t top = coarse[0];
    for (size_t j = 1; j < n; ++j)
        top = wrap(top + read_table(max_step, coarse[j] - top + (int64_t{1} << head.value_bits)), grid_bits);
    for (size_t j = 0; j < n; ++j) {
        const int64_t relative = u[j] - (coarse[j] << s) + read_table(window, top - coarse[j]);
        fine[j] = wrap(relative, head.fine_width()) >> head.fine_shift();
    }
    return fine;
}

int64_t row_log_entry(const RowTableEntries & r, std::span<const int64_t> fine) {
    int64_t denominator = 0;
    for (int64_t g : fine) denominator += read_table(r.exp, g);
    return read_table(r.log, wrap(denominator, r.denominator_bits) >> r.denominator_shift);
}

std::vector<int64_t> attention_codes(std::span<const int64_t> attention, std::span<const int64_t> fine, int64_t log_entry) {
    std::vector<int64_t> alpha(fine.size());
    for (size_t j = 0; j < fine.size(); ++j) alpha[j] = read_table(attention, fine[j] + log_entry);
    return alpha;
}

std::vector<int64_t> row_outputs(const QuantizedHead & head, std::span<const int64_t> output_product,
                                 std::span<const int64_t> alpha, std::span<const int64_t> v_codes, int width) {
    const int32_t d = head.head_dim;
    std::vector<int64_t> out(static_cast<size_t>(d));
    for (int32_t c = 0; c < d; ++c) {
        int64_t o = 0;
        for (size_t j = 0; j < alpha.size(); ++j) o += read_table(output_product, alpha[j] + v_codes[j * size_t(d) + c]);
        out[size_t(c)] = wrap_signed(o, width + 1);
    }
    return out;
}

std::vector<int64_t> head_stages_forward(const QuantizedHead & head, std::span<const int64_t> x_int, int32_t n,
                                         int output_width) {
    if (n <= 0 || x_int.size() != size_t(n) * head.n_embd)
        fail("quantized head: {} inputs for {} positions of {}", x_int.size(), n, head.n_embd);
    const int32_t d = head.head_dim;
    const HeadTableEntries t = head_table_entries(head);
    std::vector<int64_t> codes[3];
    for (int p = 0; p < 3; ++p) codes[p] = projection_codes(head, t.code, p, x_int, n);
    const int width = output_width > 0 ? output_width : head.output_bits(n);
    std::vector<int64_t> out;
    out.reserve(size_t(n) * d);
    for (int32_t i = 0; i < n; ++i) {
        std::vector<int64_t> scores(size_t(i) + 1);
        for (int32_t j = 0; j <= i; ++j)
            scores[size_t(j)] = score_of_codes(head, t.score_product, &codes[kQuery][size_t(i) * d], &codes[kKey][size_t(j) * d]);
        const std::vector<int64_t> fine = fine_buckets(head, t.max_step, t.window, scores);
        const std::vector<int64_t> alpha =
            attention_codes(t.attention, fine, row_log_entry(row_table_entries(head, i + 1), fine));
        const std::vector<int64_t> row = row_outputs(head, t.output_product, alpha, codes[kValue], width);
        out.insert(out.end(), row.begin(), row.end());
    }
    return out;
}

} // namespace fhegpt::quant
