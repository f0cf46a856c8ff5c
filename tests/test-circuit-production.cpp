// A quantized head's circuit on ciphertexts of the production parameter set that its noise
// analysis picks (the first that passes in production order): the decrypted outputs equal the clear simulation bit
// for bit (a tiny head: n_embd 64, head_dim 32, n = 3, about 1,400 bootstraps, 10 s on two
// cores). CTest label `slow`.
#include "circuit-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/head_circuit.h"
#include "circuit/head_reference.h"
#include "circuit/simulate.h"
#include "common/thread_pool.h"
#include "model/attention.h"
#include "model/gpt2_model.h"
#include "quant/quantized_head.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;

TEST(HeadCircuitProduction, EncryptedEqualsSimulated4Bit) {
    const model::Gpt2HParams hp = test::small_attention_hparams();
    const model::Gpt2Model m = model::make_random_gpt2_model(hp, 4321, 0.2f);
    const std::vector<int32_t> lengths = {5, 7, 3};
    const std::vector<float> calibration = test::normal_x(size_t(15) * hp.n_embd, 7);
    quant::HeadQuantConfig config;
    config.n_bits = 4;
    const quant::QuantizedHead head = quant::quantize_head(model::head_qkv_weights(m, 0, 1), calibration, lengths, config);
    ASSERT_EQ(head.lut_bits, 4);

    const int32_t n = 3;
    const Circuit c = build_head_circuit(head, n);
    const CircuitAnalysis a = analyze(c);
    // The first n calibration rows.
    const std::vector<int64_t> x_int = head.quantize_inputs(std::span(calibration).first(size_t(n) * hp.n_embd));
    const std::vector<int64_t> simulated = simulate(c, x_int);
    ASSERT_EQ(simulated, head_reference_forward(head, x_int, n));

    const tfhe::TfheParameters * chosen = choose_parameters(c);
    ASSERT_NE(chosen, nullptr);
    const tfhe::TfheParameters & params = *chosen;
    EXPECT_FALSE(params.insecure);
    EXPECT_LT(analyze_noise(c, params).log2_expected_failures, -60.0);
    auto start = std::chrono::steady_clock::now();
    const tfhe::ClientKey client = tfhe::generate_client_key(params);
    const tfhe::ServerKey server = tfhe::generate_server_key(client);
    const double keygen = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const auto inputs = encrypt_inputs(c, client, x_int);
    ExecutionStats stats;
    const auto outputs = run_encrypted(c, server, inputs, ThreadPool::global(), {}, &stats);
    const std::vector<int64_t> decrypted = decrypt_outputs(c, client, outputs);
    std::printf("%s, head_dim %d, n %d: %lld bootstraps (depth %d) in %.2f s on %zu threads (%.2f ms each); "
                "keys %.2f s\n",
                params.name.c_str(), head.head_dim, n, static_cast<long long>(stats.bootstraps), a.depth,
                stats.seconds, ThreadPool::global().size(), 1e3 * stats.seconds / double(stats.bootstraps), keygen);
    EXPECT_EQ(stats.bootstraps, a.bootstraps);
    size_t mismatches = 0;
    for (size_t i = 0; i < simulated.size(); ++i) mismatches += decrypted[i] != simulated[i];
    EXPECT_EQ(mismatches, 0u);
    EXPECT_EQ(decrypted, simulated);
}

} // namespace
