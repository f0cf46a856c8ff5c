#include "circuit/circuit_builder.h"

#include "common/error.h"

namespace fhegpt::circuit {

int32_t CircuitBuilder::table(int bits, std::vector<uint64_t> outputs, const std::string & kind) {
    auto key = std::make_tuple(bits, kind, outputs);
    auto it = tables_.find(key);
    if (it != tables_.end()) return it->second;
    const int32_t id = circuit_.add_table(bits, std::move(outputs), kind);
    tables_.emplace(std::move(key), id);
    return id;
}

ValueId CircuitBuilder::remove_low_bits(ValueId u, int width, int shift, const std::string & kind) {
    if (shift < 0 || shift >= width || width > 62) fail("remove_low_bits: {} of {} bits", shift, width);
    if (shift == 0) return u;
    struct Chunk {
        int low, bits, multiplier_log2;
    };
    std::vector<Chunk> chunks;
    for (int a = 0; a < shift;) {
        const int c = std::min(read_bits_, shift - a);
        chunks.push_back({a, c, width - a - c});
        a += c;
    }
    const size_t K = chunks.size();
    // removed[k][user]: chunk k's bits at the scale of chunk `user` (user == K: the final value).
    std::vector<std::vector<ValueId>> removed(K, std::vector<ValueId>(K + 1, -1));
    for (size_t k = 0; k < K; ++k) {
        const Chunk & ch = chunks[k];
        std::vector<LinearTerm> terms{{u, int64_t{1} << ch.multiplier_log2}};
        for (size_t i = 0; i < k; ++i) terms.push_back({removed[i][k], -1});
        const ValueId t = linear(terms);
        const uint64_t quarter = uint64_t{1} << 62;
        const int32_t sign_table = table(ch.bits, std::vector<uint64_t>(size_t{1} << ch.bits, uint64_t{0} - quarter),
                                         kind + ".sign");
        const ValueId sign = lookup(t, sign_table);
        const LinearTerm clear_terms[] = {{t, 1}, {sign, -1}};
        const ValueId cleared = linear(clear_terms, uint64_t{0} - quarter);
        for (size_t user = k + 1; user <= K; ++user) {
            const int scale_log2 = (63 - width) + ch.low + (user < K ? chunks[user].multiplier_log2 : 0);
            std::vector<uint64_t> out(size_t{1} << ch.bits);
            for (size_t j = 0; j < out.size(); ++j) out[j] = uint64_t(j) << scale_log2;
            removed[k][user] = lookup(cleared, table(ch.bits, std::move(out), kind + ".chunk"));
        }
    }
    std::vector<LinearTerm> terms{{u, 1}};
    for (size_t k = 0; k < K; ++k) terms.push_back({removed[k][K], -1});
    return linear(terms);
}

} // namespace fhegpt::circuit
