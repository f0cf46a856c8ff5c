#include "net/part_client.h"

#include "circuit/circuit.h"
#include "common/error.h"
#include "tfhe/algorithms/lwe_encryption.h"
#include "tfhe/serialization/serialization.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace fhegpt::net {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The response, or an error naming the server and what it said.
httplib::Response checked(httplib::Result && result, const std::string & url, const char * what) {
    if (!result) {
        const httplib::Error error = result.error();
        if (error == httplib::Error::Connection)
            fail("{}: {} failed: cannot connect (is fhegpt-server running there?)", url, what);
        fail("{}: {} failed: {} error", url, what, httplib::to_string(error));
    }
    if (result->status >= 400) {
        const nlohmann::json j = nlohmann::json::parse(result->body, nullptr, false);
        const std::string message =
            j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : result->body.substr(0, 200);
        fail("{}: {}: HTTP {}: {}", url, what, result->status, message);
    }
    return std::move(*result);
}

// http(s)://HOST[:PORT][/]: cpp-httplib takes anything else for a host name.
bool is_server_url(const std::string & url) {
    const size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return false;
    const std::string scheme = url.substr(0, scheme_end);
    std::string rest = url.substr(scheme_end + 3);
    if (scheme != "http" && scheme != "https") return false;
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    const size_t colon = rest.rfind(':');
    const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
    if (host.empty() || host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos)
        return false;
    if (colon == std::string::npos) return true;
    const std::string port = rest.substr(colon + 1);
    return !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos &&
           std::stoi(port) >= 1 && std::stoi(port) <= 65535;
}

} // namespace

PartClient::PartClient(const std::string & url, double read_timeout_seconds)
    : url_(url) {
    if (!is_server_url(url)) fail("--server {}: expected http://HOST:PORT", url);
    http_ = std::make_unique<httplib::Client>(url);
    progress_http_ = std::make_unique<httplib::Client>(url);
    if (!http_->is_valid() || !progress_http_->is_valid()) fail("--server {}: expected http://HOST:PORT", url);
    http_->set_connection_timeout(10, 0);
    http_->set_read_timeout(time_t(read_timeout_seconds), 0);
    http_->set_write_timeout(600, 0);
    http_->set_keep_alive(true);
    progress_http_->set_connection_timeout(10, 0);
    progress_http_->set_read_timeout(10, 0);
    progress_http_->set_keep_alive(true);
}

PartClient::~PartClient() {
    try {
        close_session();
    } catch (const std::exception &) { // the server may be gone already
    }
}

PartManifest PartClient::info() {
    const httplib::Response res = checked(http_->Get("/v1/info"), url_, "GET /v1/info");
    bytes_received_ += res.body.size();
    return PartManifest::from_json(res.body);
}

void PartClient::open_session(const tfhe::CompressedServerKey & key, const std::string & expected_part) {
    close_session();
    const std::string body = encode(KeyUpload{tfhe::serialize_compressed_server_key(key)});
    bytes_sent_ += body.size();
    httplib::Headers headers;
    if (!expected_part.empty()) headers.emplace("Fhegpt-Part", expected_part);
    const httplib::Response res = checked(http_->Post("/v1/sessions", headers, body, "application/octet-stream"), url_,
                                          "POST /v1/sessions (key upload)");
    bytes_received_ += res.body.size();
    const nlohmann::json j = nlohmann::json::parse(res.body, nullptr, false);
    if (!j.is_object() || !j.contains("session") || !j["session"].is_string() || j["session"].get<std::string>().empty())
        fail("{}: the server answered the key upload without a session token", url_);
    token_ = j["session"].get<std::string>();
}

EvalResponse PartClient::eval(const EvalRequest & request) {
    if (token_.empty()) fail("{}: no session", url_);
    const std::string body = encode(request);
    bytes_sent_ += body.size();
    const httplib::Headers headers = {{"Authorization", "Bearer " + token_}};
    const httplib::Response res = checked(http_->Post("/v1/eval", headers, body, "application/octet-stream"), url_, "POST /v1/eval");
    bytes_received_ += res.body.size();
    return decode_eval_response(message_bytes(res.body));
}

std::pair<int64_t, int64_t> PartClient::progress() {
    if (token_.empty()) fail("{}: no session", url_);
    const httplib::Headers headers = {{"Authorization", "Bearer " + token_}};
    const httplib::Response res = checked(progress_http_->Get("/v1/progress", headers), url_, "GET /v1/progress");
    const nlohmann::json j = nlohmann::json::parse(res.body, nullptr, false);
    if (!j.is_object() || !j.contains("done") || !j.contains("total") || !j["done"].is_number_integer() ||
        !j["total"].is_number_integer())
        fail("{}: a malformed progress answer", url_);
    return {j["done"].get<int64_t>(), j["total"].get<int64_t>()};
}

void PartClient::close_session() {
    if (token_.empty()) return;
    const httplib::Headers headers = {{"Authorization", "Bearer " + token_}};
    token_.clear();
    checked(http_->Delete("/v1/session", headers), url_, "DELETE /v1/session");
}

RemotePart::RemotePart(const std::string & url, const std::string & expected_part, int expected_bits, int32_t n_embd,
                       bool recompute)
    : client_(url), recompute_(recompute) {
    manifest_ = client_.info();
    if (!expected_part.empty() && manifest_.part != expected_part)
        fail("{} serves {}, not {}", url, manifest_.part, expected_part);
    if (expected_bits != 0 && manifest_.n_bits != expected_bits)
        fail("{} serves {} at {} bits, not {}", url, manifest_.part, manifest_.n_bits, expected_bits);
    if (manifest_.n_embd != n_embd) fail("{} serves a part of width {}, the model has {}", url, manifest_.n_embd, n_embd);
    const tfhe::TfheParameters & params = manifest_.parameters();

    auto start = Clock::now();
    key_ = tfhe::generate_client_key(params);
    const tfhe::CompressedServerKey server_key = tfhe::generate_compressed_server_key(*key_);
    keygen_seconds_ = seconds_since(start);
    start = Clock::now();
    const uint64_t sent_before = client_.bytes_sent();
    client_.open_session(server_key, expected_part);
    key_upload_bytes_ = client_.bytes_sent() - sent_before;
    upload_seconds_ = seconds_since(start);
}

std::vector<int64_t> RemotePart::run(std::span<const float> x, int32_t n_new, int32_t n_past) {
    if (n_past != 0 && n_past != n_past_) fail("remote part: called at position {} after {} positions", n_past, n_past_);
    if (n_new <= 0 || x.size() < size_t(n_new) * size_t(manifest_.n_embd))
        fail("remote part: bad shapes for {} new positions", n_new);
    if (n_past + n_new > manifest_.max_positions)
        fail("{}: the server holds at most {} positions per session, this needs {}", client_.url(), manifest_.max_positions,
             n_past + n_new);
    const auto start = Clock::now();
    const uint64_t sent_before = client_.bytes_sent(), received_before = client_.bytes_received();
    const tfhe::TfheParameters & params = key_->parameters;

    // Without the server's cache, the request starts at position 0 and brings every position.
    const std::span<const float> x_new = x.first(size_t(n_new) * size_t(manifest_.n_embd));
    if (recompute_) {
        if (n_past == 0) x_history_.clear();
        x_history_.insert(x_history_.end(), x_new.begin(), x_new.end());
    }
    const int32_t send_from = recompute_ ? 0 : n_past, send_count = recompute_ ? n_past + n_new : n_new;

    // Seeded encryption: one fresh public seed, stream i for input i, noise from the OS CSPRNG.
    const std::vector<int64_t> x_int = manifest_.quantize_inputs(recompute_ ? std::span<const float>(x_history_) : x_new);
    const tfhe::Seed seed = tfhe::Seed::from_os();
    tfhe::RandomGenerator noise = tfhe::RandomGenerator::from_os();
    std::vector<tfhe::SeededLweCiphertext> inputs;
    inputs.reserve(x_int.size());
    const size_t cols = size_t(manifest_.input_cols());
    for (size_t i = 0; i < x_int.size(); ++i)
        inputs.push_back(tfhe::encrypt_seeded_lwe_ciphertext(
            key_->big_lwe_secret_key, circuit::encode_integer(x_int[i], manifest_.input_delta_log2_of(int32_t(i % cols))),
            params.glwe_noise, seed, i, noise));
    EvalRequest request;
    request.n_past = uint32_t(send_from);
    request.n_new = uint32_t(send_count);
    request.inputs = tfhe::serialize_seeded_lwe_ciphertext_vector(inputs, params);
    const EvalResponse response = eval_with_progress(request, n_past, n_past + n_new);

    if (response.first != uint32_t(send_from) || response.n_new != uint32_t(send_count))
        fail("{}: answered rows {}..+{} for rows {}..+{}", client_.url(), response.first, response.n_new, send_from,
             send_count);
    const auto outputs =
        tfhe::deserialize_lwe_ciphertext_vector(response.outputs, params, tfhe::LweKeyChoice::Big, "<eval response>");
    const size_t out_cols = size_t(manifest_.output_cols);
    if (outputs.size() != size_t(send_count) * out_cols)
        fail("{}: {} output ciphertexts for {} rows of {}", client_.url(), outputs.size(), send_count, out_cols);
    // The new rows are the last n_new.
    const size_t skip = size_t(send_count - n_new) * out_cols;
    std::vector<int64_t> values(size_t(n_new) * out_cols);
    for (size_t k = 0; k < values.size(); ++k)
        values[k] = circuit::decode_integer(tfhe::decrypt_lwe_ciphertext(key_->big_lwe_secret_key, outputs[skip + k]),
                                            manifest_.output_delta_log2);
    n_past_ = n_past + n_new;

    RemoteRunRecord record;
    record.first = n_past;
    record.n = n_past + n_new;
    record.bootstraps = response.bootstraps;
    record.server_seconds = response.seconds;
    record.seconds = seconds_since(start);
    record.bytes_sent = client_.bytes_sent() - sent_before;
    record.bytes_received = client_.bytes_received() - received_before;
    runs_.push_back(record);
    if (on_run) on_run(record);
    return values;
}

EvalResponse RemotePart::eval_with_progress(const EvalRequest & request, int32_t first, int32_t n) {
    if (!on_progress) return client_.eval(request);
    // A poller asks the server about once a second until the answer is in; its failures only
    // cost progress lines, never the evaluation.
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    const auto start = Clock::now();
    std::thread poller([&] {
        std::unique_lock lock(mutex);
        while (!done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return done; })) {
            lock.unlock();
            try {
                const auto [bootstraps, total] = client_.progress();
                if (total > 0) on_progress(first, n, bootstraps, total, seconds_since(start));
            } catch (const std::exception &) {
            }
            lock.lock();
        }
    });
    auto finish = [&] {
        {
            std::lock_guard lock(mutex);
            done = true;
        }
        done_cv.notify_all();
        poller.join();
    };
    try {
        EvalResponse response = client_.eval(request);
        finish();
        return response;
    } catch (...) {
        finish();
        throw;
    }
}

namespace {

// The seams: the part's rows, scaled to reals.
template <typename Seam>
class RemoteSeam final : public Seam {
public:
    explicit RemoteSeam(RemotePart & part) : part_(part) {}
    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override {
        const PartManifest & m = part_.manifest();
        if (out.size() < size_t(n_new) * size_t(m.output_cols)) fail("remote part: bad shapes for {} new positions", n_new);
        const std::vector<int64_t> values = part_.run(x, n_new, n_past);
        for (size_t k = 0; k < values.size(); ++k)
            out[k] = static_cast<float>(double(values[k]) * m.output_unit_of(int32_t(k % size_t(m.output_cols))));
    }
    void reset() override {} // the next run starts at position 0, which drops the server's cache

private:
    RemotePart & part_;
};

} // namespace

std::unique_ptr<model::HeadAttention> RemotePart::head_seam() {
    if (manifest_.stream) fail("{} serves a run of whole blocks ({}), not a head", client_.url(), manifest_.part);
    return std::make_unique<RemoteSeam<model::HeadAttention>>(*this);
}

std::unique_ptr<model::LayerAttention> RemotePart::layer_seam() {
    if (manifest_.stream) fail("{} serves a run of whole blocks ({}), not an attention block", client_.url(), manifest_.part);
    return std::make_unique<RemoteSeam<model::LayerAttention>>(*this);
}

std::unique_ptr<model::BlockRange> RemotePart::block_seam() {
    if (!manifest_.stream) fail("{} serves {}, not a run of whole blocks", client_.url(), manifest_.part);
    return std::make_unique<RemoteSeam<model::BlockRange>>(*this);
}

} // namespace fhegpt::net
