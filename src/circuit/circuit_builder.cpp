#include "circuit/circuit_builder.h"

#include "circuit/simulate.h"
#include "common/error.h"

namespace fhegpt::circuit {

CircuitBuilder CircuitBuilder::evaluator(int read_bits, std::span<const int64_t> inputs) {
    CircuitBuilder b(read_bits);
    b.evaluating_ = true;
    b.inputs_.assign(inputs.begin(), inputs.end());
    return b;
}

ValueId CircuitBuilder::input(int delta_log2) {
    if (!evaluating_) return circuit_.add_input(delta_log2);
    if (delta_log2 < 0 || delta_log2 > 63) fail("circuit: input scale 2^{}", delta_log2);
    if (next_input_ >= inputs_.size()) fail("circuit evaluation: more inputs than the {} given", inputs_.size());
    values_.push_back(encode_integer(inputs_[next_input_++], delta_log2));
    return ValueId(values_.size() - 1);
}

void CircuitBuilder::output(ValueId value, int delta_log2, uint64_t residue) {
    if (!evaluating_) return circuit_.mark_output(value, delta_log2, residue);
    outputs_.push_back(decode_integer(plaintext(value), delta_log2));
}

uint64_t CircuitBuilder::plaintext(ValueId value) const {
    if (!evaluating_) fail("circuit: plaintexts exist only while evaluating");
    if (value < 0 || size_t(value) >= values_.size()) fail("circuit: value {} does not exist", value);
    return values_[size_t(value)];
}

void CircuitBuilder::set_section(const std::string & name) { circuit_.set_section(name); }

int32_t CircuitBuilder::table(int bits, std::vector<uint64_t> outputs, const std::string & kind) {
    auto key = std::make_tuple(bits, kind, outputs);
    auto it = tables_.find(key);
    if (it != tables_.end()) return it->second;
    const int32_t id = circuit_.add_table(bits, std::move(outputs), kind);
    tables_.emplace(std::move(key), id);
    return id;
}

ValueId CircuitBuilder::lookup(ValueId input, int32_t table, uint64_t residue) {
    if (!evaluating_) return circuit_.add_lookup(input, table, residue);
    if (table < 0 || size_t(table) >= circuit_.tables().size()) fail("circuit: table {} does not exist", table);
    const Table & t = circuit_.tables()[size_t(table)];
    if (residue >= uint64_t{1} << (62 - t.bits)) fail("circuit: a residue leaves a {}-bit lookup no margin", t.bits);
    values_.push_back(read_message(t, plaintext(input), residue));
    return ValueId(values_.size() - 1);
}

ValueId CircuitBuilder::linear(std::span<const LinearTerm> terms, uint64_t constant) {
    if (!evaluating_) return circuit_.add_linear(terms, constant);
    uint64_t acc = constant;
    for (const LinearTerm & t : terms) acc += static_cast<uint64_t>(t.weight) * plaintext(t.value);
    values_.push_back(acc);
    return ValueId(values_.size() - 1);
}

ValueId CircuitBuilder::remove_low_bits(ValueId u, int width, int shift, const std::string & kind) {
    if (shift < 0 || shift >= width || width > 62) fail("remove_low_bits: {} of {} bits", shift, width);
    const uint64_t quarter = uint64_t{1} << 62;
    ValueId rest = u;
    for (int low = 0; low < shift;) {
        const int bits = std::min(read_bits_, shift - low);
        // The chunk's bits to the top, under the padding bit (bit low + bits of `rest`).
        const LinearTerm scaled[] = {{rest, int64_t{1} << (width - low - bits)}};
        const ValueId t = linear(scaled);
        const int32_t sign_table = table(bits, std::vector<uint64_t>(size_t{1} << bits, uint64_t{0} - quarter),
                                         kind + ".sign");
        const LinearTerm clear_terms[] = {{t, 1}, {lookup(t, sign_table), -1}};
        const ValueId cleared = linear(clear_terms, uint64_t{0} - quarter);
        std::vector<uint64_t> chunk(size_t{1} << bits);
        for (size_t j = 0; j < chunk.size(); ++j) chunk[j] = uint64_t(j) << (63 - width + low);
        const LinearTerm remove_terms[] = {{rest, 1}, {lookup(cleared, table(bits, std::move(chunk), kind + ".chunk")), -1}};
        rest = linear(remove_terms);
        low += bits;
    }
    return rest;
}

CircuitBuilder::Rounded CircuitBuilder::round_keeping_low_bits(ValueId u, int width, int shift, int kept,
                                                               const std::string & kind) {
    if (shift < 0 || shift >= width || width > 62 || kept < 0 || kept > shift)
        fail("round_keeping_low_bits: {} of {} bits, keeping {}", shift, width, kept);
    const uint64_t centre = kept_bits_residue(width, kept);
    ValueId rest = u;
    for (int k = kept; k < shift; ++k) {
        // Bit k on the padding bit, the kept bits g below it, centred: g 2^(63 - k) - their mean.
        const uint64_t kept_mean = ((uint64_t{1} << kept) - 1) << (62 - k);
        const LinearTerm scaled[] = {{rest, int64_t{1} << (width - k)}};
        const ValueId t = linear(scaled, uint64_t{0} - kept_mean);
        // The sign lookup gives -+2^(62 - width + k): half of bit k's weight at r's scale.
        const int32_t bit_table = table(0, {uint64_t{0} - (uint64_t{1} << (62 - width + k))}, kind + ".sign");
        const ValueId sign = lookup(t, bit_table, kept_mean);
        const bool last = k + 1 == shift;
        const LinearTerm clear[] = {{rest, 1}, {sign, -1}};
        rest = linear(clear, uint64_t{0} - (uint64_t{1} << (62 - width + k)) - (last ? centre : 0));
    }
    if (kept == shift) {
        const LinearTerm same[] = {{rest, 1}};
        rest = linear(same, uint64_t{0} - centre);
    }
    return {rest, centre};
}

} // namespace fhegpt::circuit
