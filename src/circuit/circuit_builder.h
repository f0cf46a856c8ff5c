// Building blocks of circuits on top of Circuit: tables shared by content, exact removal of low
// bits (the rounding step before every narrow lookup), and the two ways a circuit is built.
//
// Two modes, one building code. A CircuitBuilder either records a graph (a Circuit, for the
// clear simulation, the encrypted executor and the cost and noise analyses), or evaluates every
// node as it is added, on given input integers, without storing the graph: the torus-exact
// reference. Every stage of the model (stages.h) is written once against this class, so the
// circuit and its reference cannot drift; the evaluation also checks every lookup's declared
// residue, as the simulation does.
//
// Exact low-bit removal. A bootstrap reads only the top bits of its input, and near a box
// edge the modulus-switch noise decides between two neighbours, so reading the top of a wide
// value directly ("approximate rounding") could never match a clear simulation. Instead the
// low bits go first, in chunks of up to `read_bits` bits, from the least significant; for a
// chunk of c bits starting at bit a of the rest r (whose bits below a are already cleared):
//   t = r * 2^m puts the chunk on the top c bits, bit a + c of r on the padding bit
//   sign bootstrap: a constant table gives -+2^62 by the padding bit; t - sign - 2^62
//     clears it (reads 1 bit: the half-box margin is 2^(62 - c), as wide as a c-bit read)
//   read bootstrap: the chunk's c bits, written at r's own scale, and r -= chunk.
// Cost: two bootstraps per chunk. The chunk read's noise is multiplied by 2^m when the next
// chunk scales r up; noise_analysis.h accounts for it.
//
// Rounding that keeps the lowest `kept` bits. A table does not need its input exactly on the
// grid, only within a known residue of it (circuit.h). So the lowest bits can stay, and only
// bits kept..shift-1 are cleared, one sign bootstrap each, lowest first: for bit k,
//   t = r * 2^(width - k) puts bit k on the padding bit; below it only the kept bits are set
//     (bits kept..k-1 are already clear), so a sign lookup reads bit k with the margin of a
//     kept-bit read for k = kept, and a wider one after;
//   the sign lookup writes -+ half of bit k's weight at r's scale, and r -= it (plus a constant).
// The result is (u >> shift) on the coarse grid plus the kept bits, centred: a residue of at
// most (2^kept - 1) 2^(62 - width). Cost: shift - kept bootstraps, against two per chunk.
#pragma once

#include "circuit/circuit.h"

#include <algorithm>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace fhegpt::circuit {

class CircuitBuilder {
public:
    // Records a graph.
    explicit CircuitBuilder(int read_bits) : read_bits_(read_bits) {}
    // Evaluates instead: the i-th input() takes inputs[i] (an integer, encoded at the input's
    // scale); output() decodes into outputs().
    static CircuitBuilder evaluator(int read_bits, std::span<const int64_t> inputs);

    bool evaluating() const { return evaluating_; }
    // The graph (graph mode; in evaluation mode it holds only the tables).
    Circuit & circuit() { return circuit_; }
    Circuit take() { return std::move(circuit_); }
    int read_bits() const { return read_bits_; }

    // A circuit input encoded at 2^delta_log2, and an output (circuit.h).
    ValueId input(int delta_log2);
    void output(ValueId value, int delta_log2, uint64_t residue = 0);
    // Evaluation mode: the outputs so far, decoded, and any value's plaintext.
    const std::vector<int64_t> & outputs() const { return outputs_; }
    uint64_t plaintext(ValueId value) const;

    // Lookups from now on count towards `name` (a layer, say) in the cost report.
    void set_section(const std::string & name);

    // A table, reused when one with the same bits, outputs and kind exists.
    int32_t table(int bits, std::vector<uint64_t> outputs, const std::string & kind);
    // residue: how far `input` may lie off the table's grid (circuit.h).
    ValueId lookup(ValueId input, int32_t table, uint64_t residue = 0);
    ValueId linear(std::span<const LinearTerm> terms, uint64_t constant = 0);

    // u: a value on the grid of 2^width messages (u * 2^(63 - width)). Returns u minus its low
    // `shift` bits, i.e. (u >> shift) on the grid of 2^(width - shift) messages. shift == 0
    // returns u. `kind` names the bootstraps for counting.
    ValueId remove_low_bits(ValueId u, int width, int shift, const std::string & kind);

    // (u >> shift) on the grid of 2^(width - shift) messages, off it by at most `residue`: the
    // kept low bits of u, centred. kept in [0, shift]. Bootstraps are named `kind` + ".sign".
    struct Rounded {
        ValueId value;
        uint64_t residue;
    };
    Rounded round_keeping_low_bits(ValueId u, int width, int shift, int kept, const std::string & kind);
    static uint64_t kept_bits_residue(int width, int kept) {
        return ((uint64_t{1} << kept) - 1) << (62 - width);
    }
    // The kept bits when `shift` bits are rounded away to a b-bit bucket read by lookups of up to
    // L bits: a residue under 1/8 of the bucket's box for b = L (its reads keep 3/8 of a box;
    // two sign bootstraps for up to L + 2 removed bits), under 1/4 for b < L (a quarter of a b-bit
    // box is half an L-bit box, an exact L-bit read's margin; one sign bootstrap); at most L, so
    // that the first sign read keeps an L-bit read's margin.
    static int kept_bits_for(int shift, int bucket_bits, int lut_bits) {
        return std::clamp(shift - (bucket_bits < lut_bits ? 1 : 2), 0, lut_bits);
    }

private:
    int read_bits_;
    bool evaluating_ = false;
    Circuit circuit_;
    std::map<std::tuple<int, std::string, std::vector<uint64_t>>, int32_t> tables_;
    // Evaluation mode.
    std::vector<int64_t> inputs_;
    size_t next_input_ = 0;
    std::vector<uint64_t> values_;
    std::vector<int64_t> outputs_;
};

} // namespace fhegpt::circuit
