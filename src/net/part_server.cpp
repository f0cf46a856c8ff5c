#include "net/part_server.h"

#include "circuit/encrypted_executor.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "tfhe/serialization/serialization.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

namespace fhegpt::net {

namespace {

// An error answer with its HTTP status (bad input of any other kind is 400).
class RequestError : public Error {
public:
    RequestError(int status, const std::string & message) : Error(message), status(status) {}
    int status;
};

constexpr size_t kMaxCachedCircuits = 64;
constexpr std::string_view kRequestSource = "<eval request>";

std::string error_json(const std::string & message) { return nlohmann::json{{"error", message}}.dump(); }

// What the logger prints about the request this connection thread is serving.
std::string & request_detail() {
    thread_local std::string detail;
    return detail;
}
std::chrono::steady_clock::time_point & request_start() {
    thread_local std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    return start;
}

} // namespace

PartServer::PartServer(ServedPart part, ServerOptions options, ThreadPool & pool)
    : part_(std::move(part)), options_(std::move(options)), pool_(pool), http_(std::make_unique<httplib::Server>()),
      sessions_(options_.max_sessions, options_.idle_timeout_seconds) {
    PartManifest & m = part_.manifest;
    if (options_.max_positions <= 0) fail("server: --max-positions must be positive");
    if (!part_.build_row_circuit) fail("server: no circuit for {}", m.part);
    const tfhe::TfheParameters & params = m.parameters();
    const tfhe::EvaluationKeySizes keys = tfhe::serialized_evaluation_key_sizes(params);
    // A compressed key bundle: its blob header, the two or three part blobs and their lengths.
    m.server_key_bytes = keys.compressed_upload_bytes() + 4096;
    const uint64_t eval_bytes = tfhe::serialized_seeded_lwe_ciphertext_vector_size(
        params, tfhe::LweKeyChoice::Big, uint64_t(options_.max_positions) * uint64_t(m.n_embd));
    m.max_request_bytes = std::max(m.server_key_bytes, eval_bytes) + 4096;
    m.max_positions = options_.max_positions;
    m.max_sessions = options_.max_sessions;
    m.idle_timeout_seconds = options_.idle_timeout_seconds;
    http_->set_payload_max_length(size_t(m.max_request_bytes));
    http_->set_read_timeout(60, 0);
    http_->set_write_timeout(60, 0);
    add_routes();
    sweeper_ = std::thread([this] { sweep_idle_sessions(); });
}

PartServer::~PartServer() {
    stop();
    {
        std::lock_guard lock(sweeper_mutex_);
        stopping_ = true;
    }
    sweeper_cv_.notify_all();
    sweeper_.join();
}

int PartServer::bind() {
    int port = options_.port;
    if (port == 0) {
        port = http_->bind_to_any_port(options_.host);
    } else if (!http_->bind_to_port(options_.host, port)) {
        port = -1;
    }
    if (port < 0) fail("server: cannot listen on {}:{}", options_.host, options_.port);
    return port;
}

void PartServer::serve() {
    // Paired with stop(): either stop() sees serving_ and waits for the listener to run, or
    // serve() sees the request here (seq_cst), so a stop() racing with the start is not lost.
    serving_ = true;
    const bool ok = stop_requested_ || http_->listen_after_bind();
    serving_ = false;
    if (!ok) fail("server: listening failed");
}

void PartServer::stop() {
    stop_requested_ = true;
    while (serving_ && !http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http_->stop();
}

uint64_t PartServer::cache_bytes_per_position() const {
    const tfhe::TfheParameters & params = part_.manifest.parameters();
    return uint64_t(part_.cache_parts) * uint64_t(part_.cache_cols) * (params.big_lwe_dimension().value + 1) * 8;
}

void PartServer::sweep_idle_sessions() {
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::min(options_.idle_timeout_seconds / 4, 10.0)));
    std::unique_lock lock(sweeper_mutex_);
    while (!sweeper_cv_.wait_for(lock, period, [this] { return stopping_; })) {
        const size_t expired = sessions_.expire_idle();
        if (expired && options_.log) {
            std::lock_guard log_lock(log_mutex_);
            std::fprintf(stderr, "fhegpt-server: %zu idle session(s) expired, %zu left\n", expired, sessions_.size());
        }
    }
}

std::shared_ptr<const circuit::Circuit> PartServer::circuit_for(int32_t first, int32_t n) {
    {
        std::lock_guard lock(circuits_mutex_);
        auto it = circuits_.find({first, n});
        if (it != circuits_.end()) return it->second;
    }
    // Built outside the lock: two sessions at the same position may both build it, once.
    auto built = std::make_shared<const circuit::Circuit>(part_.build_row_circuit(first, n));
    std::lock_guard lock(circuits_mutex_);
    if (circuits_.size() >= kMaxCachedCircuits) circuits_.erase(circuits_.begin()); // the shortest prefixes first
    return circuits_.emplace(std::make_pair(first, n), std::move(built)).first->second;
}

std::string PartServer::create_session(const std::string & body, std::string & log) {
    if (sessions_.full())
        throw RequestError(503, fmt::format("the server has its maximum of {} sessions; try again later",
                                            options_.max_sessions));
    const KeyUpload upload = decode_key_upload(message_bytes(body));
    const tfhe::TfheParameters & params = part_.manifest.parameters();
    tfhe::ServerKey key = tfhe::decompress_server_key(
        tfhe::deserialize_compressed_server_key(upload.server_key, params, "<uploaded server key>"));
    auto session = std::make_shared<Session>(std::move(key));
    session->cache.resize(size_t(part_.cache_parts));
    std::string token;
    try {
        token = sessions_.add(std::move(session));
    } catch (const Error & e) { // full: another upload took the last slot meanwhile
        throw RequestError(503, e.what());
    }
    log = fmt::format("session={} created ({} sessions)", SessionTable::log_name(token), sessions_.size());
    return nlohmann::json{{"session", token},
                          {"parameter_set", params.name},
                          {"max_positions", options_.max_positions},
                          {"idle_timeout_seconds", options_.idle_timeout_seconds}}
        .dump();
}

std::string PartServer::evaluate(Session & session, const std::string & body, std::string & log) {
    const PartManifest & m = part_.manifest;
    const tfhe::TfheParameters & params = m.parameters();
    const EvalRequest request = decode_eval_request(message_bytes(body));
    const int32_t n_past = int32_t(std::min<uint32_t>(request.n_past, uint32_t(INT32_MAX)));
    if (n_past != 0 && n_past != session.n_past)
        throw RequestError(409, fmt::format("the session is at position {}, the request starts at {} (0 starts a new "
                                            "sequence)",
                                            session.n_past, request.n_past));
    if (request.n_new == 0 || request.n_new > uint32_t(options_.max_positions - n_past))
        fail("{} new positions after {}: a session holds 1 to {} positions", request.n_new, n_past, options_.max_positions);
    const int32_t n_new = int32_t(request.n_new), n = n_past + n_new;
    // Before decoding: a blob much larger than n_new positions can take (8 bytes a ciphertext
    // with one shared seed, 48 with a seed each) would only make objects to throw away.
    const uint64_t count = uint64_t(n_new) * uint64_t(m.n_embd);
    if (request.inputs.size() >
        tfhe::serialized_seeded_lwe_ciphertext_vector_size(params, tfhe::LweKeyChoice::Big, count) + 40 * count + 256)
        fail("{} bytes of input ciphertexts for {} positions", request.inputs.size(), n_new);
    const auto seeded = tfhe::deserialize_seeded_lwe_ciphertext_vector(request.inputs, params, tfhe::LweKeyChoice::Big,
                                                                       kRequestSource);
    if (seeded.size() != size_t(n_new) * size_t(m.n_embd))
        fail("{} input ciphertexts for {} positions of {} inputs", seeded.size(), n_new, m.n_embd);
    std::vector<tfhe::LweCiphertext> x;
    x.reserve(seeded.size());
    for (const auto & ct : seeded) x.push_back(tfhe::decompress_seeded_lwe_ciphertext(ct));

    // Inputs: the new positions, then the cache (none when a new sequence starts).
    const std::shared_ptr<const circuit::Circuit> circuit = circuit_for(n_past, n);
    std::vector<const tfhe::LweCiphertext *> inputs;
    for (const auto & ct : x) inputs.push_back(&ct);
    if (n_past > 0)
        for (const auto & part : session.cache)
            for (const auto & ct : part) inputs.push_back(&ct);
    circuit::ExecutionStats stats;
    const auto progress = [&session](int64_t done, int64_t total) {
        session.progress_total = total;
        session.progress_done = done;
    };
    std::vector<tfhe::LweCiphertext> outputs;
    {
        // Progress reads 0 / 0 whenever no evaluation runs, however this one ends.
        struct ProgressReset {
            Session & session;
            ~ProgressReset() { session.progress_done = session.progress_total = 0; }
        } reset_progress{session};
        outputs = circuit::run_encrypted(*circuit, session.server_key, inputs, pool_, progress, &stats);
    }

    // Commit: the new rows go back, their keys and values join the cache.
    const size_t rows = size_t(n_new) * size_t(m.output_cols), state = size_t(n_new) * size_t(part_.cache_cols);
    if (outputs.size() != rows + state * session.cache.size()) fail("server: the circuit has {} outputs", outputs.size());
    if (n_past == 0)
        for (auto & part : session.cache) part.clear();
    for (size_t p = 0; p < session.cache.size(); ++p) {
        auto begin = outputs.begin() + ptrdiff_t(rows + p * state);
        session.cache[p].insert(session.cache[p].end(), std::make_move_iterator(begin),
                                std::make_move_iterator(begin + ptrdiff_t(state)));
    }
    session.n_past = n;
    ++session.requests;

    EvalResponse response;
    response.first = uint32_t(n_past);
    response.n_new = uint32_t(n_new);
    response.bootstraps = uint64_t(stats.bootstraps);
    response.seconds = stats.seconds;
    response.outputs = tfhe::serialize_lwe_ciphertext_vector(std::span(outputs).first(rows), params);
    log = fmt::format("rows {}..{} bootstraps={} eval={:.2f}s", n_past, n - 1, stats.bootstraps, stats.seconds);
    return encode(response);
}

void PartServer::add_routes() {
    // Runs a handler and turns every failure into an error answer; the logger below writes one
    // line per request (also those that cpp-httplib answers itself, e.g. 413).
    auto handle = [](const httplib::Request &, httplib::Response & res, auto && body) {
        std::string & detail = request_detail();
        try {
            body(detail);
        } catch (const RequestError & e) {
            res.status = e.status;
            res.set_content(error_json(e.what()), "application/json");
            detail += e.what();
        } catch (const Error & e) {
            res.status = 400;
            res.set_content(error_json(e.what()), "application/json");
            detail += e.what();
        } catch (const std::bad_alloc &) {
            res.status = 503;
            res.set_content(error_json("the server is out of memory"), "application/json");
            detail += "out of memory";
        } catch (const std::exception & e) {
            res.status = 500;
            res.set_content(error_json("internal error"), "application/json");
            detail += e.what();
        }
    };
    http_->set_pre_routing_handler([](const httplib::Request &, httplib::Response &) {
        request_start() = std::chrono::steady_clock::now();
        request_detail().clear();
        return httplib::Server::HandlerResponse::Unhandled;
    });
    http_->set_logger([this](const httplib::Request & req, const httplib::Response & res) {
        if (!options_.log || (req.path == "/v1/progress" && res.status == 200)) return; // polled: not logged
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - request_start()).count();
        std::lock_guard lock(log_mutex_);
        std::fprintf(stderr, "fhegpt-server: %s %s %d in=%s out=%s %.3fs %s\n", req.method.c_str(), req.path.c_str(),
                     res.status, format_bytes(req.body.size()).c_str(), format_bytes(res.body.size()).c_str(), seconds,
                     request_detail().c_str());
        request_detail().clear();
    });
    auto session_of = [this](const httplib::Request & req, std::string & detail) {
        const std::string token = bearer_token(req.get_header_value("Authorization"));
        if (token.empty()) throw RequestError(401, "no session token (header Authorization: Bearer TOKEN)");
        std::shared_ptr<Session> session = sessions_.find(token);
        if (!session) throw RequestError(404, "unknown or expired session");
        detail = "session=" + SessionTable::log_name(token) + " ";
        return std::make_pair(token, session);
    };

    http_->Get("/v1/info", [=, this](const httplib::Request & req, httplib::Response & res) {
        handle(req, res, [&](std::string &) { res.set_content(part_.manifest.to_json(), "application/json"); });
    });
    http_->Post("/v1/sessions", [=, this](const httplib::Request & req, httplib::Response & res) {
        handle(req, res, [&](std::string & detail) {
            res.set_content(create_session(req.body, detail), "application/json");
            res.status = 201;
        });
    });
    http_->Post("/v1/eval", [=, this](const httplib::Request & req, httplib::Response & res) {
        handle(req, res, [&](std::string & detail) {
            auto [token, session] = session_of(req, detail);
            std::unique_lock lock(session->mutex, std::try_to_lock);
            if (!lock.owns_lock()) throw RequestError(409, "the session is busy with another request");
            std::string more;
            res.set_content(evaluate(*session, req.body, more), "application/octet-stream");
            // Marks it used again: idle time counts from the end of a request, not its start (an
            // evaluation longer than the timeout would otherwise lose its session right after).
            sessions_.find(token);
            detail += more;
        });
    });
    http_->Get("/v1/progress", [=](const httplib::Request & req, httplib::Response & res) {
        handle(req, res, [&](std::string & detail) {
            auto [token, session] = session_of(req, detail);
            res.set_content(nlohmann::json{{"done", session->progress_done.load()}, {"total", session->progress_total.load()}}.dump(),
                            "application/json");
        });
    });
    http_->Delete("/v1/session", [=, this](const httplib::Request & req, httplib::Response & res) {
        handle(req, res, [&](std::string & detail) {
            auto [token, session] = session_of(req, detail);
            sessions_.remove(token);
            res.status = 204;
            detail += "closed";
        });
    });
    http_->set_error_handler([](const httplib::Request &, httplib::Response & res) {
        if (res.body.empty()) res.set_content(error_json(fmt::format("HTTP {}", res.status)), "application/json");
    });
}

} // namespace fhegpt::net
