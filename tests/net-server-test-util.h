// Shared by the part-server tests: a small random GPT-2 model, its quantized head and attention
// block served on insecure test keys (INSECURE_TEST_4BIT_PBS_L2), an in-process PartServer on a
// free loopback port, and a client written against the wire format.
#pragma once

#include "circuit-test-util.h"
#include "circuit/head_calibration.h"
#include "circuit/quantized_attention.h"
#include "common/thread_pool.h"
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "net/part_server.h"
#include "net/protocol.h"
#include "net/served_part.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/keyset.h"
#include "tfhe/serialization/serialization.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace fhegpt::test {

// As the fhegpt client does: a server that closes a connection while a client writes gives
// that client an error, not SIGPIPE.
inline const bool kSigpipeIgnored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

inline constexpr int kBits = 4;
// Raw clients wait as long as RemotePart would: under sanitizers a key upload or an
// evaluation takes far longer than cpp-httplib's default of 5 s.
inline constexpr time_t kReadTimeoutSeconds = 3600;
inline constexpr int32_t kEmbd = 64, kHeadDim = 32;
inline constexpr const char * kHeadName = "layer0.head1";
inline constexpr const char * kAttentionName = "layer0.attn";

inline const tfhe::TfheParameters & test_params() { return tfhe::parameters_by_name("INSECURE_TEST_4BIT_PBS_L2"); }

inline const model::Gpt2Model & test_model() {
    static const model::Gpt2Model m = model::make_random_gpt2_model(test::small_attention_hparams(), 99, 0.1f);
    return m;
}

// 20 sequences of 15 positions, so that fresh sequences mostly stay in the calibrated ranges.
struct Calibration {
    std::vector<int32_t> lengths = std::vector<int32_t>(20, 15);
    std::vector<float> x = test::normal_x(size_t(20 * 15) * kEmbd, 5);
};

inline const Calibration & calibration() {
    static const Calibration cal;
    return cal;
}

inline const quant::QuantizedHead & test_head() {
    static const quant::QuantizedHead head = [] {
        quant::HeadQuantConfig config;
        config.n_bits = kBits;
        return circuit::quantize_head_for_circuit(model::head_qkv_weights(test_model(), 0, 1), calibration().x,
                                         calibration().lengths, config);
    }();
    return head;
}

inline const circuit::QuantizedAttention & test_attention() {
    static const circuit::QuantizedAttention attention = [] {
        quant::HeadQuantConfig config;
        config.n_bits = kBits;
        return circuit::quantize_attention(test_model(), 0, calibration().x, calibration().lengths, config);
    }();
    return attention;
}

inline net::ServedPart served_head() { return net::served_head(test_head(), kHeadName, kBits, test_params()); }
inline net::ServedPart served_attention() {
    return net::served_attention(test_attention(), kAttentionName, kBits, test_params());
}

// A PartServer on a free loopback port, serving on its own thread; its log lines are kept.
class TestServer {
public:
    explicit TestServer(net::ServedPart part, net::ServerOptions options = {}, ThreadPool & pool = ThreadPool::global())
        : server_(std::move(part), local(options), pool) {
        port_ = server_.bind();
        thread_ = std::thread([this] {
            try {
                server_.serve();
            } catch (const std::exception & e) {
                std::fprintf(stderr, "serve: %s\n", e.what());
            }
        });
    }
    ~TestServer() { stop(); }
    TestServer(const TestServer &) = delete;
    TestServer & operator=(const TestServer &) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int port() const { return port_; }
    net::PartServer & server() { return server_; }
    const net::PartManifest & manifest() const { return server_.manifest(); }
    // Stops the server and waits for serve() to return.
    void stop() {
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    std::vector<std::string> log_lines_with(const std::string & text) {
        std::lock_guard lock(log_->mutex);
        std::vector<std::string> out;
        for (const auto & l : log_->lines)
            if (l.find(text) != std::string::npos) out.push_back(l);
        return out;
    }
    // The log lines with `text` once there are `count` of them (a request is logged when its
    // answer has gone out, so the client may read the answer first), or after 30 s.
    std::vector<std::string> log_lines_with(const std::string & text, size_t count) {
        for (int i = 0; i < 600 && log_lines_with(text).size() < count; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return log_lines_with(text);
    }

private:
    struct Log {
        std::mutex mutex;
        std::vector<std::string> lines;
    };
    net::ServerOptions local(net::ServerOptions options) {
        options.host = "127.0.0.1";
        options.port = 0;
        options.log = false;
        options.log_sink = [log = log_](const std::string & line) {
            std::lock_guard lock(log->mutex);
            log->lines.push_back(line);
        };
        return options;
    }
    std::shared_ptr<Log> log_ = std::make_shared<Log>();
    net::PartServer server_;
    int port_ = 0;
    std::thread thread_;
};

// The same through the server: decoded integers scaled to reals as the seams do.
inline std::vector<float> to_reals(std::span<const int64_t> values, double unit) {
    std::vector<float> out;
    for (int64_t v : values) out.push_back(static_cast<float>(double(v) * unit));
    return out;
}

// A client written against the wire format: its own keys and raw requests.
struct RawClient {
    tfhe::ClientKey key;
    std::string key_upload; // a KeyUpload body

    explicit RawClient(const tfhe::TfheParameters & params)
        : key(tfhe::generate_client_key(params)),
          key_upload(net::encode(net::KeyUpload{
              tfhe::serialize_compressed_server_key(tfhe::generate_compressed_server_key(key))})) {}

    // An EvalRequest body: x_int encrypted (seeded) under the big key at 2^delta_log2.
    std::string eval_body(std::span<const int64_t> x_int, int delta_log2, uint32_t n_past, uint32_t n_new) const {
        const tfhe::Seed seed = tfhe::Seed::from_os();
        tfhe::RandomGenerator noise = tfhe::RandomGenerator::from_os();
        std::vector<tfhe::SeededLweCiphertext> inputs;
        for (size_t i = 0; i < x_int.size(); ++i)
            inputs.push_back(tfhe::encrypt_seeded_lwe_ciphertext(key.big_lwe_secret_key,
                                                                 circuit::encode_integer(x_int[i], delta_log2),
                                                                 key.parameters.glwe_noise, seed, i, noise));
        net::EvalRequest request;
        request.n_past = n_past;
        request.n_new = n_new;
        request.inputs = tfhe::serialize_seeded_lwe_ciphertext_vector(inputs, key.parameters);
        return net::encode(request);
    }

    std::vector<int64_t> decode(const std::string & body, int delta_log2) const {
        const net::EvalResponse response =
            net::decode_eval_response({reinterpret_cast<const uint8_t *>(body.data()), body.size()});
        const auto outputs =
            tfhe::deserialize_lwe_ciphertext_vector(response.outputs, key.parameters, tfhe::LweKeyChoice::Big);
        std::vector<int64_t> values;
        for (const auto & ct : outputs)
            values.push_back(circuit::decode_integer(tfhe::decrypt_lwe_ciphertext(key.big_lwe_secret_key, ct), delta_log2));
        return values;
    }
};

inline httplib::Headers bearer(const std::string & token) { return {{"Authorization", "Bearer " + token}}; }

inline httplib::Result post(httplib::Client & http, const char * path, const std::string & body, const httplib::Headers & headers = {}) {
    return http.Post(path, headers, body, "application/octet-stream");
}

// An error answer: the status and a JSON {"error": ...} that contains `message_part`.
inline void expect_error(const httplib::Result & result, int status, const std::string & what,
                  const std::string & message_part = {}) {
    ASSERT_TRUE(result) << what << ": no answer: " << httplib::to_string(result.error());
    EXPECT_EQ(result->status, status) << what << ": " << result->body;
    const nlohmann::json j = nlohmann::json::parse(result->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << what << ": body " << result->body;
    const std::string message = j["error"].get<std::string>();
    EXPECT_FALSE(message.empty()) << what;
    if (!message_part.empty()) {
        EXPECT_NE(message.find(message_part), std::string::npos) << what << ": " << message;
    }
}

// A session token from a 201 answer.
inline std::string session_token(const httplib::Result & result) {
    if (!result || result->status != 201) return {};
    const nlohmann::json j = nlohmann::json::parse(result->body, nullptr, false);
    return j.is_object() && j.contains("session") && j["session"].is_string() ? j["session"].get<std::string>() : "";
}

} // namespace fhegpt::test
