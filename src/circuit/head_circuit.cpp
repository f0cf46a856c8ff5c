#include "circuit/head_circuit.h"

#include "circuit/head_reference.h"
#include "circuit/head_tables.h"
#include "common/error.h"

#include <array>
#include <string>
#include <utility>

namespace fhegpt::circuit {

uint64_t bucket_residue(const quant::QuantizedHead & head, int p, int32_t c) {
    return CircuitBuilder::kept_bits_residue(head_encoding(head, 1).column_width(head, p, c), head.kept_bits(p, c));
}

namespace {

// The cache's parts in circuit order.
std::array<std::vector<ValueId> *, kHeadCacheParts> cache_parts(HeadCache & cache) {
    return {&cache.key_code, &cache.value_code};
}

int code_scale(const quant::QuantizedHead & head) { return 63 - head.lut_bits; }

// q/k/v codes [n, d] each, rows first..n-1 filled: the accumulator rounded to its L-bit bucket
// (off the grid by the column's residue), read once into its log code.
void build_head_codes(CircuitBuilder & b, const quant::QuantizedHead & head, const HeadEncoding & e,
                      const std::vector<uint64_t> & code_table, int32_t first, int32_t n, std::span<const ValueId> x,
                      int input_scale, std::vector<ValueId> (&code)[3]) {
    const int32_t d = head.head_dim, n_embd = head.n_embd;
    const char * names[3] = {"q", "k", "v"};
    for (int p = 0; p < 3; ++p) {
        code[p].resize(size_t(n) * d, -1);
        const int32_t table = b.table(head.lut_bits, code_table, std::string(names[p]) + ".code");
        for (int32_t c = 0; c < d; ++c) {
            const int width = e.column_width(head, p, c), scale = e.column_scale(head, p, c);
            std::vector<LinearTerm> terms;
            for (int32_t r = 0; r < n_embd; ++r) {
                const int64_t w = head.weights[p].values[size_t(r) * d + c];
                if (w != 0) terms.push_back({ValueId(r), w * (int64_t{1} << (scale - input_scale))});
            }
            const uint64_t constant = encode_integer(head.bias[p][c] + head.accumulator_offset(p, c), scale);
            const uint64_t residue = bucket_residue(head, p, c);
            for (int32_t i = first; i < n; ++i) {
                std::vector<LinearTerm> row = terms;
                for (LinearTerm & term : row) term.value = x[size_t(i - first) * n_embd + term.value];
                const ValueId acc = b.linear(row, constant);
                const CircuitBuilder::Rounded h =
                    b.round_keeping_low_bits(acc, width, head.column_shift(p, c), head.kept_bits(p, c), "qkv.requant");
                if (h.residue != residue) fail("head circuit: column residues disagree");
                code[p][size_t(i) * d + c] = b.lookup(h.value, table, h.residue);
            }
        }
    }
}

// The tables every row shares, as circuit tables.
struct HeadRowTables {
    int32_t score_product, output_product, max_step, window, attention;
};

// Row i's scores S_ij = sum_c P(code_q + code_k) (j <= i) and their coarse buckets.
void build_head_scores(CircuitBuilder & b, const quant::QuantizedHead & head, const HeadEncoding & e,
                       const HeadRowTables & t, const std::vector<ValueId> (&code)[3], int32_t i,
                       std::vector<ValueId> & score, std::vector<ValueId> & coarse) {
    const int32_t d = head.head_dim;
    score.assign(size_t(i) + 1, -1);
    coarse.assign(size_t(i) + 1, -1);
    for (int32_t j = 0; j <= i; ++j) {
        std::vector<LinearTerm> terms;
        for (int32_t c = 0; c < d; ++c) {
            const LinearTerm sum[] = {{code[quant::kQuery][size_t(i) * d + c], 1}, {code[quant::kKey][size_t(j) * d + c], 1}};
            terms.push_back({b.lookup(b.linear(sum), t.score_product), 1});
        }
        score[j] = b.linear(terms, encode_integer(int64_t{1} << (head.score_bits - 1), e.score_scale));
        coarse[j] = b.remove_low_bits(score[j], head.score_bits + 1, head.score_shift(), "score.requant");
    }
}

// Row i's softmax: the row's best coarse bucket, every score's fine bucket relative to it, exp,
// the log of the row sum, and the attention codes alpha_ij (returned, [i + 1]).
std::vector<ValueId> build_head_softmax(CircuitBuilder & b, const quant::QuantizedHead & head, const HeadEncoding & e,
                                        const HeadRowTables & t, int32_t i, const std::vector<ValueId> & score,
                                        const std::vector<ValueId> & coarse) {
    const int L = head.lut_bits;
    const uint64_t half_grid = encode_integer(int64_t{1} << head.value_bits, e.grid);
    const int64_t to_fine = int64_t{1} << (e.fine_scale - e.score_scale);
    // The row's best coarse bucket: top += max(c_j - top, 0).
    ValueId top = coarse[0];
    for (int32_t j = 1; j <= i; ++j) {
        const LinearTerm diff[] = {{coarse[j], 1}, {top, -1}};
        const LinearTerm next[] = {{top, 1}, {b.lookup(b.linear(diff, half_grid), t.max_step), 1}};
        top = b.linear(next);
    }
    // Fine buckets of the scores relative to the top, exp values and their sum.
    RowTables row = build_row_tables(head, i + 1);
    const int32_t exp_table = b.table(L, std::move(row.exp), "softmax.exp");
    const int32_t log_table = b.table(L, std::move(row.log), "softmax.log");
    std::vector<ValueId> buckets(size_t(i) + 1);
    std::vector<LinearTerm> denominator;
    for (int32_t j = 0; j <= i; ++j) {
        const LinearTerm distance[] = {{top, 1}, {coarse[j], -1}};
        const ValueId shifted = b.lookup(b.linear(distance), t.window);
        const LinearTerm relative[] = {{score[j], to_fine}, {coarse[j], -to_fine}, {shifted, to_fine}};
        buckets[j] = b.remove_low_bits(b.linear(relative), head.fine_width(), head.fine_shift(), "score.fine");
        denominator.push_back({b.lookup(buckets[j], exp_table), 1});
    }
    const ValueId sum = b.linear(denominator);
    const ValueId sum_bucket = b.remove_low_bits(sum, row.denominator_bits, row.denominator_shift, "softmax.requant");
    const ValueId log = b.lookup(sum_bucket, log_table);
    std::vector<ValueId> weights(size_t(i) + 1);
    for (int32_t j = 0; j <= i; ++j) {
        const LinearTerm z[] = {{buckets[j], 1}, {log, 1}};
        weights[j] = b.lookup(b.linear(z), t.attention);
    }
    return weights;
}

// Row i's output O_id = sum_j A(alpha_ij + code_v,jd), appended to `outputs`.
void build_head_values(CircuitBuilder & b, const quant::QuantizedHead & head, const HeadRowTables & t,
                       const std::vector<ValueId> (&code)[3], int32_t i, const std::vector<ValueId> & weights,
                       std::vector<ValueId> & outputs) {
    const int32_t d = head.head_dim;
    for (int32_t c = 0; c < d; ++c) {
        std::vector<LinearTerm> out;
        for (int32_t j = 0; j <= i; ++j) {
            const LinearTerm sum[] = {{weights[j], 1}, {code[quant::kValue][size_t(j) * d + c], 1}};
            out.push_back({b.lookup(b.linear(sum), t.output_product), 1});
        }
        outputs.push_back(b.linear(out));
    }
}

// Inputs, the head stage and outputs of rows first..n-1; with_cache: the cache of positions
// 0..first-1 as inputs and the new positions' entries as outputs.
void build_head_ports(CircuitBuilder & b, const quant::QuantizedHead & head, int32_t first, int32_t n,
                      int output_width, bool with_cache) {
    const HeadEncoding e = head_encoding(head, n, output_width);
    const size_t cached = size_t(first) * head.head_dim;
    std::vector<ValueId> x(size_t(n - first) * head.n_embd);
    for (auto & v : x) v = b.input(e.input_scale);
    HeadCache cache = add_cache_inputs(b, head, cached);
    for (ValueId o : build_head(b, head, first, n, x, e.input_scale, cache, output_width)) b.output(o, e.output_scale);
    if (with_cache) mark_cache_outputs(b, cache, head, cached);
}

} // namespace

std::vector<int64_t> head_reference_forward(const quant::QuantizedHead & head, std::span<const int64_t> x_int,
                                            int32_t n, int output_width) {
    if (n <= 0 || x_int.size() != size_t(n) * head.n_embd)
        fail("quantized head: {} inputs for {} positions of {}", x_int.size(), n, head.n_embd);
    head_encoding(head, n, output_width); // checks n
    CircuitBuilder b = CircuitBuilder::evaluator(head.chunk_bits(), x_int);
    build_head_ports(b, head, 0, n, output_width, false);
    return b.outputs();
}

Circuit build_head_circuit(const quant::QuantizedHead & head, int32_t n) {
    head_encoding(head, n); // checks n
    CircuitBuilder b(head.chunk_bits());
    build_head_ports(b, head, 0, n, 0, false);
    return b.take();
}

HeadCache add_cache_inputs(CircuitBuilder & b, const quant::QuantizedHead & head, size_t count) {
    HeadCache cache;
    for (std::vector<ValueId> * part : cache_parts(cache))
        for (size_t k = 0; k < count; ++k) part->push_back(b.input(code_scale(head)));
    return cache;
}

void mark_cache_outputs(CircuitBuilder & b, HeadCache & cache, const quant::QuantizedHead & head, size_t from) {
    for (std::vector<ValueId> * part : cache_parts(cache))
        for (size_t k = from; k < part->size(); ++k) b.output((*part)[k], code_scale(head));
}

Circuit build_head_row_circuit(const quant::QuantizedHead & head, int32_t first, int32_t n, int output_width) {
    if (first < 0 || first >= n) fail("head row circuit: rows {}..{}", first, n - 1);
    if (output_width <= 0) fail("head row circuit: a cached evaluation needs a fixed output width");
    head_encoding(head, n, output_width); // checks n
    CircuitBuilder b(head.chunk_bits());
    build_head_ports(b, head, first, n, output_width, true);
    return b.take();
}

std::vector<ValueId> build_head(CircuitBuilder & b, const quant::QuantizedHead & head, int32_t first, int32_t n,
                                std::span<const ValueId> x, int input_scale, HeadCache & cache, int output_width) {
    HeadTables t = build_head_tables(head, n, output_width);
    const HeadEncoding e = t.encoding;
    const int L = head.lut_bits;
    const int32_t d = head.head_dim, n_embd = head.n_embd;
    if (first < 0 || first >= n) fail("head circuit: rows {}..{}", first, n - 1);
    if (x.size() != size_t(n - first) * n_embd)
        fail("head circuit: {} inputs for {} positions of {}", x.size(), n - first, n_embd);
    if (input_scale > e.input_scale) fail("head circuit: inputs at 2^{} above the head's 2^{}", input_scale, e.input_scale);
    for (const auto * part : {&cache.key_code, &cache.value_code})
        if (part->size() != size_t(first) * d) fail("head circuit: a cache of {} values for {} positions", part->size(), first);

    // Codes of the new positions; keys and values of earlier positions come from the cache.
    std::vector<ValueId> code[3];
    build_head_codes(b, head, e, t.code, first, n, x, input_scale, code);
    for (size_t k = 0; k < size_t(first) * d; ++k) {
        code[quant::kKey][k] = cache.key_code[k];
        code[quant::kValue][k] = cache.value_code[k];
    }
    for (size_t k = size_t(first) * d; k < size_t(n) * d; ++k) {
        cache.key_code.push_back(code[quant::kKey][k]);
        cache.value_code.push_back(code[quant::kValue][k]);
    }

    HeadRowTables tables;
    tables.score_product = b.table(L, std::move(t.score_product), "qk.product");
    tables.output_product = b.table(L, std::move(t.output_product), "av.product");
    tables.max_step = b.table(L, std::move(t.max_step), "softmax.max");
    tables.window = b.table(L, std::move(t.window), "softmax.window");
    tables.attention = b.table(L, std::move(t.attention), "softmax.attention");
    std::vector<ValueId> outputs;
    outputs.reserve(size_t(n - first) * d);
    std::vector<ValueId> score, coarse;
    for (int32_t i = first; i < n; ++i) {
        build_head_scores(b, head, e, tables, code, i, score, coarse);
        const std::vector<ValueId> weights = build_head_softmax(b, head, e, tables, i, score, coarse);
        build_head_values(b, head, tables, code, i, weights, outputs);
    }
    return outputs;
}

} // namespace fhegpt::circuit
