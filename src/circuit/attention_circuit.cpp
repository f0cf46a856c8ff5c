#include "circuit/attention_circuit.h"

#include "circuit/head_tables.h"
#include "common/error.h"

#include <algorithm>

namespace fhegpt::circuit {

namespace {

int out_scale(const QuantizedAttention & att) {
    if (att.out_bits < 2 || att.out_bits > 62) fail("attention: output width {}", att.out_bits);
    return 63 - att.out_bits;
}

// Head h's o for every bucket j of L bits, written at the output's scale.
std::vector<uint64_t> context_table(const QuantizedAttention & att, int32_t h) {
    std::vector<uint64_t> t(size_t{1} << att.lut_bits);
    for (size_t j = 0; j < t.size(); ++j) t[j] = encode_integer(att.context_entry(h, int64_t(j)), out_scale(att));
    return t;
}

void check(const QuantizedAttention & att, int32_t n) {
    if (n <= 0 || n > 4096) fail("attention circuit: {} positions", n);
    if (att.heads.size() != size_t(att.n_head) || att.context_shift.size() != size_t(att.n_head) ||
        (!att.context_gain.empty() && att.context_gain.size() != size_t(att.n_head)) ||
        att.proj.values.size() != size_t(att.n_embd) * att.n_embd || att.proj_bias.size() != size_t(att.n_embd))
        fail("attention circuit: inconsistent quantized attention");
}

// Inputs, the attention stage and outputs of rows first..n-1; with_cache: every head's cache of
// positions 0..first-1 as inputs and the new positions' entries as outputs.
void build_attention_ports(CircuitBuilder & b, const QuantizedAttention & att, int32_t first, int32_t n, bool with_cache) {
    const int input_scale = attention_input_scale(att);
    std::vector<ValueId> x(size_t(n - first) * att.n_embd);
    for (auto & v : x) v = b.input(input_scale);
    std::vector<HeadCache> caches;
    const size_t cached = size_t(first) * att.head_dim;
    for (int32_t h = 0; h < att.n_head; ++h) caches.push_back(add_cache_inputs(b, att.heads[h], cached));
    for (ValueId out : build_attention(b, att, first, n, x, input_scale, caches)) b.output(out, out_scale(att));
    if (with_cache)
        for (int32_t h = 0; h < att.n_head; ++h) mark_cache_outputs(b, caches[h], att.heads[h], cached);
}

} // namespace

int attention_input_scale(const QuantizedAttention & att) {
    int input_scale = 63;
    for (const auto & head : att.heads) input_scale = std::min(input_scale, head_encoding(head, 1).input_scale);
    return input_scale;
}

std::vector<ValueId> build_attention(CircuitBuilder & b, const QuantizedAttention & att, int32_t first, int32_t n,
                                     std::span<const ValueId> x, int input_scale, std::vector<HeadCache> & caches) {
    check(att, n);
    if (first < 0 || first >= n) fail("attention: rows {}..{}", first, n - 1);
    if (caches.size() != size_t(att.n_head)) fail("attention: {} head caches for {} heads", caches.size(), att.n_head);
    const int32_t n_embd = att.n_embd, d = att.head_dim, rows = n - first;
    std::vector<ValueId> o(size_t(rows) * n_embd); // [rows, n_embd]: head h, column c at h d + c
    for (int32_t h = 0; h < att.n_head; ++h) {
        const int32_t table = b.table(att.lut_bits, context_table(att, h), "context.value");
        const int width = att.context_width(h);
        const std::vector<ValueId> context = build_head(b, att.heads[h], first, n, x, input_scale, caches[h], width);
        for (int32_t i = 0; i < rows; ++i)
            for (int32_t c = 0; c < d; ++c) {
                const LinearTerm term[] = {{context[size_t(i) * d + c], 1}};
                const ValueId u = b.linear(term, encode_integer(att.context_offset(h), 63 - width));
                if (att.context_keeps_low_bits) {
                    const int shift = att.context_shift[h];
                    const CircuitBuilder::Rounded r = b.round_keeping_low_bits(
                        u, width, shift, CircuitBuilder::kept_bits_for(shift, att.lut_bits, att.lut_bits), "context.requant");
                    o[size_t(i) * n_embd + h * d + c] = b.lookup(r.value, table, r.residue);
                } else {
                    const ValueId bucket = b.remove_low_bits(u, width, att.context_shift[h], "context.requant");
                    o[size_t(i) * n_embd + h * d + c] = b.lookup(bucket, table);
                }
            }
    }
    const uint64_t unit = uint64_t{1} << out_scale(att);
    std::vector<ValueId> out;
    out.reserve(size_t(rows) * n_embd);
    for (int32_t i = 0; i < rows; ++i)
        for (int32_t j = 0; j < n_embd; ++j) {
            std::vector<LinearTerm> terms;
            for (int32_t r = 0; r < n_embd; ++r)
                if (const int64_t w = att.proj.values[size_t(r) * n_embd + j]; w != 0)
                    terms.push_back({o[size_t(i) * n_embd + r], w});
            out.push_back(b.linear(terms, uint64_t(att.proj_bias[j]) * unit));
        }
    return out;
}

Circuit build_attention_circuit(const QuantizedAttention & att, int32_t n) {
    check(att, n);
    CircuitBuilder b(att.heads[0].chunk_bits());
    build_attention_ports(b, att, 0, n, false);
    return b.take();
}

Circuit build_attention_row_circuit(const QuantizedAttention & att, int32_t first, int32_t n) {
    check(att, n);
    if (first < 0 || first >= n) fail("attention row circuit: rows {}..{}", first, n - 1);
    CircuitBuilder b(att.heads[0].chunk_bits());
    build_attention_ports(b, att, first, n, true);
    return b.take();
}

std::vector<int64_t> attention_reference_forward(const QuantizedAttention & att, std::span<const int64_t> x_int,
                                                 int32_t n) {
    check(att, n);
    if (x_int.size() != size_t(n) * att.n_embd) fail("attention: {} inputs for {} positions of {}", x_int.size(), n, att.n_embd);
    CircuitBuilder b = CircuitBuilder::evaluator(att.heads[0].chunk_bits(), x_int);
    build_attention_ports(b, att, 0, n, false);
    return b.outputs();
}

} // namespace fhegpt::circuit
