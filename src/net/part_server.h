// fhegpt-server's core: serves one protected part (a quantized head or attention block, whose
// weights stay here) to many clients over HTTP (protocol.h).
//
// Each session holds its client's evaluation keys and the encrypted key/value cache of its
// sequence, so a request brings only its new positions and the server evaluates only their
// rows (circuit::build_head_row_circuit). Requests run on cpp-httplib's connection threads;
// their bootstrap batches share the process's thread pool (all cores), one batch at a time, so
// concurrent sessions interleave batch by batch and a short request is not held behind a long
// one. Bad input of any kind is answered with an error and leaves the session as it was.
#pragma once

#include "circuit/circuit.h"
#include "net/protocol.h"
#include "net/session_table.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

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
};

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8480;                  // 0: any free port
    int32_t max_sessions = 4;
    double idle_timeout_seconds = 600;
    int32_t max_positions = 64;       // per session
    bool log = true;                  // one line per request on stderr
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
    void stop();

    const PartManifest & manifest() const { return part_.manifest; }
    size_t session_count() const { return sessions_.size(); }
    // Bytes one position of a session's cache takes.
    uint64_t cache_bytes_per_position() const;

private:
    void add_routes();
    std::shared_ptr<const circuit::Circuit> circuit_for(int32_t first, int32_t n);
    std::string create_session(const std::string & body, std::string & log);
    std::string evaluate(Session & session, const std::string & body, std::string & log);
    void sweep_idle_sessions();

    ServedPart part_;
    ServerOptions options_;
    ThreadPool & pool_;
    std::unique_ptr<httplib::Server> http_;
    SessionTable sessions_;
    std::mutex circuits_mutex_;
    std::map<std::pair<int32_t, int32_t>, std::shared_ptr<const circuit::Circuit>> circuits_;
    std::mutex log_mutex_;
    // Idle-session sweeper.
    std::thread sweeper_;
    std::mutex sweeper_mutex_;
    std::condition_variable sweeper_cv_;
    bool stopping_ = false;
    std::atomic<bool> serving_{false}, stop_requested_{false};
};

} // namespace fhegpt::net
