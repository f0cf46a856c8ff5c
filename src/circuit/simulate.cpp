#include "circuit/simulate.h"

#include "common/error.h"

namespace fhegpt::circuit {

uint64_t read_entries(std::span<const uint64_t> entries, uint64_t j) {
    const uint64_t p = entries.size();
    return j < p ? entries[j] : uint64_t{0} - entries[j - p];
}

uint64_t read_table(const Table & table, uint64_t j) { return read_entries(table.outputs, j); }

GridRead grid_read(int bits, uint64_t x) {
    const int grid_log2 = 63 - bits;
    const uint64_t j = (x + (uint64_t{1} << (grid_log2 - 1))) >> grid_log2;
    const uint64_t off = x - (j << grid_log2);
    return {j, static_cast<int64_t>(off) < 0 ? uint64_t{0} - off : off};
}

uint64_t read_message(const Table & table, uint64_t x, uint64_t residue) {
    const GridRead read = grid_read(table.bits, x);
    if (read.distance > residue)
        fail("circuit evaluation: a lookup reads a value {} off its {}-bit grid, more than the {} its builder declared "
             "(circuit construction error)",
             read.distance, table.bits, residue);
    return read_table(table, read.message);
}

uint64_t clear_low_bits(uint64_t x, int scale, int shift) { return x & ~((uint64_t{1} << (scale + shift)) - 1); }

std::vector<uint64_t> simulate_plaintexts(const Circuit & circuit, std::span<const uint64_t> inputs) {
    if (inputs.size() != circuit.inputs().size())
        fail("simulate: {} inputs for a circuit of {}", inputs.size(), circuit.inputs().size());
    std::vector<uint64_t> value(circuit.size(), 0);
    for (size_t i = 0; i < inputs.size(); ++i) value[circuit.inputs()[i].value] = inputs[i];
    const auto & nodes = circuit.nodes();
    for (size_t id = 0; id < nodes.size(); ++id) {
        const Node & n = nodes[id];
        if (n.kind == NodeKind::linear) {
            uint64_t acc = n.constant;
            for (const LinearTerm & t : circuit.terms_of(n)) acc += static_cast<uint64_t>(t.weight) * value[t.value];
            value[id] = acc;
        } else if (n.kind == NodeKind::lookup) {
            const Table & table = circuit.tables()[n.table];
            const GridRead read = grid_read(table.bits, value[n.input]);
            if (read.distance > n.residue)
                fail("simulate: lookup {} reads a value {} off its {}-bit grid, more than the {} its builder declared "
                     "(circuit construction error)",
                     id, read.distance, table.bits, n.residue);
            value[id] = read_table(table, read.message);
        }
    }
    return value;
}

std::vector<int64_t> simulate(const Circuit & circuit, std::span<const int64_t> inputs) {
    std::vector<uint64_t> encoded(inputs.size());
    for (size_t i = 0; i < inputs.size() && i < circuit.inputs().size(); ++i)
        encoded[i] = encode_integer(inputs[i], circuit.inputs()[i].delta_log2);
    const std::vector<uint64_t> value = simulate_plaintexts(circuit, encoded);
    std::vector<int64_t> out;
    out.reserve(circuit.outputs().size());
    for (const Port & port : circuit.outputs()) out.push_back(decode_integer(value[port.value], port.delta_log2));
    return out;
}

} // namespace fhegpt::circuit
