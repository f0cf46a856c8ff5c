// Static analysis of a circuit: what it costs before anything is encrypted.
#pragma once

#include "circuit/circuit.h"

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

} // namespace fhegpt::circuit
