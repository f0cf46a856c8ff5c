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

// entries[j] for j < p, -entries[j - p] for j in [p, 2p) (p = entries.size()): what a
// bootstrap reads.
uint64_t read_entries(std::span<const uint64_t> entries, uint64_t message_with_padding);
uint64_t read_table(const Table & table, uint64_t message_with_padding);
// The message (with padding) a bootstrap reads x at on a grid of 2^bits messages (the nearest
// grid point, as its centred boxes read it), and how far x lies from that point.
struct GridRead {
    uint64_t message;
    uint64_t distance;
};
GridRead grid_read(int bits, uint64_t x);
// table's entry at x's grid point; fails (a circuit construction error) when x lies further off
// the grid than `residue`.
uint64_t read_message(const Table & table, uint64_t x, uint64_t residue);
// What CircuitBuilder::remove_low_bits computes: x with its bits below 2^(scale + shift) cleared.
uint64_t clear_low_bits(uint64_t x, int scale, int shift);

} // namespace fhegpt::circuit
