// A part server in this process serving every block and ln_f (`all`) of a small 2-layer model on
// insecure test keys with two bootstrapping keys (INSECURE_TEST_4BIT_MIXED):
// - a client that holds only the embeddings (and the LM head tied to them), with NaN in every
//   block's and ln_f's weights, generates through the server exactly the tokens and logits of
//   the clear simulation of the same quantized blocks; each token sends one position and the
//   server evaluates it on the encrypted key/value caches of both layers;
// - a client that expects another part is refused with a clear error, before its keys are
//   uploaded, and a request shaped for another part is refused; a seam of the wrong kind is
//   refused on the client.
#include "net-server-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/block_calibration.h"
#include "circuit/block_circuit.h"
#include "circuit/quantized_part_seams.h"
#include "common/error.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "net/part_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace {

using namespace fhegpt;
using namespace fhegpt::test;

constexpr int32_t kBlocksEmbd = 16;
const model::BlockRangeSpec kAll{0, 1, false, true};

const tfhe::TfheParameters & mixed_params() { return tfhe::parameters_by_name("INSECURE_TEST_4BIT_MIXED"); }

// n_embd 16, 2 heads of 8, 2 layers.
const model::Gpt2Model & blocks_model() {
    static const model::Gpt2Model m = [] {
        model::Gpt2HParams hp;
        hp.n_vocab = 64;
        hp.n_ctx = 16;
        hp.n_embd = kBlocksEmbd;
        hp.n_head = 2;
        hp.n_layer = 2;
        return model::make_random_gpt2_model(hp, 77, 0.15f);
    }();
    return m;
}

// Every block and ln_f at 4 bits, calibrated on random token sequences for the fine key's noise.
const circuit::QuantizedBlocks & all_blocks() {
    static const circuit::QuantizedBlocks q = [] {
        std::mt19937 rng(5);
        std::uniform_int_distribution<int32_t> token(0, 63);
        std::vector<std::vector<int32_t>> sequences(16, std::vector<int32_t>(10));
        for (auto & s : sequences)
            for (int32_t & t : s) t = token(rng);
        circuit::BlocksQuantConfig config;
        config.head.n_bits = 4;
        config.fine_noise_log2 =
            std::log2(std::sqrt(tfhe::programmable_bootstrap_variance(mixed_params().fine_bootstrap_parameters()))) + 64;
        return circuit::quantize_blocks(blocks_model(), kAll,
                                        circuit::collect_block_calibration(blocks_model(), sequences, kAll), config);
    }();
    return q;
}

net::ServedPart served_all() { return net::served_blocks(all_blocks(), "all", 4, mixed_params()); }

// The client's copy for `all`: the embeddings only; every block's and ln_f's weights are NaN.
model::Gpt2Model embeddings_only() {
    const model::Gpt2Model & m = blocks_model();
    model::Gpt2Model client;
    client.hparams = m.hparams;
    client.wte = m.wte;
    client.wpe = m.wpe;
    client.lm_head = m.lm_head;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    auto poisoned = [&](std::span<const float> w) { return client.own(std::vector<float>(w.size(), nan)); };
    client.ln_f_g = poisoned(m.ln_f_g);
    client.ln_f_b = poisoned(m.ln_f_b);
    for (const model::Gpt2Layer & l : m.layers) {
        model::Gpt2Layer c = l;
        for (std::span<const float> * w : {&c.ln_1_g, &c.ln_1_b, &c.attn_w, &c.attn_b, &c.attn_proj_w, &c.attn_proj_b,
                                           &c.ln_2_g, &c.ln_2_b, &c.fc_w, &c.fc_b, &c.mlp_proj_w, &c.mlp_proj_b})
            *w = poisoned(*w);
        client.layers.push_back(c);
    }
    return client;
}

TEST(NetServerBlocks, EncryptedGenerationEqualsSimulation) {
    TestServer server(served_all());
    const circuit::QuantizedBlocks & q = all_blocks();
    EXPECT_LT(circuit::analyze_noise(circuit::build_blocks_row_circuit(q, 3, 4), mixed_params()).log2_expected_failures,
              -20.0);
    // The cache: keys and values of both heads of both layers, per position.
    EXPECT_EQ(server.server().cache_bytes_per_position(),
              uint64_t{2} * 2 * 2 * 8 * (mixed_params().big_lwe_dimension().value + 1) * 8);

    net::RemotePart remote(server.url(), "all", 4, kBlocksEmbd);
    const net::PartManifest & m = remote.manifest();
    ASSERT_TRUE(m.stream.has_value());
    EXPECT_EQ(m.input_cols(), 2 * kBlocksEmbd);
    EXPECT_EQ(m.output_cols, kBlocksEmbd);
    const std::vector<float> x = test::normal_x(size_t(3) * kBlocksEmbd, 41);
    EXPECT_EQ(m.quantize_inputs(x), q.quantize_inputs(x)); // the client's share from the manifest alone
    for (int32_t k = 0; k < kBlocksEmbd; ++k) EXPECT_EQ(m.output_unit_of(k), q.output_unit(k));

    const model::Gpt2Model client_model = embeddings_only();
    model::Gpt2Context encrypted(client_model), simulated(blocks_model());
    encrypted.set_block_range(kAll, remote.block_seam());
    simulated.set_block_range(kAll, std::make_unique<circuit::QuantizedBlockRange>(q, circuit::Executor::simulate,
                                                                                   circuit::EncryptedKeys{}, true));
    model::GenerateParams gen;
    gen.n_predict = 2;
    gen.sampling.temperature = 0;
    const std::vector<int32_t> prompt = {3, 14};
    const model::GenerateResult got = model::generate(encrypted, prompt, gen);
    EXPECT_EQ(got.tokens, model::generate(simulated, prompt, gen).tokens);
    EXPECT_EQ(got.tokens.size(), 2u);
    // The prompt in one request, then one position per token on the server's cache.
    ASSERT_EQ(remote.runs().size(), 2u);
    EXPECT_EQ(remote.runs()[0].first, 0);
    EXPECT_EQ(remote.runs()[0].n, 2);
    EXPECT_EQ(remote.runs()[1].first, 2);
    EXPECT_EQ(remote.runs()[1].n, 3);
    EXPECT_LT(remote.runs()[1].bootstraps, remote.runs()[0].bootstraps);
    EXPECT_LT(remote.runs()[1].bytes_sent, remote.runs()[0].bytes_sent);
    // Logits of one more token, bit for bit, and finite: the client never read a NaN weight.
    const std::vector<int32_t> next = {got.tokens.back()};
    const auto a = encrypted.eval(next);
    const std::vector<float> remote_logits(a.begin(), a.end());
    const auto b = simulated.eval(next);
    EXPECT_EQ(remote_logits, std::vector<float>(b.begin(), b.end()));
    for (float v : remote_logits) ASSERT_TRUE(std::isfinite(v));
    for (const auto & line : server.log_lines_with("POST /v1/eval 200")) std::printf("%s\n", line.c_str());
}

TEST(NetServerBlocks, WrongPartIsRefused) {
    TestServer server(served_all());
    // The client checks the manifest, and the seam's kind.
    try {
        net::RemotePart wrong(server.url(), "layer0.attn", 4, kBlocksEmbd);
        ADD_FAILURE() << "a client for layer0.attn accepted a server of all";
    } catch (const Error & e) {
        EXPECT_NE(std::string(e.what()).find("serves all, not layer0.attn"), std::string::npos) << e.what();
    }
    EXPECT_THROW(net::RemotePart(server.url(), "all", 4, 32), Error);
    net::RemotePart any(server.url(), "", 0, kBlocksEmbd);
    EXPECT_THROW(any.layer_seam(), Error);
    EXPECT_THROW(any.head_seam(), Error);

    // The server refuses a session for another part before reading its keys.
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const RawClient raw(mixed_params());
    expect_error(post(http, "/v1/sessions", raw.key_upload, {{"Fhegpt-Part", "layer0.attn"}}), 409, "session for layer0.attn",
                 "this server serves all, not layer0.attn");
    expect_error(post(http, "/v1/sessions", raw.key_upload, {{"Fhegpt-Part", "layer0 \"attn\" <b>"}}), 409,
                 "session for an odd part name", "this server serves all, not the part it named");
    EXPECT_EQ(server.server().session_count(), 1u); // `any`'s
    const std::string token = session_token(post(http, "/v1/sessions", raw.key_upload, {{"Fhegpt-Part", "all"}}));
    ASSERT_FALSE(token.empty());

    // An evaluation shaped for an attention block (n_embd ciphertexts per position).
    const std::vector<int64_t> x_int(kBlocksEmbd, 1);
    expect_error(post(http, "/v1/eval", raw.eval_body(x_int, 40, 0, 1), bearer(token)), 400, "one ciphertext per channel",
                 "all takes 32 per position");
    // The session is unharmed: the right shape evaluates (one position).
    const std::vector<int64_t> inputs = all_blocks().quantize_inputs(test::normal_x(kBlocksEmbd, 43));
    const httplib::Result ok = post(http, "/v1/eval", [&] {
        // Each column at its own encoding, as RemotePart does.
        const tfhe::Seed seed = tfhe::Seed::from_os();
        tfhe::RandomGenerator noise = tfhe::RandomGenerator::from_os();
        std::vector<tfhe::SeededLweCiphertext> cts;
        for (size_t i = 0; i < inputs.size(); ++i)
            cts.push_back(tfhe::encrypt_seeded_lwe_ciphertext(
                raw.key.big_lwe_secret_key,
                circuit::encode_integer(inputs[i], server.manifest().input_delta_log2_of(int32_t(i))),
                raw.key.parameters.glwe_noise, seed, i, noise));
        net::EvalRequest request;
        request.n_new = 1;
        request.inputs = tfhe::serialize_seeded_lwe_ciphertext_vector(cts, raw.key.parameters);
        return net::encode(request);
    }(), bearer(token));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    const std::vector<int64_t> values = raw.decode(ok->body, server.manifest().output_delta_log2);
    EXPECT_EQ(values, circuit::blocks_reference_forward(all_blocks(), inputs, 1));
}

TEST(NetServerBlocks, AttentionServerRefusesABlocksClient) {
    TestServer server(served_attention());
    EXPECT_THROW(net::RemotePart(server.url(), "all", kBits, kEmbd), Error);
    httplib::Client http(server.url());
    // Refused before the body is read: the body does not matter.
    expect_error(post(http, "/v1/sessions", "keys that are never read", {{"Fhegpt-Part", "all"}}), 409, "session for all",
                 "this server serves layer0.attn, not all");
    EXPECT_EQ(server.server().session_count(), 0u);
}

} // namespace
