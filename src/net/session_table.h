// The server's sessions: one per client, each with that client's evaluation keys and the
// encrypted key/value cache of its sequence so far. A session is named by an unguessable token
// (32 bytes from the OS CSPRNG, hex); the table is keyed by the token's BLAKE2b hash, so a
// lookup's timing says nothing useful about valid tokens. Limits: at most max_sessions at
// once; a session idle for longer than the idle timeout is dropped (its memory freed).
#pragma once

#include "tfhe/keyset.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fhegpt::net {

struct Session {
    explicit Session(tfhe::ServerKey key) : server_key(std::move(key)) {}

    const tfhe::ServerKey server_key;
    std::mutex mutex;  // one request of a session at a time; guards the fields below
    int32_t n_past = 0;
    std::vector<std::vector<tfhe::LweCiphertext>> cache; // [part][position * cols]
    uint64_t requests = 0;
    // The running evaluation's bootstraps done and total (0 / 0 when idle), read without the
    // mutex by GET /v1/progress.
    std::atomic<int64_t> progress_done{0}, progress_total{0};
};

class SessionTable {
public:
    using Clock = std::chrono::steady_clock;
    SessionTable(int32_t max_sessions, double idle_timeout_seconds);

    // Adds a session and returns its token; fails (fhegpt::Error) when the table is full.
    std::string add(std::shared_ptr<Session> session);
    // The session of `token`, or null; marks it used.
    std::shared_ptr<Session> find(const std::string & token);
    bool remove(const std::string & token);
    // Drops sessions idle for longer than the timeout (not those running a request); returns
    // how many.
    size_t expire_idle(Clock::time_point now = Clock::now());
    size_t size() const;
    bool full() const { return size() >= size_t(max_sessions_); }

    // A short, non-secret name of a token for logs (the first bytes of its hash).
    static std::string log_name(const std::string & token);

private:
    struct Entry {
        std::shared_ptr<Session> session;
        Clock::time_point last_used;
    };
    int32_t max_sessions_;
    Clock::duration idle_timeout_;
    mutable std::mutex mutex_;
    std::map<std::string, Entry> sessions_; // by token hash
};

} // namespace fhegpt::net
