// An independent derivation of the integers a quantized head and a quantized attention block
// compute, written directly in torus arithmetic from their tables (head_tables.h) without the
// circuit's stages: the oracle the stages' evaluation (head_reference_forward,
// attention_reference_forward) is checked against, so that a change of the stages that moves
// any value is caught.
#pragma once

#include "circuit/circuit.h"
#include "circuit/head_tables.h"
#include "circuit/quantized_attention.h"
#include "circuit/simulate.h"
#include "quant/quantized_head.h"

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::test {

inline uint64_t oracle_read(const std::vector<uint64_t> & table, uint64_t x, int grid) {
    return circuit::read_entries(table, x >> grid);
}

inline std::vector<int64_t> oracle_head_forward(const quant::QuantizedHead & head, std::span<const int64_t> x_int,
                                                int32_t n, int output_width = 0) {
    using namespace circuit;
    const HeadTables t = build_head_tables(head, n, output_width);
    const HeadEncoding & e = t.encoding;
    const int32_t d = head.head_dim, n_embd = head.n_embd;
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
                code[p][size_t(i) * d + c] = oracle_read(t.code, clear_low_bits(u, scale, head.column_shift(p, c)), e.grid);
            }
        }
    }
    std::vector<int64_t> out(size_t(n) * d);
    std::vector<uint64_t> score_bucket(static_cast<size_t>(n)), alpha(static_cast<size_t>(n));
    const uint64_t score_offset = encode_integer(int64_t{1} << (head.score_bits - 1), e.score_scale);
    const uint64_t half_grid = encode_integer(int64_t{1} << head.value_bits, e.grid);
    const int to_fine = e.fine_scale - e.score_scale;
    for (int32_t i = 0; i < n; ++i) {
        std::vector<uint64_t> score(size_t(i) + 1), coarse(size_t(i) + 1);
        for (int32_t j = 0; j <= i; ++j) {
            uint64_t s = score_offset;
            for (int32_t c = 0; c < d; ++c)
                s += oracle_read(t.score_product,
                                 code[quant::kQuery][size_t(i) * d + c] + code[quant::kKey][size_t(j) * d + c], e.grid);
            score[j] = s;
            coarse[j] = clear_low_bits(s, e.score_scale, head.score_shift());
        }
        uint64_t top = coarse[0];
        for (int32_t j = 1; j <= i; ++j) top += oracle_read(t.max_step, coarse[j] - top + half_grid, e.grid);
        const RowTables row = build_row_tables(head, i + 1);
        uint64_t denominator = 0;
        for (int32_t j = 0; j <= i; ++j) {
            const uint64_t relative = (score[j] - coarse[j] + oracle_read(t.window, top - coarse[j], e.grid)) << to_fine;
            score_bucket[j] = clear_low_bits(relative, e.fine_scale, head.fine_shift());
            denominator += oracle_read(row.exp, score_bucket[j], e.grid);
        }
        const uint64_t log =
            oracle_read(row.log, clear_low_bits(denominator, row.denominator_scale, row.denominator_shift), e.grid);
        for (int32_t j = 0; j <= i; ++j) alpha[j] = oracle_read(t.attention, score_bucket[j] + log, e.grid);
        for (int32_t c = 0; c < d; ++c) {
            uint64_t o = 0;
            for (int32_t j = 0; j <= i; ++j)
                o += oracle_read(t.output_product, alpha[j] + code[quant::kValue][size_t(j) * d + c], e.grid);
            out[size_t(i) * d + c] = decode_integer(o, e.output_scale);
        }
    }
    return out;
}

inline std::vector<int64_t> oracle_attention_forward(const circuit::QuantizedAttention & att,
                                                     std::span<const int64_t> x_int, int32_t n) {
    using namespace circuit;
    const int32_t n_embd = att.n_embd, d = att.head_dim, L = att.lut_bits;
    const int out_scale = 63 - att.out_bits, grid = 63 - L;
    std::vector<uint64_t> o(size_t(n) * n_embd);
    for (int32_t h = 0; h < att.n_head; ++h) {
        std::vector<uint64_t> table(size_t{1} << L);
        for (size_t j = 0; j < table.size(); ++j)
            table[j] = encode_integer(int64_t(std::nearbyint(double(int64_t(j) - (int64_t{1} << (L - 1))) * att.gain(h))), out_scale);
        const int width = att.context_width(h), scale = 63 - width;
        const std::vector<int64_t> context = oracle_head_forward(att.heads[h], x_int, n, width);
        for (int32_t i = 0; i < n; ++i)
            for (int32_t c = 0; c < d; ++c) {
                const uint64_t u = encode_integer(context[size_t(i) * d + c] + att.context_offset(h), scale);
                o[size_t(i) * n_embd + h * d + c] = read_entries(table, clear_low_bits(u, scale, att.context_shift[h]) >> grid);
            }
    }
    const uint64_t unit = uint64_t{1} << out_scale;
    std::vector<int64_t> out(size_t(n) * n_embd);
    for (int32_t i = 0; i < n; ++i)
        for (int32_t j = 0; j < n_embd; ++j) {
            uint64_t acc = uint64_t(att.proj_bias[j]) * unit;
            for (int32_t r = 0; r < n_embd; ++r) acc += uint64_t(att.proj.values[size_t(r) * n_embd + j]) * o[size_t(i) * n_embd + r];
            out[size_t(i) * n_embd + j] = decode_integer(acc, out_scale);
        }
    return out;
}

} // namespace fhegpt::test
