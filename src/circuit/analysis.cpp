#include "circuit/analysis.h"

#include <algorithm>

namespace fhegpt::circuit {

CircuitAnalysis analyze(const Circuit & circuit) {
    CircuitAnalysis a;
    a.inputs = static_cast<int64_t>(circuit.inputs().size());
    a.outputs = static_cast<int64_t>(circuit.outputs().size());
    a.tables = static_cast<int64_t>(circuit.tables().size());
    for (const Node & n : circuit.nodes()) {
        if (n.kind == NodeKind::linear) {
            ++a.linear_nodes;
            a.linear_terms += n.term_count;
        } else if (n.kind == NodeKind::lookup) {
            const Table & t = circuit.tables()[n.table];
            const std::string & kind = circuit.kinds()[t.kind];
            ++a.bootstraps;
            ++a.bootstraps_by_kind[kind];
            ++a.bootstraps_by_bits[t.bits];
            a.lookup_bits_by_kind[kind] = std::max(a.lookup_bits_by_kind[kind], t.bits);
            a.max_lookup_bits = std::max(a.max_lookup_bits, t.bits);
        }
    }
    const std::vector<int32_t> depth = circuit.depths();
    a.depth = depth.empty() ? 0 : *std::max_element(depth.begin(), depth.end());
    return a;
}

} // namespace fhegpt::circuit
