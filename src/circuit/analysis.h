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
    int max_lookup_bits = 0;                      // widest table input ("compiled with N bits")
    std::map<std::string, int64_t> bootstraps_by_kind;
    std::map<std::string, int> lookup_bits_by_kind;
    std::map<int, int64_t> bootstraps_by_bits;    // table input bits -> bootstraps
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
    double worst_log2_p_fail = -1e9;           // the most fragile bootstrap
    std::string worst_kind;
    double log2_expected_failures = -1e9;      // log2 of the sum over all bootstraps (one evaluation)
    std::map<std::string, double> worst_log2_p_fail_by_kind;
};
NoiseAnalysis analyze_noise(const Circuit & circuit, const tfhe::TfheParameters & params);

// The first production set (fastest first) that reads every lookup of the circuit and keeps
// the expected number of failed bootstraps per evaluation at most 2^max_log2_expected_failures;
// nullptr if none does.
const tfhe::TfheParameters * choose_parameters(const Circuit & circuit, double max_log2_expected_failures = -40);

} // namespace fhegpt::circuit
