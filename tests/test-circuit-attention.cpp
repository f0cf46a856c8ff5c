// The circuit of a whole quantized attention block (every head and c_proj): its clear
// simulation equals the exact reference (its stages evaluated without a graph) and an
// independent derivation (circuit-reference-oracle.h) on typical and on extreme inputs, it is made of the
// head circuits plus the context rounding, at high precision it follows the float block, its
// noise analysis picks the level-2 set, and on ciphertexts (INSECURE_TEST_4BIT_PBS_L2) it gives
// the simulated values bit for bit, directly and behind the model's layer seam.
#include "circuit-reference-oracle.h"
#include "circuit-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/attention_circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/head_circuit.h"
#include "circuit/quantized_attention.h"
#include "circuit/quantized_part_seams.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "quant/quantizer.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;

const model::Gpt2Model & block_model() {
    static const model::Gpt2Model m = model::make_random_gpt2_model(test::small_attention_hparams(), 99, 0.1f);
    return m;
}

// 20 sequences of 15 positions, so that fresh sequences mostly stay in the calibrated ranges.
struct Calibration {
    std::vector<int32_t> lengths = std::vector<int32_t>(20, 15);
    std::vector<float> x = test::normal_x(size_t(20 * 15) * 64, 5);
};

QuantizedAttention make_attention(int n_bits) {
    static const Calibration cal;
    quant::HeadQuantConfig config;
    config.n_bits = n_bits;
    return quantize_attention(block_model(), 0, cal.x, cal.lengths, config);
}

std::vector<int64_t> extreme_inputs(const QuantizedAttention & att, int32_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t level = quant::max_level(att.heads[0].x_bits);
    std::uniform_int_distribution<int64_t> uniform(-level, level);
    std::vector<int64_t> out(size_t(n) * att.n_embd);
    for (int64_t & v : out) v = uniform(rng);
    return out;
}

TEST(AttentionCircuit, SimulationEqualsReference) {
    for (int n_bits : {3, 4, 6}) {
        const QuantizedAttention att = make_attention(n_bits);
        ASSERT_EQ(att.heads.size(), 2u);
        for (int32_t n = 1; n <= 4; ++n) {
            const Circuit c = build_attention_circuit(att, n);
            ASSERT_EQ(c.inputs().size(), size_t(n) * att.n_embd);
            ASSERT_EQ(c.outputs().size(), size_t(n) * att.n_embd);
            for (uint32_t seed = 0; seed < 3; ++seed) {
                const std::vector<int64_t> typical = att.quantize_inputs(test::normal_x(size_t(n) * att.n_embd, 10 * n + seed));
                const std::vector<int64_t> extreme = extreme_inputs(att, n, 20 * n + seed);
                for (const auto * x : {&typical, &extreme}) {
                    const std::vector<int64_t> reference = attention_reference_forward(att, *x, n);
                    EXPECT_EQ(simulate(c, *x), reference)
                        << "n_bits " << n_bits << " n " << n << (x == &typical ? " typical" : " extreme");
                    EXPECT_EQ(reference, test::oracle_attention_forward(att, *x, n)) << "n_bits " << n_bits << " n " << n;
                }
            }
        }
    }
}

TEST(AttentionCircuit, HeadsPlusContextRounding) {
    const QuantizedAttention att = make_attention(4);
    const int32_t n = 3;
    const CircuitAnalysis block = analyze(build_attention_circuit(att, n));
    int64_t heads = 0;
    for (const auto & head : att.heads) heads += analyze(build_head_circuit(head, n)).bootstraps;
    // Per context value: the exact rounding of its k low bits and one o lookup.
    int64_t context = 0;
    for (int32_t h = 0; h < att.n_head; ++h)
        context += int64_t{n} * att.head_dim * (quant::rounding_bootstraps(att.context_shift[h], att.lut_bits) + 1);
    EXPECT_EQ(block.bootstraps, heads + context);
    EXPECT_EQ(block.bootstraps_by_kind.at("context.value"), int64_t{n} * att.n_embd);
    EXPECT_EQ(block.max_lookup_bits, att.lut_bits);
    // The first 4-bit set with a fine key for the long sums.
    const tfhe::TfheParameters * chosen = choose_parameters(build_attention_circuit(att, n));
    ASSERT_NE(chosen, nullptr);
    EXPECT_EQ(chosen->name, "PARAM_4BIT_2M128_MIXED");
}

TEST(AttentionCircuit, HighPrecisionFollowsTheFloatBlock) {
    // Relative L2 error of the dequantized block output against the float block (c_proj and its
    // bias included) over fresh sequences of 6 positions; a wrong output scale fails it.
    const QuantizedAttention att = make_attention(10);
    const int32_t n = 6, n_embd = att.n_embd;
    double diff = 0, norm = 0, diff_doubled = 0;
    for (uint32_t s = 0; s < 10; ++s) {
        const std::vector<float> x = test::normal_x(size_t(n) * n_embd, 300 + s);
        model::FloatLayerAttention reference(block_model(), 0);
        std::vector<float> expected(size_t(n) * n_embd);
        reference.forward(x, n, 0, expected);
        const std::vector<int64_t> out = attention_reference_forward(att, att.quantize_inputs(x), n);
        for (size_t i = 0; i < expected.size(); ++i) {
            const double got = double(out[i]) * att.out_unit;
            diff += (got - expected[i]) * (got - expected[i]);
            diff_doubled += (2 * got - expected[i]) * (2 * got - expected[i]);
            norm += double(expected[i]) * expected[i];
        }
    }
    std::printf("n_bits 10: relative L2 error %.4f (output doubled: %.4f)\n", std::sqrt(diff / norm),
                std::sqrt(diff_doubled / norm));
    EXPECT_LT(std::sqrt(diff / norm), 0.15);
    EXPECT_GT(std::sqrt(diff_doubled / norm), 0.5);
}

TEST(AttentionCircuit, RejectsBadShapes) {
    const QuantizedAttention att = make_attention(4);
    EXPECT_THROW(build_attention_circuit(att, 0), Error);
    const std::vector<int64_t> x(size_t(att.n_embd), 0);
    EXPECT_THROW(attention_reference_forward(att, x, 2), Error);
    QuantizedAttention broken = att;
    broken.proj_bias.pop_back();
    EXPECT_THROW(build_attention_circuit(broken, 1), Error);
    EXPECT_THROW(quantize_attention(block_model(), 1, std::vector<float>(64, 0.0f), std::vector<int32_t>{1}, {}), Error);
}

TEST(AttentionCircuitCache, RowCircuitsEqualTheWholeSequence) {
    // A prefill of 2 positions, then one at a time, on the heads' key/value caches.
    const QuantizedAttention att = make_attention(4);
    const int32_t n = 5, n_embd = att.n_embd, parts = kHeadCacheParts * att.n_head;
    const std::vector<int64_t> x = att.quantize_inputs(test::normal_x(size_t(n) * n_embd, 90));
    const std::vector<int64_t> whole = attention_reference_forward(att, x, n);
    std::vector<int64_t> rows;
    std::vector<std::vector<int64_t>> cache(static_cast<size_t>(parts));
    int32_t first = 0;
    for (int32_t next : {2, 3, 4, 5}) {
        std::vector<int64_t> inputs(x.begin() + ptrdiff_t(first) * n_embd, x.begin() + ptrdiff_t(next) * n_embd);
        for (const auto & part : cache) inputs.insert(inputs.end(), part.begin(), part.end());
        const std::vector<int64_t> out = simulate(build_attention_row_circuit(att, first, next), inputs);
        const size_t row_values = size_t(next - first) * n_embd, state = size_t(next - first) * att.head_dim;
        ASSERT_EQ(out.size(), row_values + state * size_t(parts));
        rows.insert(rows.end(), out.begin(), out.begin() + ptrdiff_t(row_values));
        for (int32_t p = 0; p < parts; ++p)
            cache[p].insert(cache[p].end(), out.begin() + ptrdiff_t(row_values + state * p),
                            out.begin() + ptrdiff_t(row_values + state * (p + 1)));
        first = next;
    }
    EXPECT_EQ(rows, whole);
    EXPECT_THROW(build_attention_row_circuit(att, 3, 3), Error);
}

struct TestKeys {
    tfhe::ClientKey client;
    tfhe::ServerKey server;
    TestKeys() : client(tfhe::generate_client_key(tfhe::parameters_by_name("INSECURE_TEST_4BIT_PBS_L2"))),
                 server(tfhe::generate_server_key(client)) {}
};

TEST(AttentionCircuitEncrypted, EqualsSimulationBitForBit) {
    const QuantizedAttention att = make_attention(4);
    const int32_t n = 2;
    const Circuit c = build_attention_circuit(att, n);
    const TestKeys keys;
    EXPECT_LT(analyze_noise(c, keys.client.parameters).log2_expected_failures, -20.0);
    for (uint32_t seed : {1u, 2u}) {
        const std::vector<int64_t> x = seed == 1 ? att.quantize_inputs(test::normal_x(size_t(n) * att.n_embd, 77))
                                                 : extreme_inputs(att, n, 78);
        const std::vector<int64_t> simulated = simulate(c, x);
        ExecutionStats stats;
        const auto outputs = run_encrypted(c, keys.server, encrypt_inputs(c, keys.client, x), ThreadPool::global(), {},
                                           &stats);
        std::printf("seed %u: %lld bootstraps in %.2f s\n", seed, static_cast<long long>(stats.bootstraps),
                    stats.seconds);
        EXPECT_EQ(decrypt_outputs(c, keys.client, outputs), simulated) << "seed " << seed;
    }
}

TEST(AttentionCircuitEncrypted, BehindTheLayerSeamWithCache) {
    // The encrypted seam keeps every head's key/value cache; the simulated one recomputes.
    const QuantizedAttention att = make_attention(4);
    const TestKeys keys;
    model::Gpt2Context encrypted(block_model()), simulated(block_model());
    auto seam = std::make_unique<QuantizedLayerAttention>(att, Executor::encrypted,
                                                          EncryptedKeys{&keys.client, &keys.server, nullptr, {}}, true);
    const QuantizedLayerAttention * observer = seam.get();
    encrypted.set_layer_attention(0, std::move(seam));
    simulated.set_layer_attention(0, std::make_unique<QuantizedLayerAttention>(att, Executor::simulate));
    const std::vector<int32_t> tokens = {3, 14, 15};
    const auto a = encrypted.eval(std::span(tokens).first(2));
    const std::vector<float> first(a.begin(), a.end());
    const auto b = simulated.eval(std::span(tokens).first(2));
    EXPECT_EQ(first, std::vector<float>(b.begin(), b.end()));
    const auto a2 = encrypted.eval(std::span(tokens).subspan(2, 1));
    const std::vector<float> second(a2.begin(), a2.end());
    const auto b2 = simulated.eval(std::span(tokens).subspan(2, 1));
    EXPECT_EQ(second, std::vector<float>(b2.begin(), b2.end()));
    ASSERT_EQ(observer->runs().size(), 2u);
    for (const HeadRunRecord & run : observer->runs()) {
        EXPECT_EQ(run.mismatches, 0) << "n " << run.n;
        EXPECT_EQ(run.encrypted, run.simulated);
    }
    EXPECT_EQ(observer->runs()[1].first, 2);
    EXPECT_EQ(observer->runs()[1].n, 3);
    EXPECT_LT(observer->runs()[1].bootstraps, observer->runs()[0].bootstraps);
}

} // namespace
