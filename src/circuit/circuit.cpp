#include "circuit/circuit.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>

namespace fhegpt::circuit {

void Circuit::check_value(ValueId v) const {
    if (v < 0 || static_cast<size_t>(v) >= nodes_.size()) fail("circuit: value {} does not exist", v);
}

ValueId Circuit::add_input(int delta_log2) {
    if (delta_log2 < 0 || delta_log2 > 63) fail("circuit: input scale 2^{}", delta_log2);
    nodes_.push_back({NodeKind::input});
    inputs_.push_back({ValueId(nodes_.size() - 1), delta_log2});
    return inputs_.back().value;
}

ValueId Circuit::add_linear(std::span<const LinearTerm> terms, uint64_t constant) {
    Node node{NodeKind::linear};
    node.term_begin = static_cast<uint32_t>(terms_.size());
    node.term_count = static_cast<uint32_t>(terms.size());
    node.constant = constant;
    for (const LinearTerm & t : terms) {
        check_value(t.value);
        terms_.push_back(t);
    }
    nodes_.push_back(node);
    return ValueId(nodes_.size() - 1);
}

ValueId Circuit::add_lookup(ValueId input, int32_t table, uint64_t residue) {
    check_value(input);
    if (table < 0 || static_cast<size_t>(table) >= tables_.size()) fail("circuit: table {} does not exist", table);
    if (residue >= uint64_t{1} << (62 - tables_[table].bits))
        fail("circuit: a residue of 2^{:.1f} leaves a {}-bit lookup no margin", std::log2(double(residue)), tables_[table].bits);
    Node node{NodeKind::lookup};
    node.input = input;
    node.table = table;
    node.residue = residue;
    node.section = section_;
    nodes_.push_back(node);
    return ValueId(nodes_.size() - 1);
}

int32_t Circuit::add_table(int bits, std::vector<uint64_t> outputs, const std::string & kind) {
    if (bits < 0 || bits > 16 || outputs.size() != (size_t{1} << bits))
        fail("circuit: table of {} entries for {} input bits", outputs.size(), bits);
    auto it = std::find(kinds_.begin(), kinds_.end(), kind);
    const int32_t k = static_cast<int32_t>(it - kinds_.begin());
    if (it == kinds_.end()) kinds_.push_back(kind);
    tables_.push_back({bits, std::move(outputs), k});
    return static_cast<int32_t>(tables_.size() - 1);
}

void Circuit::mark_output(ValueId value, int delta_log2, uint64_t residue) {
    check_value(value);
    if (delta_log2 < 0 || delta_log2 > 63 || (residue > 0 && (delta_log2 == 0 || residue >= uint64_t{1} << (delta_log2 - 1))))
        fail("circuit: an output at 2^{} with a residue of {}", delta_log2, residue);
    outputs_.push_back({value, delta_log2, residue});
}

void Circuit::set_section(const std::string & name) {
    auto it = std::find(sections_.begin(), sections_.end(), name);
    section_ = static_cast<int32_t>(it - sections_.begin());
    if (it == sections_.end()) sections_.push_back(name);
}

std::vector<int32_t> Circuit::depths() const {
    std::vector<int32_t> depth(nodes_.size(), 0);
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node & n = nodes_[i];
        if (n.kind == NodeKind::lookup) depth[i] = depth[n.input] + 1;
        if (n.kind == NodeKind::linear)
            for (const LinearTerm & t : terms_of(n)) depth[i] = std::max(depth[i], depth[t.value]);
    }
    return depth;
}

uint64_t encode_integer(int64_t v, int delta_log2) { return static_cast<uint64_t>(v) << delta_log2; }

int64_t decode_integer(uint64_t plaintext, int delta_log2) {
    if (delta_log2 == 0) return static_cast<int64_t>(plaintext);
    const uint64_t rounded = plaintext + (uint64_t{1} << (delta_log2 - 1));
    return static_cast<int64_t>(rounded) >> delta_log2;
}

} // namespace fhegpt::circuit
