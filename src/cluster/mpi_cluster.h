// One logical fhegpt-server over the ranks of an MPI job (Open MPI): rank 0 serves HTTP and owns
// the sessions; every other rank is a worker that holds the sessions' evaluation keys and runs
// its share of each bootstrap batch on its own threads.
//
// Protocol (point to point, rank 0 <-> each worker, messages of bytes in host order: the ranks
// of one job run the same binary on the same architecture):
//   open  (session id, parameter set, compressed server key blob) -> ok | error text
//   batch (session id, key kind, the batch's distinct lookup tables, a table index and an input
//          ciphertext per bootstrap of the worker's share) -> ok + output ciphertexts | error
//   close (session id), stop: no answer.
// Rank 0 splits each batch in equal contiguous shares over the ranks that are alive, sends the
// workers theirs, runs its own, then gathers the answers.
//
// Failures never hang: every send and every answer has a deadline (MPI nonblocking calls,
// polled). A worker that misses one is marked dead and gets no more work; the batch (and so
// the evaluation that needed it) fails with an Error naming the rank, and the next evaluations
// run on the ranks that remain (rank 0 alone at worst). Under plain `mpirun` the death of a
// rank aborts the whole job; deploy/run-mpi.sh sets Open MPI's recovery parameters so that it
// does not.
#pragma once

#include "circuit/bootstrap_batch_runner.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fhegpt::cluster {

struct MpiOptions {
    // A worker's answer may come this long after rank 0 has finished its own share (which
    // takes about as long as each worker's), and each send must complete within it.
    double reply_timeout_seconds = 30;
    // A worker decompresses a session's keys within this.
    double key_timeout_seconds = 300;
};

// What one batch cost in communication (rank 0's view).
struct MpiBatchRecord {
    int ranks = 0;                  // alive ranks the batch was split over, rank 0 included
    int64_t bootstraps = 0;         // the whole batch
    uint64_t bytes_sent = 0;        // rank 0 -> workers
    uint64_t bytes_received = 0;    // workers -> rank 0
    double send_seconds = 0;        // until every worker had its share
    double local_seconds = 0;       // rank 0's own share
    double wait_seconds = 0;        // after that, until every answer was in
};

class MpiCluster final : public circuit::BootstrapCluster, public std::enable_shared_from_this<MpiCluster> {
public:
    // Whether this process was started by mpirun with more than one rank (environment only;
    // MPI is not initialised).
    static bool launched_with_several_ranks();
    // MPI_Init_thread (MPI_THREAD_SERIALIZED: rank 0 calls MPI from several threads, one at a
    // time under this object's lock). Once per process.
    static std::shared_ptr<MpiCluster> initialize(int & argc, char **& argv, MpiOptions options = {});
    ~MpiCluster() override; // rank 0: stops the workers; then MPI_Finalize

    int rank() const { return rank_; }
    int size() const override { return size_; }
    int alive_ranks() const;
    int alive() const override { return alive_count_.load(); }
    void set_reply_timeout(double seconds);

    // Workers: serve rank 0's messages until it says stop; returns the process's exit code.
    int serve_worker();

    // Rank 0.
    std::unique_ptr<circuit::DistributedKeys> open_keys(std::span<const uint8_t> compressed_key_blob,
                                                        const tfhe::TfheParameters & params) override;
    // Every batch since the last call.
    std::vector<MpiBatchRecord> take_batch_records();

    using Message = std::shared_ptr<const std::vector<uint8_t>>;

private:
    MpiCluster(int rank, int size, MpiOptions options);
    friend class MpiKeys;
    friend class MpiBatchRunner;

    using Clock = std::chrono::steady_clock;
    // Sends messages[i] to ranks[i], all at once (a message may be shared: a key goes to every
    // rank from one buffer); true for those whose send completed before the deadline (the
    // others are marked dead). Under lock_.
    std::vector<bool> send_all(const std::vector<int> & ranks, const std::vector<Message> & messages,
                               Clock::time_point deadline);
    // The answer of `rank`, or false at the deadline (the rank is marked dead). Under lock_.
    bool receive(int rank, std::vector<uint8_t> & message, Clock::time_point deadline);
    void mark_dead(int rank, const std::string & why);
    int alive_ranks_locked() const;
    void close_keys(uint64_t id) noexcept;
    void stop_workers() noexcept;

    int rank_ = 0, size_ = 1;
    MpiOptions options_;
    mutable std::mutex lock_; // every MPI call of rank 0
    std::vector<bool> alive_;
    std::atomic<int> alive_count_{0}; // alive_'s count, read without the lock
    uint64_t next_session_ = 1;
    uint64_t batch_sequence_ = 0;
    std::vector<MpiBatchRecord> records_;
    // Buffers of sends that never completed (to dead ranks): MPI may still read them.
    std::vector<Message> abandoned_;
    bool stopped_ = false;
};

} // namespace fhegpt::cluster
