#include "circuit/head_reference.h"

#include "circuit/circuit.h"
#include "circuit/head_tables.h"
#include "circuit/simulate.h"
#include "common/error.h"

namespace fhegpt::circuit {

namespace {

// A bootstrap's read of x on the grid (simulate.h).
uint64_t read(const std::vector<uint64_t> & table, uint64_t x, int grid) { return read_entries(table, x >> grid); }

} // namespace

std::vector<int64_t> head_reference_forward(const quant::QuantizedHead & head, std::span<const int64_t> x_int,
                                            int32_t n, int output_width) {
    if (n <= 0 || x_int.size() != size_t(n) * head.n_embd)
        fail("quantized head: {} inputs for {} positions of {}", x_int.size(), n, head.n_embd);
    const HeadTables t = build_head_tables(head, n, output_width);
    const HeadEncoding & e = t.encoding;
    const int32_t d = head.head_dim, n_embd = head.n_embd;

    // Log codes (on the grid) of the q, k, v buckets.
    std::vector<uint64_t> code[3];
    for (int p = 0; p < 3; ++p) {
        code[p].resize(size_t(n) * d);
        for (int32_t c = 0; c < d; ++c) {
            const int scale = e.column_scale(head, p, c);
            const uint64_t to_column = uint64_t{1} << (scale - e.input_scale);
            for (int32_t i = 0; i < n; ++i) {
                uint64_t u = encode_integer(head.bias[p][c] + head.accumulator_offset(p, c), scale);
                for (int32_t r = 0; r < n_embd; ++r)
                    u += uint64_t(head.weights[p].values[size_t(r) * d + c]) * to_column *
                         encode_integer(x_int[size_t(i) * n_embd + r], e.input_scale);
                code[p][size_t(i) * d + c] = read(t.code, clear_low_bits(u, scale, head.column_shift(p, c)), e.grid);
            }
        }
    }

    std::vector<int64_t> out(size_t(n) * d);
    std::vector<uint64_t> score_bucket(static_cast<size_t>(n)), alpha(static_cast<size_t>(n));
    const uint64_t score_offset = encode_integer(int64_t{1} << (head.score_bits - 1), e.score_scale);
    const uint64_t half_grid = encode_integer(int64_t{1} << head.value_bits, e.grid); // 2^V on the grid
    const int to_fine = e.fine_scale - e.score_scale;
    for (int32_t i = 0; i < n; ++i) {
        // Scores, their coarse buckets and the row's best coarse bucket.
        std::vector<uint64_t> score(size_t(i) + 1), coarse(size_t(i) + 1);
        for (int32_t j = 0; j <= i; ++j) {
            uint64_t s = score_offset;
            for (int32_t c = 0; c < d; ++c)
                s += read(t.score_product, code[quant::kQuery][size_t(i) * d + c] + code[quant::kKey][size_t(j) * d + c], e.grid);
            score[j] = s;
            coarse[j] = clear_low_bits(s, e.score_scale, head.score_shift());
        }
        uint64_t top = coarse[0];
        for (int32_t j = 1; j <= i; ++j) top += read(t.max_step, coarse[j] - top + half_grid, e.grid);
        // Fine buckets of the scores relative to the row's top, their exp values and sum.
        const RowTables row = build_row_tables(head, i + 1);
        uint64_t denominator = 0;
        for (int32_t j = 0; j <= i; ++j) {
            const uint64_t relative = (score[j] - coarse[j] + read(t.window, top - coarse[j], e.grid)) << to_fine;
            score_bucket[j] = clear_low_bits(relative, e.fine_scale, head.fine_shift());
            denominator += read(row.exp, score_bucket[j], e.grid);
        }
        const uint64_t log = read(row.log, clear_low_bits(denominator, row.denominator_scale, row.denominator_shift), e.grid);
        for (int32_t j = 0; j <= i; ++j) alpha[j] = read(t.attention, score_bucket[j] + log, e.grid);
        for (int32_t c = 0; c < d; ++c) {
            uint64_t o = 0;
            for (int32_t j = 0; j <= i; ++j) o += read(t.output_product, alpha[j] + code[quant::kValue][size_t(j) * d + c], e.grid);
            out[size_t(i) * d + c] = decode_integer(o, e.output_scale);
        }
    }
    return out;
}

} // namespace fhegpt::circuit
