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

HeadCacheScales head_cache_scales(const quant::QuantizedHead & head, int output_width) {
    const HeadEncoding e = head_encoding(head, 1, output_width);
    HeadCacheScales s{e.grid, e.score_scale, e.grid, e.output_scale, {}, {}};
    for (int32_t c = 0; c < head.head_dim; ++c) {
        s.key_residue.push_back(bucket_residue(head, quant::kKey, c));
        s.value_residue.push_back(bucket_residue(head, quant::kValue, c));
    }
    return s;
}

namespace {

struct CachePart {
    std::vector<ValueId> * values;
    int scale;
    const std::vector<uint64_t> * residue; // per column, or none (square terms are exact)
};

// The cache's parts in circuit order, with their scales.
std::array<CachePart, 4> cache_parts(HeadCache & cache, const HeadCacheScales & s) {
    return {{{&cache.key_bucket, s.key_bucket, &s.key_residue},
             {&cache.key_square, s.key_square, nullptr},
             {&cache.value_bucket, s.value_bucket, &s.value_residue},
             {&cache.value_square, s.value_square, nullptr}}};
}

} // namespace

HeadCache add_cache_inputs(CircuitBuilder & b, const HeadCacheScales & scales, size_t count) {
    HeadCache cache;
    for (const CachePart & part : cache_parts(cache, scales))
        for (size_t k = 0; k < count; ++k) part.values->push_back(b.circuit().add_input(part.scale));
    return cache;
}

void mark_cache_outputs(CircuitBuilder & b, HeadCache & cache, const HeadCacheScales & scales, size_t from) {
    for (const CachePart & part : cache_parts(cache, scales))
        for (size_t k = from; k < part.values->size(); ++k) {
            const uint64_t residue = part.residue ? (*part.residue)[k % part.residue->size()] : 0;
            b.circuit().mark_output((*part.values)[k], part.scale, residue);
        }
}

Circuit build_head_row_circuit(const quant::QuantizedHead & head, int32_t first, int32_t n, int output_width) {
    if (first < 0 || first >= n) fail("head row circuit: rows {}..{}", first, n - 1);
    if (output_width <= 0) fail("head row circuit: a cached evaluation needs a fixed output width");
    const HeadEncoding e = head_encoding(head, n, output_width);
    const HeadCacheScales scales = head_cache_scales(head, output_width);
    const size_t cached = size_t(first) * head.head_dim;
    CircuitBuilder b(head.chunk_bits());
    std::vector<ValueId> x(size_t(n - first) * head.n_embd);
    for (auto & v : x) v = b.circuit().add_input(e.input_scale);
    HeadCache cache = add_cache_inputs(b, scales, cached);
    for (ValueId o : add_head_rows(b, head, first, n, x, e.input_scale, cache, output_width))
        b.circuit().mark_output(o, e.output_scale);
    mark_cache_outputs(b, cache, scales, cached);
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
    for (const auto * part : {&cache.key_bucket, &cache.key_square, &cache.value_bucket, &cache.value_square})
        if (part->size() != size_t(first) * d) fail("head circuit: a cache of {} values for {} positions", part->size(), first);
    std::vector<ValueId> outputs;
    outputs.reserve(size_t(n - first) * d);

    // Projections of the new positions: the rounded bucket h (on the grid, off it by the
    // column's residue; the value is h - 2^(V-1)) and, for k and v, its square term. Keys and
    // values of earlier positions come from the cache.
    std::vector<ValueId> bucket[3], square[3];
    std::vector<uint64_t> residue[3];
    const char * names[3] = {"q", "k", "v"};
    for (int p = 0; p < 3; ++p) {
        bucket[p].resize(size_t(n) * d, -1);
        square[p].resize(size_t(n) * d, -1);
        const int32_t square_table =
            p == quant::kQuery ? -1 : b.table(L, std::move(t.square[p]), std::string(names[p]) + ".square");
        for (int32_t c = 0; c < d; ++c) residue[p].push_back(bucket_residue(head, p, c));
        for (int32_t c = 0; c < d; ++c) {
            const int width = e.column_width(head, p, c), scale = e.column_scale(head, p, c);
            std::vector<LinearTerm> terms;
            for (int32_t r = 0; r < n_embd; ++r) {
                const int64_t w = head.weights[p].values[size_t(r) * d + c];
                if (w != 0) terms.push_back({ValueId(r), w * (int64_t{1} << (scale - input_scale))});
            }
            const uint64_t constant = encode_integer(head.bias[p][c] + head.accumulator_offset(p, c), scale);
            for (int32_t i = first; i < n; ++i) {
                std::vector<LinearTerm> row = terms;
                for (LinearTerm & term : row) term.value = x[size_t(i - first) * n_embd + term.value];
                const ValueId acc = b.linear(row, constant);
                const CircuitBuilder::Rounded h =
                    b.round_keeping_low_bits(acc, width, head.column_shift(p, c), head.kept_bits(p, c), "qkv.requant");
                if (h.residue != residue[p][c]) fail("head circuit: column residues disagree");
                bucket[p][size_t(i) * d + c] = h.value;
                if (square_table >= 0) square[p][size_t(i) * d + c] = b.lookup(h.value, square_table, h.residue);
            }
        }
    }
    for (size_t k = 0; k < size_t(first) * d; ++k) {
        bucket[quant::kKey][k] = cache.key_bucket[k];
        square[quant::kKey][k] = cache.key_square[k];
        bucket[quant::kValue][k] = cache.value_bucket[k];
        square[quant::kValue][k] = cache.value_square[k];
    }
    for (size_t k = size_t(first) * d; k < size_t(n) * d; ++k) {
        cache.key_bucket.push_back(bucket[quant::kKey][k]);
        cache.key_square.push_back(square[quant::kKey][k]);
        cache.value_bucket.push_back(bucket[quant::kValue][k]);
        cache.value_square.push_back(square[quant::kValue][k]);
    }

    const int32_t score_product = b.table(L, std::move(t.score_product), "qk.product");
    const int32_t output_product = b.table(L, std::move(t.output_product), "av.product");
    const int32_t max_step = b.table(L, std::move(t.max_step), "softmax.max");
    const int32_t window = b.table(L, std::move(t.window), "softmax.window");
    const uint64_t half_grid = encode_integer(int64_t{1} << head.value_bits, e.grid);
    const int64_t to_fine = int64_t{1} << (e.fine_scale - e.score_scale);
    const int32_t attention_table = b.table(L, std::move(t.attention), "softmax.attention");
    const int32_t attention_square = b.table(L, std::move(t.attention_square), "softmax.attention_square");

    std::vector<ValueId> buckets(static_cast<size_t>(n)), weights(static_cast<size_t>(n)),
        weight_squares(static_cast<size_t>(n));
    for (int32_t i = first; i < n; ++i) {
        // Scores S_ij = 2 q_i . k_j + Q_i = sum_c (h_q + h_k)^2 - (k + 2^V)^2, coarse buckets.
        std::vector<ValueId> score(size_t(i) + 1), coarse(size_t(i) + 1);
        for (int32_t j = 0; j <= i; ++j) {
            std::vector<LinearTerm> terms;
            for (int32_t c = 0; c < d; ++c) {
                const size_t qi = size_t(i) * d + c, kj = size_t(j) * d + c;
                const LinearTerm sum[] = {{bucket[quant::kQuery][qi], 1}, {bucket[quant::kKey][kj], 1}};
                terms.push_back(
                    {b.lookup(b.linear(sum), score_product, residue[quant::kQuery][c] + residue[quant::kKey][c]), 1});
                terms.push_back({square[quant::kKey][kj], -1});
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
            const ValueId zz = b.linear(z);
            weights[j] = b.lookup(zz, attention_table);
            weight_squares[j] = b.lookup(zz, attention_square);
        }
        // O_id = sum_j (a + h_v)^2 - h_v^2 - (a^2 + 2^V a) = 2 sum_j a_ij v_jd.
        for (int32_t c = 0; c < d; ++c) {
            std::vector<LinearTerm> out;
            for (int32_t j = 0; j <= i; ++j) {
                const size_t vj = size_t(j) * d + c;
                const LinearTerm sum2[] = {{weights[j], 1}, {bucket[quant::kValue][vj], 1}};
                out.push_back({b.lookup(b.linear(sum2), output_product, residue[quant::kValue][c]), 1});
                out.push_back({square[quant::kValue][vj], -1});
                out.push_back({weight_squares[j], -1});
            }
            outputs.push_back(b.linear(out));
        }
    }
    return outputs;
}

} // namespace fhegpt::circuit
