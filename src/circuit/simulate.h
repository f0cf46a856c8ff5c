// The clear simulation of a circuit: every value is its exact torus plaintext, linear nodes
// are the same wrapping arithmetic the ciphertexts undergo, lookups read their message on the
// grid as a bootstrap does (negacyclic above the padding bit). The encrypted executor gives
// the same values unless a bootstrap fails.
#pragma once

#include "circuit/circuit.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::circuit {

// Plaintexts of every node from the input plaintexts (one per circuit input).
std::vector<uint64_t> simulate_plaintexts(const Circuit & circuit, std::span<const uint64_t> inputs);

// Encodes the integer inputs at their ports, simulates, decodes the outputs.
std::vector<int64_t> simulate(const Circuit & circuit, std::span<const int64_t> inputs);

// table.outputs[j] for j < p, -table.outputs[j - p] for j in [p, 2p): what a bootstrap reads.
uint64_t read_table(const Table & table, uint64_t message_with_padding);

} // namespace fhegpt::circuit
