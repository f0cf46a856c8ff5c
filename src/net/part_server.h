// fhegpt-server's core: serves one protected part (a quantized head, attention block or run of
// whole blocks, whose weights stay here) to many clients over HTTP (protocol.h, http_server.h).
//
// Each session holds its client's evaluation keys and the encrypted key/value cache of its
// sequence (for whole blocks, of every layer of the run), so a request brings only its new
// positions and the server evaluates only their rows (circuit::build_head_row_circuit,
// build_blocks_row_circuit). Bad input of any kind is answered with an error and leaves the
// session as it was.
//
// Budget (docs/client-server.md, "Limits and threat model"): at most max_sessions key sets
// and caches in memory (a slot is taken before a key upload is read and given back when the
// session's memory is freed), at most max_evaluations evaluations at once (the others wait in
// order), one request per session. Key uploads and evaluations work on threads of their own;
// info, health, progress and close are answered on the I/O thread and never wait for an
// evaluation. Closing a session, its client disconnecting, or the server stopping cancels its
// evaluation at the next bootstrap batch.
#pragma once

#include "circuit/circuit.h"
#include "net/evaluation_queue.h"
#include "net/http_server.h"
#include "net/protocol.h"
#include "net/session_table.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::net {

// What the server evaluates: the public manifest (limits are filled in by the server), the
// shape of the per-session cache, and the part's row circuits (inputs: the new positions' x,
// then the cache parts; outputs: the new rows, then their cache entries).
struct ServedPart {
    PartManifest manifest;
    int32_t cache_parts = 0, cache_cols = 0;
    std::function<circuit::Circuit(int32_t first, int32_t n)> build_row_circuit;
    // Called on the evaluating thread after each bootstrap batch with the evaluation's counts
    // (empty in production; tests hold an evaluation here to observe it mid-way).
    std::function<void(int64_t done, int64_t total)> on_batch;
};

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8480;                  // 0: any free port
    int32_t max_sessions = 4;
    int32_t max_evaluations = 2;      // running at once; more wait their turn
    double idle_timeout_seconds = 600;
    int32_t max_positions = 64;       // per session
    // Names this server among the replicas behind a load balancer: session tokens start with
    // "INSTANCE." (the balancer's affinity key) and health reports it. Empty: plain tokens.
    std::string instance;
    // Other machines that share each session's bootstraps (an MPI job's ranks); null: this
    // process alone.
    std::shared_ptr<circuit::BootstrapCluster> cluster;
    HttpLimits http;                  // connections, heads, deadlines
    bool log = true;                  // one line per request on stderr
    std::string device = "cpu";       // where sessions' bootstraps run: cpu, cuda or auto (tfhe/cuda/bootstrap_device.h)
    // Log lines go here instead of stderr when set (tests).
    std::function<void(const std::string & line)> log_sink;
};

// GET /v1/health: what a load balancer reads.
struct ServerHealth {
    int32_t sessions = 0, max_sessions = 0;       // slots in use (uploads and closing sessions too)
    int32_t evaluations = 0, max_evaluations = 0; // running
    int32_t evaluations_waiting = 0;
    size_t connections = 0;
    std::string instance;
    int32_t ranks = 1, max_ranks = 1; // MPI ranks sharing the bootstraps: in the cluster, started
    std::string to_json() const;
};

class PartServer {
public:
    PartServer(ServedPart part, ServerOptions options, ThreadPool & pool);
    ~PartServer();
    PartServer(const PartServer &) = delete;
    PartServer & operator=(const PartServer &) = delete;

    // Binds the listening socket and returns its port (fails with fhegpt::Error).
    int bind();
    // Serves until stop() (from another thread or a signal handler's thread). A stop() before
    // or during the start of serve() is not lost.
    void serve();
    // Cancels every evaluation (at its next bootstrap batch), closes every connection; serve()
    // returns once the evaluations have stopped.
    void stop();

    const PartManifest & manifest() const { return part_.manifest; }
    size_t session_count() const { return sessions_.size(); }
    ServerHealth health() const;
    // Bytes one position of a session's cache takes.
    uint64_t cache_bytes_per_position() const;

private:
    std::vector<HttpRoute> routes();
    std::shared_ptr<const circuit::Circuit> circuit_for(int32_t first, int32_t n);
    HttpResponse create_session(SessionSlot slot, const std::string & body);
    HttpResponse evaluate(const std::shared_ptr<Session> & session, const std::string & token, const std::string & body,
                          const CancellationToken & cancel);
    std::string evaluate_rows(Session & session, const std::string & body, const CancellationToken & cancel,
                              std::string & log);
    void write_log(const HttpLogRecord & record);
    void sweep_idle_sessions();

    ServedPart part_;
    ServerOptions options_;
    ThreadPool & pool_;
    SessionTable sessions_;
    EvaluationQueue evaluations_;
    std::mutex circuits_mutex_;
    std::map<std::pair<int32_t, int32_t>, std::shared_ptr<const circuit::Circuit>> circuits_;
    std::mutex log_mutex_;
    // Idle-session sweeper.
    std::thread sweeper_;
    std::mutex sweeper_mutex_;
    std::condition_variable sweeper_cv_;
    bool stopping_ = false;
    // Last: destroyed first, joining the request threads that use the members above.
    std::unique_ptr<HttpServer> http_;
};

} // namespace fhegpt::net
