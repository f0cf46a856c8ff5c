// The server's sessions: one per client, each with that client's evaluation keys and the
// encrypted key/value cache of its sequence so far. A session is named by an unguessable token
// (32 bytes from the OS CSPRNG, hex); the table is keyed by the token's BLAKE2b hash, so a
// lookup's timing says nothing useful about valid tokens.
//
// The memory budget: a session's keys and cache live in a slot, and at most max_sessions slots
// exist. A slot is taken before a key upload's body is read and given back only when the
// session's memory has been freed: a closed session whose evaluation is still stopping keeps
// its slot until it has. A session idle for longer than the idle timeout is dropped.
#pragma once

#include "circuit/bootstrap_batch_runner.h"
#include "common/cancellation.h"
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

// Why a session's request was cancelled (CancellationToken reasons).
enum CancelReason : int { kClientGone = 1, kSessionClosed = 2, kServerStopping = 3 };

class SessionSlot {
public:
    SessionSlot() = default;
    SessionSlot(SessionSlot && other) noexcept = default;
    SessionSlot & operator=(SessionSlot && other) noexcept;
    ~SessionSlot();
    explicit operator bool() const { return counter_ != nullptr; }

private:
    friend class SessionTable;
    struct Counter {
        std::mutex mutex;
        int32_t in_use = 0;
    };
    explicit SessionSlot(std::shared_ptr<Counter> counter) : counter_(std::move(counter)) {}
    std::shared_ptr<Counter> counter_;
};

class Session {
public:
    Session(SessionSlot slot, tfhe::ServerKey key);

private:
    const SessionSlot slot_; // first: given back last, once everything below is freed

public:
    const tfhe::ServerKey server_key;
    // The same keys on the other ranks of an MPI job (null in a single process); set before the
    // session joins the table.
    std::unique_ptr<circuit::DistributedKeys> distributed_keys;
    // Owned by the session's running request (one at a time, see begin_request).
    int32_t n_past = 0;
    std::vector<std::vector<tfhe::LweCiphertext>> cache; // [part][position * cols]
    uint64_t requests = 0;
    // The running evaluation's bootstraps done and total (0 / 0 when idle), read by
    // GET /v1/progress while it runs.
    std::atomic<int64_t> progress_done{0}, progress_total{0};

    // Starts a request: its cancellation token, or null when one is under way or the session
    // is closed. end_request() ends it.
    std::shared_ptr<CancellationToken> begin_request();
    void end_request();
    // Closes the session for good and cancels its running request, if any (returns whether
    // there was one).
    bool close(CancelReason reason);
    // Closes the session if no request is under way.
    bool close_if_idle();
    bool closed() const;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<CancellationToken> running_;
    bool closed_ = false;
};

class SessionTable {
public:
    using Clock = std::chrono::steady_clock;
    // Tokens start with token_prefix (a load balancer routes a session's requests on it; see
    // docs/deployment.md); the prefix is public, the random part is what authenticates.
    SessionTable(int32_t max_sessions, double idle_timeout_seconds, std::string token_prefix = {});

    // A slot for a new session, or an empty one when all are taken.
    SessionSlot reserve_slot();
    // Slots taken: sessions in the table, uploads under way, closed sessions still freeing.
    int32_t slots_in_use() const;
    int32_t max_sessions() const { return max_sessions_; }

    // Adds a session (which holds its slot) and returns its token.
    std::string add(std::shared_ptr<Session> session);
    // The session of `token`, or null; marks it used.
    std::shared_ptr<Session> find(const std::string & token);
    // Takes the session out of the table (null if unknown); the caller closes it.
    std::shared_ptr<Session> remove(const std::string & token);
    std::vector<std::shared_ptr<Session>> remove_all();
    // Drops and closes sessions idle for longer than the timeout (not those running a
    // request); returns how many.
    size_t expire_idle(Clock::time_point now = Clock::now());
    size_t size() const; // sessions in the table

    // A short, non-secret name of a token for logs (the first bytes of its hash).
    static std::string log_name(const std::string & token);

private:
    struct Entry {
        std::shared_ptr<Session> session;
        Clock::time_point last_used;
    };
    int32_t max_sessions_;
    Clock::duration idle_timeout_;
    std::shared_ptr<SessionSlot::Counter> slots_;
    mutable std::mutex mutex_;
    std::map<std::string, Entry> sessions_; // by token hash
    std::string token_prefix_;
};

} // namespace fhegpt::net
