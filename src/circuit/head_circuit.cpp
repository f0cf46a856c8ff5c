#include "circuit/head_circuit.h"

#include "circuit/head_tables.h"
#include "common/error.h"

#include <array>
#include <utility>

namespace fhegpt::circuit {

Circuit build_head_circuit(const quant::QuantizedHead & head, int32_t n) {
    const HeadEncoding e = head_encoding(head, n);
    CircuitBuilder b(head.chunk_bits());
    std::vector<ValueId> x(size_t(n) * head.n_embd);
    for (auto & v : x) v = b.circuit().add_input(e.input_scale);
    for (ValueId o : add_head_circuit(b, head, n, x, e.input_scale)) b.circuit().mark_output(o, e.output_scale);
    return b.take();
}

std::vector<ValueId> add_head_circuit(CircuitBuilder & b, const quant::QuantizedHead & head, int32_t n,
                                      std::span<const ValueId> x, int input_scale, int output_width) {
    HeadCache cache;
    return add_head_rows(b, head, 0, n, x, input_scale, cache, output_width);
}

uint64_t bucket_residue(const quant::QuantizedHead & head, int p, int32_t c) {
    return CircuitBuilder::kept_bits_residue(head_encoding(head, 1).column_width(head, p, c), head.kept_bits(p, c));
}

namespace {

// The cache's parts in circuit order.
std::array<std::vector<ValueId> *, kHeadCacheParts> cache_parts(HeadCache & cache) {
    return {&cache.key_code, &cache.value_code};
}

int code_scale(const quant::QuantizedHead & head) { return 63 - head.lut_bits; }

} // namespace

HeadCache add_cache_inputs(CircuitBuilder & b, const quant::QuantizedHead & head, size_t count) {
    HeadCache cache;
    for (std::vector<ValueId> * part : cache_parts(cache))
        for (size_t k = 0; k < count; ++k) part->push_back(b.circuit().add_input(code_scale(head)));
    return cache;
}

void mark_cache_outputs(CircuitBuilder & b, HeadCache & cache, const quant::QuantizedHead & head, size_t from) {
    for (std::vector<ValueId> * part : cache_parts(cache))
        for (size_t k = from; k < part->size(); ++k) b.circuit().mark_output((*part)[k], code_scale(head));
}

Circuit build_head_row_circuit(const quant::QuantizedHead & head, int32_t first, int32_t n, int output_width) {
    if (first < 0 || first >= n) fail("head row circuit: rows {}..{}", first, n - 1);
    if (output_width <= 0) fail("head row circuit: a cached evaluation needs a fixed output width");
    const HeadEncoding e = head_encoding(head, n, output_width);
    const size_t cached = size_t(first) * head.head_dim;
    CircuitBuilder b(head.chunk_bits());
    std::vector<ValueId> x(size_t(n - first) * head.n_embd);
    for (auto & v : x) v = b.circuit().add_input(e.input_scale);
    HeadCache cache = add_cache_inputs(b, head, cached);
    for (ValueId o : add_head_rows(b, head, first, n, x, e.input_scale, cache, output_width))
        b.circuit().mark_output(o, e.output_scale);
    mark_cache_outputs(b, cache, head, cached);
    return b.take();
}

std::vector<ValueId> add_head_rows(CircuitBuilder & b, const quant::QuantizedHead & head, int32_t first, int32_t n,
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
    std::vector<ValueId> outputs;
    outputs.reserve(size_t(n - first) * d);

    // Log codes of the new positions' projections: the accumulator rounded to its L-bit bucket
    // (off the grid by the column's residue), read once. Keys and values of earlier positions
    // come from the cache.
    std::vector<ValueId> code[3];
    const char * names[3] = {"q", "k", "v"};
    for (int p = 0; p < 3; ++p) {
        code[p].resize(size_t(n) * d, -1);
        const int32_t code_table = b.table(L, t.code, std::string(names[p]) + ".code");
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
                code[p][size_t(i) * d + c] = b.lookup(h.value, code_table, h.residue);
            }
        }
    }
    for (size_t k = 0; k < size_t(first) * d; ++k) {
        code[quant::kKey][k] = cache.key_code[k];
        code[quant::kValue][k] = cache.value_code[k];
    }
    for (size_t k = size_t(first) * d; k < size_t(n) * d; ++k) {
        cache.key_code.push_back(code[quant::kKey][k]);
        cache.value_code.push_back(code[quant::kValue][k]);
    }

    const int32_t score_product = b.table(L, std::move(t.score_product), "qk.product");
    const int32_t output_product = b.table(L, std::move(t.output_product), "av.product");
    const int32_t max_step = b.table(L, std::move(t.max_step), "softmax.max");
    const int32_t window = b.table(L, std::move(t.window), "softmax.window");
    const uint64_t half_grid = encode_integer(int64_t{1} << head.value_bits, e.grid);
    const int64_t to_fine = int64_t{1} << (e.fine_scale - e.score_scale);
    const int32_t attention_table = b.table(L, std::move(t.attention), "softmax.attention");

    std::vector<ValueId> buckets(static_cast<size_t>(n)), weights(static_cast<size_t>(n));
    for (int32_t i = first; i < n; ++i) {
        // Scores S_ij = sum_c P(code_q + code_k), coarse buckets.
        std::vector<ValueId> score(size_t(i) + 1), coarse(size_t(i) + 1);
        for (int32_t j = 0; j <= i; ++j) {
            std::vector<LinearTerm> terms;
            for (int32_t c = 0; c < d; ++c) {
                const LinearTerm sum[] = {{code[quant::kQuery][size_t(i) * d + c], 1}, {code[quant::kKey][size_t(j) * d + c], 1}};
                terms.push_back({b.lookup(b.linear(sum), score_product), 1});
            }
            score[j] = b.linear(terms, encode_integer(int64_t{1} << (head.score_bits - 1), e.score_scale));
            coarse[j] = b.remove_low_bits(score[j], head.score_bits + 1, head.score_shift(), "score.requant");
        }
        // The row's best coarse bucket: top += max(c_j - top, 0).
        ValueId top = coarse[0];
        for (int32_t j = 1; j <= i; ++j) {
            const LinearTerm diff[] = {{coarse[j], 1}, {top, -1}};
            const LinearTerm next[] = {{top, 1}, {b.lookup(b.linear(diff, half_grid), max_step), 1}};
            top = b.linear(next);
        }
        // Fine buckets of the scores relative to the top, exp values and their sum.
        RowTables row = build_row_tables(head, i + 1);
        const int32_t exp_table = b.table(L, std::move(row.exp), "softmax.exp");
        const int32_t log_table = b.table(L, std::move(row.log), "softmax.log");
        std::vector<LinearTerm> denominator;
        for (int32_t j = 0; j <= i; ++j) {
            const LinearTerm distance[] = {{top, 1}, {coarse[j], -1}};
            const ValueId shifted = b.lookup(b.linear(distance), window);
            const LinearTerm relative[] = {{score[j], to_fine}, {coarse[j], -to_fine}, {shifted, to_fine}};
            buckets[j] = b.remove_low_bits(b.linear(relative), head.fine_width(), head.fine_shift(), "score.fine");
            denominator.push_back({b.lookup(buckets[j], exp_table), 1});
        }
        const ValueId sum = b.linear(denominator);
        const ValueId sum_bucket =
            b.remove_low_bits(sum, row.denominator_bits, row.denominator_shift, "softmax.requant");
        const ValueId log = b.lookup(sum_bucket, log_table);
        for (int32_t j = 0; j <= i; ++j) {
            const LinearTerm z[] = {{buckets[j], 1}, {log, 1}};
            weights[j] = b.lookup(b.linear(z), attention_table);
        }
        // O_id = sum_j A(alpha_ij + code_v,jd).
        for (int32_t c = 0; c < d; ++c) {
            std::vector<LinearTerm> out;
            for (int32_t j = 0; j <= i; ++j) {
                const LinearTerm sum[] = {{weights[j], 1}, {code[quant::kValue][size_t(j) * d + c], 1}};
                out.push_back({b.lookup(b.linear(sum), output_product), 1});
            }
            outputs.push_back(b.linear(out));
        }
    }
    return outputs;
}

} // namespace fhegpt::circuit
