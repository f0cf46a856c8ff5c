#include "circuit/head_circuit.h"

#include "circuit/circuit_builder.h"
#include "common/error.h"

#include <functional>

namespace fhegpt::circuit {

namespace {

// A table of `bits` input bits whose entry j is f(j) encoded at 2^scale_log2.
std::vector<uint64_t> integer_table(int bits, int scale_log2, const std::function<int64_t(int64_t)> & f) {
    std::vector<uint64_t> out(size_t{1} << bits);
    for (size_t j = 0; j < out.size(); ++j) out[j] = encode_integer(f(int64_t(j)), scale_log2);
    return out;
}

} // namespace

Circuit build_head_circuit(const quant::QuantizedHead & head, int32_t n) {
    if (n <= 0 || n > 4096) fail("head circuit: {} positions", n);
    const int L = head.lut_bits;
    const int32_t d = head.head_dim, n_embd = head.n_embd;
    CircuitBuilder b(L);
    const int grid = 63 - L;                       // scale of lut_bits-bit table inputs
    const int acc_scale = 63 - head.acc_bits;      // x and the accumulators
    const int score_scale = 63 - (head.score_bits + 1);
    const int denominator_bits = head.denominator_bits(n);
    const int denominator_scale = 63 - denominator_bits;
    const int output_scale = 63 - head.output_bits(n);
    const int64_t key_offset = int64_t{1} << (L - 1);    // q + k + 2^(L-1) in [0, 2^L - 2]
    const int64_t value_offset = int64_t{1} << (L - 2);  // a + v + 2^(L-2) in [0, 2^L - 2]

    std::vector<ValueId> x(size_t(n) * n_embd);
    for (auto & v : x) v = b.circuit().add_input(acc_scale);

    // Projections: value (at the table grid, offset) and its square term (at the sum's scale).
    std::vector<ValueId> first[3], second[3];
    for (int p = 0; p < 3; ++p) {
        first[p].resize(size_t(n) * d);
        second[p].resize(size_t(n) * d);
    }
    const char * names[3] = {"q", "k", "v"};
    for (int p = 0; p < 3; ++p) {
        for (int32_t c = 0; c < d; ++c) {
            auto value = [&](int64_t h) { return head.projection_value(p, c, h); };
            std::vector<uint64_t> t1, t2;
            if (p == quant::kQuery) {
                t1 = integer_table(L, grid, value);
                t2 = integer_table(L, score_scale, [&](int64_t h) {
                    const int64_t q = value(h);
                    return q * q + 2 * key_offset * q;
                });
            } else {
                const int64_t off = p == quant::kKey ? key_offset : value_offset;
                const int sum_scale = p == quant::kKey ? score_scale : output_scale;
                t1 = integer_table(L, grid, [&](int64_t h) { return value(h) + off; });
                t2 = integer_table(L, sum_scale, [&](int64_t h) {
                    const int64_t s = value(h) + off;
                    return s * s;
                });
            }
            const int32_t table1 = b.table(L, std::move(t1), std::string(names[p]) + ".value");
            const int32_t table2 = b.table(L, std::move(t2), std::string(names[p]) + ".square");
            for (int32_t i = 0; i < n; ++i) {
                std::vector<LinearTerm> terms;
                for (int32_t r = 0; r < n_embd; ++r) {
                    const int64_t w = head.weights[p].values[size_t(r) * d + c];
                    if (w != 0) terms.push_back({x[size_t(i) * n_embd + r], w});
                }
                const int64_t constant = head.bias[p][c] + (int64_t{1} << (head.acc_bits - 1));
                const ValueId acc = b.linear(terms, encode_integer(constant, acc_scale));
                const ValueId bucket = b.remove_low_bits(acc, head.acc_bits, head.acc_shift(), "qkv.requant");
                first[p][size_t(i) * d + c] = b.lookup(bucket, table1);
                second[p][size_t(i) * d + c] = b.lookup(bucket, table2);
            }
        }
    }

    const int32_t square_score = b.table(L, integer_table(L, score_scale, [](int64_t z) { return z * z; }), "qk.product");
    const int32_t square_output = b.table(L, integer_table(L, output_scale, [](int64_t z) { return z * z; }), "av.product");
    const int32_t exp_table =
        b.table(L, integer_table(L, denominator_scale, [&](int64_t h) { return head.exp_value(h); }), "softmax.exp");
    const int32_t log_table = b.table(
        L, integer_table(L, grid, [&](int64_t h) { return value_offset - head.log_value(h, n); }), "softmax.log");
    const int32_t attention_table =
        b.table(L, integer_table(L, grid, [&](int64_t z) { return head.attention_value(z); }), "softmax.attention");
    const int32_t attention_square = b.table(L, integer_table(L, output_scale, [&](int64_t z) {
                                                  const int64_t a = head.attention_value(z);
                                                  return a * a + 2 * value_offset * a;
                                              }),
                                              "softmax.attention");

    std::vector<ValueId> buckets(static_cast<size_t>(n)), weights(static_cast<size_t>(n)),
        weight_squares(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
        // Scores S_ij = 2 q_i . k_j, their buckets and exp values.
        std::vector<LinearTerm> denominator;
        for (int32_t j = 0; j <= i; ++j) {
            std::vector<LinearTerm> score;
            for (int32_t c = 0; c < d; ++c) {
                const LinearTerm sum[] = {{first[quant::kQuery][size_t(i) * d + c], 1},
                                          {first[quant::kKey][size_t(j) * d + c], 1}};
                score.push_back({b.lookup(b.linear(sum), square_score), 1});
                score.push_back({second[quant::kKey][size_t(j) * d + c], -1});
                score.push_back({second[quant::kQuery][size_t(i) * d + c], -1});
            }
            const ValueId u = b.linear(score, encode_integer(int64_t{1} << (head.score_bits - 1), score_scale));
            buckets[j] = b.remove_low_bits(u, head.score_bits + 1, head.score_shift(), "score.requant");
            denominator.push_back({b.lookup(buckets[j], exp_table), 1});
        }
        const ValueId sum = b.linear(denominator);
        const ValueId sum_bucket =
            b.remove_low_bits(sum, denominator_bits, head.denominator_shift(n), "softmax.requant");
        const ValueId log = b.lookup(sum_bucket, log_table);
        for (int32_t j = 0; j <= i; ++j) {
            const LinearTerm z[] = {{buckets[j], 1}, {log, 1}};
            const ValueId zz = b.linear(z);
            weights[j] = b.lookup(zz, attention_table);
            weight_squares[j] = b.lookup(zz, attention_square);
        }
        // O_id = sum_j (a + v')^2 - v'^2 - (a^2 + 2 v0 a) = 2 sum_j a_ij v_jd.
        for (int32_t c = 0; c < d; ++c) {
            std::vector<LinearTerm> out;
            for (int32_t j = 0; j <= i; ++j) {
                const LinearTerm sum2[] = {{weights[j], 1}, {first[quant::kValue][size_t(j) * d + c], 1}};
                out.push_back({b.lookup(b.linear(sum2), square_output), 1});
                out.push_back({second[quant::kValue][size_t(j) * d + c], -1});
                out.push_back({weight_squares[j], -1});
            }
            b.circuit().mark_output(b.linear(out), output_scale);
        }
    }
    return b.take();
}

} // namespace fhegpt::circuit
