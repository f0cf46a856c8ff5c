// The circuit of a quantized attention head: its clear simulation equals the exact reference
// (circuit::head_reference_forward, the same stages evaluated without a graph) and an
// independent derivation of the head's integers (circuit-reference-oracle.h) on every value, at several precisions, for typical inputs
// and for inputs far beyond the calibrated ranges (negacyclic reads); at high precision it
// follows the float head; it builds only the causal products; its noise analysis picks the
// level-2 set; and on ciphertexts (INSECURE_TEST_4BIT_PBS_L2) it gives the simulated values bit
// for bit, in range or not, directly and behind the model's attention seam
// (QuantizedHeadAttention).
#include "circuit-reference-oracle.h"
#include "circuit-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/head_calibration.h"
#include "circuit/head_circuit.h"
#include "circuit/head_reference.h"
#include "circuit/quantized_part_seams.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "quant/head_stages.h"
#include "quant/quantized_head.h"
#include "quant/quantizer.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;

// Weights large enough (0.2) that the attention is far from uniform.
const model::Gpt2Model & head_model() {
    static const model::Gpt2Model m = model::make_random_gpt2_model(test::small_attention_hparams(), 1234, 0.2f);
    return m;
}

const std::vector<int32_t> kCalibrationLengths = {5, 7, 3};

const std::vector<float> & calibration_x() {
    static const std::vector<float> x = test::normal_x(size_t(5 + 7 + 3) * 64, 7);
    return x;
}

quant::QuantizedHead make_head(int n_bits, bool per_channel, int lut_bits = 0) {
    quant::HeadQuantConfig config;
    config.n_bits = n_bits;
    config.per_channel = per_channel;
    config.lut_bits = lut_bits;
    return quant::quantize_head(model::head_qkv_weights(head_model(), 0, 1), calibration_x(), kCalibrationLengths,
                                config);
}

// Quantized inputs of n positions: fresh standard-normal x (typical), or uniform over the whole
// quantizer range (accumulators past the calibrated range: the negacyclic reads).
std::vector<int64_t> typical_inputs(const quant::QuantizedHead & head, int32_t n, uint32_t seed) {
    const std::vector<float> x = test::normal_x(size_t(n) * head.n_embd, seed);
    return head.quantize_inputs(x);
}

std::vector<int64_t> extreme_inputs(const quant::QuantizedHead & head, int32_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t level = quant::max_level(head.x_bits);
    std::uniform_int_distribution<int64_t> uniform(-level, level);
    std::vector<int64_t> out(size_t(n) * head.n_embd);
    for (int64_t & v : out) v = uniform(rng);
    return out;
}

// n rows of the calibration set, from row `first` on (cyclically): accumulators in range.
std::vector<int64_t> calibration_inputs(const quant::QuantizedHead & head, int32_t n, size_t first) {
    const size_t rows = calibration_x().size() / size_t(head.n_embd);
    std::vector<int64_t> out;
    for (int32_t i = 0; i < n; ++i) {
        const size_t row = (first + size_t(i)) % rows;
        for (int32_t r = 0; r < head.n_embd; ++r)
            out.push_back(head.quantize_input(calibration_x()[row * size_t(head.n_embd) + size_t(r)], r));
    }
    return out;
}

void expect_simulation_equals_reference(const Circuit & c, const quant::QuantizedHead & head, int32_t n,
                                        std::span<const int64_t> x, const std::string & what) {
    ASSERT_EQ(c.inputs().size(), size_t(n) * head.n_embd);
    ASSERT_EQ(c.outputs().size(), size_t(n) * head.head_dim);
    const std::vector<int64_t> simulated = simulate(c, x);
    const std::vector<int64_t> reference = head_reference_forward(head, x, n);
    ASSERT_EQ(simulated.size(), reference.size());
    // The stages' evaluation against the head's integers derived independently of them.
    EXPECT_EQ(reference, test::oracle_head_forward(head, x, n)) << what << " n " << n;
    size_t differences = 0;
    for (size_t i = 0; i < reference.size(); ++i) {
        if (simulated[i] != reference[i] && ++differences <= 5)
            ADD_FAILURE() << what << " n " << n << ": output " << i << " (position " << i / size_t(head.head_dim)
                          << ", column " << i % size_t(head.head_dim) << "): simulated " << simulated[i]
                          << ", reference " << reference[i];
    }
    EXPECT_EQ(differences, 0u) << what << " n " << n;
}

TEST(HeadCircuit, SimulationEqualsReference) {
    // Fresh standard-normal x, runs of calibration rows, and uniform x over the quantizer's whole
    // range (accumulators and scores past their calibrated ranges: negacyclic reads).
    struct Config {
        int n_bits;
        int lut_bits;
    };
    for (Config cfg : {Config{3, 0}, Config{4, 0}, Config{6, 0}, Config{6, 4}}) {
        for (bool per_channel : {false, true}) {
            const quant::QuantizedHead head = make_head(cfg.n_bits, per_channel, cfg.lut_bits);
            const std::string what = "n_bits " + std::to_string(cfg.n_bits) + " lut_bits " +
                                     std::to_string(head.lut_bits) + (per_channel ? " per-channel" : " per-tensor");
            for (int32_t n = 1; n <= 6; ++n) {
                const Circuit c = build_head_circuit(head, n);
                for (uint32_t seed = 0; seed < 4; ++seed) {
                    expect_simulation_equals_reference(c, head, n, typical_inputs(head, n, 100 * n + seed), what + " typical");
                    expect_simulation_equals_reference(c, head, n, calibration_inputs(head, n, size_t(seed) * 2),
                                                       what + " calibration");
                    expect_simulation_equals_reference(c, head, n, extreme_inputs(head, n, 200 * n + seed), what + " uniform");
                }
            }
            std::printf("%s: acc_bits %d/%d/%d score_bits %d value_bits %d\n", what.c_str(), head.acc_bits[0],
                        head.acc_bits[1], head.acc_bits[2], head.score_bits, head.value_bits);
        }
    }
}

// Calibration evaluates the head's stages on plain integers (quant/head_stages.h: codes,
// scores, coarse buckets, row top, window, fine buckets, exp, log, attention codes, outputs).
// On calibration inputs (every accumulator fits its column) they give the reference's outputs
// at every position, also over a sequence longer than any calibration one (scores wrapping
// their encoding): what calibration measures is what the circuit computes.
TEST(HeadCircuit, CalibrationStagesEqualTheReference) {
    for (int n_bits : {3, 4, 5, 6})
        for (bool per_channel : {false, true}) {
            const quant::QuantizedHead head = make_head(n_bits, per_channel);
            for (int32_t n : {1, 6, 15}) {
                for (size_t first : {size_t{0}, size_t{5}}) {
                    const std::vector<int64_t> x = calibration_inputs(head, n, first);
                    EXPECT_EQ(quant::head_stages_forward(head, x, n), head_reference_forward(head, x, n))
                        << "n_bits " << n_bits << " per_channel " << per_channel << " n " << n << " from row " << first;
                }
            }
            // The stages calibration reads, one by one, against their composition.
            const std::vector<int64_t> x = calibration_inputs(head, 7, 0);
            const std::vector<std::vector<int64_t>> scores = quant::calibration_scores(head, x, std::vector<int32_t>{7});
            const quant::HeadTableEntries t = quant::head_table_entries(head);
            const std::vector<int64_t> q = quant::projection_codes(head, t.code, quant::kQuery, x, 7);
            const std::vector<int64_t> k = quant::projection_codes(head, t.code, quant::kKey, x, 7);
            ASSERT_EQ(scores.size(), 7u);
            for (int32_t i = 0; i < 7; ++i)
                for (int32_t j = 0; j <= i; ++j)
                    EXPECT_EQ(scores[size_t(i)][size_t(j)],
                              quant::score_of_codes(head, t.score_product, &q[size_t(i) * head.head_dim], &k[size_t(j) * head.head_dim]));
        }
}

TEST(HeadCircuit, PrefixConsistent) {
    // Row i depends on positions 0..i only, whatever follows: evaluating a prefix gives the
    // same rows as evaluating the whole sequence (what an incremental, cached evaluation needs).
    for (int n_bits : {3, 4, 6}) {
        const quant::QuantizedHead head = make_head(n_bits, false);
        const int32_t n = 9, d = head.head_dim;
        for (uint32_t seed = 0; seed < 3; ++seed) {
            const std::vector<int64_t> x = seed == 2 ? extreme_inputs(head, n, 31) : typical_inputs(head, n, 30 + seed);
            const std::vector<int64_t> whole = head_reference_forward(head, x, n);
            for (int32_t m = 1; m < n; ++m) {
                const std::vector<int64_t> prefix = head_reference_forward(head, std::span(x).first(size_t(m) * head.n_embd), m);
                EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), whole.begin()))
                    << "n_bits " << n_bits << " seed " << seed << " prefix " << m;
            }
            EXPECT_EQ(simulate(build_head_circuit(head, 4), std::span(x).first(size_t(4) * head.n_embd)),
                      std::vector<int64_t>(whole.begin(), whole.begin() + 4 * d));
        }
    }
}

TEST(HeadCircuit, CalibratedOutputWidth) {
    // quantize_head_for_circuit sizes O from the calibration outputs: narrower than the worst
    // case at n positions and independent of n; in range, the outputs do not change.
    quant::HeadQuantConfig config;
    config.n_bits = 4;
    const quant::QuantizedHead worst = make_head(4, false);
    const quant::QuantizedHead calibrated = quantize_head_for_circuit(
        model::head_qkv_weights(head_model(), 0, 1), calibration_x(), kCalibrationLengths, config);
    EXPECT_EQ(worst.output_width, 0);
    ASSERT_GT(calibrated.output_width, 1);
    EXPECT_LT(calibrated.output_bits(64), worst.output_bits(64));
    EXPECT_EQ(calibrated.output_bits(6), calibrated.output_bits(200));
    const std::vector<int64_t> x = calibration_inputs(calibrated, 5, 0);
    EXPECT_EQ(head_reference_forward(calibrated, x, 5), head_reference_forward(worst, x, 5));
    EXPECT_EQ(simulate(build_head_circuit(calibrated, 5), x), head_reference_forward(calibrated, x, 5));
}

TEST(HeadCircuit, SaturatedAccumulatorsFollowTheTables) {
    // One position whose accumulator of column 0 of each projection is the largest possible:
    // far past the calibrated range, the bucket wraps and the reads are negacyclic.
    for (int n_bits : {3, 4, 6}) {
        const quant::QuantizedHead head = make_head(n_bits, false);
        const int64_t level = quant::max_level(head.x_bits);
        for (int p = 0; p < 3; ++p) {
            std::vector<int64_t> x(size_t(head.n_embd));
            for (int32_t r = 0; r < head.n_embd; ++r)
                x[size_t(r)] = head.weights[p].values[size_t(r) * size_t(head.head_dim)] >= 0 ? level : -level;
            const int64_t acc = head.accumulator(p, 0, x);
            EXPECT_GE(acc + head.accumulator_offset(p, 0), int64_t{1} << head.column_bits(p, 0))
                << "n_bits " << n_bits << " projection " << p << ": not past the range";
            expect_simulation_equals_reference(build_head_circuit(head, 1), head, 1, x,
                                               "n_bits " + std::to_string(n_bits) + " projection " +
                                                   std::to_string(p) + " saturated");
        }
    }
}

TEST(HeadCircuit, ValuesAreRoundedAccumulators) {
    // q, k, v buckets are their accumulators rounded down to L bits at a power-of-two scale:
    // bucket - 2^(L-1) = floor(acc / 2^shift), and the step is the same for every column.
    for (bool per_channel : {false, true}) {
        const quant::QuantizedHead head = make_head(4, per_channel);
        const std::vector<int64_t> x = calibration_inputs(head, 1, 3);
        for (int p = 0; p < 3; ++p)
            for (int32_t c = 0; c < head.head_dim; ++c) {
                const int64_t acc = head.accumulator(p, c, x);
                const int shift = head.column_shift(p, c);
                const int64_t h = (acc + head.accumulator_offset(p, c)) >> shift;
                EXPECT_EQ(h - (int64_t{1} << (head.lut_bits - 1)),
                          static_cast<int64_t>(std::floor(double(acc) / std::ldexp(1.0, shift))));
                EXPECT_DOUBLE_EQ(head.weights[p].scales[size_t(c)] * std::ldexp(1.0, shift),
                                 head.out_scale[p]);
            }
    }
}

TEST(HeadCircuit, LogCodesMultiplyBySummation) {
    // Every bucket's code stands for the level nearest its centre, with its sign; a negacyclic
    // read of the sum of two codes gives the product of the two levels (to the table's
    // rounding), signs included, and an attention code plus a value code gives weight * level.
    for (int n_bits : {3, 4, 5, 6}) {
        const quant::QuantizedHead head = make_head(n_bits, false);
        const int L = head.lut_bits;
        const int64_t buckets = int64_t{1} << L;
        for (int64_t h = 0; h < buckets; ++h) {
            const double centre = double(h - buckets / 2) + 0.5;
            const int64_t code = head.code_entry(h);
            ASSERT_GE(code, 0);
            ASSERT_LT(code, 2 * buckets);
            EXPECT_EQ(head.code_value(code) > 0, centre > 0) << h;
            for (int64_t m = 0; m <= head.top_code(); ++m) // no level is nearer
                EXPECT_LE(std::fabs(std::fabs(head.code_value(code)) - std::fabs(centre)),
                          std::fabs(head.level(m) - std::fabs(centre)) + 1e-12);
        }
        EXPECT_NEAR(head.level(0), 0.5, 1e-12);
        EXPECT_DOUBLE_EQ(head.level(head.top_code()), double(buckets / 2) - 0.5);
        for (int64_t a = 0; a < 2 * buckets; ++a)
            for (int64_t b = 0; b < 2 * buckets; ++b) {
                if (a % buckets > head.top_code() || b % buckets > head.top_code()) continue;
                const double expected = double(head.product_scale()) * head.code_value(a) * head.code_value(b);
                const int64_t got = head.read_negacyclic(&quant::QuantizedHead::score_product_entry, a + b);
                EXPECT_LE(std::fabs(double(got) - expected), 0.5 + 1e-9) << "codes " << a << " " << b;
            }
        for (int64_t alpha = 0; alpha <= head.top_attention_code(); ++alpha)
            for (int64_t v = 0; v < 2 * buckets; ++v) {
                if (v % buckets > head.top_code()) continue;
                const double expected = double(head.output_factor()) * head.attention_weight(alpha) * head.code_value(v);
                const int64_t got = head.read_negacyclic(&quant::QuantizedHead::output_product_entry, alpha + v);
                EXPECT_LE(std::fabs(double(got) - expected), 0.5 + 1e-9) << "alpha " << alpha << " code " << v;
            }
        EXPECT_DOUBLE_EQ(head.attention_weight(head.top_attention_code()), 1.0);
    }
}

TEST(HeadCircuit, SoftmaxCalibrationTakesTheNearestWindow) {
    // The calibrated window's attention weights are nearer to the softmax of the same scores than
    // those of any other window the calibration tries (here with the calibrated m), calibrating
    // again keeps the window, and the weights come nearer as the lookups widen. (quantize_head
    // calibrates against the float attention instead: CalibratedClippingCostsNoBootstraps.)
    double previous = 1e300;
    for (int n_bits : {3, 4, 6, 8}) {
        quant::QuantizedHead head = make_head(n_bits, false);
        const std::vector<std::vector<int64_t>> scores =
            quant::calibration_scores(head, head.quantize_inputs(calibration_x()), kCalibrationLengths);
        quant::calibrate_softmax(head, scores);
        size_t rows = 0;
        for (int32_t len : kCalibrationLengths) rows += size_t(len);
        ASSERT_EQ(scores.size(), rows);
        const double calibrated = quant::attention_error(head, scores);
        EXPECT_GE(calibrated, 0.0);
        EXPECT_LT(calibrated, 2.0) << "n_bits " << n_bits; // two normalized weight vectors are at most 2 apart
        for (int window = std::max(1, head.value_bits - head.score_shift()); window <= head.value_bits; ++window) {
            quant::QuantizedHead other = head;
            other.window_bits = window;
            quant::calibrate_softmax(other, scores); // back to the chosen window
            EXPECT_EQ(other.window_bits, head.window_bits);
            other.window_bits = window;
            EXPECT_LE(calibrated, quant::attention_error(other, scores) + 1e-12) << "n_bits " << n_bits << " window " << window;
        }
        EXPECT_LT(calibrated, previous) << "n_bits " << n_bits;
        previous = calibrated;
        std::printf("n_bits %d: window 2^%d coarse buckets, attention error %.4f\n", n_bits, head.window_bits, calibrated);
    }
    quant::QuantizedHead head = make_head(4, false);
    EXPECT_THROW(quant::calibrate_softmax(head, {}), Error);
    EXPECT_THROW(quant::calibration_scores(head, std::vector<int64_t>(10), kCalibrationLengths), Error);
}

// Float comparison: a head with moderate scores (weights 0.1: softmax far from uniform, scores
// mostly within the exp table's range) calibrated on 300 positions, so that fresh sequences
// stay inside the calibrated ranges. Most sequences then follow the float head to about 1%;
// a few rows do not, by the design of the softmax (documented in quantized_head.h): a row
// whose scores lie far below the reference m needs Lg below -2^(L-2) buckets (clipped), and a
// row with scores above m saturates its exp values at E (weights summing to more than 1).
// Hence the median over sequences is the tight check and the pooled error a loose one. (With
// the 15 calibration positions of the other tests, or weights of 0.2, those rows dominate even
// at 10 bits: pooled errors of 0.4 to 0.6.)
struct FloatComparison {
    model::Gpt2Model model = model::make_random_gpt2_model(test::small_attention_hparams(), 1234, 0.1f);
    std::vector<int32_t> lengths;
    std::vector<float> calibration;
    FloatComparison() {
        for (int r = 0; r < 20; ++r)
            for (int32_t len : kCalibrationLengths) lengths.push_back(len);
        calibration = test::normal_x(size_t(20 * 15) * 64, 17);
    }
    quant::QuantizedHead head(int n_bits, bool per_channel, bool calibrated_clipping = true) const {
        quant::HeadQuantConfig config;
        config.n_bits = n_bits;
        config.per_channel = per_channel;
        config.calibrated_clipping = calibrated_clipping;
        return quant::quantize_head(model::head_qkv_weights(model, 0, 1), calibration, lengths, config);
    }
    struct Errors {
        double pooled = 0, median = 0;
    };
    // Relative L2 errors over 20 fresh sequences of 6 positions of `factor` times the
    // dequantized circuit output against the float head: pooled, and the median sequence's.
    Errors errors(const quant::QuantizedHead & head, double factor, bool print) const {
        double diff = 0, norm = 0;
        std::vector<double> per_sequence;
        for (uint32_t s = 0; s < 20; ++s) {
            const int32_t n = 6, d = head.head_dim;
            const std::vector<float> x = test::normal_x(size_t(n) * head.n_embd, 500 + s);
            model::FloatHeadAttention reference(model, 0, 1);
            std::vector<float> expected(size_t(n) * d);
            reference.forward(x, n, 0, expected);
            const std::vector<int64_t> x_int = head.quantize_inputs(x);
            const std::vector<int64_t> o = simulate(build_head_circuit(head, n), x_int);
            double seq_diff = 0, seq_norm = 0;
            for (size_t i = 0; i < expected.size(); ++i) {
                const double got = factor * double(o[i]) * head.output_scale();
                seq_diff += (got - expected[i]) * (got - expected[i]);
                seq_norm += double(expected[i]) * expected[i];
            }
            per_sequence.push_back(std::sqrt(seq_diff / seq_norm));
            if (print) std::printf("  sequence %2u: relative L2 error %.4f\n", s, per_sequence.back());
            diff += seq_diff;
            norm += seq_norm;
        }
        std::sort(per_sequence.begin(), per_sequence.end());
        const size_t k = per_sequence.size();
        return {std::sqrt(diff / norm), (per_sequence[k / 2 - 1] + per_sequence[k / 2]) / 2};
    }
};

TEST(HeadCircuit, HighPrecisionFollowsTheFloatHead) {
    const FloatComparison cmp;
    for (bool per_channel : {false, true}) {
        const quant::QuantizedHead head = cmp.head(10, per_channel);
        ASSERT_EQ(head.lut_bits, 10);
        const char * what = per_channel ? "per-channel" : "per-tensor";
        std::printf("n_bits 10 %s:\n", what);
        const FloatComparison::Errors e = cmp.errors(head, 1.0, true);
        std::printf("n_bits 10 %s: relative L2 error: median sequence %.4f, pooled %.4f\n", what, e.median, e.pooled);
        EXPECT_LT(e.median, 0.05) << what;
        EXPECT_LT(e.pooled, 0.25) << what;
    }
}

TEST(HeadCircuit, CalibratedClippingCostsNoBootstraps) {
    // Clipped input and weight scales (the default) against absmax scales: never a bootstrap
    // more, never wider scores, and at 4 bits nearer the float head.
    const FloatComparison cmp;
    for (int n_bits : {3, 4, 5, 6, 8}) {
        const quant::QuantizedHead clipped = cmp.head(n_bits, false);
        const quant::QuantizedHead absmax = cmp.head(n_bits, false, false);
        const std::string what = "n_bits " + std::to_string(n_bits);
        const CircuitAnalysis a = analyze(build_head_circuit(clipped, 6)), b = analyze(build_head_circuit(absmax, 6));
        EXPECT_LE(a.bootstraps, b.bootstraps) << what;
        EXPECT_LE(clipped.score_bits, absmax.score_bits) << what;
        for (int p = 0; p < 3; ++p)
            EXPECT_LE(clipped.rounding_bootstraps(p, 0), absmax.rounding_bootstraps(p, 0)) << what << " projection " << p;
        if (n_bits == 4) {
            const FloatComparison::Errors e = cmp.errors(clipped, 1.0, false), f = cmp.errors(absmax, 1.0, false);
            std::printf("n_bits 4: relative L2 error, pooled: clipped %.4f, absmax %.4f\n", e.pooled, f.pooled);
            EXPECT_LT(e.pooled, f.pooled);
        }
    }
}

TEST(HeadCircuit, HighPrecisionErrorDetectsAWrongScale) {
    // The tolerances above are meaningful: a sign flip or a factor 2 in the scale fails them.
    const FloatComparison cmp;
    const quant::QuantizedHead head = cmp.head(10, false);
    for (double factor : {-1.0, 2.0, 0.5}) {
        const FloatComparison::Errors e = cmp.errors(head, factor, false);
        std::printf("output scaled by %4.1f: relative L2 error: median sequence %.4f, pooled %.4f\n", factor, e.median,
                    e.pooled);
        EXPECT_GT(e.median, 0.3) << "factor " << factor;
        EXPECT_GT(e.pooled, 0.3) << "factor " << factor;
    }
}

TEST(HeadCircuit, OnlyCausalProducts) {
    for (int n_bits : {3, 4, 6}) {
        const quant::QuantizedHead head = make_head(n_bits, false);
        const int64_t d = head.head_dim;
        for (int32_t n = 1; n <= 6; ++n) {
            CircuitAnalysis a = analyze(build_head_circuit(head, n));
            const int64_t pairs = int64_t{n} * (n + 1) / 2;
            EXPECT_EQ(a.bootstraps_by_kind["qk.product"], d * pairs) << "n_bits " << n_bits << " n " << n;
            EXPECT_EQ(a.bootstraps_by_kind["av.product"], d * pairs) << "n_bits " << n_bits << " n " << n;
            EXPECT_EQ(a.bootstraps_by_kind["softmax.exp"], pairs);
            EXPECT_EQ(a.bootstraps_by_kind["softmax.log"], n);
            EXPECT_EQ(a.bootstraps_by_kind["softmax.max"], pairs - n);    // a chain over each row
            EXPECT_EQ(a.bootstraps_by_kind["softmax.window"], pairs);
            for (const char * p : {"q.code", "k.code", "v.code"}) EXPECT_EQ(a.bootstraps_by_kind[p], d * n) << p;
            EXPECT_EQ(a.bootstraps_by_kind["softmax.attention"], pairs);
            // Rounding: one sign bootstrap per removed bit above the kept ones.
            int64_t rounding = 0;
            for (int p = 0; p < 3; ++p)
                for (int32_t c = 0; c < head.head_dim; ++c) {
                    EXPECT_EQ(head.rounding_bootstraps(p, c), head.column_shift(p, c) - head.kept_bits(p, c));
                    EXPECT_LE(head.kept_bits(p, c), head.lut_bits);
                    rounding += n * head.rounding_bootstraps(p, c);
                }
            EXPECT_EQ(a.bootstraps_by_kind["qkv.requant.sign"], rounding);
            EXPECT_EQ(a.bootstraps_by_kind.count("qkv.requant.chunk"), 0u);
            EXPECT_EQ(a.max_lookup_bits, head.lut_bits);
            EXPECT_EQ(a.inputs, int64_t{n} * head.n_embd);
            EXPECT_EQ(a.outputs, int64_t{n} * d);
            if (n == 6)
                std::printf("n_bits %d n %d: %lld bootstraps, depth %d\n", n_bits, n,
                            static_cast<long long>(a.bootstraps), a.depth);
        }
    }
}

struct TestKeys {
    tfhe::ClientKey client;
    tfhe::ServerKey server;
    TestKeys() : client(tfhe::generate_client_key(tfhe::parameters_by_name("INSECURE_TEST_4BIT_PBS_L2"))),
                 server(tfhe::generate_server_key(client)) {}
};

const TestKeys & test_keys() {
    static const TestKeys keys;
    return keys;
}

TEST(HeadCircuitEncrypted, EqualsSimulationBitForBit) {
    const quant::QuantizedHead head = make_head(4, false);
    ASSERT_EQ(head.lut_bits, 4);
    const int32_t n = 3;
    const Circuit c = build_head_circuit(head, n);
    const TestKeys & keys = test_keys();
    for (uint32_t seed : {11u, 12u}) {
        const std::vector<int64_t> x = seed == 11 ? calibration_inputs(head, n, 4) : extreme_inputs(head, n, seed);
        const std::vector<int64_t> simulated = simulate(c, x);
        EXPECT_EQ(simulated, head_reference_forward(head, x, n));
        // The noise analysis of these keys expects no failure in this circuit.
        EXPECT_LT(analyze_noise(c, keys.client.parameters).log2_expected_failures, -20.0);
        const auto inputs = encrypt_inputs(c, keys.client, x);
        ExecutionStats stats;
        int64_t last_done = 0, calls = 0;
        const auto outputs = run_encrypted(
            c, keys.server, inputs, ThreadPool::global(),
            [&](int64_t done, int64_t total) {
                EXPECT_GT(done, last_done);
                EXPECT_LE(done, total);
                last_done = done;
                ++calls;
            },
            &stats);
        const std::vector<int64_t> decrypted = decrypt_outputs(c, keys.client, outputs);
        EXPECT_EQ(stats.bootstraps, analyze(c).bootstraps);
        EXPECT_EQ(last_done, stats.bootstraps);
        EXPECT_GT(calls, 0);
        std::printf("seed %u: %lld bootstraps in %.2f s on %zu threads\n", seed,
                    static_cast<long long>(stats.bootstraps), stats.seconds, ThreadPool::global().size());
        ASSERT_EQ(decrypted.size(), simulated.size());
        size_t mismatches = 0;
        for (size_t i = 0; i < simulated.size(); ++i) mismatches += decrypted[i] != simulated[i];
        EXPECT_EQ(mismatches, 0u) << "seed " << seed;
        EXPECT_EQ(decrypted, simulated);
    }
}

TEST(HeadCircuitEncrypted, TwoBootstrappingKeysEqualSimulation) {
    // A set with a second, finer bootstrapping key: the analysis puts only some kinds on it
    // (the reads of long sums), and the executor must route every lookup to the same key.
    const quant::QuantizedHead head = make_head(4, false);
    const int32_t n = 3;
    const Circuit c = build_head_circuit(head, n);
    const tfhe::TfheParameters & params = tfhe::parameters_by_name("INSECURE_TEST_4BIT_MIXED");
    ASSERT_TRUE(params.has_fine_bootstrap());
    const NoiseAnalysis noise = analyze_noise(c, params);
    EXPECT_LT(noise.log2_expected_failures, kMaxLog2ExpectedFailures);
    EXPECT_GT(noise.fine_bootstraps, 0);
    EXPECT_LT(noise.fine_bootstraps, analyze(c).bootstraps / 2);
    const std::vector<bool> fine = fine_bootstrap_kinds(c, params);
    EXPECT_EQ(size_t(std::count(fine.begin(), fine.end(), true)), noise.fine_kinds.size());
    // Without the second key the same set's fast bootstraps alone would fail the policy.
    const tfhe::TfheParameters & single = tfhe::parameters_by_name("INSECURE_TEST_4BIT");
    EXPECT_GT(analyze_noise(c, single).log2_expected_failures, kMaxLog2ExpectedFailures);

    const tfhe::ClientKey client = tfhe::generate_client_key(params);
    const tfhe::ServerKey server = tfhe::generate_server_key(client);
    ASSERT_TRUE(server.fine_bootstrap_key.has_value());
    const std::vector<int64_t> x = extreme_inputs(head, n, 21);
    const std::vector<int64_t> simulated = simulate(c, x);
    const auto outputs = run_encrypted(c, server, encrypt_inputs(c, client, x), ThreadPool::global());
    EXPECT_EQ(decrypt_outputs(c, client, outputs), simulated);
}

TEST(HeadCircuitEncrypted, BehindTheAttentionSeam) {
    const model::Gpt2Model & m = head_model();
    const quant::QuantizedHead head = make_head(4, true);
    ASSERT_EQ(head.lut_bits, 4);
    const TestKeys & keys = test_keys();
    model::Gpt2Context ctx(m);
    auto attention = std::make_unique<QuantizedHeadAttention>(
        head, Executor::encrypted, EncryptedKeys{&keys.client, &keys.server, &ThreadPool::global(), {}});
    QuantizedHeadAttention * seam = attention.get();
    ctx.set_head_attention(0, 1, std::move(attention));
    const std::vector<int32_t> tokens = {5, 17, 42};
    const std::span<const float> logits = ctx.eval(std::span(tokens).first(2));
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    ctx.eval(std::span(tokens).subspan(2, 1));
    ASSERT_EQ(seam->runs().size(), 2u);
    for (size_t r = 0; r < seam->runs().size(); ++r) {
        const HeadRunRecord & run = seam->runs()[r];
        EXPECT_EQ(run.n, int32_t(r + 2));
        EXPECT_EQ(run.mismatches, 0) << "run " << r;
        EXPECT_EQ(run.encrypted, run.simulated) << "run " << r;
        EXPECT_EQ(run.bootstraps, analyze(seam->circuit_for(0, run.n)).bootstraps);
        std::printf("seam run n %d: %lld bootstraps in %.2f s\n", run.n, static_cast<long long>(run.bootstraps),
                    run.seconds);
    }
    EXPECT_EQ(seam->runs().back().mismatches, 0);
}

TEST(HeadCircuit, SimulatedExecutorBehindTheSeam) {
    // The clear executor evaluates the circuit of the whole sequence so far at each call and
    // returns the new positions, dequantized.
    const quant::QuantizedHead head = make_head(6, false);
    QuantizedHeadAttention attention(head, Executor::simulate);
    const int32_t n = 5, d = head.head_dim, n_embd = head.n_embd;
    const std::span<const float> x = std::span(calibration_x()).first(size_t(n) * n_embd);
    const std::vector<int64_t> x_int = head.quantize_inputs(x);
    // Positions 0..2 come from the circuit of 3 positions, 3..4 from that of 5: the same values
    // as the whole sequence at once (PrefixConsistent).
    const std::vector<int64_t> o3 = head_reference_forward(head, std::span(x_int).first(size_t(3) * n_embd), 3);
    const std::vector<int64_t> o5 = head_reference_forward(head, x_int, n);
    EXPECT_TRUE(std::equal(o3.begin(), o3.end(), o5.begin()));
    std::vector<float> out(size_t(n) * d);
    attention.forward(x.first(size_t(3) * n_embd), 3, 0, std::span(out).first(size_t(3) * d));
    attention.forward(x.subspan(size_t(3) * n_embd), 2, 3, std::span(out).subspan(size_t(3) * d));
    for (size_t i = 0; i < out.size(); ++i) {
        const int64_t expected = i < size_t(3) * d ? o3[i] : o5[i];
        EXPECT_EQ(out[i], static_cast<float>(double(expected) * head.output_scale())) << i;
    }
    EXPECT_TRUE(attention.runs().empty());
    // Out of order.
    EXPECT_THROW(attention.forward(x.first(size_t(n_embd)), 1, 0, std::span(out).first(size_t(d))), Error);
    EXPECT_THROW(QuantizedHeadAttention(head, Executor::encrypted), Error);
}

TEST(HeadCircuitEncrypted, RunEncryptedRejectsBadInputs) {
    const TestKeys & keys = test_keys();
    const quant::QuantizedHead head = make_head(4, false);
    const Circuit c = build_head_circuit(head, 1);
    const std::vector<int64_t> x = typical_inputs(head, 1, 3);
    std::vector<tfhe::LweCiphertext> inputs = encrypt_inputs(c, keys.client, x);

    // Wrong input count.
    EXPECT_THROW(run_encrypted(c, keys.server, std::span(inputs).first(inputs.size() - 1), ThreadPool::global()),
                 Error);
    std::vector<tfhe::LweCiphertext> more = inputs;
    more.push_back(inputs[0]);
    EXPECT_THROW(run_encrypted(c, keys.server, more, ThreadPool::global()), Error);
    EXPECT_THROW(encrypt_inputs(c, keys.client, std::span(x).first(x.size() - 1)), Error);
    EXPECT_THROW(decrypt_outputs(c, keys.client, std::span(inputs).first(3)), Error);

    // Ciphertexts of the wrong dimension: all of them (the small key's), or just one.
    std::vector<tfhe::LweCiphertext> small(inputs.size(), tfhe::LweCiphertext(keys.client.parameters.lwe_dimension));
    EXPECT_THROW(run_encrypted(c, keys.server, small, ThreadPool::global()), Error);
    std::vector<tfhe::LweCiphertext> one_bad = inputs;
    one_bad.back() = tfhe::LweCiphertext(tfhe::LweDimension{one_bad.back().data.size()});
    EXPECT_THROW(run_encrypted(c, keys.server, one_bad, ThreadPool::global()), Error);

    // A circuit with 6-bit lookups on a 4-bit key.
    Circuit wide;
    const ValueId in = wide.add_input(57);
    wide.mark_output(wide.add_lookup(in, wide.add_table(6, std::vector<uint64_t>(64, 0), "wide")), 40);
    const std::vector<int64_t> one = {1};
    const auto wide_inputs = encrypt_inputs(wide, keys.client, one);
    EXPECT_THROW(run_encrypted(wide, keys.server, wide_inputs, ThreadPool::global()), Error);
    // A head quantized with 6-bit tables likewise.
    const quant::QuantizedHead head6 = make_head(6, false);
    const Circuit c6 = build_head_circuit(head6, 1);
    const auto inputs6 = encrypt_inputs(c6, keys.client, typical_inputs(head6, 1, 4));
    EXPECT_THROW(run_encrypted(c6, keys.server, inputs6, ThreadPool::global()), Error);
}

TEST(HeadCircuitEncrypted, CancellationStopsAtTheNextBatch) {
    const TestKeys & keys = test_keys();
    const quant::QuantizedHead head = make_head(4, false);
    const Circuit c = build_head_circuit(head, 2);
    const auto inputs = encrypt_inputs(c, keys.client, typical_inputs(head, 2, 5));
    // Raised before the start: no batch runs.
    CancellationToken before;
    before.cancel(7);
    int64_t calls = 0;
    try {
        run_encrypted(c, keys.server, inputs, ThreadPool::global(), [&](int64_t, int64_t) { ++calls; }, nullptr, &before);
        ADD_FAILURE() << "a cancelled evaluation ran";
    } catch (const Cancelled & e) {
        EXPECT_EQ(e.reason, 7);
    }
    EXPECT_EQ(calls, 0);
    // Raised after the first batch: the evaluation stops before the second.
    CancellationToken during;
    std::vector<int64_t> done_seen;
    EXPECT_THROW(run_encrypted(
                     c, keys.server, inputs, ThreadPool::global(),
                     [&](int64_t done, int64_t) {
                         done_seen.push_back(done);
                         during.cancel();
                     },
                     nullptr, &during),
                 Cancelled);
    ASSERT_EQ(done_seen.size(), 1u);
    EXPECT_LT(done_seen[0], analyze(c).bootstraps);
    // A token never raised changes nothing.
    CancellationToken never;
    EXPECT_EQ(decrypt_outputs(c, keys.client, run_encrypted(c, keys.server, inputs, ThreadPool::global(), {}, nullptr, &never)),
              simulate(c, typical_inputs(head, 2, 5)));
}

TEST(HeadCircuit, BuildRejectsBadLengths) {
    const quant::QuantizedHead head = make_head(4, false);
    EXPECT_THROW(build_head_circuit(head, 0), Error);
    EXPECT_THROW(build_head_circuit(head, -1), Error);
    const std::vector<int64_t> x(size_t(head.n_embd), 0);
    EXPECT_THROW(head_reference_forward(head, x, 2), Error);
}

// The circuit of rows first..n-1 on a cache of the keys and values of earlier positions
// (the encrypted KV cache): chained, row circuits give the rows of the whole-sequence circuit,
// and a row's bootstraps grow linearly with its position.
struct CachedRun {
    std::vector<int64_t> outputs;                       // O of every row so far
    std::vector<int64_t> cache[kHeadCacheParts];        // key codes, value codes
    // Evaluates rows first..n-1 by simulation; x: inputs of those positions.
    void rows(const Circuit & c, std::span<const int64_t> x, int32_t first, int32_t n, int32_t d) {
        std::vector<int64_t> inputs(x.begin(), x.end());
        for (const auto & part : cache) inputs.insert(inputs.end(), part.begin(), part.end());
        const std::vector<int64_t> out = simulate(c, inputs);
        const size_t rows = size_t(n - first) * d;
        ASSERT_EQ(out.size(), rows * (1 + kHeadCacheParts));
        outputs.insert(outputs.end(), out.begin(), out.begin() + ptrdiff_t(rows));
        for (int part = 0; part < kHeadCacheParts; ++part)
            cache[part].insert(cache[part].end(), out.begin() + ptrdiff_t(rows * (part + 1)),
                               out.begin() + ptrdiff_t(rows * (part + 2)));
    }
};

TEST(HeadCircuitCache, RowCircuitsEqualTheWholeSequence) {
    for (int n_bits : {3, 4, 6}) {
        const quant::QuantizedHead head = make_head(n_bits, false);
        const int32_t n = 7, d = head.head_dim, n_embd = head.n_embd;
        const int width = head.output_bits(n); // fixed for every call
        for (uint32_t seed = 0; seed < 2; ++seed) {
            const std::vector<int64_t> x = seed == 1 ? extreme_inputs(head, n, 41) : typical_inputs(head, n, 40);
            const std::vector<int64_t> whole = head_reference_forward(head, x, n);
            // A prefill of 3 positions, then one position at a time.
            CachedRun run;
            run.rows(build_head_row_circuit(head, 0, 3, width), std::span(x).first(size_t(3) * n_embd), 0, 3, d);
            for (int32_t i = 3; i < n; ++i)
                run.rows(build_head_row_circuit(head, i, i + 1, width),
                         std::span(x).subspan(size_t(i) * n_embd, size_t(n_embd)), i, i + 1, d);
            EXPECT_EQ(run.outputs, whole) << "n_bits " << n_bits << " seed " << seed;
        }
    }
}

TEST(HeadCircuitCache, BootstrapsPerTokenGrowLinearly) {
    const quant::QuantizedHead head = make_head(4, false);
    const int width = head.output_bits(64);
    std::vector<int64_t> per_row;
    for (int32_t i : {3, 7, 15, 31}) per_row.push_back(analyze(build_head_row_circuit(head, i, i + 1, width)).bootstraps);
    // Position i: q/k/v of one position, 2 d (i + 1) products, a few softmax lookups per pair.
    const int64_t step1 = per_row[1] - per_row[0], step2 = per_row[3] - per_row[2];
    EXPECT_GT(step1, 0);
    EXPECT_EQ(step2 * 1, step1 * 4) << "4 positions more, then 16 more: linear growth";
    const int64_t whole = analyze(build_head_circuit(head, 32)).bootstraps;
    std::printf("row 31 on the cache: %lld bootstraps; the whole 32-position circuit: %lld\n",
                static_cast<long long>(per_row[3]), static_cast<long long>(whole));
    EXPECT_LT(per_row[3] * 8, whole);
    EXPECT_THROW(build_head_row_circuit(head, 2, 2, width), Error);
    EXPECT_THROW(build_head_row_circuit(head, 0, 2, 0), Error);
}

// Greedy-style incremental evaluation behind the seam: a prefill, then one position at a time.
std::vector<std::vector<float>> incremental_logits(model::Gpt2Context & ctx, std::span<const int32_t> tokens) {
    std::vector<std::vector<float>> out;
    const auto first = ctx.eval(tokens.first(3));
    out.emplace_back(first.begin(), first.end());
    for (size_t i = 3; i < tokens.size(); ++i) {
        const auto next = ctx.eval(tokens.subspan(i, 1));
        out.emplace_back(next.begin(), next.end());
    }
    return out;
}

quant::QuantizedHead cached_head(int n_bits) {
    quant::HeadQuantConfig config;
    config.n_bits = n_bits;
    return quantize_head_for_circuit(model::head_qkv_weights(head_model(), 0, 1), calibration_x(), kCalibrationLengths,
                                     config);
}

TEST(HeadCircuitCache, SeamWithCacheEqualsRecompute) {
    const quant::QuantizedHead head = cached_head(4);
    const std::vector<int32_t> tokens = {5, 17, 42, 8, 33, 2, 60};
    model::Gpt2Context cached(head_model()), recomputed(head_model());
    cached.set_head_attention(0, 1, std::make_unique<QuantizedHeadAttention>(head, Executor::simulate, EncryptedKeys{}, true));
    recomputed.set_head_attention(0, 1, std::make_unique<QuantizedHeadAttention>(head, Executor::simulate));
    EXPECT_EQ(incremental_logits(cached, tokens), incremental_logits(recomputed, tokens));
    // After a reset, the cache starts again.
    cached.reset();
    recomputed.reset();
    EXPECT_EQ(incremental_logits(cached, tokens), incremental_logits(recomputed, tokens));
    // A head without a calibrated output width cannot be cached.
    EXPECT_THROW(QuantizedHeadAttention(make_head(4, false), Executor::simulate, EncryptedKeys{}, true), Error);
}

TEST(HeadCircuitCache, EncryptedCacheEqualsSimulation) {
    const quant::QuantizedHead head = cached_head(4);
    const TestKeys & keys = test_keys();
    const std::vector<int32_t> tokens = {5, 17, 42, 8, 33};
    model::Gpt2Context encrypted(head_model()), simulated(head_model());
    auto seam = std::make_unique<QuantizedHeadAttention>(head, Executor::encrypted,
                                                         EncryptedKeys{&keys.client, &keys.server, nullptr, {}}, true);
    const QuantizedHeadAttention * observer = seam.get();
    encrypted.set_head_attention(0, 1, std::move(seam));
    simulated.set_head_attention(0, 1, std::make_unique<QuantizedHeadAttention>(head, Executor::simulate));
    EXPECT_EQ(incremental_logits(encrypted, tokens), incremental_logits(simulated, tokens));
    ASSERT_EQ(observer->runs().size(), 3u);
    for (const HeadRunRecord & run : observer->runs()) {
        EXPECT_EQ(run.mismatches, 0) << "rows " << run.first << ".." << run.n - 1;
        EXPECT_EQ(run.encrypted, run.simulated);
    }
    // The last call evaluated one row on the cache: far fewer bootstraps than the prefill.
    EXPECT_EQ(observer->runs()[2].first, 4);
    EXPECT_LT(observer->runs()[2].bootstraps, observer->runs()[0].bootstraps);
}

TEST(HeadCircuitNoise, ChoosesTheLevel2SetForLongSums) {
    // The scores sum 2 d bootstrap outputs, the outputs 3 n: with PARAM_4BIT_2M128 their noise
    // reaches the rounding of the score or the decryption of the output; the level-2 set keeps
    // every bootstrap below 2^-70 (the product reads, whose q and k residues take 1/8 of their
    // box, are the most fragile).
    const quant::QuantizedHead head = make_head(4, false);
    const Circuit c = build_head_circuit(head, 4);
    const NoiseAnalysis cheap = analyze_noise(c, tfhe::parameters_by_name("PARAM_4BIT_2M128"));
    const NoiseAnalysis fine = analyze_noise(c, tfhe::parameters_by_name("PARAM_4BIT_2M128_PBS_L2"));
    std::printf("PARAM_4BIT_2M128: worst log2 p_fail %.1f (%s); PBS_L2: %.1f (%s)\n", cheap.worst_log2_p_fail,
                cheap.worst_kind.c_str(), fine.worst_log2_p_fail, fine.worst_kind.c_str());
    EXPECT_GT(cheap.worst_log2_p_fail, -40.0);
    EXPECT_TRUE(cheap.worst_kind.rfind("score.", 0) == 0 || cheap.worst_kind == "output.decrypt")
        << cheap.worst_kind; // a read of one of the long sums
    EXPECT_LT(fine.worst_log2_p_fail, -70.0);
    EXPECT_LT(fine.log2_expected_failures, -60.0);
    // The cheapest set that meets the policy keeps the fast key and bootstraps only the reads of
    // the long sums with the level-2 key: the classic set's two-key variant (the first 4-bit set,
    // as fast in batches as the multi-bit ones with smaller keys); the multi-bit sets' outputs
    // are noisier and need it as well.
    const tfhe::TfheParameters * chosen = choose_parameters(c);
    ASSERT_NE(chosen, nullptr);
    EXPECT_EQ(chosen->name, "PARAM_4BIT_2M128_MIXED");
    for (const char * name : {"PARAM_4BIT_2M128", "PARAM_4BIT_2M128_MULTI_BIT_G4"})
        EXPECT_GT(analyze_noise(c, tfhe::parameters_by_name(name)).log2_expected_failures, kMaxLog2ExpectedFailures)
            << name;
    for (const char * name : {"PARAM_4BIT_2M128_MULTI_BIT_G4_MIXED", "PARAM_4BIT_2M128_MIXED"}) {
        SCOPED_TRACE(name);
        const NoiseAnalysis mixed = analyze_noise(c, tfhe::parameters_by_name(name));
        EXPECT_LE(mixed.log2_expected_failures, kMaxLog2ExpectedFailures);
        EXPECT_GT(mixed.fine_bootstraps, 0);
        EXPECT_LT(mixed.fine_bootstraps, analyze(c).bootstraps);
        EXPECT_NE(std::find(mixed.fine_kinds.begin(), mixed.fine_kinds.end(), "qk.product"), mixed.fine_kinds.end());
        EXPECT_EQ(std::find(mixed.fine_kinds.begin(), mixed.fine_kinds.end(), "qkv.requant.sign"),
                  mixed.fine_kinds.end());
    }
    // A circuit of single lookups on fresh inputs needs nothing more than the cheap set; its
    // output must be decrypted at a unit well above a bootstrap's noise (2^49.2 there).
    Circuit small;
    const ValueId in = small.add_input(59);
    small.mark_output(small.add_lookup(in, small.add_table(4, std::vector<uint64_t>(16, 0), "t")), 56);
    ASSERT_NE(choose_parameters(small), nullptr);
    EXPECT_EQ(choose_parameters(small)->name, "PARAM_4BIT_2M128");
    Circuit fine_output;
    const ValueId in2 = fine_output.add_input(59);
    fine_output.mark_output(fine_output.add_lookup(in2, fine_output.add_table(4, std::vector<uint64_t>(16, 0), "t")), 49);
    EXPECT_EQ(analyze_noise(fine_output, tfhe::parameters_by_name("PARAM_4BIT_2M128")).worst_kind, "output.decrypt");
    EXPECT_EQ(analyze_noise(fine_output, tfhe::parameters_by_name("PARAM_4BIT_2M128_MULTI_BIT_G4")).worst_kind,
              "output.decrypt");
    ASSERT_NE(choose_parameters(fine_output), nullptr);
    EXPECT_EQ(choose_parameters(fine_output)->name, "PARAM_4BIT_2M128_MIXED");
    EXPECT_EQ(analyze_noise(fine_output, *choose_parameters(fine_output)).fine_kinds, std::vector<std::string>{"t"});
    ASSERT_NE(choose_parameters(small), nullptr);
    EXPECT_EQ(choose_parameters(small)->name, "PARAM_4BIT_2M128");
}

} // namespace
