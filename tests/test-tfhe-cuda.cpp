// The CUDA bootstrap backend (tfhe/cuda/): device selection everywhere; on a machine with a CUDA
// device also GPU == CPU decryptions for the same keys and lookups (single tables, one table per
// input, many-LUT, the fine key of a _MIXED set, batches split into chunks) on insecure test sets
// and production sets (N = 2048 and 4096, 1- and 2-level decompositions), and the phase error of
// GPU outputs against the noise model. Without a device the GPU cases skip with the reason.
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/tfhe.h"

#ifdef FHEGPT_HAVE_CUDA
#include "tfhe/cuda/cuda_bootstrap_backend.h"
#endif

#include "common/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace fhegpt::tfhe;

namespace {

TEST(CudaDevice, SelectionReportsAMissingDeviceClearly) {
    EXPECT_EQ(resolve_bootstrap_device("cpu"), "cpu");
    EXPECT_THROW(resolve_bootstrap_device("gpu"), fhegpt::Error);
    if (cuda_device_count() > 0) {
        EXPECT_TRUE(cuda_backend_built());
        EXPECT_EQ(resolve_bootstrap_device("cuda"), "cuda");
        EXPECT_EQ(resolve_bootstrap_device("auto"), "cuda");
        return;
    }
    EXPECT_EQ(resolve_bootstrap_device("auto"), "cpu");
    try {
        resolve_bootstrap_device("cuda");
        FAIL() << "--device cuda accepted without a device";
    } catch (const fhegpt::Error & e) {
        EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
}

#ifdef FHEGPT_HAVE_CUDA

#define SKIP_WITHOUT_DEVICE()                                                                                        \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device (" << cuda_device_description() << ")"

struct Keys {
    TfheParameters params;
    ClientKey client;
    ServerKey server;
    explicit Keys(const std::string & name)
        : params(parameters_by_name(name)), client(generate_client_key(params)),
          server(decompress_server_key(generate_compressed_server_key(client))) {}
};

std::vector<const LweCiphertext *> input_pointers(const std::vector<LweCiphertext> & v) {
    std::vector<const LweCiphertext *> p;
    for (const auto & c : v) p.push_back(&c);
    return p;
}
std::vector<LweCiphertext *> pointers(std::vector<LweCiphertext> & v) {
    std::vector<LweCiphertext *> p;
    for (auto & c : v) p.push_back(&c);
    return p;
}

// Runs the same batch on the GPU backend and on the CPU, checks every decryption against the
// tables and between the devices, and returns the GPU outputs' phase errors (torus units).
std::vector<double> compare_devices(const Keys & k, CudaBootstrapBackend & gpu, BootstrapKeyKind kind,
                                    const std::vector<uint64_t> & messages, const std::vector<LookupTable> & tables,
                                    bool table_per_input, const std::vector<std::vector<uint64_t>> & expected) {
    const uint64_t p = k.params.message_modulus();
    std::vector<LweCiphertext> inputs;
    for (uint64_t m : messages) inputs.push_back(encrypt_message(k.client, m, p));
    std::vector<const LookupTable *> luts;
    if (table_per_input)
        for (size_t c = 0; c < messages.size(); ++c) luts.push_back(&tables[c % tables.size()]);
    else
        luts.push_back(&tables[0]);
    const size_t functions = tables[0].function_count;
    std::vector<LweCiphertext> on_gpu(messages.size() * functions, allocate_lwe_ciphertext(k.server));
    std::vector<LweCiphertext> on_cpu = on_gpu;
    gpu.batch_keyswitch_bootstrap(kind, input_pointers(inputs), pointers(on_gpu), luts);
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(k.server, fhegpt::ThreadPool::global(), kind);
    batch_keyswitch_bootstrap(k.server, kind, input_pointers(inputs), pointers(on_cpu), luts, workspace);
    std::vector<double> errors;
    for (size_t c = 0; c < messages.size(); ++c)
        for (size_t j = 0; j < functions; ++j) {
            const size_t o = c * functions + j;
            const uint64_t q = tables[0].output_modulus;
            const uint64_t want = expected[table_per_input ? c % tables.size() : 0][messages[c] * functions + j];
            EXPECT_EQ(decrypt_message(k.client, on_gpu[o], q), want) << k.params.name << " input " << c << " fn " << j;
            EXPECT_EQ(decrypt_message(k.client, on_cpu[o], q), want) << k.params.name << " (cpu) input " << c;
            errors.push_back(torus_to_double(decrypt_phase(k.client, on_gpu[o]) - encode_message(want, q)));
        }
    return errors;
}

// Random tables p -> p; expected[t][m] = table t at m.
std::vector<LookupTable> random_tables(const Keys & k, size_t count, std::mt19937_64 & rng,
                                       std::vector<std::vector<uint64_t>> & expected) {
    const uint64_t p = k.params.message_modulus();
    std::vector<LookupTable> tables;
    expected.clear();
    for (size_t t = 0; t < count; ++t) {
        std::vector<uint64_t> table(p);
        for (auto & v : table) v = rng() % p;
        tables.push_back(generate_lookup_table_from_table(k.params.polynomial_size, p, p, table));
        expected.push_back(table);
    }
    return tables;
}

// Every message `reps` times, shuffled.
std::vector<uint64_t> all_messages(uint64_t p, size_t reps, std::mt19937_64 & rng) {
    std::vector<uint64_t> m;
    for (size_t r = 0; r < reps; ++r)
        for (uint64_t v = 0; v < p; ++v) m.push_back(v);
    std::shuffle(m.begin(), m.end(), rng);
    return m;
}

// Checks that the measured variance of `errors` stays within the noise model's (sampling margin).
void expect_noise_within_model(const std::vector<double> & errors, const TfheParameters & params) {
    double sum2 = 0;
    for (double e : errors) sum2 += e * e;
    const double measured = sum2 / static_cast<double>(errors.size());
    const double model = programmable_bootstrap_variance(params);
    std::printf("  %s: GPU output variance 2^%.2f, model 2^%.2f (%zu samples)\n", params.name.c_str(),
                std::log2(measured), std::log2(model), errors.size());
    EXPECT_LT(measured, 1.5 * model) << params.name;
    EXPECT_GT(measured, 0.0) << params.name;
}

void check_set(const std::string & name, size_t reps) {
    std::mt19937_64 rng(std::random_device{}());
    const Keys k(name);
    CudaBootstrapBackend gpu(k.server);
    const uint64_t p = k.params.message_modulus();
    std::vector<std::vector<uint64_t>> expected;
    // One table for all inputs: the decryptions and the noise.
    std::vector<LookupTable> tables = random_tables(k, 1, rng, expected);
    const std::vector<double> errors =
        compare_devices(k, gpu, BootstrapKeyKind::standard, all_messages(p, reps, rng), tables, false, expected);
    expect_noise_within_model(errors, k.params);
    // One table per input.
    tables = random_tables(k, 5, rng, expected);
    compare_devices(k, gpu, BootstrapKeyKind::standard, all_messages(p, 2, rng), tables, true, expected);
    // The fine key of a _MIXED set.
    if (k.params.has_fine_bootstrap()) {
        tables = random_tables(k, 1, rng, expected);
        const std::vector<double> fine =
            compare_devices(k, gpu, BootstrapKeyKind::fine, all_messages(p, reps, rng), tables, false, expected);
        expect_noise_within_model(fine, k.params.fine_bootstrap_parameters());
    }
}

TEST(CudaPbs, MatchesCpuOnInsecureTestSets) {
    SKIP_WITHOUT_DEVICE();
    for (const char * name : {"INSECURE_TEST_4BIT", "INSECURE_TEST_4BIT_PBS_L2", "INSECURE_TEST_4BIT_K2_L2"})
        check_set(name, 8);
}

TEST(CudaPbs, MatchesCpuOnProductionSets) {
    SKIP_WITHOUT_DEVICE();
    // N = 2048 with 1 level (and the 2-level fine key), N = 4096.
    for (const char * name : {"PARAM_4BIT_2M128_MIXED", "PARAM_5BIT_2M128"}) check_set(name, 16);
}

TEST(CudaPbs, ManyLutOutputs) {
    SKIP_WITHOUT_DEVICE();
    std::mt19937_64 rng(std::random_device{}());
    const Keys k("INSECURE_TEST_4BIT");
    CudaBootstrapBackend gpu(k.server);
    const uint64_t p = 4; // 2-bit inputs: room for several functions in the 4-bit set
    const std::vector<MessageFunction> functions = {[](uint64_t m) { return (m + 1) % 4; },
                                                    [](uint64_t m) { return (3 * m) % 4; }};
    const LookupTable lut = generate_many_lookup_table(k.params, p, p, functions);
    std::vector<uint64_t> messages;
    std::vector<LweCiphertext> inputs;
    for (int r = 0; r < 16; ++r) {
        messages.push_back(rng() % p);
        inputs.push_back(encrypt_message(k.client, messages.back(), p));
    }
    std::vector<LweCiphertext> outputs(messages.size() * functions.size(), allocate_lwe_ciphertext(k.server));
    const LookupTable * luts[1] = {&lut};
    gpu.batch_keyswitch_bootstrap(BootstrapKeyKind::standard, input_pointers(inputs), pointers(outputs), luts);
    for (size_t c = 0; c < messages.size(); ++c)
        for (size_t j = 0; j < functions.size(); ++j)
            EXPECT_EQ(decrypt_message(k.client, outputs[c * functions.size() + j], p), functions[j](messages[c]));
}

TEST(CudaPbs, BatchesLargerThanAChunk) {
    SKIP_WITHOUT_DEVICE();
    std::mt19937_64 rng(std::random_device{}());
    const Keys k("INSECURE_TEST_4BIT");
    CudaBootstrapBackend gpu(k.server, /*max_chunk=*/37);
    std::vector<std::vector<uint64_t>> expected;
    const std::vector<LookupTable> tables = random_tables(k, 3, rng, expected);
    compare_devices(k, gpu, BootstrapKeyKind::standard, all_messages(k.params.message_modulus(), 7, rng), tables, true,
                    expected);
}

TEST(CudaPbs, AttachedBackendServesTheKeysetCalls) {
    SKIP_WITHOUT_DEVICE();
    Keys k("INSECURE_TEST_4BIT");
    k.server.accelerator = make_bootstrap_accelerator(k.server, "cuda");
    ASSERT_TRUE(k.server.accelerator);
    EXPECT_TRUE(k.server.accelerator->serves(BootstrapKeyKind::standard));
    EXPECT_FALSE(k.server.accelerator->serves(BootstrapKeyKind::fine)); // this set has no fine key
    const uint64_t p = k.params.message_modulus();
    const LookupTable lut = generate_lookup_table(k.server, p, p, [p](uint64_t m) { return (m * m + 3) % p; });
    std::vector<LweCiphertext> inputs, outputs(p, allocate_lwe_ciphertext(k.server));
    for (uint64_t m = 0; m < p; ++m) inputs.push_back(encrypt_message(k.client, m, p));
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(k.server);
    const LookupTable * luts[1] = {&lut};
    // Through keyset.h, as the executor calls it; a moved key keeps its backend.
    const ServerKey moved = std::move(k.server);
    batch_keyswitch_bootstrap(moved, inputs, outputs, luts, workspace);
    for (uint64_t m = 0; m < p; ++m) EXPECT_EQ(decrypt_message(k.client, outputs[m], p), (m * m + 3) % p);
}

TEST(CudaPbs, MultiBitKeysAreRefusedClearly) {
    SKIP_WITHOUT_DEVICE();
    const Keys k("INSECURE_TEST_4BIT_MULTI_BIT_G2");
    EXPECT_THROW(CudaBootstrapBackend{k.server}, fhegpt::Error);
    EXPECT_EQ(make_bootstrap_accelerator(k.server, "auto"), nullptr); // auto: the CPU
}

#endif // FHEGPT_HAVE_CUDA

} // namespace
