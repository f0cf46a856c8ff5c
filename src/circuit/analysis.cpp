#include "circuit/analysis.h"

#include "tfhe/commons/noise_model.h"

#include <algorithm>
#include <cmath>

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

namespace {

// log2(2^a + 2^b) without overflow or underflow.
double log2_add(double a, double b) {
    const double hi = std::max(a, b), lo = std::min(a, b);
    return hi + std::log2(1.0 + std::exp2(lo - hi));
}

} // namespace

NoiseAnalysis analyze_noise(const Circuit & circuit, const tfhe::TfheParameters & params) {
    const tfhe::NoiseBudget budget = tfhe::bootstrap_noise_budget(params);
    NoiseAnalysis out;
    out.parameter_set = params.name;
    std::vector<double> variance(circuit.size(), budget.fresh);
    const auto & nodes = circuit.nodes();
    for (size_t id = 0; id < nodes.size(); ++id) {
        const Node & n = nodes[id];
        if (n.kind == NodeKind::linear) {
            double v = 0;
            for (const LinearTerm & t : circuit.terms_of(n)) v += double(t.weight) * double(t.weight) * variance[t.value];
            variance[id] = v;
        } else if (n.kind == NodeKind::lookup) {
            const Table & table = circuit.tables()[n.table];
            const double total = variance[n.input] + budget.keyswitch + budget.modulus_switch;
            const double margin = std::ldexp(std::ldexp(1.0, 62 - table.bits) - double(n.residue), -64);
            const double log2_p = tfhe::log2_failure_probability_at_margin(total, margin);
            const std::string & kind = circuit.kinds()[table.kind];
            auto [it, fresh] = out.worst_log2_p_fail_by_kind.emplace(kind, log2_p);
            if (!fresh) it->second = std::max(it->second, log2_p);
            if (log2_p > out.worst_log2_p_fail) {
                out.worst_log2_p_fail = log2_p;
                out.worst_kind = kind;
            }
            out.log2_expected_failures = log2_add(out.log2_expected_failures, log2_p);
            variance[id] = budget.pbs_output;
        }
    }
    // Decryption of an output rounds to its unit 2^delta: it fails when the noise exceeds half of it.
    for (const Port & port : circuit.outputs()) {
        if (port.delta_log2 < 1 || port.delta_log2 > 62) continue;
        const double margin = std::ldexp(std::ldexp(1.0, port.delta_log2 - 1) - double(port.residue), -64);
        const double log2_p = tfhe::log2_failure_probability_at_margin(variance[port.value], margin);
        auto [it, fresh] = out.worst_log2_p_fail_by_kind.emplace("output.decrypt", log2_p);
        if (!fresh) it->second = std::max(it->second, log2_p);
        if (log2_p > out.worst_log2_p_fail) {
            out.worst_log2_p_fail = log2_p;
            out.worst_kind = "output.decrypt";
        }
        out.log2_expected_failures = log2_add(out.log2_expected_failures, log2_p);
    }
    return out;
}

const tfhe::TfheParameters * choose_parameters(const Circuit & circuit, double max_log2_expected_failures) {
    const CircuitAnalysis a = analyze(circuit);
    for (const tfhe::TfheParameters * p : tfhe::production_parameter_sets()) {
        if (int(p->message_bits) < a.max_lookup_bits) continue;
        if (analyze_noise(circuit, *p).log2_expected_failures <= max_log2_expected_failures) return p;
    }
    return nullptr;
}

} // namespace fhegpt::circuit
