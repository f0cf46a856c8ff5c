#include "circuit/head_tables.h"

#include "circuit/circuit.h"
#include "common/error.h"

#include <algorithm>
#include <functional>

namespace fhegpt::circuit {

namespace {

// Entry j of an L-bit table: f(j) encoded at 2^scale_log2.
std::vector<uint64_t> integer_table(int bits, int scale_log2, const std::function<int64_t(int64_t)> & f) {
    std::vector<uint64_t> out(size_t{1} << bits);
    for (size_t j = 0; j < out.size(); ++j) out[j] = encode_integer(f(int64_t(j)), scale_log2);
    return out;
}

} // namespace

HeadEncoding head_encoding(const quant::QuantizedHead & head, int32_t n, int output_width) {
    if (n <= 0 || n > 4096) fail("head circuit: {} positions", n);
    const int L = head.lut_bits;
    HeadEncoding e;
    e.lut_bits = L;
    e.grid = 63 - L;
    for (int p = 0; p < 3; ++p)
        for (int32_t c = 0; c < head.head_dim; ++c) e.input_width = std::max(e.input_width, e.column_width(head, p, c));
    e.input_scale = 63 - e.input_width;
    e.score_scale = 63 - (head.score_bits + 1);
    e.fine_scale = 63 - head.fine_width();
    e.output_scale = 63 - (output_width > 0 ? output_width : head.output_bits(n));
    if (e.input_scale < 0 || e.score_scale < 0 || e.output_scale < 0)
        fail("head circuit: a value needs more than 63 bits at {} positions", n);
    return e;
}

HeadTables build_head_tables(const quant::QuantizedHead & head, int32_t n, int output_width) {
    const int L = head.lut_bits;
    HeadTables t;
    t.encoding = head_encoding(head, n, output_width);
    const HeadEncoding & e = t.encoding;
    t.code = integer_table(L, e.grid, [&](int64_t h) { return head.code_entry(h); });
    t.score_product = integer_table(L, e.score_scale, [&](int64_t x) { return head.score_product_entry(x); });
    t.output_product = integer_table(L, e.output_scale, [&](int64_t x) { return head.output_product_entry(x); });
    t.max_step = integer_table(L, e.grid, [&](int64_t z) { return head.max_step_entry(z); });
    t.window = integer_table(L, e.score_scale, [&](int64_t d) { return head.window_entry(d); });
    t.attention = integer_table(L, e.grid, [&](int64_t z) { return head.attention_code(z); });
    return t;
}

RowTables build_row_tables(const quant::QuantizedHead & head, int32_t row_length) {
    if (row_length <= 0 || row_length > 4096) fail("head circuit: a row of {} positions", row_length);
    const int L = head.lut_bits;
    RowTables t;
    t.denominator_bits = head.denominator_bits(row_length);
    t.denominator_shift = head.denominator_shift(row_length);
    t.denominator_scale = 63 - t.denominator_bits;
    t.exp = integer_table(L, t.denominator_scale, [&](int64_t h) { return head.exp_value(h); });
    t.log = integer_table(L, 63 - L, [&](int64_t h) { return (int64_t{1} << (L - 2)) - head.log_value(h, row_length); });
    return t;
}

} // namespace fhegpt::circuit
