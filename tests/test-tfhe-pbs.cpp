// Programmable bootstrapping end to end (KS-PBS order): every lookup-table kind on every input
// value, other output moduli, lower input precisions, many-LUT, chains of 20 bootstraps,
// bootstraps at the noise limit of the parameter set (linear combinations of bootstrap outputs
// with the set's largest 2-norm), batched against sequential evaluation; and the noise model:
// the phase error of every bootstrap output these checks decrypt, of whole blind-rotated
// accumulators and of a thousand key switches, against commons/noise_model.h, and the failure
// probability they imply at the noise limit against the set's promise.
//
// Compiled twice: test-tfhe-pbs runs the checks on the INSECURE_TEST_ sets (fast, part of
// every run); test-tfhe-pbs-production (FHEGPT_TFHE_PRODUCTION) runs them on every production
// set, zero failures allowed (CTest label `slow`). Keys are generated once per parameter set.
// Both also bootstrap with every FFT kernel the CPU has and compare the decryptions.
#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/tfhe.h"
#include "tfhe-production-sets.h"

#include "tfhe-sample-stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

using Stats = test::SampleStats;

struct Harness {
    const TfheParameters & params;
    ClientKey client;
    ServerKey server;
    BootstrapWorkspace workspace;
    std::mt19937_64 rng;
    size_t pbs = 0;
    size_t failures = 0;
    // Phase error of every correctly decrypted bootstrap output: one sample per bootstrap.
    Stats output_noise;

    explicit Harness(const TfheParameters & p)
        : params(p), client(generate_client_key(p)), server(generate_server_key(client)),
          workspace(allocate_bootstrap_workspace(server)), rng(std::random_device{}()) {}

    uint64_t p() const { return params.message_modulus(); }

    // One batch of KS + PBS; luts: one per input (or one for all).
    std::vector<LweCiphertext> bootstrap(const std::vector<LweCiphertext> & inputs,
                                         const std::vector<const LookupTable *> & luts) {
        const size_t functions = luts[0]->function_count;
        std::vector<LweCiphertext> outputs(inputs.size() * functions, allocate_lwe_ciphertext(server));
        batch_keyswitch_bootstrap(server, inputs, outputs, luts, workspace);
        pbs += inputs.size();
        return outputs;
    }

    // noise_sample: add the output's phase error to output_noise (false for a ciphertext whose
    // noise is not independent of an earlier sample's).
    void expect_message(const LweCiphertext & c, uint64_t expected, uint64_t modulus, const std::string & what,
                        bool noise_sample = true) {
        const uint64_t got = decrypt_message(client, c, modulus);
        if (got != expected) {
            ++failures;
            ADD_FAILURE() << params.name << ": " << what << ": got " << got << ", expected " << expected;
            return;
        }
        // An all-zero table rotates to the trivial zero ciphertext, which carries no noise.
        const bool trivial = std::all_of(c.mask().begin(), c.mask().end(), [](uint64_t a) { return a == 0; });
        if (noise_sample && !trivial) output_noise.add(torus_to_double(decrypt_phase(client, c) - encode_message(expected, modulus)));
    }
};

Harness & harness(const std::string & name) {
    static std::map<std::string, std::unique_ptr<Harness>> cache;
    auto & h = cache[name];
    if (!h) h = std::make_unique<Harness>(test_sets::parameters_under_test(name));
    return *h;
}

// Signed reading of a message in Z_p: [p/2, p) are the negatives.
int64_t to_signed(uint64_t m, uint64_t p) { return m < p / 2 ? static_cast<int64_t>(m) : static_cast<int64_t>(m) - static_cast<int64_t>(p); }

// Identity, negation, square, ReLU and a random table, `reps` times each. With `every_pair`
// each table reads every input; without, each input goes through one table per repetition
// (input m to table (m + rep) mod 5), so every input and every table are still read, in a
// fifth of the bootstraps (the costly sets).
void check_lookup_tables(Harness & h, size_t reps, bool every_pair = true) {
    const uint64_t p = h.p();
    std::vector<uint64_t> random_table(p);
    for (auto & t : random_table) t = h.rng() % p;
    const std::vector<std::pair<std::string, MessageFunction>> functions = {
        {"identity", [](uint64_t m) { return m; }},
        {"negation", [p](uint64_t m) { return (p - m) % p; }},
        {"square", [p](uint64_t m) { return (m * m) % p; }},
        {"relu", [p](uint64_t m) { return to_signed(m, p) > 0 ? m : 0; }},
        {"random", [&](uint64_t m) { return random_table[m]; }},
    };
    std::vector<LookupTable> tables;
    for (const auto & [name, f] : functions) tables.push_back(generate_lookup_table(h.server, p, p, f));
    std::vector<LweCiphertext> inputs;
    std::vector<const LookupTable *> luts;
    std::vector<std::pair<size_t, uint64_t>> expected; // (function, message)
    for (size_t r = 0; r < reps; ++r)
        for (size_t f = 0; f < functions.size(); ++f)
            for (uint64_t m = 0; m < p; ++m) {
                if (!every_pair && (m + r) % functions.size() != f) continue;
                inputs.push_back(encrypt_message(h.client, m, p));
                luts.push_back(&tables[f]);
                expected.emplace_back(f, m);
            }
    const std::vector<LweCiphertext> out = h.bootstrap(inputs, luts);
    for (size_t i = 0; i < out.size(); ++i) {
        const auto [f, m] = expected[i];
        h.expect_message(out[i], functions[f].second(m) % p, p, functions[f].first + "(" + std::to_string(m) + ")");
    }
}

// The largest output modulus (<= 256) that the output noise of a bootstrap with these
// parameters decodes with a failure probability below 2^-80.
uint64_t largest_output_modulus(const TfheParameters & params) {
    uint64_t q = 256;
    while (q > 2 && log2_failure_probability(programmable_bootstrap_variance(params), q / 2) > -80) q /= 2;
    return q;
}

// Output moduli other than the input's, and inputs of lower precision than the set's;
// `samples` inputs per pair of moduli: every input first, then random ones (fewer than the
// modulus on the costly sets: the lowest `samples` inputs and the wrap-around one).
void check_moduli(Harness & h, size_t samples) {
    const uint64_t p = h.p();
    const uint64_t wide = largest_output_modulus(h.params);
    std::vector<std::pair<uint64_t, uint64_t>> moduli = {{p, 2 * p}, {p, wide}};
    if (p >= 4) moduli.push_back({p, p / 2});
    if (p >= 4) moduli.push_back({p / 2, p / 2});
    if (p >= 8) moduli.push_back({p / 4, 2 * p});
    for (auto [in_mod, out_mod] : moduli) {
        ASSERT_LE(log2_failure_probability(programmable_bootstrap_variance(h.params), out_mod / 2), -40)
            << h.params.name << " cannot decode outputs modulo " << out_mod;
        const auto f = [out_mod](uint64_t m) { return (3 * m + 1) % out_mod; };
        const LookupTable lut = generate_lookup_table(h.server, in_mod, out_mod, f);
        std::vector<LweCiphertext> inputs;
        std::vector<uint64_t> messages;
        for (size_t s = 0; s < samples; ++s) {
            const uint64_t m = s + 1 == samples && samples < in_mod ? in_mod - 1 : s < in_mod ? s : h.rng() % in_mod;
            inputs.push_back(encrypt_message(h.client, m, in_mod));
            messages.push_back(m);
        }
        const std::vector<LweCiphertext> out = h.bootstrap(inputs, {&lut});
        for (size_t i = 0; i < out.size(); ++i)
            h.expect_message(out[i], f(messages[i]), out_mod,
                             "Z_" + std::to_string(in_mod) + " -> Z_" + std::to_string(out_mod));
    }
}

// Several functions of one input from one blind rotation, at every allowed function count.
void check_many_lut(Harness & h, size_t reps) {
    const uint64_t p = h.p();
    for (uint64_t in_mod = p / 2; in_mod >= 2; in_mod /= 2) {
        const size_t count = max_many_lut_function_count(h.params, in_mod);
        ASSERT_EQ(count, p / in_mod);
        std::vector<std::vector<uint64_t>> tables(count, std::vector<uint64_t>(in_mod));
        std::vector<MessageFunction> functions;
        for (size_t j = 0; j < count; ++j) {
            for (auto & t : tables[j]) t = h.rng() % p;
            functions.push_back([&tables, j](uint64_t m) { return tables[j][m]; });
        }
        const LookupTable lut = generate_many_lookup_table(h.params, in_mod, p, functions);
        std::vector<LweCiphertext> inputs;
        std::vector<uint64_t> messages;
        for (size_t r = 0; r < reps; ++r)
            for (uint64_t m = 0; m < in_mod; ++m) {
                inputs.push_back(encrypt_message(h.client, m, in_mod));
                messages.push_back(m);
            }
        const std::vector<LweCiphertext> out = h.bootstrap(inputs, {&lut});
        ASSERT_EQ(out.size(), inputs.size() * count);
        // The functions of one blind rotation share its noise: only the first is a noise sample.
        for (size_t i = 0; i < inputs.size(); ++i)
            for (size_t j = 0; j < count; ++j)
                h.expect_message(out[i * count + j], tables[j][messages[i]], p,
                                 "many-LUT " + std::to_string(count) + " x Z_" + std::to_string(in_mod) + " f" +
                                     std::to_string(j) + "(" + std::to_string(messages[i]) + ")",
                                 j == 0);
    }
}

// Chains of 20 bootstraps m -> m + 1: every step decrypts right and the noise does not grow.
void check_chains(Harness & h, size_t chains) {
    const uint64_t p = h.p();
    const LookupTable lut = generate_lookup_table(h.server, p, p, [p](uint64_t m) { return (m + 1) % p; });
    std::vector<LweCiphertext> current;
    std::vector<uint64_t> messages;
    for (size_t c = 0; c < chains; ++c) {
        messages.push_back(h.rng() % p);
        current.push_back(encrypt_message(h.client, messages.back(), p));
    }
    const double sigma = std::sqrt(programmable_bootstrap_variance(h.params));
    double first_rms = 0, last_rms = 0;
    for (int step = 1; step <= 20; ++step) {
        current = h.bootstrap(current, {&lut});
        double sum2 = 0;
        for (size_t c = 0; c < chains; ++c) {
            messages[c] = (messages[c] + 1) % p;
            h.expect_message(current[c], messages[c], p, "chain step " + std::to_string(step));
            const double e = torus_to_double(decrypt_phase(h.client, current[c]) - encode_message(messages[c], p));
            sum2 += e * e;
        }
        const double rms = std::sqrt(sum2 / chains);
        if (step == 1) first_rms = rms;
        if (step == 20) last_rms = rms;
    }
    // Bootstrap outputs have a fixed noise: no drift along the chain.
    EXPECT_LT(first_rms, 3 * sigma) << h.params.name;
    EXPECT_LT(last_rms, 3 * sigma) << h.params.name;
}

// Inputs at the noise limit: combinations of bootstrap outputs with 2-norm = max_norm2, then
// a random plaintext shift (no noise) brings the message back into Z_p.
void check_noise_limit(Harness & h, size_t count) {
    const uint64_t p = h.p();
    const int64_t nu = h.params.max_norm2;
    const LookupTable identity = generate_lookup_table(h.server, p, p, [](uint64_t m) { return m; });
    // Weight vectors of 2-norm nu: (nu) and a split (a, b) with a^2 + b^2 <= nu^2, largest.
    std::vector<std::vector<int64_t>> weight_sets = {{nu}};
    {
        int64_t best_a = 0, best_b = 0;
        for (int64_t a = 1; a < nu; ++a) {
            const int64_t b = static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(nu * nu - a * a))));
            if (b >= 1 && a * a + b * b > best_a * best_a + best_b * best_b) best_a = a, best_b = b;
        }
        if (best_a > 0) weight_sets.push_back({best_a, -best_b});
    }
    // Fresh bootstrap outputs as the operands.
    std::vector<LweCiphertext> fresh;
    std::vector<uint64_t> fresh_messages;
    for (size_t i = 0; i < 2 * count; ++i) {
        fresh_messages.push_back(h.rng() % p);
        fresh.push_back(encrypt_message(h.client, fresh_messages.back(), p));
    }
    const std::vector<LweCiphertext> operands = h.bootstrap(fresh, {&identity});
    std::vector<uint64_t> table(p);
    for (auto & t : table) t = h.rng() % p;
    const LookupTable lut = generate_lookup_table_from_table(h.params.polynomial_size, p, p, table);
    for (const std::vector<int64_t> & weights : weight_sets) {
        std::vector<LweCiphertext> inputs;
        std::vector<uint64_t> targets;
        for (size_t i = 0; i < count; ++i) {
            LweCiphertext sum = allocate_lwe_ciphertext(h.server);
            int64_t total = 0;
            for (size_t w = 0; w < weights.size(); ++w) {
                const size_t idx = (2 * i + w) % operands.size();
                lwe_ciphertext_cleartext_mul_add_assign(sum, operands[idx], weights[w]);
                total += weights[w] * static_cast<int64_t>(fresh_messages[idx]);
            }
            const uint64_t target = h.rng() % p;
            // total + (target - total) = target mod 2p: the padding bit stays clear.
            lwe_ciphertext_plaintext_add_assign(sum, encode_message(static_cast<uint64_t>(static_cast<int64_t>(target) - total), p));
            inputs.push_back(std::move(sum));
            targets.push_back(target);
        }
        const std::vector<LweCiphertext> out = h.bootstrap(inputs, {&lut});
        for (size_t i = 0; i < out.size(); ++i)
            h.expect_message(out[i], table[targets[i]], p, "noise-limit input " + std::to_string(targets[i]));
    }
}

// The batch (groups, threads) gives bit for bit the results of one-by-one bootstraps.
void check_batch_equals_sequential(Harness & h, size_t count) {
    const uint64_t p = h.p();
    std::vector<uint64_t> table(p);
    for (auto & t : table) t = h.rng() % p;
    const LookupTable lut = generate_lookup_table_from_table(h.params.polynomial_size, p, p, table);
    std::vector<LweCiphertext> inputs;
    std::vector<uint64_t> messages;
    for (size_t i = 0; i < count; ++i) {
        messages.push_back(h.rng() % p);
        inputs.push_back(encrypt_message(h.client, messages.back(), p));
    }
    const std::vector<LweCiphertext> batched = h.bootstrap(inputs, {&lut});
    BootstrapWorkspace single = allocate_bootstrap_workspace(h.server.bootstrap_key, 1, 1);
    for (size_t i = 0; i < count; ++i) {
        LweCiphertext out = allocate_lwe_ciphertext(h.server);
        keyswitch_bootstrap(h.server, inputs[i], out, lut, single);
        ++h.pbs;
        EXPECT_EQ(out, batched[i]) << h.params.name << " input " << i;
        h.expect_message(out, table[messages[i]], p, "sequential");
    }
    // Another group size on a one-thread pool.
    fhegpt::ThreadPool one(1);
    BootstrapWorkspace other = allocate_bootstrap_workspace(h.server.bootstrap_key, 1, 3);
    std::vector<LweCiphertext> outputs(count, allocate_lwe_ciphertext(h.server));
    const LookupTable * luts[1] = {&lut};
    batch_keyswitch_bootstrap(h.server, inputs, outputs, luts, other, one);
    h.pbs += count;
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(outputs[i], batched[i]) << h.params.name << " input " << i;
}

// Key switches of fresh encryptions: the variance they add.
double measure_keyswitch_variance(Harness & h, size_t samples) {
    const TfheParameters & p = h.params;
    LweCiphertext small(p.lwe_dimension);
    Stats stats;
    for (size_t s = 0; s < samples; ++s) {
        const LweCiphertext input = encrypt_message(h.client, s % p.message_modulus(), p.message_modulus());
        keyswitch_lwe_ciphertext(h.server.keyswitch_key, input, small);
        stats.add(torus_to_double(decrypt_lwe_ciphertext(h.client.lwe_secret_key, small) -
                                  decrypt_lwe_ciphertext(h.client.big_lwe_secret_key, input)));
    }
    return stats.variance();
}

void expect_within(double measured, double model, double tolerance, const std::string & what) {
    std::printf("  %-44s measured 2^%.3f  model 2^%.3f  ratio %.3f\n", what.c_str(), std::log2(measured),
                std::log2(model), measured / model);
    EXPECT_NEAR(measured / model, 1.0, tolerance) << what;
}

// The bootstrap output noise, measured on whole accumulators: blind rotations of a
// table of random torus values, decrypted as GLWE ciphertexts: N phase errors per bootstrap
// against X^(-phi) V, phi found as the rotation of V that the decryption matches. Coefficient 0
// is the output (sample extraction adds no noise, checked); the others carry noise of the same
// law, but they are correlated within one rotation (one rotation's mean square differs from the
// next by 25-55% on the production sets), so the standard error comes from the spread of the
// per-rotation mean squares, not from the sample count: rotations go on until it is under 4% of
// the mean (at least 16, at most `max_rotations`). Random values make the accumulator's digits
// uniform, as the model assumes.
struct AccumulatorNoise {
    double variance = 0, standard_error = 0; // of the mean square error (the mean is part of it)
    size_t rotations = 0, samples = 0;
};

// Coefficient j of X^(-phi) V, phi in [0, 2N).
uint64_t rotated_coefficient(const std::vector<uint64_t> & v, size_t phi, size_t j) {
    return monomial_mul_coefficient(v.data(), v.size(), (2 * v.size() - phi) % (2 * v.size()), j);
}

AccumulatorNoise measure_accumulator_noise(Harness & h, size_t max_rotations) {
    const FourierLweBootstrapKey & bsk = h.server.bootstrap_key;
    const size_t n_poly = bsk.polynomial_size.value;
    LookupTable random = generate_lookup_table(h.server, h.p(), h.p(), [](uint64_t m) { return m; });
    for (auto & c : random.polynomial) c = h.rng();
    ProgrammableBootstrapScratch scratch(bsk);
    GlweCiphertext accumulator(bsk.glwe_dimension, bsk.polynomial_size);
    std::vector<uint64_t> phase(n_poly);
    LweCiphertext small(h.params.lwe_dimension);
    LweCiphertext out = allocate_lwe_ciphertext(h.server);
    Stats per_rotation;
    const auto standard_error = [&] { return std::sqrt(per_rotation.variance() / static_cast<double>(per_rotation.count)); };
    while (per_rotation.count < std::min<size_t>(16, max_rotations) ||
           (per_rotation.count < max_rotations && standard_error() > 0.04 * per_rotation.mean())) {
        keyswitch_lwe_ciphertext(h.server.keyswitch_key, encrypt_message(h.client, h.rng() % h.p(), h.p()), small);
        programmable_bootstrap_lwe_ciphertext(small, out, random, bsk, h.params.modulus_switch, scratch);
        ++h.pbs;
        std::copy_n(scratch.accumulators.begin(), accumulator.data.size(), accumulator.data.begin());
        decrypt_glwe_ciphertext(h.client.glwe_secret_key, accumulator, phase);
        EXPECT_EQ(phase[0], decrypt_phase(h.client, out)) << h.params.name << ": the output is coefficient 0";
        // The rotation whose first 16 coefficients are nearest (random values: unique).
        size_t phi = 0;
        double nearest = 1e300;
        for (size_t candidate = 0; candidate < 2 * n_poly; ++candidate) {
            double distance = 0;
            for (size_t j = 0; j < 16; ++j)
                distance += std::abs(torus_to_double(phase[j] - rotated_coefficient(random.polynomial, candidate, j)));
            if (distance < nearest) nearest = distance, phi = candidate;
        }
        double sum2 = 0;
        for (size_t j = 0; j < n_poly; ++j) {
            const double e = torus_to_double(phase[j] - rotated_coefficient(random.polynomial, phi, j));
            sum2 += e * e;
        }
        per_rotation.add(sum2 / static_cast<double>(n_poly));
    }
    AccumulatorNoise noise;
    noise.rotations = per_rotation.count;
    noise.samples = per_rotation.count * n_poly;
    noise.variance = per_rotation.mean();
    noise.standard_error = standard_error();
    return noise;
}

// How far the bootstrap output variance may exceed the model. The model bounds every set within
// 25% except the multi-bit g = 2 set (N = 4096, where the decomposition's dropped bits make 89% of
// the modelled variance): with accumulators and the outputs' own standard error three key sets
// measured 1.10, 1.15 and 1.21 of the model (+-4%; the 1.07-1.32 of earlier runs came from 600 outputs
// alone, whose standard error sqrt(2 / n) understates these heavy tails). Its failure
// probability from the measured variance stays under the promise, checked below.
double output_variance_ceiling(const TfheParameters & p) {
    const bool model_gap = p.is_multi_bit() && p.grouping_factor.value == 2 && p.polynomial_size.value > 2048;
    // The 7-bit set's six-level fine key (N = 16384): measured 1.10-1.26 of the model in four runs.
    // The blind rotation at this N has an error that the model lacks and that grows as the base
    // shrinks (eight levels of 2^5: 4.2x, so not offered); one external product's FFT error
    // matches the model. docs/tfhe-engine.md.
    const bool large_n_gap = !p.is_multi_bit() && p.polynomial_size.value >= 16384 && p.pbs_level_count.value >= 3;
    return model_gap || large_n_gap ? 1.35 : 1.25;
}

// The noise model against measurements.
// - Bootstrap output variance: two measurements, (a) the outputs the other checks decrypted
//   (one sample each; standard error from their fourth moment) and (b) whole accumulators
//   (measure_accumulator_noise, at most `max_rotations`). They must agree within four standard
//   errors of their difference; their inverse-variance weighted mean, with a standard error
//   under 6% so that the bounds mean what they say (25% is four of them), may not exceed the
//   model by more than 25% (the model must bound it; output_variance_ceiling has the one
//   exception) nor fall below 60% of it: the variance of one key set differs from the model's
//   expectation over keys (two key sets of PARAM_5BIT_2M128 gave 0.75 and 0.94 of the model).
// - Key switch: within 25% of the model (`keyswitch_samples` >= 600: 25% is beyond four standard
//   errors).
// - With `promise`, the failure probability at the noise limit computed from the measured
//   variances must keep the set's promise (2^-128, or 2^-64 for the 2M64 sets) within 2^4.
void check_noise_model(Harness & h, size_t max_rotations, size_t keyswitch_samples, bool promise) {
    const TfheParameters & p = h.params;
    ASSERT_GE(h.output_noise.count, 100u) << p.name << ": too few bootstrap outputs to compare";
    ASSERT_GE(keyswitch_samples, 600u);
    const NoiseBudget budget = bootstrap_noise_budget(p);
    // Outputs carry their noise around the encoded message: the mean is part of the error.
    const double outputs = h.output_noise.mean_square();
    const double outputs_error = h.output_noise.mean_square_standard_error();
    const AccumulatorNoise accumulators = measure_accumulator_noise(h, max_rotations);
    const double a_weight = 1.0 / (accumulators.standard_error * accumulators.standard_error);
    const double o_weight = 1.0 / (outputs_error * outputs_error);
    const double pbs = (a_weight * accumulators.variance + o_weight * outputs) / (a_weight + o_weight);
    const double pbs_error = 1.0 / std::sqrt(a_weight + o_weight);
    std::printf("  %-44s 2^%.3f +- %.1f%%, %zu accumulators of %zu: 2^%.3f +- %.1f%%\n",
                (p.name + " outputs (" + std::to_string(h.output_noise.count) + ")").c_str(), std::log2(outputs),
                100.0 * outputs_error / outputs, accumulators.rotations, p.polynomial_size.value,
                std::log2(accumulators.variance), 100.0 * accumulators.standard_error / accumulators.variance);
    EXPECT_LT(std::abs(outputs - accumulators.variance),
              4.0 * std::hypot(outputs_error, accumulators.standard_error))
        << p.name << ": decrypted outputs against accumulators";
    const std::string what = p.name + " bootstrap output";
    std::printf("  %-44s measured 2^%.3f +- %.1f%%  model 2^%.3f  ratio %.3f\n", what.c_str(), std::log2(pbs),
                100.0 * pbs_error / pbs, std::log2(budget.pbs_output), pbs / budget.pbs_output);
    EXPECT_LT(pbs_error, 0.06 * pbs) << what << ": too few samples for the bounds";
    EXPECT_LE(pbs / budget.pbs_output, output_variance_ceiling(p)) << what;
    EXPECT_GE(pbs / budget.pbs_output, 0.6) << what;
    const double ks = measure_keyswitch_variance(h, keyswitch_samples);
    expect_within(ks, budget.keyswitch, 0.25, p.name + " key switch");
    if (!promise) return;
    const double measured_total = double(p.max_norm2) * double(p.max_norm2) * pbs + ks + budget.modulus_switch;
    const double measured_log2 = log2_failure_probability(measured_total, p.message_modulus());
    std::printf("  %-44s log2 p_fail: measured %.1f  model %.1f  source %.1f\n",
                (p.name + " at 2-norm " + std::to_string(p.max_norm2)).c_str(), measured_log2, budget.log2_p_fail,
                p.source_log2_p_fail);
    const double promised = p.name.find("2M64") != std::string::npos ? -64.0 : -128.0;
    EXPECT_LE(measured_log2, promised + 4.0) << p.name;
}

// Every FFT kernel this CPU has (scalar, AVX2, AVX-512) bootstraps the same key-switched inputs
// to the same decryptions. The kernels round differently (they are not bit-identical), and a
// rounding difference can flip a decomposition digit of the accumulator, so the output phases
// differ by up to the output noise, not by the FFT error: they must stay within 8 standard
// deviations of the set's bootstrap output noise of each other. Returns the largest gap in those
// standard deviations.
double check_kernels_agree(Harness & h, size_t count) {
    const uint64_t p = h.p();
    std::vector<uint64_t> table(p);
    for (auto & t : table) t = h.rng() % p;
    const LookupTable lut = generate_lookup_table_from_table(h.params.polynomial_size, p, p, table);
    const FourierLweBootstrapKey & bsk = h.server.bootstrap_key;
    std::vector<LweCiphertext> small;
    std::vector<uint64_t> messages;
    for (size_t i = 0; i < count; ++i) {
        messages.push_back(h.rng() % p);
        small.emplace_back(h.params.lwe_dimension);
        keyswitch_lwe_ciphertext(h.server.keyswitch_key, encrypt_message(h.client, messages.back(), p), small.back());
    }
    std::vector<uint64_t> reference_phases;
    double widest = 0;
    for (FftKernel kernel : {FftKernel::Scalar, FftKernel::Avx2, FftKernel::Avx512}) {
        if (!NegacyclicFft::kernel_available(kernel)) continue;
        ProgrammableBootstrapScratch scratch(bsk);
        scratch.external_product = ExternalProductScratch(bsk.glwe_dimension, bsk.polynomial_size, bsk.level_count, kernel);
        for (size_t i = 0; i < count; ++i) {
            LweCiphertext out = allocate_lwe_ciphertext(h.server);
            programmable_bootstrap_lwe_ciphertext(small[i], out, lut, bsk, h.params.modulus_switch, scratch);
            ++h.pbs;
            h.expect_message(out, table[messages[i]], p,
                             std::string("kernel ") + scratch.external_product.fft->instance_kernel_name());
            const uint64_t phase = decrypt_phase(h.client, out);
            if (reference_phases.size() < count) {
                reference_phases.push_back(phase);
                continue;
            }
            const double gap = std::abs(torus_to_double(phase - reference_phases[i]));
            widest = std::max(widest, gap);
        }
    }
    const double sigma = std::sqrt(programmable_bootstrap_variance(h.params));
    EXPECT_LT(widest, 8 * sigma) << h.params.name;
    return widest / sigma;
}

struct Scale {
    size_t lut_reps;
    bool every_table_on_every_input;
    size_t moduli_samples, many_reps, chains, noise_limit, batch, max_rotations, keyswitches;
};

[[maybe_unused]] void run_all(const std::string & name, const Scale & s) {
    Harness & h = harness(name);
    const size_t before = h.pbs;
    check_lookup_tables(h, s.lut_reps, s.every_table_on_every_input);
    check_moduli(h, s.moduli_samples);
    if (h.p() >= 4) check_many_lut(h, s.many_reps);
    check_chains(h, s.chains);
    check_noise_limit(h, s.noise_limit);
    check_batch_equals_sequential(h, s.batch);
    check_noise_model(h, s.max_rotations, s.keyswitches, true);
    check_kernels_agree(h, s.batch);
    std::printf("%s: %zu bootstraps, %zu failures (noise model log2 p_fail %.1f)\n", name.c_str(), h.pbs - before,
                h.failures, bootstrap_noise_budget(h.params).log2_p_fail);
    EXPECT_EQ(h.failures, 0u);
}

} // namespace

#ifndef FHEGPT_TFHE_PRODUCTION

class TfhePbsInsecure : public ::testing::TestWithParam<std::string> {};

TEST_P(TfhePbsInsecure, LookupTablesOnEveryInput) { check_lookup_tables(harness(GetParam()), 4); }
TEST_P(TfhePbsInsecure, OutputAndInputModuli) { check_moduli(harness(GetParam()), 64); }
TEST_P(TfhePbsInsecure, ManyLut) { check_many_lut(harness(GetParam()), 4); }
TEST_P(TfhePbsInsecure, ChainOf20Bootstraps) { check_chains(harness(GetParam()), 16); }
TEST_P(TfhePbsInsecure, NoiseLimit) { check_noise_limit(harness(GetParam()), 64); }
TEST_P(TfhePbsInsecure, BatchEqualsSequential) { check_batch_equals_sequential(harness(GetParam()), 13); }
TEST_P(TfhePbsInsecure, OutputAndKeyswitchNoiseFollowTheModel) {
    Harness & h = harness(GetParam());
    check_lookup_tables(h, std::max<uint64_t>(1, 128 / h.p())); // 640 outputs
    check_noise_model(h, 512, 1000, false);
}
TEST_P(TfhePbsInsecure, FftKernelsAgree) {
    std::printf("largest output phase gap between FFT kernels: %.2f sigma\n", check_kernels_agree(harness(GetParam()), 16));
}

INSTANTIATE_TEST_SUITE_P(Sets, TfhePbsInsecure,
                         ::testing::Values("INSECURE_TEST_2BIT", "INSECURE_TEST_4BIT", "INSECURE_TEST_4BIT_K2_L2",
                                           "INSECURE_TEST_4BIT_MULTI_BIT_G2", "INSECURE_TEST_4BIT_MULTI_BIT_G3",
                                           "INSECURE_TEST_4BIT_MULTI_BIT_G4"));

TEST(TfhePbs, SingleCallsAndManyLutEntryPoints) {
    Harness & h = harness("INSECURE_TEST_4BIT");
    const uint64_t p = h.p();
    ProgrammableBootstrapScratch scratch(h.server.bootstrap_key);
    LweCiphertext small(h.params.lwe_dimension);
    const LookupTable lut = generate_lookup_table(h.server, p, p, [p](uint64_t m) { return (5 * m + 3) % p; });
    std::vector<MessageFunction> fs = {[](uint64_t m) { return m; }, [](uint64_t m) { return m * m; }};
    const LookupTable many = generate_many_lookup_table(h.params.polynomial_size, p / 2, p, fs);
    for (uint64_t m = 0; m < p; ++m) {
        keyswitch_lwe_ciphertext(h.server.keyswitch_key, encrypt_message(h.client, m, p), small);
        LweCiphertext out = allocate_lwe_ciphertext(h.server);
        programmable_bootstrap_lwe_ciphertext(small, out, lut, h.server.bootstrap_key, h.params.modulus_switch, scratch);
        EXPECT_EQ(decrypt_message(h.client, out, p), (5 * m + 3) % p);
        if (m >= p / 2) continue;
        keyswitch_lwe_ciphertext(h.server.keyswitch_key, encrypt_message(h.client, m, p / 2), small);
        std::vector<LweCiphertext> outs(2, allocate_lwe_ciphertext(h.server));
        programmable_bootstrap_lwe_ciphertext_many_lut(small, outs, many, h.server.bootstrap_key,
                                                       h.params.modulus_switch, scratch);
        EXPECT_EQ(decrypt_message(h.client, outs[0], p), m);
        EXPECT_EQ(decrypt_message(h.client, outs[1], p), m * m % p);
    }
    // Raw torus table: outputs are the table values themselves (plus noise).
    const LookupTable torus = generate_torus_lookup_table(h.params.polynomial_size, p, [](uint64_t m) {
        return torus_from_double(0.01 * static_cast<double>(m));
    });
    // 8 standard deviations of the PBS output noise (the model is checked in test-tfhe-noise).
    const double tolerance = 8.0 * std::sqrt(bootstrap_noise_budget(h.params).pbs_output);
    ASSERT_LT(tolerance, 0.002) << "table values 0.01 apart must stay distinguishable";
    for (uint64_t m = 0; m < p; ++m) {
        LweCiphertext out = allocate_lwe_ciphertext(h.server);
        keyswitch_bootstrap(h.server, encrypt_message(h.client, m, p), out, torus, h.workspace);
        EXPECT_NEAR(torus_to_double(decrypt_phase(h.client, out)), 0.01 * static_cast<double>(m), tolerance);
    }
}

// A sign lookup (input modulus 1): one box per half of the torus, centred on 0.
TEST(TfhePbs, SignLookupReadsTheHalfTorus) {
    Harness & h = harness("INSECURE_TEST_4BIT");
    const uint64_t value = torus_from_double(0.125);
    const LookupTable sign = generate_torus_lookup_table(h.params.polynomial_size, 1, [&](uint64_t) { return value; });
    const double tolerance = 8.0 * std::sqrt(bootstrap_noise_budget(h.params).pbs_output);
    // Phases m / 128: [0, 1/4) reads +value, (1/4, 1/2) reads -value (two messages of margin).
    for (uint64_t m = 0; m < 64; ++m) {
        if (m >= 31 && m <= 33) continue;
        LweCiphertext out = allocate_lwe_ciphertext(h.server);
        keyswitch_bootstrap(h.server, encrypt_message(h.client, m, 64), out, sign, h.workspace);
        EXPECT_NEAR(torus_to_double(decrypt_phase(h.client, out)), m < 32 ? 0.125 : -0.125, tolerance) << m;
    }
}

#else

class TfhePbsProduction : public ::testing::TestWithParam<std::string> {};

// Repetitions per set, few enough for CI (`fhegpt bench pbs` checks thousands more, every one
// against its table): every input of every table, 64 inputs per pair of moduli, chains of 20
// bootstraps, inputs at the noise limit; the noise model on up to 512 whole accumulators. The
// costlier sets below cost 3-20x more per bootstrap on one ciphertext: every input and every
// table still, but each input through one table per repetition, 16 inputs per pair of moduli,
// fewer chains and noise-limit inputs, up to 2^19 / N accumulators (64 at N = 8192) and 400 on
// the multi-bit sets (their rotations differ more from one another and cost less).
// (With p = 2, ReLU and some random tables are all zero: their outputs are noiseless and not
// noise samples.)
Scale scale_for(const TfheParameters & p) {
    // Sets with N > 2048 or 3 levels and more, and multi-bit sets other than the 1-level
    // grouping-4 set that circuits pick first.
    const bool multi_bit_costly = p.is_multi_bit() && !(p.grouping_factor.value == 4 && p.pbs_level_count.value == 1);
    const bool costly = p.polynomial_size.value > 2048 || p.pbs_level_count.value >= 3 || multi_bit_costly;
    if (!costly) return {std::max<size_t>(1, 128 / p.message_modulus()), true, 64, 4, 8, 64, 8, 512, 1000};
    const size_t max_rotations = multi_bit_costly ? 400 : (size_t{1} << 19) / p.polynomial_size.value;
    // The costliest blind rotations (N x levels from 32768: the 7-bit sets, the six-level fine
    // keys; 0.25 to 1.2 s a bootstrap here): every input once, through one of the tables in turn,
    // and fewer of the checks that repeat the same path.
    // At N = 16384 the fewer outputs need three times the accumulators for a standard error under 6%.
    if (p.polynomial_size.value * p.pbs_level_count.value >= 32768)
        return {1, false, 8, 1, 2, 4, 2, p.polynomial_size.value >= 16384 ? 3 * max_rotations : max_rotations, 600};
    return {2, false, 16, 1, 3, 8, 4, max_rotations, 1000};
}

TEST_P(TfhePbsProduction, AllChecks) {
    const std::string name = GetParam();
    run_all(name, scale_for(test_sets::parameters_under_test(name)));
}

std::vector<std::string> production_names() { return test_sets::production_sets_under_test(); }

INSTANTIATE_TEST_SUITE_P(Sets, TfhePbsProduction, ::testing::ValuesIn(production_names()),
                         [](const ::testing::TestParamInfo<std::string> & info) { return info.param; });

#endif
