// Static analysis of a circuit: what it costs before anything is encrypted.
#pragma once

#include "circuit/circuit.h"
#include "tfhe/commons/parameters.h"

#include <map>
#include <string>
#include <vector>

namespace fhegpt::circuit {

struct CircuitAnalysis {
    int64_t inputs = 0, outputs = 0, linear_nodes = 0, linear_terms = 0;
    int64_t bootstraps = 0;
    int32_t depth = 0;                            // bootstrap depth (sequential batches)
    std::vector<int64_t> bootstraps_by_depth;     // [d]: lookups at depth d (a batch each, the executor's levels)
    int max_lookup_bits = 0;                      // widest table input ("compiled with N bits")
    std::map<std::string, int64_t> bootstraps_by_kind;
    std::map<std::string, int> lookup_bits_by_kind;
    std::map<int, int64_t> bootstraps_by_bits;    // table input bits -> bootstraps
    std::map<std::string, int64_t> bootstraps_by_section; // Circuit::sections that have lookups
    int64_t tables = 0;
};

CircuitAnalysis analyze(const Circuit & circuit);

// Failure probabilities of the circuit's bootstraps with one parameter set, from the noise
// model (tfhe/commons/noise_model.h): the variance of every value (fresh inputs, bootstrap
// outputs, and sum_i w_i^2 v_i through linear nodes, so long sums and scaled-up values count)
// plus the key switch and modulus switch, against half a box of the lookup's own width less
// its declared residue; and the decryption of every output against half its unit less its
// residue (kind "output.decrypt").
struct NoiseAnalysis {
    std::string parameter_set;
    std::vector<std::string> fine_kinds;       // kinds on the set's fine bootstrapping key, if it has one
    int64_t fine_bootstraps = 0;
    double worst_log2_p_fail = -1e9;           // the most fragile bootstrap
    std::string worst_kind;
    double log2_expected_failures = -1e9;      // log2 of the sum over all bootstraps (one evaluation)
    std::map<std::string, double> worst_log2_p_fail_by_kind;
};
// For a set with a fine bootstrapping key, the lookups go where fine_bootstrap_kinds() puts them.
NoiseAnalysis analyze_noise(const Circuit & circuit, const tfhe::TfheParameters & params);

// The failure policy: at most 2^-40 expected failed bootstraps per evaluation.
inline constexpr double kMaxLog2ExpectedFailures = -40;

// For a set with a fine bootstrapping key (TfheParameters::has_fine_bootstrap): which table
// kinds (indexed like Circuit::kinds) bootstrap with it. Greedy on whole kinds: from none, add
// the kind that lowers the expected failures most until the policy holds, then drop again the
// kinds (most bootstraps first) the policy does not need. Deterministic, so the executor and
// the analysis agree. Every kind if even that misses the policy; none for a set without a
// fine key.
std::vector<bool> fine_bootstrap_kinds(const Circuit & circuit, const tfhe::TfheParameters & params,
                                       double max_log2_expected_failures = kMaxLog2ExpectedFailures);

// The first production set (fastest first) that reads every lookup of the circuit and keeps
// the expected number of failed bootstraps per evaluation at most 2^max_log2_expected_failures;
// nullptr if none does.
const tfhe::TfheParameters * choose_parameters(const Circuit & circuit,
                                               double max_log2_expected_failures = kMaxLog2ExpectedFailures);

} // namespace fhegpt::circuit
