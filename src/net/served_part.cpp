#include "net/served_part.h"

#include "circuit/attention_circuit.h"
#include "circuit/head_circuit.h"
#include "common/error.h"

#include <memory>

namespace fhegpt::net {

namespace {

// The manifest's encodings, read off the one-position circuit: every input shares one scale
// and every output row one scale (checked, since the client relies on it).
void set_encodings(PartManifest & m, const circuit::Circuit & c) {
    const auto & in = c.inputs();
    const auto & out = c.outputs();
    if (in.size() < size_t(m.n_embd) || out.size() < size_t(m.output_cols)) fail("served part: circuit too small");
    m.input_delta_log2 = in[0].delta_log2;
    m.output_delta_log2 = out[0].delta_log2;
    for (size_t i = 0; i < size_t(m.n_embd); ++i)
        if (in[i].delta_log2 != m.input_delta_log2) fail("served part: inputs with different encodings");
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

} // namespace fhegpt::net
