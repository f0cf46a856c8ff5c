#include "net/served_part.h"

#include "circuit/attention_circuit.h"
#include "circuit/block_circuit.h"
#include "circuit/head_circuit.h"
#include "common/error.h"

#include <memory>

namespace fhegpt::net {

namespace {

// The manifest's encodings, read off the one-position circuit: the inputs share one scale (for
// blocks, the stream one and its normalization another) and every output row one scale
// (checked, since the client relies on it).
void set_encodings(PartManifest & m, const circuit::Circuit & c) {
    const auto & in = c.inputs();
    const auto & out = c.outputs();
    const int32_t cols = m.input_cols();
    if (in.size() < size_t(cols) || out.size() < size_t(m.output_cols)) fail("served part: circuit too small");
    m.input_delta_log2 = in[size_t(cols - 1)].delta_log2;
    if (m.stream) m.stream->stream_delta_log2 = in[0].delta_log2;
    m.output_delta_log2 = out[0].delta_log2;
    for (int32_t i = 0; i < cols; ++i)
        if (in[size_t(i)].delta_log2 != m.input_delta_log2_of(i)) fail("served part: inputs with different encodings");
    for (size_t i = 0; i < size_t(m.output_cols); ++i)
        if (out[i].delta_log2 != m.output_delta_log2) fail("served part: outputs with different encodings");
}

PartManifest base_manifest(const quant::QuantizedHead & head, const std::string & name, int n_bits,
                           const tfhe::TfheParameters & params, int32_t output_cols, double output_unit) {
    PartManifest m;
    m.part = name;
    m.n_bits = n_bits;
    m.parameter_set = params.name;
    m.n_embd = head.n_embd;
    m.output_cols = output_cols;
    m.x_bits = head.x_bits;
    m.x_scales = head.x_scales;
    m.output_unit = output_unit;
    return m;
}

} // namespace

ServedPart served_head(quant::QuantizedHead head, const std::string & name, int n_bits, const tfhe::TfheParameters & params) {
    if (head.output_width <= 0) fail("served part {}: the head needs a calibrated output width", name);
    auto shared = std::make_shared<const quant::QuantizedHead>(std::move(head));
    ServedPart part;
    part.manifest = base_manifest(*shared, name, n_bits, params, shared->head_dim, shared->output_scale());
    part.cache_parts = circuit::kHeadCacheParts;
    part.cache_cols = shared->head_dim;
    part.build_row_circuit = [shared](int32_t first, int32_t n) {
        return circuit::build_head_row_circuit(*shared, first, n, shared->output_width);
    };
    set_encodings(part.manifest, part.build_row_circuit(0, 1));
    return part;
}

ServedPart served_attention(circuit::QuantizedAttention attention, const std::string & name, int n_bits,
                            const tfhe::TfheParameters & params) {
    auto shared = std::make_shared<const circuit::QuantizedAttention>(std::move(attention));
    ServedPart part;
    part.manifest = base_manifest(shared->heads.at(0), name, n_bits, params, shared->n_embd, shared->out_unit);
    part.cache_parts = circuit::kHeadCacheParts * shared->n_head;
    part.cache_cols = shared->head_dim;
    part.build_row_circuit = [shared](int32_t first, int32_t n) {
        return circuit::build_attention_row_circuit(*shared, first, n);
    };
    set_encodings(part.manifest, part.build_row_circuit(0, 1));
    return part;
}

ServedPart served_blocks(circuit::QuantizedBlocks blocks, const std::string & name, int n_bits,
                         const tfhe::TfheParameters & params) {
    auto shared = std::make_shared<const circuit::QuantizedBlocks>(std::move(blocks));
    const circuit::QuantizedBlocks & q = *shared;
    ServedPart part;
    PartManifest & m = part.manifest;
    m.part = name;
    m.n_bits = n_bits;
    m.parameter_set = params.name;
    m.n_embd = q.n_embd;
    m.output_cols = q.n_embd;
    m.x_bits = q.first_bits();
    m.x_scales = q.first_scales();
    StreamManifest stream;
    stream.width = q.residual.width;
    stream.units = q.residual.unit;
    stream.eps = q.eps;
    for (int32_t k = 0; k < q.n_embd; ++k) stream.output_units.push_back(q.output_unit(k));
    m.output_unit = stream.output_units.at(0);
    m.stream = std::move(stream);
    part.cache_parts = q.cache_parts();
    part.cache_cols = q.head_dim();
    part.build_row_circuit = [shared](int32_t first, int32_t n) {
        return circuit::build_blocks_row_circuit(*shared, first, n);
    };
    set_encodings(m, part.build_row_circuit(0, 1));
    return part;
}

} // namespace fhegpt::net
