// A part server in this process (net::PartServer on a free loopback port, insecure test keys
// INSECURE_TEST_4BIT_PBS_L2) serving a small quantized head and attention block:
// - RemotePart clients driven position by position get exactly the values of the local clear
//   simulation, with the local KV cache and without one (the server's encrypted cache), and the
//   server evaluates only the new rows; n_past = 0 restarts a sequence; a model with the remote
//   seam generates the same tokens (and logits) as one with the simulated seam;
// - raw HTTP requests that are malformed, oversized, unauthenticated, for another parameter set,
//   at the wrong position or of the wrong size get their error status and a JSON error, and
//   leave the session as it was; the session limit and the idle timeout hold (idle time counts
//   from the end of a request); a client refuses a server whose part does not fit;
// - concurrent clients each get exactly their own values; a client outlives the server closing
//   its idle connections.
// The budget, cancellation and session calls under load: test-net-server-budget.cpp.
#include "net-server-test-util.h"
#include "net-test-util.h"
#include "circuit/noise_analysis.h"
#include "circuit/circuit.h"
#include "circuit/head_calibration.h"
#include "circuit/head_circuit.h"
#include "circuit/quantized_attention.h"
#include "circuit/quantized_part_seams.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/attention.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "net/part_client.h"
#include "net/part_server.h"
#include "net/protocol.h"
#include "net/served_part.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/keyset.h"
#include "tfhe/serialization/serialization.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;
using namespace fhegpt::test;

struct Step {
    int32_t n_past, n_new;
};

// What the seam returns for each step on positions n_past.. of x (rows of kEmbd); a step at
// n_past = 0 starts a new sequence.
template <typename Seam>
std::vector<std::vector<float>> run_local(Seam & seam, std::span<const float> x, int32_t cols,
                                          std::span<const Step> steps) {
    std::vector<std::vector<float>> out;
    for (const Step & s : steps) {
        if (s.n_past == 0) seam.reset();
        std::vector<float> rows(static_cast<size_t>(s.n_new) * static_cast<size_t>(cols));
        seam.forward(x.subspan(size_t(s.n_past) * kEmbd, size_t(s.n_new) * kEmbd), s.n_new, s.n_past, rows);
        out.push_back(std::move(rows));
    }
    return out;
}

std::vector<std::vector<float>> run_remote(net::RemotePart & part, std::span<const float> x, std::span<const Step> steps) {
    std::vector<std::vector<float>> out;
    for (const Step & s : steps) {
        const std::vector<int64_t> values =
            part.run(x.subspan(size_t(s.n_past) * kEmbd, size_t(s.n_new) * kEmbd), s.n_new, s.n_past);
        EXPECT_EQ(values.size(), size_t(s.n_new) * size_t(part.manifest().output_cols));
        out.push_back(to_reals(values, part.manifest().output_unit));
    }
    return out;
}

// Remote against both local simulations, step by step; the server's bootstraps are those of
// the cached row circuit (only the new rows).
template <typename Seam>
void expect_remote_equals_local(net::RemotePart & remote, Seam & cached, Seam & whole, std::span<const float> x,
                                int32_t cols, std::span<const Step> steps, const std::string & what) {
    const size_t runs_before = remote.runs().size();
    const auto got = run_remote(remote, x, steps);
    const auto with_cache = run_local(cached, x, cols, steps);
    const auto without_cache = run_local(whole, x, cols, steps);
    ASSERT_EQ(remote.runs().size(), runs_before + steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
        const std::string where = what + " step " + std::to_string(i) + " (rows " + std::to_string(steps[i].n_past) +
                                  "..+" + std::to_string(steps[i].n_new) + ")";
        EXPECT_EQ(got[i], with_cache[i]) << where;
        EXPECT_EQ(got[i], without_cache[i]) << where;
        const net::RemoteRunRecord & run = remote.runs()[runs_before + i];
        EXPECT_EQ(run.first, steps[i].n_past) << where;
        EXPECT_EQ(run.n, steps[i].n_past + steps[i].n_new) << where;
        EXPECT_EQ(int64_t(run.bootstraps), analyze(cached.circuit_for(run.first, run.n)).bootstraps) << where;
        EXPECT_GT(run.bytes_sent, 0u);
        EXPECT_GT(run.bytes_received, 0u);
        std::printf("%s: rows %d..%d: %llu bootstraps, server %.2f s, call %.2f s\n", what.c_str(), run.first,
                    run.n - 1, static_cast<unsigned long long>(run.bootstraps), run.server_seconds, run.seconds);
    }
}

// A prompt of 3, single positions up to 6; then (same x) a restart in steps of two, and a
// restart in the middle of a sequence.
const std::vector<Step> kSchedule = {{0, 3}, {3, 1}, {4, 1}, {5, 1}, {0, 2}, {2, 2}, {4, 2}, {0, 1}, {1, 3}};

TEST(NetServer, HeadEqualsLocalSimulation) {
    TestServer server(served_head());
    net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
    const net::PartManifest & m = remote.manifest();
    const quant::QuantizedHead & head = test_head();
    EXPECT_EQ(m.part, kHeadName);
    EXPECT_EQ(m.parameter_set, "INSECURE_TEST_4BIT_PBS_L2");
    EXPECT_EQ(m.output_cols, kHeadDim);
    EXPECT_EQ(m.output_unit, head.output_scale());
    EXPECT_EQ(m.x_scales, head.x_scales);
    // The announced size of a key upload: the two keys and at most 4 KiB of framing.
    EXPECT_LE(remote.key_upload_bytes(), m.server_key_bytes);
    EXPECT_GE(remote.key_upload_bytes(), m.server_key_bytes - 4096);
    const std::vector<float> x = test::normal_x(size_t(6) * kEmbd, 21);
    EXPECT_EQ(m.quantize_inputs(x), head.quantize_inputs(x));

    QuantizedHeadAttention cached(head, Executor::simulate, {}, true), whole(head, Executor::simulate, {}, false);
    expect_remote_equals_local(remote, cached, whole, x, kHeadDim, kSchedule, "head");
    // Another sequence on the same session: nothing of the first one is left.
    const std::vector<float> x2 = test::normal_x(size_t(4) * kEmbd, 22);
    const std::vector<Step> again = {{0, 1}, {1, 1}, {2, 2}};
    expect_remote_equals_local(remote, cached, whole, x2, kHeadDim, again, "head, second sequence");
    EXPECT_EQ(server.server().session_count(), 1u);
    EXPECT_EQ(server.server().cache_bytes_per_position(),
              uint64_t{circuit::kHeadCacheParts} * kHeadDim * (test_params().big_lwe_dimension().value + 1) * 8);
}

TEST(NetServer, AttentionEqualsLocalSimulation) {
    TestServer server(served_attention());
    net::RemotePart remote(server.url(), kAttentionName, kBits, kEmbd);
    const net::PartManifest & m = remote.manifest();
    EXPECT_EQ(m.output_cols, kEmbd);
    EXPECT_EQ(m.output_unit, test_attention().out_unit);
    const std::vector<float> x = test::normal_x(size_t(6) * kEmbd, 23);
    QuantizedLayerAttention cached(test_attention(), Executor::simulate, {}, true),
        whole(test_attention(), Executor::simulate, {}, false);
    expect_remote_equals_local(remote, cached, whole, x, kEmbd, std::span(kSchedule).first(7), "attention");
}

TEST(NetServer, GenerationEqualsSimulatedSeam) {
    // Greedy generation through the remote head seam and the remote layer seam (a restart per
    // prompt), token for token and logit for logit against the simulated seams.
    TestServer head_server(served_head()), attention_server(served_attention());
    net::RemotePart head(head_server.url(), kHeadName, kBits, kEmbd);
    net::RemotePart attention(attention_server.url(), kAttentionName, kBits, kEmbd);
    model::Gpt2Context remote_head(test_model()), simulated_head(test_model());
    model::Gpt2Context remote_layer(test_model()), simulated_layer(test_model());
    remote_head.set_head_attention(0, 1, head.head_seam());
    simulated_head.set_head_attention(0, 1, std::make_unique<QuantizedHeadAttention>(test_head(), Executor::simulate));
    remote_layer.set_layer_attention(0, attention.layer_seam());
    simulated_layer.set_layer_attention(0,
                                        std::make_unique<QuantizedLayerAttention>(test_attention(), Executor::simulate));

    model::GenerateParams params;
    params.n_predict = 4;
    for (const std::vector<int32_t> & prompt : {std::vector<int32_t>{3, 14, 15}, std::vector<int32_t>{9, 2}}) {
        struct Pair {
            model::Gpt2Context & remote;
            model::Gpt2Context & simulated;
            net::RemotePart & part;
            const char * what;
        };
        for (const Pair & p : {Pair{remote_head, simulated_head, head, "head"},
                               Pair{remote_layer, simulated_layer, attention, "layer"}}) {
            const size_t runs_before = p.part.runs().size();
            const model::GenerateResult got = model::generate(p.remote, prompt, params);
            const model::GenerateResult expected = model::generate(p.simulated, prompt, params);
            EXPECT_EQ(got.tokens, expected.tokens) << p.what;
            EXPECT_EQ(got.tokens.size(), 4u) << p.what;
            // The prefill and every decode step went to the server.
            EXPECT_EQ(p.part.runs().size() - runs_before, size_t(1 + got.n_decode)) << p.what;
            EXPECT_EQ(p.part.runs()[runs_before].first, 0) << p.what;
            // Logits of one more token, bit for bit.
            const std::vector<int32_t> next = {got.tokens.back()};
            const auto a = p.remote.eval(next);
            const std::vector<float> remote_logits(a.begin(), a.end());
            const auto b = p.simulated.eval(next);
            EXPECT_EQ(remote_logits, std::vector<float>(b.begin(), b.end())) << p.what;
        }
    }
}

// The client's copy of the model without the protected weights: NaN in layer 0's c_attn
// columns of the served head, or in the whole of layer 0's c_attn and c_proj for the block.
// Generation through the server must not notice (a read would spread NaN into the logits).
model::Gpt2Model without_protected_weights(bool whole_block) {
    const model::Gpt2Model & m = test_model();
    model::Gpt2Model client;
    client.hparams = m.hparams;
    client.wte = m.wte;
    client.wpe = m.wpe;
    client.ln_f_g = m.ln_f_g;
    client.ln_f_b = m.ln_f_b;
    client.lm_head = m.lm_head;
    client.layers = m.layers;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    model::Gpt2Layer & layer = client.layers[0];
    if (whole_block) {
        layer.attn_w = client.own(std::vector<float>(layer.attn_w.size(), nan));
        layer.attn_b = client.own(std::vector<float>(layer.attn_b.size(), nan));
        layer.attn_proj_w = client.own(std::vector<float>(layer.attn_proj_w.size(), nan));
        layer.attn_proj_b = client.own(std::vector<float>(layer.attn_proj_b.size(), nan));
        return client;
    }
    // Head 1's columns of q, k and v: column t * n_embd + head * head_dim + c.
    std::vector<float> w(layer.attn_w.begin(), layer.attn_w.end()), b(layer.attn_b.begin(), layer.attn_b.end());
    const size_t cols = size_t(3 * kEmbd);
    for (size_t t = 0; t < 3; ++t)
        for (size_t c = 0; c < size_t(kHeadDim); ++c) {
            const size_t col = t * size_t(kEmbd) + size_t(kHeadDim) + c;
            b[col] = nan;
            for (size_t r = 0; r < size_t(kEmbd); ++r) w[r * cols + col] = nan;
        }
    layer.attn_w = client.own(std::move(w));
    layer.attn_b = client.own(std::move(b));
    return client;
}

TEST(NetServer, ClientNeverReadsTheProtectedWeights) {
    TestServer head_server(served_head()), attention_server(served_attention());
    model::GenerateParams params;
    params.n_predict = 4;
    const std::vector<int32_t> prompt = {3, 14, 15};
    for (const bool block : {false, true}) {
        const model::Gpt2Model client_model = without_protected_weights(block);
        net::RemotePart part(block ? attention_server.url() : head_server.url(), block ? kAttentionName : kHeadName, kBits,
                             kEmbd);
        model::Gpt2Context remote(client_model), simulated(test_model());
        if (block) {
            remote.set_layer_attention(0, part.layer_seam());
            simulated.set_layer_attention(0, std::make_unique<QuantizedLayerAttention>(test_attention(), Executor::simulate));
        } else {
            remote.set_head_attention(0, 1, part.head_seam());
            simulated.set_head_attention(0, 1, std::make_unique<QuantizedHeadAttention>(test_head(), Executor::simulate));
        }
        const model::GenerateResult got = model::generate(remote, prompt, params);
        EXPECT_EQ(got.tokens, model::generate(simulated, prompt, params).tokens) << (block ? "block" : "head");
        const auto logits = remote.eval(std::vector<int32_t>{got.tokens.back()});
        for (float v : logits) ASSERT_TRUE(std::isfinite(v)) << (block ? "block" : "head");
        // And the NaN copy does reach the model when the part is not replaced.
        model::Gpt2Context unprotected(client_model);
        const auto poisoned = unprotected.eval(prompt);
        EXPECT_TRUE(std::any_of(poisoned.begin(), poisoned.end(), [](float v) { return std::isnan(v); }));
    }
}

TEST(NetServer, RejectsBadRequestsAndKeepsServing) {
    net::ServerOptions options;
    options.max_positions = 8;
    TestServer server(served_head(), options);
    const quant::QuantizedHead & head = test_head();
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);

    const auto info = http.Get("/v1/info");
    ASSERT_TRUE(info);
    ASSERT_EQ(info->status, 200);
    const net::PartManifest m = net::PartManifest::from_json(info->body);
    EXPECT_EQ(m.part, kHeadName);
    EXPECT_EQ(m.n_bits, kBits);
    EXPECT_EQ(m.max_positions, 8);
    EXPECT_EQ(m.max_sessions, options.max_sessions);
    EXPECT_EQ(m.to_json(), server.manifest().to_json());

    const RawClient client(test_params());
    EXPECT_LE(client.key_upload.size(), m.server_key_bytes);
    const auto created = post(http, "/v1/sessions", client.key_upload);
    const std::string token = session_token(created);
    ASSERT_EQ(token.size(), 64u) << (created ? created->body : "no answer");

    // The right values for x: rows of the whole sequence (rows depend only on the positions
    // before them).
    const std::vector<float> x = test::normal_x(size_t(8) * kEmbd, 41);
    const std::vector<int64_t> x_int = m.quantize_inputs(x);
    std::vector<float> expected(size_t(8) * kHeadDim);
    QuantizedHeadAttention(head, Executor::simulate).forward(x, 8, 0, expected);
    auto inputs = [&](int32_t first, int32_t n_new) {
        return std::span(x_int).subspan(size_t(first) * kEmbd, size_t(n_new) * kEmbd);
    };

    // A valid request at the session's position (a restart when the session is full): its
    // values prove that the session is as it was.
    int32_t position = 0;
    auto still_serving = [&](const std::string & after) {
        if (position == 8) position = 0;
        const int32_t p = position++;
        const auto res =
            post(http, "/v1/eval", client.eval_body(inputs(p, 1), m.input_delta_log2, uint32_t(p), 1), bearer(token));
        ASSERT_TRUE(res) << after;
        ASSERT_EQ(res->status, 200) << after << ": " << res->body;
        const std::vector<float> got = to_reals(client.decode(res->body, m.output_delta_log2), m.output_unit);
        EXPECT_EQ(got, std::vector<float>(expected.begin() + ptrdiff_t(p) * kHeadDim,
                                          expected.begin() + ptrdiff_t(p + 1) * kHeadDim))
            << "after " << after;
    };
    still_serving("the first request");

    // Key uploads: garbage, truncated, oversized, another parameter set.
    expect_error(post(http, "/v1/sessions", "hello"), 400, "garbage key upload");
    expect_error(post(http, "/v1/sessions", ""), 400, "empty key upload");
    expect_error(post(http, "/v1/sessions", client.key_upload.substr(0, client.key_upload.size() - 1)), 400,
                 "key upload without its last byte");
    expect_error(post(http, "/v1/sessions", client.key_upload.substr(0, client.key_upload.size() / 2)), 400,
                 "half a key upload");
    std::string bad_key = client.key_upload;
    bad_key[0] = 'X';
    expect_error(post(http, "/v1/sessions", bad_key), 400, "key upload with a bad magic", "magic");
    // Oversized bodies are refused from their Content-Length, before they are sent.
    auto announced = [&](const char * path, uint64_t length, const std::string & fields = {}) {
        return test::raw_request(server.port(), std::string("POST ") + path + " HTTP/1.1\r\nContent-Length: " +
                                                    std::to_string(length) + "\r\n" + fields + "\r\n");
    };
    EXPECT_EQ(announced("/v1/sessions", m.server_key_bytes + 1).status, 413);
    EXPECT_EQ(announced("/v1/sessions", uint64_t{1} << 40).status, 413);
    const RawClient other(tfhe::parameters_by_name("INSECURE_TEST_4BIT"));
    expect_error(post(http, "/v1/sessions", other.key_upload), 400, "key upload for INSECURE_TEST_4BIT",
                 "parameter set");
    EXPECT_EQ(server.server().session_count(), 1u);
    still_serving("bad key uploads");

    // Authorization.
    const std::string one = client.eval_body(inputs(position, 1), m.input_delta_log2, uint32_t(position), 1);
    expect_error(post(http, "/v1/eval", one), 401, "eval without a token");
    expect_error(post(http, "/v1/eval", one, {{"Authorization", "Basic " + token}}), 401, "eval with Basic");
    expect_error(post(http, "/v1/eval", one, {{"Authorization", "Bearer "}}), 401, "eval with an empty token");
    expect_error(post(http, "/v1/eval", one, bearer(std::string(64, 'a'))), 404, "eval with an unknown token");
    expect_error(post(http, "/v1/eval", one, bearer(token.substr(0, 63))), 404, "eval with a truncated token");
    expect_error(http.Delete("/v1/session"), 401, "delete without a token");
    expect_error(http.Delete("/v1/session", bearer(std::string(64, 'b'))), 404, "delete of an unknown session");
    expect_error(http.Get("/v1/nothing"), 404, "unknown path");
    still_serving("unauthorized requests");

    // Eval bodies: garbage, truncated, another message, oversized, another parameter set.
    expect_error(post(http, "/v1/eval", "garbage", bearer(token)), 400, "garbage eval");
    expect_error(post(http, "/v1/eval", one.substr(0, one.size() - 1), bearer(token)), 400, "truncated eval");
    expect_error(post(http, "/v1/eval", one.substr(0, 20), bearer(token)), 400, "eval cut in its header");
    expect_error(post(http, "/v1/eval", one + "x", bearer(token)), 400, "eval with a trailing byte");
    expect_error(post(http, "/v1/eval", client.key_upload.substr(0, 1000), bearer(token)), 400,
                 "a key upload as eval", "message type");
    EXPECT_EQ(announced("/v1/eval", client.key_upload.size(), "Authorization: Bearer " + token + "\r\n").status, 413);
    EXPECT_EQ(announced("/v1/eval", m.max_request_bytes + 1, "Authorization: Bearer " + token + "\r\n").status, 413);
    // The evaluation limit is what max_positions positions need (with a seed per ciphertext).
    EXPECT_EQ(m.max_request_bytes,
              tfhe::serialized_seeded_lwe_ciphertext_vector_size(test_params(), tfhe::LweKeyChoice::Big, 8 * kEmbd) +
                  40 * 8 * kEmbd + 4096);
    expect_error(post(http, "/v1/eval", other.eval_body(inputs(position, 1), m.input_delta_log2, uint32_t(position), 1),
                      bearer(token)),
                 400, "eval ciphertexts for INSECURE_TEST_4BIT", "parameter set");
    still_serving("bad eval bodies");

    // Positions and counts.
    auto eval_at = [&](uint32_t n_past, uint32_t n_new, size_t rows) {
        const std::vector<int64_t> zeros(rows * kEmbd, 0);
        return post(http, "/v1/eval", client.eval_body(zeros, m.input_delta_log2, n_past, n_new), bearer(token));
    };
    ASSERT_GE(position, 2);
    expect_error(eval_at(uint32_t(position + 1), 1, 1), 409, "eval past the session's position", "position");
    expect_error(eval_at(uint32_t(position - 1), 1, 1), 409, "eval before the session's position", "position");
    expect_error(eval_at(0xffffffffu, 1, 1), 409, "eval at position 2^32 - 1");
    expect_error(eval_at(uint32_t(position), 0, 1), 400, "eval of 0 positions");
    expect_error(eval_at(0, 0, 1), 400, "restart with 0 positions");
    expect_error(eval_at(uint32_t(position), uint32_t(8 - position + 1), size_t(8 - position + 1)), 400,
                 "eval past max_positions");
    expect_error(eval_at(0, 9, 9), 400, "restart with 9 positions");
    expect_error(eval_at(uint32_t(position), 0xffffffffu, 1), 400, "eval of 2^32 - 1 positions");
    {
        const std::vector<int64_t> zeros(kEmbd - 1, 0);
        expect_error(post(http, "/v1/eval", client.eval_body(zeros, m.input_delta_log2, uint32_t(position), 1),
                          bearer(token)),
                     400, "one ciphertext short", "input ciphertexts");
    }
    expect_error(eval_at(uint32_t(position), 1, 2), 400, "two positions' ciphertexts for one", "input ciphertexts");
    expect_error(eval_at(uint32_t(position), 2, 1), 400, "one position's ciphertexts for two", "input ciphertexts");
    still_serving("requests at wrong positions and with wrong counts");

    // The valid requests filled the session: a restart at 0, then on to the end.
    while (position < 8) still_serving("a valid request");
    expect_error(eval_at(8, 1, 1), 400, "eval past a full session");
    still_serving("a request past the end"); // restarts
    EXPECT_EQ(position, 1);

    // Closing: 204, then the token is gone.
    const auto closed = http.Delete("/v1/session", bearer(token));
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->status, 204);
    EXPECT_EQ(server.server().session_count(), 0u);
    expect_error(post(http, "/v1/eval", one, bearer(token)), 404, "eval after close");
    expect_error(http.Delete("/v1/session", bearer(token)), 404, "second close");
}

TEST(NetServer, SessionLimit) {
    net::ServerOptions options;
    options.max_sessions = 2;
    TestServer server(served_head(), options);
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const RawClient client(test_params());
    const std::string a = session_token(post(http, "/v1/sessions", client.key_upload));
    const std::string b = session_token(post(http, "/v1/sessions", client.key_upload));
    ASSERT_EQ(a.size(), 64u);
    ASSERT_EQ(b.size(), 64u);
    EXPECT_NE(a, b);
    EXPECT_EQ(server.server().session_count(), 2u);
    expect_error(post(http, "/v1/sessions", client.key_upload), 503, "a third session", "maximum");
    expect_error(post(http, "/v1/sessions", "garbage"), 503, "a third session, garbage");
    // A client learns it from the server's answer.
    try {
        net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
        ADD_FAILURE() << "a third session was opened";
    } catch (const Error & e) {
        EXPECT_NE(std::string(e.what()).find("503"), std::string::npos) << e.what();
    }
    EXPECT_EQ(server.server().session_count(), 2u);

    const auto closed = http.Delete("/v1/session", bearer(a));
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->status, 204);
    EXPECT_EQ(server.server().session_count(), 1u);
    const std::string c = session_token(post(http, "/v1/sessions", client.key_upload));
    EXPECT_EQ(c.size(), 64u);
    expect_error(post(http, "/v1/sessions", client.key_upload), 503, "a third session again");
    // The remaining sessions work.
    const net::PartManifest & m = server.manifest();
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(kEmbd, 51));
    for (const std::string & token : {b, c}) {
        const auto res = post(http, "/v1/eval", client.eval_body(x, m.input_delta_log2, 0, 1), bearer(token));
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << res->body;
    }
}

TEST(NetServer, IdleSessionsExpire) {
    net::ServerOptions options;
    options.idle_timeout_seconds = 1.0; // swept every 0.25 s
    TestServer server(served_head(), options);
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const RawClient client(test_params());
    const std::string token = session_token(post(http, "/v1/sessions", client.key_upload));
    ASSERT_EQ(token.size(), 64u);
    const net::PartManifest & m = server.manifest();
    EXPECT_EQ(m.idle_timeout_seconds, 1.0);
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(kEmbd, 61));
    const auto first = post(http, "/v1/eval", client.eval_body(x, m.input_delta_log2, 0, 1), bearer(token));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200) << first->body;

    // Wait (without touching the session) until the sweeper drops it; the deadline only ends a
    // broken test.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (server.server().session_count() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(server.server().session_count(), 0u);
    expect_error(post(http, "/v1/eval", client.eval_body(x, m.input_delta_log2, 1, 1), bearer(token)), 404,
                 "eval on an expired session", "expired");
    EXPECT_EQ(session_token(post(http, "/v1/sessions", client.key_upload)).size(), 64u);
}

TEST(NetServer, IdleTimeCountsFromTheEndOfARequest) {
    // An evaluation longer than the idle timeout (6 positions on one thread: about 2 s here)
    // keeps its session: half a timeout after the answer, when the sweeper (every quarter
    // timeout) would have dropped a session idle since the start of its request.
    ThreadPool one_thread(1);
    net::ServerOptions options;
    options.idle_timeout_seconds = 1.0;
    TestServer server(served_head(), options, one_thread);
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const RawClient client(test_params());
    const std::string token = session_token(post(http, "/v1/sessions", client.key_upload));
    ASSERT_EQ(token.size(), 64u);
    const net::PartManifest & m = server.manifest();
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(size_t(6) * kEmbd, 65));
    const auto start = std::chrono::steady_clock::now();
    const auto res = post(http, "/v1/eval", client.eval_body(x, m.input_delta_log2, 0, 6), bearer(token));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    std::printf("a request of %.2f s with an idle timeout of 1 s%s\n", seconds,
                seconds > 1.0 ? "" : " (too fast to show anything)");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(server.server().session_count(), 1u);
    const auto next = post(http, "/v1/eval", client.eval_body(std::span(x).first(kEmbd), m.input_delta_log2, 0, 1),
                           bearer(token));
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200) << next->body;
}

TEST(NetServer, ProgressWhileEvaluating) {
    // The evaluation is held after its first bootstrap batch until the client's progress poll
    // (about once a second) has seen it mid-way, so the test does not depend on how fast the
    // machine bootstraps: the client sees the server's counts grow up to the request's total,
    // and the session reads 0 / 0 once the answer is in.
    net::ServedPart served = served_head();
    std::promise<void> seen_mid_way;
    std::shared_future<void> resume = seen_mid_way.get_future().share();
    auto held = std::make_shared<std::atomic<bool>>(false);
    served.on_batch = [resume, held](int64_t done, int64_t total) {
        if (done > 0 && done < total && !held->exchange(true))
            resume.wait_for(std::chrono::seconds(120)); // only a broken test waits this long
    };
    TestServer server(served);
    net::RemotePart part(server.url(), kHeadName, kBits, kEmbd);
    struct Seen {
        int64_t done, total;
    };
    std::vector<Seen> seen;
    bool released = false;
    part.on_progress = [&](int32_t first, int32_t n, int64_t done, int64_t total, double) {
        EXPECT_EQ(first, 0);
        EXPECT_EQ(n, 10);
        seen.push_back({done, total});
        if (!released && done > 0 && done < total) {
            released = true;
            seen_mid_way.set_value();
        }
    };
    part.run(test::normal_x(size_t(10) * kEmbd, 71), 10, 0);
    ASSERT_EQ(part.runs().size(), 1u);
    const int64_t total = int64_t(part.runs()[0].bootstraps);
    ASSERT_TRUE(released) << "no progress report showed the evaluation mid-way";
    for (size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].total, total);
        EXPECT_LE(seen[i].done, total);
        if (i > 0) {
            EXPECT_GE(seen[i].done, seen[i - 1].done);
        }
    }
    // Idle sessions read 0 / 0; the call needs a session.
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const RawClient client(test_params());
    const std::string token = session_token(post(http, "/v1/sessions", client.key_upload));
    const auto idle = http.Get("/v1/progress", bearer(token));
    ASSERT_TRUE(idle);
    EXPECT_EQ(idle->status, 200);
    EXPECT_EQ(nlohmann::json::parse(idle->body), (nlohmann::json{{"done", 0}, {"total", 0}}));
    const auto anonymous = http.Get("/v1/progress");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
}

TEST(NetServer, ClientChecksTheServer) {
    TestServer server(served_head());
    EXPECT_THROW(net::RemotePart(server.url(), "layer0.head0", kBits, kEmbd), Error);
    EXPECT_THROW(net::RemotePart(server.url(), kHeadName, 6, kEmbd), Error);
    EXPECT_THROW(net::RemotePart(server.url(), kHeadName, kBits, 128), Error);
    EXPECT_THROW(net::RemotePart("http://127.0.0.1:1", kHeadName, kBits, kEmbd), Error);
    EXPECT_EQ(server.server().session_count(), 0u);
    // Positions out of order, or past the server's limit, fail before anything is sent.
    net::RemotePart remote(server.url(), "", 0, kEmbd);
    const std::vector<float> x = test::normal_x(size_t(2) * kEmbd, 71);
    EXPECT_THROW(remote.run(x, 1, 1), Error);
    EXPECT_THROW(remote.run(x, 0, 0), Error);
    EXPECT_THROW(remote.run(x, 3, 0), Error); // x holds 2 positions
    EXPECT_THROW(remote.run(x, 1, remote.manifest().max_positions), Error);
    EXPECT_TRUE(remote.runs().empty());
    EXPECT_EQ(remote.run(x, 2, 0).size(), size_t(2) * kHeadDim);
}

TEST(NetServer, ConcurrentClients) {
    // Three clients, each with its own sequence and schedule, at the same time.
    TestServer server(served_head());
    const std::vector<std::vector<Step>> schedules = {
        {{0, 2}, {2, 1}},
        {{0, 1}, {1, 1}, {2, 1}},
        {{0, 2}, {0, 1}, {1, 2}},
    };
    std::vector<std::vector<float>> xs;
    for (uint32_t c = 0; c < 3; ++c) xs.push_back(test::normal_x(size_t(3) * kEmbd, 80 + c));
    std::vector<std::vector<std::vector<float>>> got(3);
    std::vector<std::string> errors(3);
    std::vector<std::thread> threads;
    for (size_t c = 0; c < 3; ++c)
        threads.emplace_back([&, c] {
            try {
                net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
                got[c] = run_remote(remote, xs[c], schedules[c]);
            } catch (const std::exception & e) {
                errors[c] = e.what();
            }
        });
    for (auto & t : threads) t.join();
    for (size_t c = 0; c < 3; ++c) {
        EXPECT_EQ(errors[c], "") << "client " << c;
        QuantizedHeadAttention whole(test_head(), Executor::simulate);
        const auto expected = run_local(whole, xs[c], kHeadDim, schedules[c]);
        EXPECT_EQ(got[c], expected) << "client " << c;
    }
    EXPECT_EQ(server.server().session_count(), 0u); // each client closed its session
}


TEST(NetServer, ClientOutlivesClosedIdleConnections) {
    // The server closes connections idle for longer than its idle timeout; a client that
    // waited longer (key generation, a user between prompts) goes on as if nothing happened.
    net::ServerOptions options;
    options.http.idle_timeout_seconds = 0.2;
    TestServer server(served_head(), options);
    net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
    const std::vector<float> x = test::normal_x(size_t(2) * kEmbd, 101);
    EXPECT_EQ(remote.run(std::span(x).first(kEmbd), 1, 0).size(), size_t(kHeadDim));
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    EXPECT_EQ(remote.run(std::span(x).subspan(kEmbd), 1, 1).size(), size_t(kHeadDim));
}

} // namespace
