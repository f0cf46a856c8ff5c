#include "net/part_server.h"

#include "circuit/encrypted_executor.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "net/request_log.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/serialization/serialization.h"

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

HttpResponse json_response(int status, std::string body, std::string detail = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.log_detail = std::move(detail);
    return r;
}

HttpResponse error_response(int status, const std::string & message, const std::string & detail_prefix = {}) {
    return json_response(status, nlohmann::json{{"error", message}}.dump(), detail_prefix + message);
}

// Runs a request's work and turns every failure into an error answer.
template <typename Work>
HttpResponse answer(std::string & detail, Work && work) {
    try {
        return work();
    } catch (const RequestError & e) {
        return error_response(e.status, e.what(), detail);
    } catch (const circuit::BootstrapRunnerFailure & e) { // the server's machines, not the request
        return error_response(503, e.what(), detail);
    } catch (const Error & e) {
        return error_response(400, e.what(), detail);
    } catch (const std::bad_alloc &) {
        return error_response(503, "the server is out of memory", detail);
    }
}

// A part name as a client sent it, safe to echo (JSON needs valid UTF-8; logs need one line).
std::string printable_part(const std::string & text) {
    const bool plain = text.size() <= 64 && text.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
    return plain ? text : "the part it named";
}

const char * cancel_reason_text(int reason) {
    switch (reason) {
    case kClientGone: return "the client disconnected";
    case kSessionClosed: return "the session was closed";
    case kServerStopping: return "the server is stopping";
    default: return "cancelled";
    }
}

int cancel_reason_status(int reason) {
    switch (reason) {
    case kClientGone: return 499; // not sent: nobody is there
    case kSessionClosed: return 410;
    default: return 503;
    }
}

// Ends a session's request when the last copy of the route's closure goes.
struct RequestHold {
    explicit RequestHold(std::shared_ptr<Session> s) : session(std::move(s)) {}
    RequestHold(const RequestHold &) = delete;
    RequestHold & operator=(const RequestHold &) = delete;
    ~RequestHold() { session->end_request(); }
    const std::shared_ptr<Session> session;
};

} // namespace

std::string ServerHealth::to_json() const {
    return nlohmann::json{{"status", "ok"},
                          {"instance", instance},
                          {"ranks", ranks},
                          {"max_ranks", max_ranks},
                          {"sessions", sessions},
                          {"max_sessions", max_sessions},
                          {"evaluations", evaluations},
                          {"max_evaluations", max_evaluations},
                          {"evaluations_waiting", evaluations_waiting},
                          {"connections", connections}}
        .dump();
}

PartServer::PartServer(ServedPart part, ServerOptions options, ThreadPool & pool)
    : part_(std::move(part)), options_(std::move(options)), pool_(pool),
      sessions_(options_.max_sessions, options_.idle_timeout_seconds, options_.instance), evaluations_(options_.max_evaluations) {
    PartManifest & m = part_.manifest;
    if (options_.max_positions <= 0) fail("server: --max-positions must be positive");
    if (!part_.build_row_circuit) fail("server: no circuit for {}", m.part);
    const tfhe::TfheParameters & params = m.parameters();
    const tfhe::EvaluationKeySizes keys = tfhe::serialized_evaluation_key_sizes(params);
    // A compressed key bundle: its blob header, the two or three part blobs and their lengths.
    m.server_key_bytes = keys.compressed_upload_bytes() + 4096;
    // The largest evaluation: max_positions positions, at most 40 bytes more per ciphertext
    // (a seed of its own) than with one shared seed; the message header in the margin.
    const uint64_t count = uint64_t(options_.max_positions) * uint64_t(m.input_cols());
    m.max_request_bytes =
        tfhe::serialized_seeded_lwe_ciphertext_vector_size(params, tfhe::LweKeyChoice::Big, count) + 40 * count + 4096;
    m.max_positions = options_.max_positions;
    m.max_sessions = options_.max_sessions;
    m.idle_timeout_seconds = options_.idle_timeout_seconds;
    http_ = std::make_unique<HttpServer>(routes(), options_.http, [this](const HttpLogRecord & r) { write_log(r); });
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

int PartServer::bind() { return http_->bind(options_.host, options_.port); }

void PartServer::serve() { http_->serve(); }

void PartServer::stop() {
    for (const auto & session : sessions_.remove_all()) session->close(kServerStopping);
    evaluations_.wake();
    http_->stop();
}

ServerHealth PartServer::health() const {
    ServerHealth h;
    h.sessions = sessions_.slots_in_use();
    h.max_sessions = sessions_.max_sessions();
    h.evaluations = evaluations_.running();
    h.max_evaluations = evaluations_.limit();
    h.evaluations_waiting = evaluations_.waiting();
    h.connections = http_->connection_count();
    h.instance = options_.instance;
    if (options_.cluster) {
        h.ranks = options_.cluster->alive();
        h.max_ranks = options_.cluster->size();
    }
    return h;
}

uint64_t PartServer::cache_bytes_per_position() const {
    const tfhe::TfheParameters & params = part_.manifest.parameters();
    return uint64_t(part_.cache_parts) * uint64_t(part_.cache_cols) * (params.big_lwe_dimension().value + 1) * 8;
}

void PartServer::write_log(const HttpLogRecord & record) {
    if (!options_.log && !options_.log_sink) return;
    const std::string line = "fhegpt-server: " + format_log_line(record);
    std::lock_guard lock(log_mutex_);
    if (options_.log_sink)
        options_.log_sink(line);
    else
        std::fprintf(stderr, "%s\n", line.c_str());
}

void PartServer::sweep_idle_sessions() {
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::min(options_.idle_timeout_seconds / 4, 10.0)));
    std::unique_lock lock(sweeper_mutex_);
    while (!sweeper_cv_.wait_for(lock, period, [this] { return stopping_; })) {
        const size_t expired = sessions_.expire_idle();
        if (expired > 0 && (options_.log || options_.log_sink)) {
            std::lock_guard log_lock(log_mutex_);
            const std::string line = fmt::format("fhegpt-server: {} {} idle session(s) expired, {} left",
                                                 utc_timestamp(std::chrono::system_clock::now()), expired, sessions_.size());
            if (options_.log_sink)
                options_.log_sink(line);
            else
                std::fprintf(stderr, "%s\n", line.c_str());
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

HttpResponse PartServer::create_session(SessionSlot slot, const std::string & body) {
    std::string detail;
    return answer(detail, [&] {
        const KeyUpload upload = decode_key_upload(message_bytes(body));
        const tfhe::TfheParameters & params = part_.manifest.parameters();
        tfhe::ServerKey key = tfhe::decompress_server_key(
            tfhe::deserialize_compressed_server_key(upload.server_key, params, "<uploaded server key>"));
        key.accelerator = tfhe::make_bootstrap_accelerator(key, options_.device);
        auto session = std::make_shared<Session>(std::move(slot), std::move(key));
        if (options_.cluster) session->distributed_keys = options_.cluster->open_keys(upload.server_key, params);
        session->cache.resize(size_t(part_.cache_parts));
        const std::string token = sessions_.add(std::move(session));
        return json_response(201,
                             nlohmann::json{{"session", token},
                                            {"parameter_set", params.name},
                                            {"max_positions", options_.max_positions},
                                            {"idle_timeout_seconds", options_.idle_timeout_seconds}}
                                 .dump(),
                             fmt::format("session={} created ({} sessions)", SessionTable::log_name(token),
                                         sessions_.size()));
    });
}

HttpResponse PartServer::evaluate(const std::shared_ptr<Session> & session, const std::string & token,
                                  const std::string & body, const CancellationToken & cancel) {
    std::string detail = "session=" + SessionTable::log_name(token) + " ";
    bool started = false;
    try {
        return answer(detail, [&] {
            const EvaluationQueue::Turn turn = evaluations_.wait_turn(cancel);
            started = true;
            std::string more;
            // Two statements: evaluate_rows fills `more`, which the log detail reads.
            std::string answer_body = evaluate_rows(*session, body, cancel, more);
            HttpResponse r = json_response(200, std::move(answer_body), detail + more);
            r.content_type = "application/octet-stream";
            // Marks it used again: idle time counts from the end of a request, not its start (an
            // evaluation longer than the timeout would otherwise lose its session right after).
            sessions_.find(token);
            return r;
        });
    } catch (const Cancelled & c) {
        const int64_t done = session->progress_done.exchange(0), total = session->progress_total.exchange(0);
        const char * why = cancel_reason_text(c.reason);
        const std::string message =
            !started     ? fmt::format("evaluation cancelled while waiting for its turn: {}", why)
            : total == 0 ? fmt::format("evaluation cancelled before its first bootstrap batch: {}", why)
                         : fmt::format("evaluation cancelled after {} of {} bootstraps: {}", done, total, why);
        return error_response(cancel_reason_status(c.reason), message, detail);
    }
}

std::string PartServer::evaluate_rows(Session & session, const std::string & body, const CancellationToken & cancel,
                                      std::string & log) {
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
    const uint64_t count = uint64_t(n_new) * uint64_t(m.input_cols());
    if (request.inputs.size() >
        tfhe::serialized_seeded_lwe_ciphertext_vector_size(params, tfhe::LweKeyChoice::Big, count) + 40 * count + 256)
        fail("{} bytes of input ciphertexts for {} positions", request.inputs.size(), n_new);
    const auto seeded = tfhe::deserialize_seeded_lwe_ciphertext_vector(request.inputs, params, tfhe::LweKeyChoice::Big,
                                                                       kRequestSource);
    if (seeded.size() != size_t(n_new) * size_t(m.input_cols()))
        fail("{} input ciphertexts for {} positions: {} takes {} per position", seeded.size(), n_new, m.part,
             m.input_cols());
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
    const auto progress = [this, &session](int64_t done, int64_t total) {
        session.progress_total = total;
        session.progress_done = done;
        if (part_.on_batch) part_.on_batch(done, total);
    };
    std::vector<tfhe::LweCiphertext> outputs;
    std::unique_ptr<circuit::BootstrapBatchRunner> runner; // null: this process's pool
    {
        // Progress reads 0 / 0 whenever no evaluation runs, however this one ends; a cancelled
        // one is reported with its last counts first (the caller reads them in its catch).
        struct ProgressReset {
            Session & session;
            bool armed = true;
            ~ProgressReset() {
                if (armed) session.progress_done = session.progress_total = 0;
            }
        } reset_progress{session};
        try {
            runner = session.distributed_keys ? session.distributed_keys->runner(session.server_key, pool_) : nullptr;
            outputs = circuit::run_encrypted(*circuit, session.server_key, inputs, pool_, progress, &stats, &cancel,
                                             runner.get());
        } catch (const Cancelled &) {
            reset_progress.armed = false; // the caller reports the counts, then resets them
            throw;
        }
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
    if (runner && !runner->summary().empty()) log += "; " + runner->summary();
    return encode(response);
}

std::vector<HttpRoute> PartServer::routes() {
    // The session named by the head's bearer token (401 / 404 otherwise).
    auto session_of = [this](const HttpHead & head, std::string & token) {
        token = bearer_token(head.field("Authorization"));
        if (token.empty()) throw RequestError(401, "no session token (header Authorization: Bearer TOKEN)");
        std::shared_ptr<Session> session = sessions_.find(token);
        if (!session) throw RequestError(404, "unknown or expired session");
        return session;
    };
    // Admission of a call answered at once, on the I/O thread.
    auto answered = [](auto && work) {
        std::string detail;
        return HttpAdmission::answered(answer(detail, work));
    };

    std::vector<HttpRoute> r;
    r.push_back({"GET", "/v1/info", 0, [this, answered](const HttpHead &) {
                     return answered([&] { return json_response(200, part_.manifest.to_json()); });
                 }});
    r.push_back({"GET", "/v1/health", 0, [this](const HttpHead &) {
                     HttpResponse res = json_response(200, health().to_json());
                     res.logged = false; // polled by load balancers
                     return HttpAdmission::answered(std::move(res));
                 }});
    r.push_back({"GET", "/v1/progress", 0, [answered, session_of](const HttpHead & head) {
                     return answered([&] {
                         std::string token;
                         const std::shared_ptr<Session> session = session_of(head, token);
                         HttpResponse res = json_response(
                             200, nlohmann::json{{"done", session->progress_done.load()},
                                                 {"total", session->progress_total.load()}}
                                      .dump());
                         res.logged = false; // polled while an evaluation runs
                         return res;
                     });
                 }});
    r.push_back({"DELETE", "/v1/session", 0, [this, answered, session_of](const HttpHead & head) {
                     std::shared_ptr<Session> session;
                     std::string detail;
                     HttpAdmission refused = answered([&] {
                         std::string token;
                         session_of(head, token);
                         session = sessions_.remove(token);
                         if (!session) throw RequestError(404, "unknown or expired session");
                         const bool cancelled = session->close(kSessionClosed);
                         evaluations_.wake();
                         detail = fmt::format("session={} closed{}", SessionTable::log_name(token),
                                              cancelled ? "; its evaluation is cancelled" : "");
                         return HttpResponse{};
                     });
                     if (!session) return refused;
                     // Closed now; its memory (hundreds of MiB of keys) is freed off the I/O
                     // thread, by the last holder: this job, or the cancelled evaluation.
                     HttpAdmission a;
                     a.run = [session = std::move(session), detail](std::string) mutable {
                         session.reset();
                         return json_response(204, "", detail);
                     };
                     return a;
                 }});
    r.push_back({"POST", "/v1/sessions", part_.manifest.server_key_bytes, [this](const HttpHead & head) {
                     // A client that expects another part is told so before it uploads its keys.
                     const std::string expected(head.field("Fhegpt-Part"));
                     if (!expected.empty() && expected != part_.manifest.part)
                         return HttpAdmission::answered(error_response(
                             409, fmt::format("this server serves {}, not {}", part_.manifest.part, printable_part(expected))));
                     // The slot is taken before the body is read: key sets in memory, uploads
                     // included, never exceed max_sessions.
                     auto slot = std::make_shared<SessionSlot>(sessions_.reserve_slot());
                     if (!*slot)
                         return HttpAdmission::answered(error_response(
                             503, fmt::format("the server has its maximum of {} sessions; try again later",
                                              options_.max_sessions)));
                     HttpAdmission a;
                     a.run = [this, slot](std::string body) { return create_session(std::move(*slot), body); };
                     return a;
                 }});
    r.push_back({"POST", "/v1/eval", part_.manifest.max_request_bytes, [this, answered, session_of](const HttpHead & head) {
                     std::string token;
                     std::shared_ptr<Session> session;
                     std::shared_ptr<CancellationToken> cancel;
                     HttpAdmission refused = answered([&] {
                         session = session_of(head, token);
                         cancel = session->begin_request();
                         if (!cancel) {
                             if (session->closed()) throw RequestError(404, "unknown or expired session");
                             throw RequestError(409, "the session is busy with another request");
                         }
                         return HttpResponse{};
                     });
                     if (!cancel) return refused;
                     auto hold = std::make_shared<RequestHold>(session);
                     HttpAdmission a;
                     a.run = [this, hold, token, cancel](std::string body) {
                         return evaluate(hold->session, token, body, *cancel);
                     };
                     a.on_client_gone = [this, cancel] {
                         cancel->cancel(kClientGone);
                         evaluations_.wake();
                     };
                     return a;
                 }});
    return r;
}

} // namespace fhegpt::net
