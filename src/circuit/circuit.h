// An integer computation graph over LWE ciphertexts: what the server evaluates.
//
// Every value is one LWE ciphertext; in the clear it is its exact torus plaintext (uint64_t,
// arithmetic mod 2^64), which is what makes the clear simulation bit-exact. Nodes, in an order
// where inputs come before their users:
//   input   filled by the client (an encrypted, encoded integer)
//   linear  sum_i w_i x_i + c: clear integer weights, a torus constant (leveled, no bootstrap)
//   lookup  one programmable bootstrap: the message j of its input on the grid of
//           p = 2^bits messages with a padding bit (j in [0, 2p)) gives table[j] for j < p and
//           -table[j - p] otherwise (the negacyclic rotation). j is the grid point nearest to
//           the input. The input lies on the grid, or off it by at most the lookup's declared
//           `residue` (a deterministic offset the builder knows a bound for, e.g. low bits left
//           in place on purpose). The read then fails only if noise exceeds the rest of the
//           half box; noise_analysis.h counts that, and the simulation checks the bound.
//           bits = 0 is a sign lookup (p = 1): which half of the torus the input is in.
// Tables hold torus outputs, so a lookup can write its result at any scale.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fhegpt::circuit {

using ValueId = int32_t;

enum class NodeKind : uint8_t { input, linear, lookup };

struct LinearTerm {
    ValueId value;
    int64_t weight;
};

struct Table {
    int bits = 0;                   // input message bits (p = 2^bits)
    std::vector<uint64_t> outputs;  // [p] torus values
    int32_t kind = 0;               // index into Circuit::kinds (for counting)
};

struct Node {
    NodeKind kind = NodeKind::input;
    uint32_t term_begin = 0, term_count = 0; // linear
    uint64_t constant = 0;                   // linear
    ValueId input = -1;                      // lookup
    int32_t table = -1;                      // lookup
    uint64_t residue = 0;                    // lookup: max |input - nearest grid point|
    int32_t section = 0;                     // lookup: index into Circuit::sections (cost report)
};

// An encoded integer at the boundary: value v travels as v * 2^delta_log2 (mod 2^64), an
// output possibly off by a known residue (decryption rounds it away).
struct Port {
    ValueId value;
    int delta_log2;
    uint64_t residue = 0;
};

class Circuit {
public:
    ValueId add_input(int delta_log2);
    ValueId add_linear(std::span<const LinearTerm> terms, uint64_t constant = 0);
    ValueId add_lookup(ValueId input, int32_t table, uint64_t residue = 0);
    int32_t add_table(int bits, std::vector<uint64_t> outputs, const std::string & kind);
    void mark_output(ValueId value, int delta_log2, uint64_t residue = 0);
    // Lookups added from now on belong to section `name` (a layer, say; "" until set).
    void set_section(const std::string & name);

    const std::vector<Node> & nodes() const { return nodes_; }
    const std::vector<LinearTerm> & terms() const { return terms_; }
    const std::vector<Table> & tables() const { return tables_; }
    const std::vector<std::string> & kinds() const { return kinds_; }
    const std::vector<std::string> & sections() const { return sections_; }
    const std::vector<Port> & inputs() const { return inputs_; }
    const std::vector<Port> & outputs() const { return outputs_; }
    std::span<const LinearTerm> terms_of(const Node & node) const {
        return std::span(terms_).subspan(node.term_begin, node.term_count);
    }
    size_t size() const { return nodes_.size(); }
    // Bootstrap depth of every node (inputs 0, a lookup one more than its input).
    std::vector<int32_t> depths() const;

private:
    void check_value(ValueId v) const;

    std::vector<Node> nodes_;
    std::vector<LinearTerm> terms_;
    std::vector<Table> tables_;
    std::vector<std::string> kinds_;
    std::vector<std::string> sections_{""};
    int32_t section_ = 0;
    std::vector<Port> inputs_, outputs_;
};

// Encoding of a signed integer at 2^delta_log2 and back (rounding to the nearest multiple).
uint64_t encode_integer(int64_t v, int delta_log2);
int64_t decode_integer(uint64_t plaintext, int delta_log2);

} // namespace fhegpt::circuit
