#include "circuit/block_circuit.h"

#include "circuit/attention_circuit.h"
#include "circuit/layer_norm_circuit.h"
#include "circuit/mlp_circuit.h"
#include "common/error.h"

#include <string>

namespace fhegpt::circuit {

namespace {

// with_ln_f: ln_f must be there if the run ends with it (taps stop before it).
void check(const QuantizedBlocks & q, int32_t first, int32_t n, bool with_ln_f = true) {
    if (n <= 0 || n > 4096) fail("blocks circuit: {} positions", n);
    if (first < 0 || first >= n) fail("blocks circuit: rows {}..{}", first, n - 1);
    if (q.blocks.empty() || q.residual.unit.size() != size_t(q.n_embd) || q.residual.width < 2 || q.residual.width > 62)
        fail("blocks circuit: inconsistent quantized blocks");
    if (with_ln_f && q.spec.final_norm != q.ln_f.has_value()) fail("blocks circuit: ln_f and the run's end disagree");
}

// The client's inputs of each row, in the order QuantizedBlocks::quantize_inputs writes them:
// the residual stream, then the first stage's normalized input.
struct RowInputs {
    std::vector<ValueId> x, normalized;
};

RowInputs add_row_inputs(CircuitBuilder & b, const QuantizedBlocks & q, int32_t rows) {
    const int32_t n_embd = q.n_embd;
    RowInputs in{std::vector<ValueId>(size_t(rows) * n_embd), std::vector<ValueId>(size_t(rows) * n_embd)};
    for (int32_t i = 0; i < rows; ++i) {
        for (int32_t k = 0; k < n_embd; ++k) in.x[size_t(i) * n_embd + k] = b.input(q.residual.scale());
        for (int32_t k = 0; k < n_embd; ++k) in.normalized[size_t(i) * n_embd + k] = b.input(q.first_input_scale());
    }
    return in;
}

// Inputs, the run and outputs of rows first..n-1; with_cache: the caches as ports.
void build_blocks_ports(CircuitBuilder & b, const QuantizedBlocks & q, int32_t first, int32_t n, bool with_cache) {
    check(q, first, n);
    auto [x, normalized] = add_row_inputs(b, q, n - first);
    std::vector<std::vector<HeadCache>> caches(q.blocks.size());
    const size_t cached = size_t(first) * q.head_dim();
    for (size_t l = 0; l < q.blocks.size(); ++l)
        if (const auto & att = q.blocks[l].attention)
            for (int32_t h = 0; h < att->n_head; ++h) caches[l].push_back(add_cache_inputs(b, att->heads[h], cached));
    for (size_t l = 0; l < q.blocks.size(); ++l) {
        b.set_section("layer" + std::to_string(q.blocks[l].layer));
        x = build_block(b, q, q.blocks[l], first, n, x, l == 0 ? std::span<const ValueId>(normalized) : std::span<const ValueId>(),
                        caches[l]);
    }
    if (q.ln_f) {
        b.set_section("ln_f");
        x = build_layer_norm(b, *q.ln_f, x);
    }
    for (ValueId v : x) b.output(v, q.output_scale());
    if (with_cache)
        for (size_t l = 0; l < q.blocks.size(); ++l)
            if (const auto & att = q.blocks[l].attention)
                for (int32_t h = 0; h < att->n_head; ++h) mark_cache_outputs(b, caches[l][size_t(h)], att->heads[h], cached);
}

} // namespace

std::vector<ValueId> build_residual(CircuitBuilder & b, std::span<const ValueId> x, std::span<const ValueId> delta) {
    if (x.size() != delta.size()) fail("residual: {} values plus {}", x.size(), delta.size());
    std::vector<ValueId> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const LinearTerm sum[] = {{x[i], 1}, {delta[i], 1}};
        out[i] = b.linear(sum);
    }
    return out;
}

namespace {

// The values of build_block at each tap (block_circuit.h: BlockTaps).
struct BlockValues {
    std::vector<ValueId> attention_in, middle, mlp_in;
};

std::vector<ValueId> build_block_values(CircuitBuilder & b, const QuantizedBlocks & q, const QuantizedBlock & block,
                                        int32_t first, int32_t n, std::span<const ValueId> x,
                                        std::span<const ValueId> normalized, std::vector<HeadCache> & caches,
                                        BlockValues * taps) {
    std::vector<ValueId> stream(x.begin(), x.end());
    const bool client_first = !normalized.empty();
    if (block.attention) {
        std::vector<ValueId> in;
        int in_scale = 0;
        if (block.ln_1) {
            in = build_layer_norm(b, *block.ln_1, stream);
            in_scale = block.ln_1->out_delta;
        } else if (client_first) {
            in.assign(normalized.begin(), normalized.end());
            in_scale = q.first_input_scale();
        } else {
            fail("block {}: its attention has no input", block.layer);
        }
        stream = build_residual(b, stream, build_attention(b, *block.attention, first, n, in, in_scale, caches));
        if (taps) {
            taps->attention_in = in;
            taps->middle = stream;
        }
    }
    std::vector<ValueId> in;
    int in_scale = 0;
    if (block.ln_2) {
        in = build_layer_norm(b, *block.ln_2, stream);
        in_scale = block.ln_2->out_delta;
    } else if (client_first && !block.attention) {
        in.assign(normalized.begin(), normalized.end());
        in_scale = q.first_input_scale();
    } else {
        fail("block {}: its MLP has no input", block.layer);
    }
    if (taps) taps->mlp_in = in;
    return build_residual(b, stream, build_mlp(b, block.mlp, in, in_scale, q.residual.scale()));
}

} // namespace

std::vector<ValueId> build_block(CircuitBuilder & b, const QuantizedBlocks & q, const QuantizedBlock & block, int32_t first,
                                 int32_t n, std::span<const ValueId> x, std::span<const ValueId> normalized,
                                 std::vector<HeadCache> & caches) {
    return build_block_values(b, q, block, first, n, x, normalized, caches, nullptr);
}

Circuit build_blocks_circuit(const QuantizedBlocks & q, int32_t n) {
    CircuitBuilder b(q.lut_bits);
    build_blocks_ports(b, q, 0, n, false);
    return b.take();
}

Circuit build_blocks_row_circuit(const QuantizedBlocks & q, int32_t first, int32_t n) {
    CircuitBuilder b(q.lut_bits);
    build_blocks_ports(b, q, first, n, true);
    return b.take();
}

std::vector<int64_t> blocks_reference_forward(const QuantizedBlocks & q, std::span<const int64_t> inputs, int32_t n) {
    if (n <= 0 || inputs.size() != size_t(n) * q.inputs_per_position())
        fail("blocks: {} inputs for {} positions of {}", inputs.size(), n, q.inputs_per_position());
    CircuitBuilder b = CircuitBuilder::evaluator(q.lut_bits, inputs);
    build_blocks_ports(b, q, 0, n, false);
    return b.outputs();
}

std::vector<int64_t> blocks_reference_rows(const QuantizedBlocks & q, std::span<const int64_t> inputs, int32_t first,
                                           int32_t n) {
    const size_t expected = size_t(n - first) * q.inputs_per_position() + size_t(first) * q.head_dim() * q.cache_parts();
    if (first < 0 || first >= n || inputs.size() != expected)
        fail("blocks: {} inputs for rows {}..{} (expected {})", inputs.size(), first, n - 1, expected);
    CircuitBuilder b = CircuitBuilder::evaluator(q.lut_bits, inputs);
    build_blocks_ports(b, q, first, n, true);
    return b.outputs();
}

std::vector<BlockTaps> blocks_reference_taps(const QuantizedBlocks & q, std::span<const int64_t> inputs, int32_t n,
                                             size_t count) {
    check(q, 0, n, false);
    if (count > q.blocks.size() || inputs.size() != size_t(n) * q.inputs_per_position())
        fail("blocks taps: {} inputs for {} positions, {} of {} blocks", inputs.size(), n, count, q.blocks.size());
    CircuitBuilder b = CircuitBuilder::evaluator(q.lut_bits, inputs);
    auto [x, normalized] = add_row_inputs(b, q, n);
    auto decode = [&](std::span<const ValueId> values, int scale) {
        std::vector<int64_t> out(values.size());
        for (size_t i = 0; i < values.size(); ++i) out[i] = decode_integer(b.plaintext(values[i]), scale);
        return out;
    };
    std::vector<BlockTaps> taps(count);
    for (size_t l = 0; l < count; ++l) {
        const QuantizedBlock & block = q.blocks[l];
        std::vector<HeadCache> caches;
        if (block.attention)
            for (int32_t h = 0; h < block.attention->n_head; ++h) caches.push_back(add_cache_inputs(b, block.attention->heads[h], 0));
        BlockValues values;
        taps[l].before = decode(x, q.residual.scale());
        x = build_block_values(b, q, block, 0, n, x, l == 0 ? std::span<const ValueId>(normalized) : std::span<const ValueId>(),
                               caches, &values);
        const int attention_scale = block.ln_1 ? block.ln_1->out_delta : q.first_input_scale();
        const int mlp_scale = block.ln_2 ? block.ln_2->out_delta : q.first_input_scale();
        taps[l].attention_in = decode(values.attention_in, attention_scale);
        taps[l].middle = decode(values.middle, q.residual.scale());
        taps[l].mlp_in = decode(values.mlp_in, mlp_scale);
        taps[l].after = decode(x, q.residual.scale());
    }
    return taps;
}

} // namespace fhegpt::circuit
