// An integer computation graph over LWE ciphertexts: what the server evaluates.
//
// Every value is one LWE ciphertext; in the clear it is its exact torus plaintext (uint64_t,
// arithmetic mod 2^64), which is what makes the clear simulation bit-exact. Nodes, in an order
// where inputs come before their users:
//   input   filled by the client (an encrypted, encoded integer)
//   linear  sum_i w_i x_i + c: clear integer weights, a torus constant (leveled, no bootstrap)
//   lookup  one programmable bootstrap: the message j of its input on the grid of
//           p = 2^bits messages with a padding bit (j in [0, 2p)) gives table[j] for j < p and
//           -table[j - p] otherwise (the negacyclic rotation). The input must lie exactly on
//           the grid (no lower bits): then only noise can disturb the read, with the
//           parameter set's failure probability.
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
};

// An encoded integer at the boundary: value v travels as v * 2^delta_log2 (mod 2^64).
struct Port {
    ValueId value;
    int delta_log2;
};

class Circuit {
public:
    ValueId add_input(int delta_log2);
    ValueId add_linear(std::span<const LinearTerm> terms, uint64_t constant = 0);
    ValueId add_lookup(ValueId input, int32_t table);
    int32_t add_table(int bits, std::vector<uint64_t> outputs, const std::string & kind);
    void mark_output(ValueId value, int delta_log2);

    const std::vector<Node> & nodes() const { return nodes_; }
    const std::vector<LinearTerm> & terms() const { return terms_; }
    const std::vector<Table> & tables() const { return tables_; }
    const std::vector<std::string> & kinds() const { return kinds_; }
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
    std::vector<Port> inputs_, outputs_;
};

// Encoding of a signed integer at 2^delta_log2 and back (rounding to the nearest multiple).
uint64_t encode_integer(int64_t v, int delta_log2);
int64_t decode_integer(uint64_t plaintext, int delta_log2);

} // namespace fhegpt::circuit
