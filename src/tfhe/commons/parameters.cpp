#include "tfhe/commons/parameters.h"

#include "common/check.h"
#include "common/error.h"

#include <algorithm>
#include <cctype>

namespace fhegpt::tfhe {

namespace {

struct SetSpec {
    const char * name;
    const char * source;
    uint32_t message_bits;
    size_t n, k, big_n;
    NoiseDistribution lwe_noise, glwe_noise;
    size_t pbs_base_log, pbs_levels, ks_base_log, ks_levels;
    ModulusSwitchType modulus_switch;
    uint32_t max_norm2;
    double security_bits;
    double log2_p_fail;
    bool insecure;
};

TfheParameters make(const SetSpec & s) {
    TfheParameters p;
    p.name = s.name;
    p.source = s.source;
    p.message_bits = s.message_bits;
    p.lwe_dimension = LweDimension{s.n};
    p.glwe_dimension = GlweDimension{s.k};
    p.polynomial_size = PolynomialSize{s.big_n};
    p.lwe_noise = s.lwe_noise;
    p.glwe_noise = s.glwe_noise;
    p.pbs_base_log = DecompositionBaseLog{s.pbs_base_log};
    p.pbs_level_count = DecompositionLevelCount{s.pbs_levels};
    p.ks_base_log = DecompositionBaseLog{s.ks_base_log};
    p.ks_level_count = DecompositionLevelCount{s.ks_levels};
    p.modulus_switch = s.modulus_switch;
    p.max_norm2 = s.max_norm2;
    p.security_bits = s.security_bits;
    p.source_log2_p_fail = s.log2_p_fail;
    p.insecure = s.insecure;
    return p;
}

// Multi-bit sets (grouping factor g): TFHE-rs v1.4 shortint/parameters/v1_4/multi_bit/tuniform/
// p_fail_2_minus_128/ks_pbs.rs, whose constants are those of v1_1 (same names with V1_1_). Each
// is inserted before `before` in the list: production sets are ordered fastest first within a
// message width, which is the order in which choose_parameters (circuit/noise_analysis.h) tries them.
// Measured (`fhegpt bench pbs --threads 2`, 2-core Zen 3 with AVX2, the two sets alternately,
// docs/benchmarks.md): KS + PBS in batches on two threads, g = 4 1.45-1.79x the classic set's
// rate (median 1.59x); one bootstrap on one thread, g = 4 1.8x slower. The classic set still
// goes first: its latency is lower and its keys a quarter the size (30 / 121 MB compressed
// bootstrapping keys).
// g = 3 is slower than g = 4, PBS_L2 (1.6-1.75x the classic set) and g = 2 slower still; the
// _MIXED variants go right after their base sets.
void add_multi_bit_sets(std::vector<TfheParameters> & sets) {
    using N = NoiseDistribution;
    constexpr auto kStandard = ModulusSwitchType::Standard;
    struct MultiBitSpec {
        const char * before;
        SetSpec set;
        size_t grouping_factor;
    };
    const MultiBitSpec specs[] = {
        {"PARAM_4BIT_2M128_PBS_L2",
         {"PARAM_4BIT_2M128_MULTI_BIT_G4", "TFHE-rs v1.4 V1_4_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
          4, 920, 1, 2048, N::t_uniform(45), N::t_uniform(17), 22, 1, 3, 5, kStandard, 5, 128, -134.345, false},
         4},
        {"PARAM_4BIT_2M128_PBS_L2",
         {"PARAM_4BIT_2M128_MULTI_BIT_G3", "TFHE-rs v1.4 V1_4_PARAM_MULTI_BIT_GROUP_3_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
          4, 918, 1, 2048, N::t_uniform(45), N::t_uniform(17), 15, 2, 3, 6, kStandard, 5, 128, -128.235, false},
         3},
        {"PARAM_5BIT_2M128_NORM2",
         {"PARAM_4BIT_2M128_MULTI_BIT_G2", "TFHE-rs v1.4 V1_4_PARAM_MULTI_BIT_GROUP_2_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
          4, 918, 1, 4096, N::t_uniform(45), N::t_uniform(3), 21, 1, 3, 5, kStandard, 5, 128, -140.341, false},
         2},
        // Toy multi-bit sets for unit tests (no security): INSECURE_TEST_4BIT's shape.
        {"INSECURE_TEST_4BIT_K2_L2",
         {"INSECURE_TEST_4BIT_MULTI_BIT_G2", "fhegpt unit tests (insecure)", 4, 128, 1, 1024, N::t_uniform(40),
          N::t_uniform(20), 23, 1, 4, 4, kStandard, 4, 0, 0, true},
         2},
        {"INSECURE_TEST_4BIT_K2_L2",
         {"INSECURE_TEST_4BIT_MULTI_BIT_G3", "fhegpt unit tests (insecure)", 4, 129, 1, 1024, N::t_uniform(40),
          N::t_uniform(20), 15, 2, 4, 4, kStandard, 4, 0, 0, true},
         3},
        {"INSECURE_TEST_4BIT_K2_L2",
         {"INSECURE_TEST_4BIT_MULTI_BIT_G4", "fhegpt unit tests (insecure)", 4, 128, 1, 1024, N::t_uniform(40),
          N::t_uniform(20), 23, 1, 4, 4, kStandard, 4, 0, 0, true},
         4},
    };
    for (const MultiBitSpec & spec : specs) {
        TfheParameters p = make(spec.set);
        p.grouping_factor = LweBskGroupingFactor{spec.grouping_factor};
        const auto at = std::find_if(sets.begin(), sets.end(),
                                     [&](const TfheParameters & q) { return q.name == spec.before; });
        FHEGPT_CHECK(at != sets.end(), "no parameter set %s", spec.before);
        sets.insert(at, p);
    }
}

std::vector<TfheParameters> build_sets() {
    using N = NoiseDistribution;
    constexpr auto kCentered = ModulusSwitchType::CenteredMeanNoiseReduction;
    constexpr auto kStandard = ModulusSwitchType::Standard;
    const SetSpec specs[] = {
        // name, source, bits, n, k, N, lwe noise, glwe noise, pbs base log/levels, ks base log/levels,
        // modulus switch, max 2-norm, security, log2 p_fail, insecure
        {"PARAM_1BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_1_CARRY_0_KS_PBS_GAUSSIAN_2M128", 1, 747, 6, 256,
         N::gaussian(1.5944604865450687e-05), N::gaussian(1.9524392655548086e-11), 17, 1, 4, 3, kCentered, 1, 128,
         -128.603, false},
        {"PARAM_2BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128", 2, 879, 4, 512,
         N::t_uniform(46), N::t_uniform(17), 23, 1, 5, 3, kCentered, 3, 128, -144.322, false},
        {"PARAM_3BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_1_CARRY_2_KS_PBS_GAUSSIAN_2M128", 3, 885, 2, 1024,
         N::gaussian(1.4742441118914234e-06), N::gaussian(2.845267479601915e-15), 23, 1, 5, 3, kCentered, 7, 128,
         -128.536, false},
        {"PARAM_4BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128", 4, 918, 1, 2048,
         N::t_uniform(45), N::t_uniform(17), 23, 1, 4, 4, kCentered, 5, 128, -129.581, false},
        // The 4-bit set with a finer blind-rotation decomposition (base 2^15, 2 levels instead of
        // 2^23, 1): the same keys, dimensions and noise distributions, hence the same security; the
        // output noise drops from 2^49.2 to 2^42.0 (noise_model.h) for about 1.6x the time. For
        // circuits that sum hundreds of bootstrap outputs before the next lookup.
        {"PARAM_4BIT_2M128_PBS_L2", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128, PBS base log 15 level 2 (fhegpt)",
         4, 918, 1, 2048, N::t_uniform(45), N::t_uniform(17), 15, 2, 4, 4, kCentered, 5, 128, -129.581, false},
        // Also 5 bits and N = 4096, but a 1-level blind rotation (base 2^23): about 2/3 of the
        // time of the set below. TFHE-rs designs it for a 2-norm of 2 (the set below for 31), so
        // its outputs are noisier; analyze_noise decides where that is enough.
        {"PARAM_5BIT_2M128_NORM2", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_4_CARRY_1_KS_PBS_GAUSSIAN_2M128", 5, 935, 1, 4096,
         N::gaussian(6.221794297398788e-07), N::gaussian(2.168404344971009e-19), 23, 1, 3, 6, kCentered, 2, 128,
         -128.261, false},
        {"PARAM_5BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_1_CARRY_4_KS_PBS_GAUSSIAN_2M128", 5, 930, 1, 4096,
         N::gaussian(6.782362904013915e-07), N::gaussian(2.168404344971009e-19), 15, 2, 3, 6, kCentered, 31, 128,
         -128.607, false},
        {"PARAM_6BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128", 6, 1077, 1, 8192,
         N::t_uniform(41), N::t_uniform(3), 15, 2, 4, 5, kCentered, 9, 128, -128.992, false},
        // The 6-bit set with a 3-level blind rotation (base 2^11 instead of 2^15, 2 levels): same keys
        // and noise distributions, so the same security; output noise 2^43.4 -> 2^40.1.
        {"PARAM_6BIT_2M128_PBS_L3", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128, PBS base log 11 level 3 (fhegpt)",
         6, 1077, 1, 8192, N::t_uniform(41), N::t_uniform(3), 11, 3, 4, 5, kCentered, 9, 128, -128.992, false},
        // 7 bits: TFHE-rs v1.4 has no T-uniform 2^-128 set of this width; of its Gaussian ones
        // (N = 16384), this has the most noise headroom (2-norm 18) of those with a 2-level blind
        // rotation, at nearly the cost of the cheapest (2,104 against 2,075 by TFHE-rs's estimate,
        // 2.4x the 6-bit set's 874).
        {"PARAM_7BIT_2M128", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_4_KS_PBS_GAUSSIAN_2M128", 7, 1070, 1, 16384,
         N::gaussian(6.058296361594748e-08), N::gaussian(2.168404344971009e-19), 15, 2, 2, 11, kCentered, 18, 128,
         -128.022, false},
        {"PARAM_2BIT_2M64", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M64 (= V1_1_...)", 2, 839, 4,
         512, N::t_uniform(47), N::t_uniform(17), 23, 1, 4, 3, kStandard, 3, 128, -72.226, false},
        {"PARAM_4BIT_2M64", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64 (= V1_1_...)", 4, 879, 1,
         2048, N::t_uniform(46), N::t_uniform(17), 23, 1, 3, 5, kStandard, 5, 128, -72.178, false},
        {"PARAM_6BIT_2M64", "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M64 (= V1_1_...)", 6, 998, 1,
         8192, N::t_uniform(43), N::t_uniform(3), 15, 2, 3, 6, kStandard, 9, 128, -64.454, false},
        // Toy sets for unit tests: tiny dimensions, no security whatsoever.
        {"INSECURE_TEST_2BIT", "fhegpt unit tests (insecure)", 2, 64, 1, 512, N::t_uniform(44), N::t_uniform(20), 23,
         1, 4, 4, kCentered, 3, 0, 0, true},
        {"INSECURE_TEST_4BIT", "fhegpt unit tests (insecure)", 4, 128, 1, 1024, N::t_uniform(40), N::t_uniform(20),
         23, 1, 4, 4, kCentered, 4, 0, 0, true},
        // INSECURE_TEST_4BIT with the level-2 blind rotation of PARAM_4BIT_2M128_PBS_L2: the same
        // output noise drop, for circuits that sum many bootstrap outputs.
        {"INSECURE_TEST_4BIT_PBS_L2", "fhegpt unit tests (insecure)", 4, 128, 1, 1024, N::t_uniform(40),
         N::t_uniform(20), 15, 2, 4, 4, kCentered, 4, 0, 0, true},
        {"INSECURE_TEST_4BIT_K2_L2", "fhegpt unit tests (insecure)", 4, 128, 2, 1024, N::t_uniform(40),
         N::t_uniform(20), 12, 2, 3, 5, kStandard, 4, 0, 0, true},
    };
    std::vector<TfheParameters> sets;
    for (const SetSpec & s : specs) sets.push_back(make(s));
    // Sets with a second, finer bootstrapping key of the same keys: a lookup whose output enters
    // a long sum takes the fine key, every other lookup the fast one (circuit/noise_analysis.h).
    // Inserted right after the base set, or before the set `before` (production order).
    const auto with_fine = [&](const char * base, const char * name, const char * source, size_t base_log,
                               size_t levels, const char * before = nullptr) {
        const auto find = [&](const char * wanted) {
            const auto at = std::find_if(sets.begin(), sets.end(), [&](const TfheParameters & p) { return p.name == wanted; });
            FHEGPT_CHECK(at != sets.end(), "no parameter set %s", wanted);
            return at;
        };
        TfheParameters p = *find(base);
        p.name = name;
        p.source = source;
        p.fine_pbs_base_log = DecompositionBaseLog{base_log};
        p.fine_pbs_level_count = DecompositionLevelCount{levels};
        sets.insert(before ? find(before) : find(base) + 1, p);
    };
    with_fine("PARAM_4BIT_2M128", "PARAM_4BIT_2M128_MIXED",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128, plus a PBS base log 15 level 2 key (fhegpt)",
              15, 2);
    with_fine("PARAM_5BIT_2M128_NORM2", "PARAM_5BIT_2M128_NORM2_MIXED",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_4_CARRY_1_KS_PBS_GAUSSIAN_2M128, plus a PBS base log 15 level 2 key (fhegpt)",
              15, 2);
    with_fine("PARAM_6BIT_2M128", "PARAM_6BIT_2M128_MIXED",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128, plus a PBS base log 11 level 3 key (fhegpt)",
              11, 3);
    with_fine("INSECURE_TEST_4BIT", "INSECURE_TEST_4BIT_MIXED", "fhegpt unit tests (insecure)", 15, 2);
    add_multi_bit_sets(sets);
    // The fastest 4-bit set with a multi-bit fine key of the same keys (2^15 x 2 as the classic
    // _MIXED set): its outputs carry about 2^-40.7 instead of 2^-27.4, for the lookups whose
    // outputs enter long sums (the attention head's scores).
    with_fine("PARAM_4BIT_2M128_MULTI_BIT_G4", "PARAM_4BIT_2M128_MULTI_BIT_G4_MIXED",
              "TFHE-rs v1.4 V1_4_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128, plus a PBS base log 15 "
              "level 2 key (fhegpt)",
              15, 2);
    with_fine("INSECURE_TEST_4BIT_MULTI_BIT_G4", "INSECURE_TEST_4BIT_MULTI_BIT_G4_MIXED", "fhegpt unit tests (insecure)",
              15, 2);
    // Fine keys of four and six levels, each with the base of least output noise for its level
    // count (noise_model.h): 2^36.2 instead of 2^42.0 (4-bit), 2^35.8 instead of 2^40.1 (6-bit),
    // on the 2^64 torus, mostly FFT error at these bases; the fine bootstraps take about twice as
    // long. For runs of whole blocks, whose residual stream sums c_proj over hundreds of fine
    // bootstrap outputs and whose q/k/v sum a server-side LayerNorm's (circuit/block_calibration.h):
    // each is the last 2^-128 set of its message width that choose_parameters tries. The same keys,
    // dimensions and noise distributions as the base set, hence its security (128 bits); the noise
    // model gives its standard key's failure probability (2^-129.0, 2^-128.5) and, at the set's
    // 2-norm, the fine key's (2^-131.8, 2^-128.6).
    with_fine("PARAM_4BIT_2M128", "PARAM_4BIT_2M128_MIXED_FINE4",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128, plus a PBS base log 9 level 4 key (fhegpt)",
              9, 4, "PARAM_5BIT_2M128_NORM2");
    with_fine("PARAM_6BIT_2M128", "PARAM_6BIT_2M128_MIXED_FINE6",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128, plus a PBS base log 7 level 6 key (fhegpt)",
              7, 6, "PARAM_7BIT_2M128");
    // The 7-bit set's one fine key: six levels of base 2^7 as for the 6-bit set, 2^36.8 at N =
    // 16384. Eight levels of base 2^5 would give 2^35.1 by the noise model, but measure 2^36.1
    // (test-tfhe-pbs-production), though one external product's FFT error matches the model
    // (test-tfhe-noise): an error of the blind rotation that the model lacks, not yet found. So
    // they are not offered. Its fine bootstraps take about three times the standard ones.
    with_fine("PARAM_7BIT_2M128", "PARAM_7BIT_2M128_MIXED_FINE6",
              "TFHE-rs v1.4 V1_4_PARAM_MESSAGE_3_CARRY_4_KS_PBS_GAUSSIAN_2M128, plus a PBS base log 7 level 6 key (fhegpt)",
              7, 6, "PARAM_2BIT_2M64");
    return sets;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char & c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

TfheParameters TfheParameters::fine_bootstrap_parameters() const {
    FHEGPT_CHECK(has_fine_bootstrap(), "parameter set %s has no fine bootstrapping key", name.c_str());
    TfheParameters fine = *this;
    fine.pbs_base_log = fine_pbs_base_log;
    fine.pbs_level_count = fine_pbs_level_count;
    fine.fine_pbs_base_log = DecompositionBaseLog{0};
    fine.fine_pbs_level_count = DecompositionLevelCount{0};
    return fine;
}

const std::vector<TfheParameters> & all_parameter_sets() {
    static const std::vector<TfheParameters> sets = build_sets();
    return sets;
}

std::vector<const TfheParameters *> production_parameter_sets() {
    std::vector<const TfheParameters *> out;
    for (const TfheParameters & p : all_parameter_sets())
        if (!p.insecure) out.push_back(&p);
    return out;
}

const TfheParameters & parameters_by_name(std::string_view name) {
    std::string wanted = upper(name);
    for (const TfheParameters & p : all_parameter_sets())
        if (p.name == wanted) return p;
    std::string known;
    for (const TfheParameters & p : all_parameter_sets()) known += (known.empty() ? "" : ", ") + p.name;
    fail("unknown TFHE parameter set '{}' (known: {})", name, known);
}

uint32_t widest_production_message_bits() {
    uint32_t widest = 0;
    for (const TfheParameters * p : production_parameter_sets()) widest = std::max(widest, p->message_bits);
    return widest;
}

const TfheParameters & default_parameters(uint32_t message_bits) {
    const uint32_t widest = widest_production_message_bits();
    if (message_bits < 1 || message_bits > widest)
        fail("no default TFHE parameter set for {} message bits (1..{})", message_bits, widest);
    return parameters_by_name("PARAM_" + std::to_string(message_bits) + "BIT_2M128");
}

} // namespace fhegpt::tfhe
