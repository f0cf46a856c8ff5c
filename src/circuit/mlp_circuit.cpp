#include "circuit/mlp_circuit.h"

#include "common/error.h"

namespace fhegpt::circuit {

std::vector<ValueId> build_mlp(CircuitBuilder & b, const QuantizedMlp & mlp, std::span<const ValueId> y, int input_scale,
                               int residual_scale) {
    const int32_t n_embd = mlp.n_embd, n_hidden = mlp.n_hidden;
    const int b_bits = mlp.bucket_bits;
    if (n_embd <= 0 || y.size() % size_t(n_embd) != 0) fail("MLP: {} inputs, rows of {}", y.size(), n_embd);
    if (mlp.fc.size() != size_t(n_embd) * n_hidden || mlp.fc_bias.size() != size_t(n_hidden) ||
        mlp.width.size() != size_t(n_hidden) || mlp.gelu_unit.size() != size_t(n_hidden) ||
        mlp.proj.size() != size_t(n_hidden) * n_embd ||
        mlp.proj_bias.size() != size_t(n_embd))
        fail("MLP: inconsistent quantized MLP");
    if (input_scale > mlp.input_scale()) fail("MLP: inputs at 2^{} above the MLP's 2^{}", input_scale, mlp.input_scale());
    const size_t rows = y.size() / size_t(n_embd);
    std::vector<ValueId> g(rows * size_t(n_hidden)); // [rows, n_hidden]
    for (int32_t c = 0; c < n_hidden; ++c) {
        const int w = mlp.width[size_t(c)], scale = 63 - w;
        if (w < b_bits || w > 62 || b_bits < 2 || b_bits > mlp.lut_bits)
            fail("MLP: a column of {} bits in {}-bit buckets", w, b_bits);
        std::vector<uint64_t> entries(size_t{1} << b_bits);
        for (size_t h = 0; h < entries.size(); ++h) entries[h] = encode_integer(mlp.gelu_entry(c, int64_t(h)), residual_scale);
        const int32_t table = b.table(b_bits, std::move(entries), "mlp.gelu");
        std::vector<LinearTerm> terms;
        for (int32_t r = 0; r < n_embd; ++r)
            if (const int64_t v = mlp.fc[size_t(r) * n_hidden + c]; v != 0)
                terms.push_back({ValueId(r), v * (int64_t{1} << (scale - input_scale))});
        const uint64_t constant = encode_integer(mlp.fc_bias[size_t(c)] + mlp.offset(c), scale);
        for (size_t i = 0; i < rows; ++i) {
            std::vector<LinearTerm> row = terms;
            for (LinearTerm & t : row) t.value = y[i * size_t(n_embd) + size_t(t.value)];
            const CircuitBuilder::Rounded h = b.round_keeping_low_bits(b.linear(row, constant), w, mlp.shift(c), mlp.kept(c), "mlp.requant");
            g[i * size_t(n_hidden) + size_t(c)] = b.lookup(h.value, table, h.residue);
        }
    }
    std::vector<ValueId> out;
    out.reserve(rows * size_t(n_embd));
    for (size_t i = 0; i < rows; ++i)
        for (int32_t k = 0; k < n_embd; ++k) {
            std::vector<LinearTerm> terms;
            for (int32_t c = 0; c < n_hidden; ++c)
                if (const int64_t v = mlp.proj[size_t(c) * n_embd + k]; v != 0) terms.push_back({g[i * size_t(n_hidden) + size_t(c)], v});
            out.push_back(b.linear(terms, encode_integer(mlp.proj_bias[size_t(k)], residual_scale)));
        }
    return out;
}

} // namespace fhegpt::circuit
