#include "circuit/layer_norm_circuit.h"

#include "common/error.h"

namespace fhegpt::circuit {

namespace {

std::vector<uint64_t> entries(int bits, int scale, const auto & f) {
    std::vector<uint64_t> t(size_t{1} << bits);
    for (size_t j = 0; j < t.size(); ++j) t[j] = encode_integer(f(int64_t(j)), scale);
    return t;
}

} // namespace

std::vector<ValueId> build_layer_norm(CircuitBuilder & b, const QuantizedLayerNorm & ln, std::span<const ValueId> x) {
    const int32_t n_embd = ln.n_embd;
    const int L = ln.lut_bits, b_bits = ln.bucket_bits, B = ln.residual_width, grid = 63 - L;
    if (n_embd <= 0 || x.size() % size_t(n_embd) != 0) fail("layer norm: {} inputs, rows of {}", x.size(), n_embd);
    if (ln.width.size() != size_t(n_embd) || ln.step.size() != size_t(n_embd) || ln.out_scale.size() != size_t(n_embd) ||
        ln.gain.size() != size_t(n_embd) || ln.out_offset.size() != size_t(n_embd) || ln.sum_width < L || ln.sum_width > 62 ||
        b_bits < 2 || b_bits > L)
        fail("layer norm: inconsistent quantized layer norm");
    for (int w : ln.width)
        if (w < b_bits || w > B) fail("layer norm: a channel of {} bits in a {}-bit stream, {}-bit buckets", w, B, b_bits);
    const int32_t code = b.table(b_bits, entries(b_bits, grid, [&](int64_t h) { return ln.code_entry(h); }), "ln.code");
    const int32_t rms = b.table(L, entries(L, grid, [&](int64_t g) { return ln.r_code_entry(g); }), "ln.rms");
    std::vector<int32_t> square(static_cast<size_t>(n_embd)), product(static_cast<size_t>(n_embd));
    for (int32_t k = 0; k < n_embd; ++k) {
        square[size_t(k)] = b.table(b_bits, entries(b_bits, 63 - ln.sum_width, [&](int64_t h) { return ln.square_entry(k, h); }),
                                    "ln.square");
        product[size_t(k)] = b.table(L, entries(L, ln.out_delta, [&](int64_t s) { return ln.product_entry(k, s); }), "ln.product");
    }
    std::vector<ValueId> y;
    y.reserve(x.size());
    std::vector<ValueId> codes(static_cast<size_t>(n_embd));
    for (size_t row = 0; row < x.size(); row += size_t(n_embd)) {
        std::vector<LinearTerm> squares;
        for (int32_t k = 0; k < n_embd; ++k) {
            // The channel at its own width (u = x + 2^(w - 1) on w bits), its bucket, code and square.
            const int w = ln.width[size_t(k)];
            const LinearTerm scaled[] = {{x[row + size_t(k)], int64_t{1} << (B - w)}};
            const ValueId u = b.linear(scaled, encode_integer(ln.offset(k), 63 - w));
            const CircuitBuilder::Rounded h = b.round_keeping_low_bits(u, w, ln.shift(k), ln.kept(k), "ln.requant");
            codes[size_t(k)] = b.lookup(h.value, code, h.residue);
            squares.push_back({b.lookup(h.value, square[size_t(k)], h.residue), 1});
        }
        const ValueId sum = b.linear(squares);
        const CircuitBuilder::Rounded g = b.round_keeping_low_bits(sum, ln.sum_width, ln.sum_shift(), ln.sum_kept(), "ln.sum");
        const ValueId r = b.lookup(g.value, rms, g.residue);
        for (int32_t k = 0; k < n_embd; ++k) {
            const LinearTerm both[] = {{codes[size_t(k)], 1}, {r, 1}};
            const ValueId p = b.lookup(b.linear(both), product[size_t(k)]);
            if (ln.out_offset[size_t(k)] == 0) {
                y.push_back(p);
            } else {
                const LinearTerm same[] = {{p, 1}};
                y.push_back(b.linear(same, encode_integer(ln.out_offset[size_t(k)], ln.out_delta)));
            }
        }
    }
    return y;
}

} // namespace fhegpt::circuit
