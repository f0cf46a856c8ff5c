// The circuits of whole blocks on the encrypted residual stream (block_circuit.h) on a small
// 2-layer model: for the MLP half of a block, a whole block and every block with ln_f, the clear
// simulation equals the stages' evaluation without a graph (the torus-exact reference) on typical
// and on extreme inputs; the rows on the key/value cache equal the recomputed sequence; at high
// precision the quantized blocks follow the float (folded) blocks; the noise analysis finds a
// parameter set for the cost of a token; and on ciphertexts (insecure test parameters, two
// bootstrapping keys) the blocks give the simulated values bit for bit, directly and behind the
// model's block seam with the encrypted cache, token for token.
#include "circuit-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/block_calibration.h"
#include "circuit/block_circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/quantized_part_seams.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/block_range.h"
#include "model/generate.h"
#include "model/gpt2_fold.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>
#include <memory>
#include <random>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;

// n_embd 64, 2 heads of 32, 2 layers; LayerNorm gains and biases away from 1 and 0.
const model::Gpt2Model & blocks_model() {
    static const model::Gpt2Model m = [] {
        model::Gpt2Model model = model::make_random_gpt2_model(test::small_attention_hparams(2), 31, 0.12f);
        std::vector<float> g(64), b(64);
        for (int32_t k = 0; k < 64; ++k) {
            g[size_t(k)] = 0.6f + 0.015f * float(k);
            b[size_t(k)] = 0.02f * float(k % 5) - 0.04f;
        }
        for (model::Gpt2Layer & l : model.layers) {
            l.ln_1_g = l.ln_2_g = model.own(g);
            l.ln_1_b = l.ln_2_b = model.own(b);
        }
        return model;
    }();
    return m;
}

const model::BlockRangeSpec kMlp{0, 0, true, false}, kBlock{0, 0, false, false}, kAll{0, 1, false, true};

QuantizedBlocks quantize(const model::Gpt2Model & model, const model::BlockRangeSpec & spec, int n_bits, int lut_bits,
                         double fine_noise_log2) {
    const BlockCalibration cal = collect_block_calibration(model, test::token_sequences(5, 16, 10), spec);
    BlocksQuantConfig config;
    config.head.n_bits = n_bits;
    config.head.lut_bits = lut_bits;
    config.fine_noise_log2 = fine_noise_log2;
    return quantize_blocks(model, spec, cal, config);
}

// Calibrated once per configuration (the tests share them).
const QuantizedBlocks & make_blocks(const model::BlockRangeSpec & spec, int n_bits, int lut_bits = 0,
                                    double fine_noise_log2 = 0) {
    static std::map<std::tuple<int32_t, int32_t, bool, bool, int, int, double>, QuantizedBlocks> cache;
    const auto key = std::make_tuple(spec.first, spec.last, spec.from_mlp, spec.final_norm, n_bits, lut_bits, fine_noise_log2);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, quantize(blocks_model(), spec, n_bits, lut_bits, fine_noise_log2)).first;
    return it->second;
}

// The stream where the run starts for a fresh token sequence, as the client quantizes it.
std::vector<int64_t> typical_inputs(const QuantizedBlocks & q, const std::vector<int32_t> & tokens) {
    const BlockCalibration cal = collect_block_calibration(blocks_model(), std::vector<std::vector<int32_t>>{tokens}, q.spec);
    return q.quantize_inputs(cal.start);
}

// Every input anywhere in its range: streams and normalized inputs past the calibrated ranges.
std::vector<int64_t> extreme_inputs(const QuantizedBlocks & q, int32_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> stream(-q.residual.max_value(), q.residual.max_value());
    const int64_t top = (int64_t{1} << (q.first_bits() - 1)) - 1;
    std::uniform_int_distribution<int64_t> normalized(-top, top);
    std::vector<int64_t> out;
    for (int32_t i = 0; i < n; ++i) {
        for (int32_t k = 0; k < q.n_embd; ++k) out.push_back(stream(rng));
        for (int32_t k = 0; k < q.n_embd; ++k) out.push_back(normalized(rng));
    }
    return out;
}

TEST(BlocksCircuit, SimulationEqualsReference) {
    // 4-bit lookups and buckets (two sign bootstraps per rounded value), and 5-bit lookups with
    // 4-bit GELU buckets (one).
    struct Config {
        model::BlockRangeSpec spec;
        int lut_bits;
    };
    for (const Config & config : {Config{kMlp, 4}, Config{kBlock, 4}, Config{kAll, 4}, Config{kAll, 5}}) {
        const model::BlockRangeSpec & spec = config.spec;
        const QuantizedBlocks & q = make_blocks(spec, 4, config.lut_bits);
        ASSERT_EQ(q.blocks[0].mlp.bucket_bits, 4); // lookups 4: buckets 4; lookups 5: one bit fewer
        for (int32_t n : {1, 3}) {
            const Circuit c = build_blocks_circuit(q, n);
            ASSERT_EQ(c.inputs().size(), size_t(n) * q.inputs_per_position());
            ASSERT_EQ(c.outputs().size(), size_t(n) * q.n_embd);
            const std::vector<int32_t> tokens = test::token_sequences(100 + uint32_t(n), 1, size_t(n))[0];
            for (const std::vector<int64_t> & x : {typical_inputs(q, tokens), extreme_inputs(q, n, 7)})
                EXPECT_EQ(simulate(c, x), blocks_reference_forward(q, x, n))
                    << "layers " << spec.first << ".." << spec.last << (spec.from_mlp ? " mlp" : "") << " n " << n
                    << " lookups " << config.lut_bits;
        }
    }
}

TEST(BlocksCircuit, CostByLayerAndKind) {
    // One block's cost per new token: every head, both LayerNorms' reads but the client's, and
    // one rounding and GELU lookup per hidden unit; the sections split it by layer.
    const QuantizedBlocks q = make_blocks(kAll, 4);
    const CircuitAnalysis a = analyze(build_blocks_row_circuit(q, 3, 4));
    EXPECT_EQ(a.bootstraps_by_section.size(), 3u);
    EXPECT_EQ(a.bootstraps_by_section.at("layer0") + a.bootstraps_by_section.at("layer1") +
                  a.bootstraps_by_section.at("ln_f"),
              a.bootstraps);
    EXPECT_EQ(a.bootstraps_by_kind.at("mlp.gelu"), 2 * 256);
    EXPECT_EQ(a.bootstraps_by_kind.at("ln.rms"), 4); // ln_2 of layer 0, ln_1 and ln_2 of layer 1, ln_f: the first ln_1 is the client's
    EXPECT_EQ(a.bootstraps_by_kind.at("ln.square"), 4 * 64);
    // One sign bootstrap fewer per GELU input with a bucket one bit narrower than the lookups.
    const QuantizedBlocks & wide = make_blocks(kAll, 4, 5);
    int64_t expected_signs = 0;
    for (const QuantizedBlock & block : wide.blocks)
        for (int32_t c = 0; c < block.mlp.n_hidden; ++c) {
            EXPECT_EQ(block.mlp.kept(c), std::clamp(block.mlp.shift(c) - 1, 0, 5));
            expected_signs += block.mlp.shift(c) - block.mlp.kept(c);
        }
    EXPECT_EQ(analyze(build_blocks_row_circuit(wide, 3, 4)).bootstraps_by_kind.at("mlp.requant.sign"), expected_signs);
    const tfhe::TfheParameters * chosen = choose_parameters(build_blocks_row_circuit(q, 3, 4));
    ASSERT_NE(chosen, nullptr);
    std::printf("all at 4 positions, one token: %lld bootstraps, %s\n", static_cast<long long>(a.bootstraps),
                chosen->name.c_str());
}

TEST(BlocksCircuitCache, RowCircuitsEqualTheWholeSequence) {
    const QuantizedBlocks q = make_blocks(kAll, 4);
    const int32_t n = 4;
    const std::vector<int64_t> x = typical_inputs(q, test::token_sequences(9, 1, size_t(n))[0]);
    const std::vector<int64_t> whole = blocks_reference_forward(q, x, n);
    const size_t per_position = size_t(q.inputs_per_position()), parts = size_t(q.cache_parts()), d = size_t(q.head_dim());
    std::vector<int64_t> rows;
    std::vector<std::vector<int64_t>> cache(parts);
    int32_t first = 0;
    for (int32_t next : {2, 3, 4}) {
        std::vector<int64_t> inputs(x.begin() + ptrdiff_t(size_t(first) * per_position), x.begin() + ptrdiff_t(size_t(next) * per_position));
        for (const auto & part : cache) inputs.insert(inputs.end(), part.begin(), part.end());
        const std::vector<int64_t> out = simulate(build_blocks_row_circuit(q, first, next), inputs);
        EXPECT_EQ(out, blocks_reference_rows(q, inputs, first, next));
        const size_t row_values = size_t(next - first) * q.n_embd, state = size_t(next - first) * d;
        ASSERT_EQ(out.size(), row_values + state * parts);
        rows.insert(rows.end(), out.begin(), out.begin() + ptrdiff_t(row_values));
        for (size_t p = 0; p < parts; ++p)
            cache[p].insert(cache[p].end(), out.begin() + ptrdiff_t(row_values + state * p),
                            out.begin() + ptrdiff_t(row_values + state * (p + 1)));
        first = next;
    }
    EXPECT_EQ(rows, whole);
    EXPECT_THROW(build_blocks_row_circuit(q, 4, 4), Error);
}

TEST(BlocksCircuit, HighPrecisionFollowsTheFloatBlocks) {
    // Wide lookups (simulation only): the decoded outputs against the folded float blocks, on
    // calibration sequences (in range: a random model's few calibration tokens leave fresh ones
    // past its ranges); the same outputs at twice their unit are far off.
    for (const model::BlockRangeSpec & spec : {kMlp, kAll}) {
        const QuantizedBlocks q = make_blocks(spec, 8, 8, 32);
        const model::Gpt2Model folded = model::fold_layer_norms(blocks_model());
        double diff = 0, norm = 0, diff_doubled = 0;
        const std::vector<std::vector<int32_t>> sequences = test::token_sequences(5, 16, 10);
        for (uint32_t s = 0; s < 4; ++s) {
            const std::vector<int32_t> tokens(sequences[s].begin(), sequences[s].begin() + 6);
            const BlockCalibration start = collect_block_calibration(blocks_model(), std::vector<std::vector<int32_t>>{tokens}, spec);
            model::FloatBlockRange reference(folded, spec);
            std::vector<float> expected(start.start.size());
            reference.forward(start.start, 6, 0, expected);
            if (!spec.final_norm) model::centre_rows(expected, q.n_embd);
            const std::vector<int64_t> out = blocks_reference_forward(q, q.quantize_inputs(start.start), 6);
            for (size_t i = 0; i < expected.size(); ++i) {
                const double got = double(out[i]) * q.output_unit(int32_t(i % size_t(q.n_embd)));
                diff += (got - expected[i]) * (got - expected[i]);
                diff_doubled += (2 * got - expected[i]) * (2 * got - expected[i]);
                norm += double(expected[i]) * expected[i];
            }
        }
        std::printf("layers %d..%d%s at 8 bits: relative L2 error %.4f (doubled: %.4f)\n", spec.first, spec.last,
                    spec.from_mlp ? " (MLP)" : "", std::sqrt(diff / norm), std::sqrt(diff_doubled / norm));
        EXPECT_LT(std::sqrt(diff / norm), 0.1);
        EXPECT_GT(std::sqrt(diff_doubled / norm), 0.5);
    }
}

// A smaller 2-layer model for the runs on ciphertexts: n_embd 16, 2 heads of 8.
const model::Gpt2Model & encrypted_model() {
    static const model::Gpt2Model m = [] {
        model::Gpt2HParams hp;
        hp.n_vocab = 64;
        hp.n_ctx = 16;
        hp.n_embd = 16;
        hp.n_head = 2;
        hp.n_layer = 2;
        return model::make_random_gpt2_model(hp, 77, 0.15f);
    }();
    return m;
}

TEST(BlocksCircuitEncrypted, GenerationEqualsSimulation) {
    // Every block and ln_f of a 2-layer model on ciphertexts with the encrypted cache (insecure
    // test parameters with two bootstrapping keys, the blocks calibrated for its fine key): a
    // prompt of 2 tokens and 2 greedy new tokens, the same as with the simulated blocks; every
    // decrypted value equals the simulation's.
    const tfhe::TfheParameters & params = tfhe::parameters_by_name("INSECURE_TEST_4BIT_MIXED");
    const double fine = std::log2(std::sqrt(tfhe::programmable_bootstrap_variance(params.fine_bootstrap_parameters()))) + 64;
    const QuantizedBlocks q = quantize(encrypted_model(), kAll, 4, 0, fine);
    EXPECT_LT(analyze_noise(build_blocks_row_circuit(q, 3, 4), params).log2_expected_failures, -20.0);
    const tfhe::ClientKey client = tfhe::generate_client_key(params);
    const tfhe::ServerKey server = tfhe::generate_server_key(client);
    model::Gpt2Context encrypted(encrypted_model()), simulated(encrypted_model());
    auto seam = std::make_unique<QuantizedBlockRange>(q, Executor::encrypted, EncryptedKeys{&client, &server, nullptr, {}}, true);
    const QuantizedBlockRange * observer = seam.get();
    encrypted.set_block_range(kAll, std::move(seam));
    simulated.set_block_range(kAll, std::make_unique<QuantizedBlockRange>(q, Executor::simulate, EncryptedKeys{}, true));
    model::GenerateParams gen;
    gen.n_predict = 2;
    gen.sampling.temperature = 0;
    const std::vector<int32_t> prompt = {3, 14};
    const std::vector<int32_t> with_ciphertexts = model::generate(encrypted, prompt, gen).tokens;
    EXPECT_EQ(with_ciphertexts, model::generate(simulated, prompt, gen).tokens);
    EXPECT_EQ(with_ciphertexts.size(), 2u);
    ASSERT_GE(observer->runs().size(), 2u);
    for (const HeadRunRecord & run : observer->runs()) {
        EXPECT_EQ(run.mismatches, 0) << "n " << run.n;
        EXPECT_EQ(run.encrypted, run.simulated);
        std::printf("rows %d..%d: %lld bootstraps in %.2f s\n", run.first, run.n - 1, static_cast<long long>(run.bootstraps),
                    run.seconds);
    }
    EXPECT_EQ(observer->runs()[1].first, 2);
    EXPECT_LT(observer->runs()[1].bootstraps, observer->runs()[0].bootstraps);
}

TEST(BlocksCircuit, LayerNormLevelsShareOneRatio) {
    // x levels span the bucket centres 1/2 .. 2^(b-1) - 1/2, r levels the spread, and every sum
    // of a magnitude index and an r index fits the L-bit product table.
    for (int lut_bits : {4, 6})
        for (int bucket_bits : {lut_bits - 1, lut_bits})
            for (double spread : {1.2, 2.4, 6.0}) {
                const LevelSplit s = layer_norm_levels(lut_bits, bucket_bits, spread);
                EXPECT_EQ(s.x_levels + s.r_levels, (1 << lut_bits) + 1);
                EXPECT_NEAR(std::pow(s.ratio, s.x_levels - 1), (1 << bucket_bits) - 1, 1e-6);
                EXPECT_GE(std::pow(s.ratio, s.r_levels - 1), spread - 1e-9);
                if (s.r_levels > 2) { // the fewest r levels: one fewer would not cover the spread
                    const LevelSplit fewer{s.x_levels + 1, s.r_levels - 1,
                                           std::pow((1 << bucket_bits) - 1.0, 1.0 / double(s.x_levels))};
                    EXPECT_LT(std::pow(fewer.ratio, fewer.r_levels - 1), spread);
                }
            }
    // A calibrated LayerNorm's product of the top code and the top r level is the largest, and
    // negative centres read the padding half.
    const QuantizedLayerNorm & ln = *make_blocks(kAll, 4).blocks[1].ln_1;
    const int64_t top = (int64_t{1} << ln.bucket_bits) - 1;
    EXPECT_EQ(ln.code_entry(top), ln.x_levels - 1);
    EXPECT_EQ(ln.code_entry(0), (int64_t{1} << ln.lut_bits) + ln.x_levels - 1);
    for (int32_t k = 0; k < ln.n_embd; ++k)
        EXPECT_LE(std::abs(ln.product_entry(k, 0)), std::abs(ln.product_entry(k, ln.x_levels + ln.r_levels - 2)));
    EXPECT_THROW(layer_norm_levels(4, 5, 2.0), Error);
}

TEST(BlocksCircuit, RejectsBadShapes) {
    const QuantizedBlocks q = make_blocks(kMlp, 4);
    EXPECT_THROW(build_blocks_circuit(q, 0), Error);
    EXPECT_THROW(blocks_reference_forward(q, std::vector<int64_t>(size_t(q.inputs_per_position()), 0), 2), Error);
    QuantizedBlocks broken = q;
    broken.blocks[0].mlp.proj_bias.pop_back();
    EXPECT_THROW(build_blocks_circuit(broken, 1), Error);
    const BlockCalibration cal = collect_block_calibration(blocks_model(), test::token_sequences(5, 2, 4), kMlp);
    EXPECT_THROW(quantize_blocks(blocks_model(), {1, 0, false, false}, cal, {}), Error);
    EXPECT_THROW(quantize_blocks(blocks_model(), {0, 0, false, true}, cal, {}), Error);
}

// The bundled model's `all` at the configuration that runs on a production set (6-bit inputs
// and lookups, 4-bit weights), calibrated as the commands calibrate it but on the first 8
// calibration prompts (the commands' 40 take about 4x longer): the q/k/v roundings after the
// server's ln_1 need a fine key finer than the 6-bit _MIXED set's, so the stream is calibrated
// again for the noise of the set that has it, and the cost of a new token at n = 8 passes the
// noise analysis there (no keys, no encryption).
TEST(BlocksCircuitBundled, AllGetsAProductionSetAndItsStreamNoise) {
    const std::string dir = std::string(FHEGPT_SOURCE_DIR) + "/models/fhegpt-tiny";
    const model::Gpt2Model model = model::load_gpt2_model(dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(dir);
    std::vector<std::string> prompts;
    std::ifstream in(std::string(FHEGPT_SOURCE_DIR) + "/data/calibration_prompts.txt");
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) prompts.push_back(line);
    ASSERT_GE(prompts.size(), 8u);
    prompts.resize(8);
    const model::BlockRangeSpec all{0, model.hparams.n_layer - 1, false, true};
    BlocksQuantConfig config;
    config.head.n_bits = 6;
    config.head.weight_bits = 4;
    config.head.lut_bits = 6;
    const QuantizedBlocks q = quantize_blocks(model, all, collect_block_calibration(model, tokenizer, prompts, all), config);
    const Circuit row = build_blocks_row_circuit(q, 7, 8);
    const tfhe::TfheParameters * chosen = choose_parameters(row);
    ASSERT_NE(chosen, nullptr);
    EXPECT_FALSE(chosen->insecure);
    EXPECT_EQ(chosen->name, "PARAM_6BIT_2M128_MIXED_FINE6");
    const NoiseAnalysis noise = analyze_noise(row, *chosen);
    EXPECT_LE(noise.log2_expected_failures, kMaxLog2ExpectedFailures);
    EXPECT_GT(analyze_noise(row, tfhe::parameters_by_name("PARAM_6BIT_2M128_MIXED")).log2_expected_failures,
              kMaxLog2ExpectedFailures);
    const double fine_sigma = std::sqrt(tfhe::programmable_bootstrap_variance(chosen->fine_bootstrap_parameters())) * 0x1p64;
    EXPECT_NEAR(q.stream_noise_log2, std::log2(fine_sigma), 1e-9);
    // The calibration keeps its choice, so the commands need not run the analysis again.
    EXPECT_EQ(q.parameter_set, chosen->name);
    EXPECT_EQ(q.parameter_positions, 8);
    std::printf("all at 6/4/6, one token at n = 8: %lld bootstraps (%lld on the fine key), %s, 2^%.1f expected failures, "
                "residual stream %d bits\n",
                static_cast<long long>(analyze(row).bootstraps), static_cast<long long>(noise.fine_bootstraps),
                chosen->name.c_str(), noise.log2_expected_failures, q.residual.width);
}

} // namespace
