#include "circuit/noise_analysis.h"

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
            ++a.bootstraps_by_section[circuit.sections()[size_t(n.section)]];
            a.lookup_bits_by_kind[kind] = std::max(a.lookup_bits_by_kind[kind], t.bits);
            a.max_lookup_bits = std::max(a.max_lookup_bits, t.bits);
        }
    }
    const std::vector<int32_t> depth = circuit.depths();
    a.depth = depth.empty() ? 0 : *std::max_element(depth.begin(), depth.end());
    a.bootstraps_by_depth.assign(size_t(a.depth) + 1, 0);
    for (size_t id = 0; id < circuit.nodes().size(); ++id)
        if (circuit.nodes()[id].kind == NodeKind::lookup) ++a.bootstraps_by_depth[size_t(depth[id])];
    return a;
}

namespace {

// log2(2^a + 2^b) without overflow or underflow.
double log2_add(double a, double b) {
    const double hi = std::max(a, b), lo = std::min(a, b);
    return hi + std::log2(1.0 + std::exp2(lo - hi));
}

// The noise analysis with the lookups of the kinds in `fine` (one entry per Circuit::kinds) on
// the fine bootstrapping key.
NoiseAnalysis analyze_noise_with(const Circuit & circuit, const tfhe::TfheParameters & params,
                                 const std::vector<bool> & fine) {
    const tfhe::NoiseBudget budget = tfhe::bootstrap_noise_budget(params);
    const double fine_output =
        params.has_fine_bootstrap() ? tfhe::bootstrap_noise_budget(params.fine_bootstrap_parameters()).pbs_output : 0;
    NoiseAnalysis out;
    out.parameter_set = params.name;
    for (size_t k = 0; k < fine.size(); ++k)
        if (fine[k]) out.fine_kinds.push_back(circuit.kinds()[k]);
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
            const bool on_fine = fine[table.kind];
            out.fine_bootstraps += on_fine;
            variance[id] = on_fine ? fine_output : budget.pbs_output;
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

} // namespace

std::vector<bool> fine_bootstrap_kinds(const Circuit & circuit, const tfhe::TfheParameters & params,
                                       double max_log2_expected_failures) {
    const size_t kinds = circuit.kinds().size();
    std::vector<bool> fine(kinds, false);
    if (!params.has_fine_bootstrap()) return fine;
    std::vector<int64_t> count(kinds, 0);
    for (const Node & n : circuit.nodes())
        if (n.kind == NodeKind::lookup) ++count[circuit.tables()[n.table].kind];
    const auto failures = [&](const std::vector<bool> & f) {
        return analyze_noise_with(circuit, params, f).log2_expected_failures;
    };
    double current = failures(fine);
    while (current > max_log2_expected_failures) {
        size_t best = kinds;
        double best_failures = current;
        for (size_t k = 0; k < kinds; ++k) {
            if (fine[k] || count[k] == 0) continue;
            fine[k] = true;
            const double f = failures(fine);
            fine[k] = false;
            if (f < best_failures || (f == best_failures && best < kinds && count[k] < count[best])) {
                best = k;
                best_failures = f;
            }
        }
        if (best == kinds) { // nothing helps: all on the fine key, the analysis reports the rest
            for (size_t k = 0; k < kinds; ++k) fine[k] = count[k] > 0;
            return fine;
        }
        fine[best] = true;
        current = best_failures;
    }
    std::vector<size_t> order;
    for (size_t k = 0; k < kinds; ++k)
        if (fine[k]) order.push_back(k);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return count[a] > count[b]; });
    for (size_t k : order) {
        fine[k] = false;
        if (failures(fine) > max_log2_expected_failures) fine[k] = true;
    }
    return fine;
}

NoiseAnalysis analyze_noise(const Circuit & circuit, const tfhe::TfheParameters & params) {
    return analyze_noise_with(circuit, params, fine_bootstrap_kinds(circuit, params));
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
