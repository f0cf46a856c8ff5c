// The circuit core: integer encoding at the ports, exact low-bit removal (CircuitBuilder) in
// the clear simulation on every input of every small width, its bootstrap count, and the
// errors of the Circuit API and of the simulation.
#include "circuit/noise_analysis.h"
#include "circuit/circuit.h"
#include "circuit/circuit_builder.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "quant/quantized_head.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace fhegpt::circuit;
using fhegpt::Error;

TEST(CircuitEncoding, RoundTripSignedValues) {
    for (int delta : {0, 1, 5, 17, 32, 40, 55, 59, 62}) {
        // Every value that fits in the 64 - delta signed bits left above the scale.
        const int value_bits = 64 - delta;
        const int64_t hi = value_bits >= 63 ? (int64_t{1} << 40) : (int64_t{1} << (value_bits - 1)) - 1;
        const int64_t lo = -hi - 1;
        std::vector<int64_t> values = {0, 1, -1, 2, -2, 3, -3, hi, lo, hi / 2, lo / 2, hi - 1, lo + 1};
        for (int64_t v : values) {
            if (v < lo || v > hi) continue;
            const uint64_t p = encode_integer(v, delta);
            EXPECT_EQ(decode_integer(p, delta), v) << "v " << v << " delta " << delta;
            if (delta > 0) {
                EXPECT_EQ(p & ((uint64_t{1} << delta) - 1), 0u) << "v " << v << " delta " << delta;
                // Anything within half a step decodes to v (noise of either sign).
                const uint64_t half = uint64_t{1} << (delta - 1);
                EXPECT_EQ(decode_integer(p + (half - 1), delta), v) << "v " << v << " delta " << delta;
                EXPECT_EQ(decode_integer(p - half, delta), v) << "v " << v << " delta " << delta;
                if (delta > 1) {
                    EXPECT_EQ(decode_integer(p + 1, delta), v);
                    EXPECT_EQ(decode_integer(p - 1, delta), v);
                }
            }
        }
    }
    // The scale is a plain shift mod 2^64: -1 at 2^63 is 2^63.
    EXPECT_EQ(encode_integer(-1, 63), uint64_t{1} << 63);
    EXPECT_EQ(encode_integer(3, 10), uint64_t{3} << 10);
    EXPECT_EQ(encode_integer(-3, 10), uint64_t{0} - (uint64_t{3} << 10));
}

// Expected output of remove_low_bits: u with its low `shift` bits cleared (two's complement),
// at the input's scale, mod 2^64.
uint64_t cleared(int64_t u, int width, int shift) {
    const uint64_t mask = ~((uint64_t{1} << shift) - 1);
    return (static_cast<uint64_t>(u) & mask) << (63 - width);
}

TEST(CircuitBuilder, RemoveLowBitsExhaustive) {
    int64_t checked = 0;
    for (int read_bits : {2, 3, 4}) {
        for (int width = 5; width <= 10; ++width) {
            for (int shift = 1; shift < width; ++shift) {
                CircuitBuilder b(read_bits);
                const ValueId in = b.circuit().add_input(63 - width);
                const ValueId out = b.remove_low_bits(in, width, shift, "rm");
                b.circuit().mark_output(out, 0);
                const Circuit c = b.take();

                const int K = (shift + read_bits - 1) / read_bits;
                CircuitAnalysis a = analyze(c);
                EXPECT_EQ(a.bootstraps, 2 * K) << "read_bits " << read_bits << " width " << width << " shift " << shift;
                EXPECT_EQ(a.bootstraps, fhegpt::quant::rounding_bootstraps(shift, read_bits));
                EXPECT_EQ(a.bootstraps_by_kind["rm.sign"], K);
                EXPECT_EQ(a.bootstraps_by_kind["rm.chunk"], K);
                EXPECT_LE(a.max_lookup_bits, read_bits);
                EXPECT_EQ(a.depth, 2 * K) << "sign then read per chunk, chunks chained";

                std::vector<int64_t> us;
                const int64_t range = int64_t{1} << width;
                for (int64_t u = 0; u < range; ++u) us.push_back(u);
                // Out of range: negatives and values past the top (the bits above width wrap).
                for (int64_t u : {int64_t{-1}, int64_t{-2}, -range / 2, -range + 1, -range, -range - 1, -3 * range + 5,
                                  range, range + 1, 2 * range - 1, 2 * range, 5 * range + 3, int64_t{1} << 40,
                                  -(int64_t{1} << 40) - 7})
                    us.push_back(u);
                for (int64_t u : us) {
                    const uint64_t input = encode_integer(u, 63 - width);
                    const std::vector<uint64_t> values = simulate_plaintexts(c, std::span(&input, 1));
                    const uint64_t got = values[static_cast<size_t>(out)];
                    ASSERT_EQ(got, cleared(u, width, shift)) << "read_bits " << read_bits << " width " << width
                                                             << " shift " << shift << " u " << u;
                    // The same through the integer interface (output at scale 1: the raw plaintext).
                    const std::vector<int64_t> outs = simulate(c, std::span(&u, 1));
                    ASSERT_EQ(static_cast<uint64_t>(outs.at(0)), got);
                    ++checked;
                }
            }
        }
    }
    std::printf("remove_low_bits: %lld inputs checked\n", static_cast<long long>(checked));
}

TEST(CircuitBuilder, RemoveLowBitsResultIsOnTheNarrowGrid) {
    // The result feeds a (width - shift)-bit table directly: reading it gives u >> shift.
    for (int width = 5; width <= 8; ++width) {
        const int shift = width - 3;
        CircuitBuilder b(3);
        const ValueId in = b.circuit().add_input(63 - width);
        const ValueId bucket = b.remove_low_bits(in, width, shift, "rm");
        std::vector<uint64_t> id(8);
        for (size_t j = 0; j < id.size(); ++j) id[j] = encode_integer(int64_t(j), 40);
        const ValueId read = b.lookup(bucket, b.table(3, id, "id"));
        b.circuit().mark_output(read, 40);
        const Circuit c = b.take();
        for (int64_t u = 0; u < (int64_t{1} << width); ++u) {
            const std::vector<int64_t> out = simulate(c, std::span(&u, 1));
            ASSERT_EQ(out.at(0), u >> shift) << "width " << width << " u " << u;
        }
        // Past the top: the padding bit is set, the read is negacyclic.
        const int64_t u = (int64_t{1} << width) + (int64_t{2} << shift);
        EXPECT_EQ(simulate(c, std::span(&u, 1)).at(0), -2);
    }
}

TEST(CircuitBuilder, RoundKeepingLowBitsExhaustive) {
    int64_t checked = 0;
    for (int width = 5; width <= 10; ++width) {
        for (int shift = 1; shift < width; ++shift) {
            for (int kept = 0; kept <= std::min(shift, 4); ++kept) {
                CircuitBuilder b(4);
                const ValueId in = b.circuit().add_input(63 - width);
                const CircuitBuilder::Rounded r = b.round_keeping_low_bits(in, width, shift, kept, "rk");
                EXPECT_EQ(r.residue, CircuitBuilder::kept_bits_residue(width, kept));
                // Read by a table on the coarse grid: every bucket reads back as itself.
                const int coarse = width - shift;
                std::vector<uint64_t> id(size_t{1} << coarse);
                for (size_t j = 0; j < id.size(); ++j) id[j] = encode_integer(int64_t(j), 40);
                b.circuit().mark_output(b.lookup(r.value, b.table(coarse, id, "id"), r.residue), 40);
                b.circuit().mark_output(r.value, 0);
                const Circuit c = b.take();
                CircuitAnalysis a = analyze(c);
                EXPECT_EQ(a.bootstraps_by_kind["rk.sign"], shift - kept) << width << " " << shift << " " << kept;
                EXPECT_EQ(a.depth, shift - kept + 1) << "one sign read per cleared bit, chained, then the table";

                const int64_t range = int64_t{1} << width;
                std::vector<int64_t> us;
                for (int64_t u = 0; u < range; ++u) us.push_back(u);
                for (int64_t u : {int64_t{-1}, -range / 2 - 1, range + 3, 3 * range - 1, -(int64_t{1} << 40) - 5}) us.push_back(u);
                for (int64_t u : us) {
                    const std::vector<int64_t> out = simulate(c, std::span(&u, 1));
                    // The raw value: u with bits kept..shift-1 cleared, centred by the residue.
                    const uint64_t expected = cleared(u, width, shift) + encode_integer(u & ((int64_t{1} << kept) - 1), 63 - width) -
                                              r.residue;
                    ASSERT_EQ(static_cast<uint64_t>(out.at(1)), expected) << width << " " << shift << " " << kept << " u " << u;
                    if (u >= 0 && u < range) {
                        ASSERT_EQ(out.at(0), u >> shift) << width << " " << shift << " " << kept << " u " << u;
                    }
                    ++checked;
                }
            }
        }
    }
    std::printf("round_keeping_low_bits: %lld inputs checked\n", static_cast<long long>(checked));
}

TEST(CircuitBuilder, RoundKeepingLowBitsMargins) {
    // The first sign read sees `kept` bits under its bit, as a kept-bit read would; the result's
    // residue takes its share of the next table's half box.
    CircuitBuilder b(4);
    const ValueId in = b.circuit().add_input(63 - 11);
    const CircuitBuilder::Rounded r = b.round_keeping_low_bits(in, 11, 7, 4, "rk");
    std::vector<uint64_t> zero(16, 0);
    b.circuit().mark_output(b.lookup(r.value, b.table(4, zero, "read"), r.residue), 40);
    const Circuit c = b.take();
    const NoiseAnalysis noise = analyze_noise(c, fhegpt::tfhe::parameters_by_name("PARAM_4BIT_2M128_PBS_L2"));
    Circuit plain;
    plain.mark_output(plain.add_lookup(plain.add_input(59), plain.add_table(4, zero, "read")), 40);
    const NoiseAnalysis exact = analyze_noise(plain, fhegpt::tfhe::parameters_by_name("PARAM_4BIT_2M128_PBS_L2"));
    // 15/256 of a box off the grid: the read is less safe than an exact one, still far from failing.
    EXPECT_GT(noise.worst_log2_p_fail_by_kind.at("read"), exact.worst_log2_p_fail_by_kind.at("read"));
    EXPECT_LT(noise.worst_log2_p_fail_by_kind.at("read"), -80);
    EXPECT_LT(noise.worst_log2_p_fail_by_kind.at("rk.sign"), -80);
}

TEST(CircuitSimulate, ResidueWithinTheDeclaredBound) {
    Circuit c;
    const ValueId x = c.add_input(50);
    const int32_t t = c.add_table(4, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "t");
    c.mark_output(c.add_lookup(x, t, uint64_t{3} << 50), 0);
    // Grid 2^59: 2^9 units of 2^50 per message. Within 3 units of message 5 it reads 5.
    for (int64_t off : {-3, -1, 0, 2, 3}) {
        const int64_t v = 5 * 512 + off;
        EXPECT_EQ(simulate(c, std::span(&v, 1)).at(0), 5) << off;
    }
    for (int64_t off : {-4, 4, 200}) {
        const int64_t v = 5 * 512 + off;
        EXPECT_THROW(simulate(c, std::span(&v, 1)), Error) << off;
    }
}

// The same building code in both modes: a rounding, a lookup and a sum, recorded as a graph and
// simulated, or evaluated as it is built; equal on every input, and the evaluation checks the
// residues and the input count as the simulation does.
void build_small(CircuitBuilder & b, int64_t weight) {
    const ValueId in = b.input(63 - 9), other = b.input(63 - 9);
    b.set_section("first");
    const CircuitBuilder::Rounded r = b.round_keeping_low_bits(in, 9, 5, 3, "rk");
    std::vector<uint64_t> square(16);
    for (size_t j = 0; j < square.size(); ++j) square[j] = encode_integer(int64_t(j * j), 40);
    const ValueId sq = b.lookup(r.value, b.table(4, square, "square"), r.residue);
    b.set_section("second");
    const LinearTerm terms[] = {{sq, weight}, {other, 1 << 18}};
    b.output(b.linear(terms, encode_integer(7, 40)), 40);
    b.output(b.remove_low_bits(other, 9, 4, "rm"), 63 - 9);
}

TEST(CircuitBuilder, EvaluationEqualsSimulation) {
    CircuitBuilder graph(4);
    build_small(graph, 3);
    const Circuit c = graph.take();
    const CircuitAnalysis a = analyze(c);
    EXPECT_EQ(a.bootstraps_by_section.at("first"), 3); // two sign reads and the square
    EXPECT_EQ(a.bootstraps_by_section.at("second"), 2); // one 4-bit chunk: a sign and a read
    for (int64_t u = -40; u < 600; u += 7) {
        const int64_t inputs[] = {u, 300 - u};
        CircuitBuilder eval = CircuitBuilder::evaluator(4, inputs);
        build_small(eval, 3);
        EXPECT_EQ(eval.outputs(), simulate(c, inputs)) << u;
    }
    const int64_t one[] = {5};
    CircuitBuilder short_of_inputs = CircuitBuilder::evaluator(4, one);
    EXPECT_THROW(build_small(short_of_inputs, 3), Error);
    // A value off the grid by more than the declared residue fails in both modes.
    CircuitBuilder eval = CircuitBuilder::evaluator(4, one);
    const ValueId x = eval.input(50);
    const int32_t t = eval.table(4, std::vector<uint64_t>(16, 0), "t");
    EXPECT_EQ(eval.plaintext(eval.lookup(x, t, uint64_t{5} << 50)), 0u);
    EXPECT_THROW(eval.lookup(x, t, uint64_t{4} << 50), Error);
    EXPECT_THROW(graph.plaintext(0), Error);
}

TEST(CircuitBuilder, ShiftZeroAndBadArguments) {
    CircuitBuilder b(4);
    const ValueId in = b.circuit().add_input(55);
    EXPECT_EQ(b.remove_low_bits(in, 8, 0, "rm"), in);
    EXPECT_EQ(analyze(b.circuit()).bootstraps, 0);
    EXPECT_THROW(b.remove_low_bits(in, 8, 8, "rm"), Error);
    EXPECT_THROW(b.remove_low_bits(in, 8, -1, "rm"), Error);
    EXPECT_THROW(b.remove_low_bits(in, 63, 3, "rm"), Error);
}

TEST(CircuitBuilder, TablesAreSharedByContentAndKind) {
    CircuitBuilder b(3);
    const std::vector<uint64_t> t(8, 5);
    const int32_t a = b.table(3, t, "x");
    EXPECT_EQ(b.table(3, t, "x"), a);
    EXPECT_NE(b.table(3, t, "y"), a);
    std::vector<uint64_t> u = t;
    u[3] = 6;
    EXPECT_NE(b.table(3, u, "x"), a);
}

TEST(CircuitSimulate, NegacyclicRead) {
    Table t;
    t.bits = 2;
    t.outputs = {1, 2, 3, 4};
    EXPECT_EQ(read_table(t, 0), 1u);
    EXPECT_EQ(read_table(t, 3), 4u);
    EXPECT_EQ(read_table(t, 4), uint64_t{0} - 1);
    EXPECT_EQ(read_table(t, 7), uint64_t{0} - 4);
}

TEST(CircuitSimulate, LinearArithmeticWraps) {
    Circuit c;
    const ValueId x = c.add_input(60);
    const ValueId y = c.add_input(60);
    const LinearTerm terms[] = {{x, 3}, {y, -2}};
    const ValueId z = c.add_linear(terms, encode_integer(1, 60));
    c.mark_output(z, 60);
    const std::vector<int64_t> in = {2, 3}; // 3*2 - 2*3 + 1 = 1
    EXPECT_EQ(simulate(c, in), std::vector<int64_t>{1});
    const std::vector<int64_t> in2 = {3, 0}; // 10 wraps mod 2^4 to -6
    EXPECT_EQ(simulate(c, in2), std::vector<int64_t>{-6});
}

TEST(CircuitSimulate, RejectsOffGridLookupAndWrongInputCount) {
    Circuit c;
    const ValueId x = c.add_input(58); // a 5-bit value read by a 4-bit table: bit 58 is off the 4-bit grid
    const int32_t t = c.add_table(4, std::vector<uint64_t>(16, 0), "t");
    c.mark_output(c.add_lookup(x, t), 40);
    const std::vector<int64_t> even = {2}; // 2 << 58 is on the grid of 2^59
    EXPECT_NO_THROW(simulate(c, even));
    const std::vector<int64_t> odd = {1};
    EXPECT_THROW(simulate(c, odd), Error);
    const uint64_t raw = uint64_t{1} << 20;
    EXPECT_THROW(simulate_plaintexts(c, std::span(&raw, 1)), Error);

    const std::vector<int64_t> none;
    const std::vector<int64_t> two = {2, 2};
    EXPECT_THROW(simulate(c, none), Error);
    EXPECT_THROW(simulate(c, two), Error);
    const std::vector<uint64_t> raw_two = {0, 0};
    EXPECT_THROW(simulate_plaintexts(c, raw_two), Error);
}

TEST(CircuitApi, Errors) {
    Circuit c;
    const ValueId x = c.add_input(50);
    const int32_t t = c.add_table(3, std::vector<uint64_t>(8, 0), "t");
    // A value that does not exist.
    EXPECT_THROW(c.add_lookup(x + 1, t), Error);
    EXPECT_THROW(c.add_lookup(-1, t), Error);
    const LinearTerm bad[] = {{x, 1}, {7, 1}};
    EXPECT_THROW(c.add_linear(bad), Error);
    EXPECT_THROW(c.mark_output(5, 0), Error);
    // A table that does not exist.
    EXPECT_THROW(c.add_lookup(x, t + 1), Error);
    EXPECT_THROW(c.add_lookup(x, -1), Error);
    // Tables of the wrong size or width.
    EXPECT_THROW(c.add_table(3, std::vector<uint64_t>(7, 0), "t"), Error);
    EXPECT_THROW(c.add_table(3, std::vector<uint64_t>(16, 0), "t"), Error);
    EXPECT_THROW(c.add_table(0, std::vector<uint64_t>(2, 0), "t"), Error);
    EXPECT_THROW(c.add_table(-1, std::vector<uint64_t>(1, 0), "t"), Error);
    // A residue that leaves the read no margin, an output residue past half its unit.
    EXPECT_THROW(c.add_lookup(x, t, uint64_t{1} << 59), Error);
    EXPECT_THROW(c.mark_output(x, 50, uint64_t{1} << 49), Error);
    EXPECT_THROW(c.add_table(17, std::vector<uint64_t>(size_t{1} << 17, 0), "t"), Error);
    // Input scales outside [0, 63].
    EXPECT_THROW(c.add_input(-1), Error);
    EXPECT_THROW(c.add_input(64), Error);
    // Nothing half-added by the failures.
    EXPECT_EQ(c.size(), 1u);
    EXPECT_EQ(c.tables().size(), 1u);
    EXPECT_EQ(c.inputs().size(), 1u);
    EXPECT_NO_THROW(c.add_lookup(x, t));
}

TEST(CircuitApi, DepthsAndAnalysis) {
    Circuit c;
    const ValueId x = c.add_input(59);
    const int32_t t = c.add_table(4, std::vector<uint64_t>(16, uint64_t{1} << 59), "a");
    const int32_t t2 = c.add_table(2, std::vector<uint64_t>(4, 0), "b");
    const ValueId l1 = c.add_lookup(x, t);
    const LinearTerm sum[] = {{l1, 1}, {x, 2}};
    const ValueId s = c.add_linear(sum);
    const ValueId l2 = c.add_lookup(s, t2);
    c.mark_output(l2, 0);
    const std::vector<int32_t> d = c.depths();
    EXPECT_EQ(d, (std::vector<int32_t>{0, 1, 1, 2}));
    CircuitAnalysis a = analyze(c);
    EXPECT_EQ(a.inputs, 1);
    EXPECT_EQ(a.outputs, 1);
    EXPECT_EQ(a.bootstraps, 2);
    EXPECT_EQ(a.linear_nodes, 1);
    EXPECT_EQ(a.linear_terms, 2);
    EXPECT_EQ(a.depth, 2);
    EXPECT_EQ(a.max_lookup_bits, 4);
    EXPECT_EQ(a.bootstraps_by_bits.at(4), 1);
    EXPECT_EQ(a.bootstraps_by_bits.at(2), 1);
    EXPECT_EQ(a.tables, 2);
}

} // namespace
