#include "circuit/head_tables.h"

#include "circuit/circuit.h"
#include "common/error.h"
#include "quant/head_stages.h"

#include <algorithm>

namespace fhegpt::circuit {

namespace {

// Integer table entries encoded at 2^scale_log2.
std::vector<uint64_t> encoded(const std::vector<int64_t> & entries, int scale_log2) {
    std::vector<uint64_t> out(entries.size());
    for (size_t j = 0; j < out.size(); ++j) out[j] = encode_integer(entries[j], scale_log2);
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
    HeadTables t;
    t.encoding = head_encoding(head, n, output_width);
    const HeadEncoding & e = t.encoding;
    const quant::HeadTableEntries entries = quant::head_table_entries(head);
    t.code = encoded(entries.code, e.grid);
    t.score_product = encoded(entries.score_product, e.score_scale);
    t.output_product = encoded(entries.output_product, e.output_scale);
    t.max_step = encoded(entries.max_step, e.grid);
    t.window = encoded(entries.window, e.score_scale);
    t.attention = encoded(entries.attention, e.grid);
    return t;
}

RowTables build_row_tables(const quant::QuantizedHead & head, int32_t row_length) {
    if (row_length <= 0 || row_length > 4096) fail("head circuit: a row of {} positions", row_length);
    const quant::RowTableEntries entries = quant::row_table_entries(head, row_length);
    RowTables t;
    t.denominator_bits = entries.denominator_bits;
    t.denominator_shift = entries.denominator_shift;
    t.denominator_scale = 63 - t.denominator_bits;
    t.exp = encoded(entries.exp, t.denominator_scale);
    t.log = encoded(entries.log, 63 - head.lut_bits);
    return t;
}

} // namespace fhegpt::circuit
