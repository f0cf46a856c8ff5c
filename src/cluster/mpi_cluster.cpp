#include "cluster/mpi_cluster.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "tfhe/serialization/serialization.h"

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <utility>

namespace fhegpt::cluster {

namespace {

constexpr int kTagCommand = 1, kTagReply = 2;
enum Command : uint8_t { kOpen = 1, kClose = 2, kBatch = 3, kStop = 4 };
// How often rank 0 polls a pending send or answer.
constexpr auto kPollPeriod = std::chrono::microseconds(50);
// How often an idle worker looks for rank 0's next message.
constexpr auto kWorkerPollPeriod = std::chrono::milliseconds(1);
constexpr double kControlTimeoutSeconds = 5;

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Messages of bytes in host order (one job, one architecture); a reader fails on truncation.
class Writer {
public:
    template <typename T>
    void put(T v) {
        const size_t at = bytes.size();
        bytes.resize(at + sizeof v);
        std::memcpy(bytes.data() + at, &v, sizeof v);
    }
    void put_words(const std::vector<uint64_t> & words) {
        const size_t at = bytes.size();
        bytes.resize(at + words.size() * 8);
        std::memcpy(bytes.data() + at, words.data(), words.size() * 8);
    }
    void put_bytes(std::span<const uint8_t> b) {
        put<uint64_t>(b.size());
        bytes.insert(bytes.end(), b.begin(), b.end());
    }
    void put_text(const std::string & s) { put_bytes({reinterpret_cast<const uint8_t *>(s.data()), s.size()}); }
    std::vector<uint8_t> bytes;
};

class Reader {
public:
    explicit Reader(std::span<const uint8_t> b) : b_(b) {}
    template <typename T>
    T get() {
        T v;
        std::memcpy(&v, take(sizeof v).data(), sizeof v);
        return v;
    }
    void get_words(std::vector<uint64_t> & words, size_t n) {
        if (n > b_.size() / 8) fail("mpi: a truncated message");
        words.resize(n);
        std::memcpy(words.data(), take(n * 8).data(), n * 8);
    }
    std::span<const uint8_t> get_bytes() { return take(get<uint64_t>()); }
    std::string get_text() {
        const auto b = get_bytes();
        return {reinterpret_cast<const char *>(b.data()), b.size()};
    }

private:
    std::span<const uint8_t> take(uint64_t n) {
        if (n > b_.size()) fail("mpi: a truncated message");
        const auto out = b_.first(size_t(n));
        b_ = b_.subspan(size_t(n));
        return out;
    }
    std::span<const uint8_t> b_;
};

void put_lut(Writer & w, const tfhe::LookupTable & lut) {
    w.put<uint64_t>(lut.polynomial_size.value);
    w.put<uint64_t>(lut.input_modulus);
    w.put<uint64_t>(lut.output_modulus);
    w.put<uint64_t>(lut.function_count);
    w.put<uint64_t>(lut.slot_stride);
    w.put<uint64_t>(lut.polynomial.size());
    w.put_words(lut.polynomial);
}

tfhe::LookupTable get_lut(Reader & r) {
    tfhe::LookupTable lut;
    lut.polynomial_size = tfhe::PolynomialSize(r.get<uint64_t>());
    lut.input_modulus = r.get<uint64_t>();
    lut.output_modulus = r.get<uint64_t>();
    lut.function_count = r.get<uint64_t>();
    lut.slot_stride = r.get<uint64_t>();
    r.get_words(lut.polynomial, r.get<uint64_t>());
    return lut;
}

// One buffer for every rank of `ranks`.
std::vector<MpiCluster::Message> to_every(const std::vector<int> & ranks, std::vector<uint8_t> bytes) {
    return std::vector<MpiCluster::Message>(ranks.size(), std::make_shared<const std::vector<uint8_t>>(std::move(bytes)));
}

std::vector<uint8_t> error_reply(uint64_t sequence, const std::string & message) {
    Writer w;
    w.put<uint64_t>(sequence);
    w.put<uint8_t>(0);
    w.put_text(message);
    return std::move(w.bytes);
}

void send_blocking(const std::vector<uint8_t> & message, int to, int tag) {
    if (message.size() > size_t(INT_MAX)) fail("mpi: a message of {} bytes (at most 2 GiB)", message.size());
    MPI_Send(message.data(), int(message.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

} // namespace

// A session's keys on the workers; closed there when destroyed.
class MpiKeys final : public circuit::DistributedKeys {
public:
    MpiKeys(std::shared_ptr<MpiCluster> cluster, uint64_t id) : cluster_(std::move(cluster)), id_(id) {}
    ~MpiKeys() override { cluster_->close_keys(id_); }
    std::unique_ptr<circuit::BootstrapBatchRunner> runner(const tfhe::ServerKey & key, ThreadPool & pool) override;

private:
    std::shared_ptr<MpiCluster> cluster_;
    uint64_t id_;
};

class MpiBatchRunner final : public circuit::BootstrapBatchRunner {
public:
    MpiBatchRunner(std::shared_ptr<MpiCluster> cluster, uint64_t id, const tfhe::ServerKey & key, ThreadPool & pool)
        : cluster_(std::move(cluster)), id_(id), local_(key, pool), big_words_(key.parameters.big_lwe_dimension().value + 1) {}
    void run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
             std::span<tfhe::LweCiphertext * const> outputs, std::span<const tfhe::LookupTable * const> luts) override;
    std::string summary() const override;

private:
    std::shared_ptr<MpiCluster> cluster_;
    uint64_t id_;
    MpiBatchRecord total_; // this evaluation's batches, summed
    int64_t batches_ = 0;
    circuit::LocalBootstrapBatchRunner local_;
    size_t big_words_;
};

std::unique_ptr<circuit::BootstrapBatchRunner> MpiKeys::runner(const tfhe::ServerKey & key, ThreadPool & pool) {
    return std::make_unique<MpiBatchRunner>(cluster_, id_, key, pool);
}

void MpiBatchRunner::run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
                         std::span<tfhe::LweCiphertext * const> outputs,
                         std::span<const tfhe::LookupTable * const> luts) {
    if (outputs.size() != inputs.size() || (luts.size() != 1 && luts.size() != inputs.size()))
        fail("mpi: a batch of {} inputs, {} outputs and {} tables", inputs.size(), outputs.size(), luts.size());
    const auto lut_of = [&](size_t i) { return luts.size() == 1 ? luts[0] : luts[i]; };
    MpiCluster & c = *cluster_;
    std::lock_guard lock(c.lock_);
    const uint64_t sequence = ++c.batch_sequence_;
    // A share each for rank 0 and the live workers, none empty.
    const size_t n = inputs.size();
    std::vector<int> workers;
    for (int r = 1; r < c.size_ && workers.size() + 1 < n; ++r)
        if (c.alive_[size_t(r)]) workers.push_back(r);
    const size_t parts = workers.size() + 1;
    const auto share_begin = [&](size_t part) { return n * part / parts; };

    MpiBatchRecord record;
    record.ranks = int(parts);
    record.bootstraps = int64_t(n);
    std::vector<MpiCluster::Message> messages;
    for (size_t w = 0; w < workers.size(); ++w) {
        const size_t begin = share_begin(w + 1), end = share_begin(w + 2);
        std::map<const tfhe::LookupTable *, uint32_t> index;
        std::vector<const tfhe::LookupTable *> distinct;
        for (size_t i = begin; i < end; ++i)
            if (index.emplace(lut_of(i), uint32_t(distinct.size())).second) distinct.push_back(lut_of(i));
        Writer m;
        m.put<uint8_t>(kBatch);
        m.put<uint64_t>(sequence);
        m.put<uint64_t>(id_);
        m.put<uint8_t>(uint8_t(kind));
        m.put<uint32_t>(uint32_t(distinct.size()));
        for (const tfhe::LookupTable * lut : distinct) put_lut(m, *lut);
        m.put<uint64_t>(end - begin);
        for (size_t i = begin; i < end; ++i) m.put<uint32_t>(index[lut_of(i)]);
        for (size_t i = begin; i < end; ++i) {
            if (inputs[i]->data.size() != big_words_) fail("mpi: an input ciphertext of {} words", inputs[i]->data.size());
            m.put_words(inputs[i]->data);
        }
        record.bytes_sent += m.bytes.size();
        messages.push_back(std::make_shared<const std::vector<uint8_t>>(std::move(m.bytes)));
    }

    const auto t0 = MpiCluster::Clock::now();
    const auto timeout = std::chrono::duration_cast<MpiCluster::Clock::duration>(
        std::chrono::duration<double>(c.options_.reply_timeout_seconds));
    const std::vector<bool> sent = c.send_all(workers, messages, t0 + timeout);
    messages.clear();
    const auto t1 = MpiCluster::Clock::now();
    const size_t local_end = share_begin(1);
    local_.run(kind, inputs.first(local_end), outputs.first(local_end), luts.size() == 1 ? luts : luts.first(local_end));
    const auto t2 = MpiCluster::Clock::now();
    // A worker's share takes about as long as rank 0's: allow that much again, and the timeout.
    const auto deadline = t2 + (t2 - t1) + timeout;

    std::string errors;
    for (size_t w = 0; w < workers.size(); ++w) {
        const int rank = workers[w];
        if (!sent[w]) {
            errors += fmt::format("{}rank {} did not take its share within {:.0f} s", errors.empty() ? "" : "; ", rank,
                                  c.options_.reply_timeout_seconds);
            continue;
        }
        // Answers to earlier batches (one that failed on rank 0 before reading them) are
        // dropped; the sequence numbers only grow.
        std::vector<uint8_t> reply;
        uint64_t answered = 0;
        bool received = false;
        while ((received = c.receive(rank, reply, deadline))) {
            if (reply.size() < 8) break;
            std::memcpy(&answered, reply.data(), 8);
            if (answered >= sequence) break;
        }
        if (!received) {
            errors += fmt::format("{}rank {} did not answer within {:.0f} s", errors.empty() ? "" : "; ", rank,
                                  seconds(deadline - t2));
            continue;
        }
        record.bytes_received += reply.size();
        try {
            Reader r(reply);
            if (r.get<uint64_t>() != sequence) fail("mpi: rank {} answered another batch", rank);
            if (r.get<uint8_t>() == 0) fail("rank {}: {}", rank, r.get_text());
            for (size_t i = share_begin(w + 1); i < share_begin(w + 2); ++i) r.get_words(outputs[i]->data, big_words_);
        } catch (const Error & e) {
            errors += (errors.empty() ? "" : "; ") + std::string(e.what());
        }
    }
    const auto t3 = MpiCluster::Clock::now();
    record.send_seconds = seconds(t1 - t0);
    record.local_seconds = seconds(t2 - t1);
    record.wait_seconds = seconds(t3 - t2);
    c.records_.push_back(record);
    ++batches_;
    total_.ranks = record.ranks;
    total_.bootstraps += record.bootstraps;
    total_.bytes_sent += record.bytes_sent;
    total_.bytes_received += record.bytes_received;
    total_.send_seconds += record.send_seconds;
    total_.local_seconds += record.local_seconds;
    total_.wait_seconds += record.wait_seconds;
    if (!errors.empty())
        throw circuit::BootstrapRunnerFailure(
            fmt::format("the MPI cluster lost part of a bootstrap batch ({}); this evaluation is abandoned, the session "
                        "is kept, and the next evaluations run on the {} rank(s) left",
                        errors, c.alive_ranks_locked()));
}

std::string MpiBatchRunner::summary() const {
    if (batches_ == 0) return {};
    return fmt::format("mpi: {} batches over {} ranks, sent {:.0f} KiB, received {:.0f} KiB, send {:.3f}s, rank 0's "
                       "share {:.3f}s, wait {:.3f}s",
                       batches_, total_.ranks, double(total_.bytes_sent) / 1024, double(total_.bytes_received) / 1024,
                       total_.send_seconds, total_.local_seconds, total_.wait_seconds);
}

bool MpiCluster::launched_with_several_ranks() {
    for (const char * name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
        if (const char * v = std::getenv(name)) return std::atoi(v) > 1;
    return false;
}

std::shared_ptr<MpiCluster> MpiCluster::initialize(int & argc, char **& argv, MpiOptions options) {
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) fail("mpi: MPI_Init failed");
    if (provided < MPI_THREAD_SERIALIZED) fail("mpi: the MPI library does not allow calls from several threads");
    // Errors come back as codes (a dead peer), never abort the process.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return std::shared_ptr<MpiCluster>(new MpiCluster(rank, size, options));
}

MpiCluster::MpiCluster(int rank, int size, MpiOptions options)
    : rank_(rank), size_(size), options_(options), alive_(size_t(size), true), alive_count_(size) {}

MpiCluster::~MpiCluster() {
    bool any_dead = false;
    if (rank_ == 0) {
        stop_workers();
        std::lock_guard lock(lock_);
        for (bool a : alive_) any_dead = any_dead || !a;
    }
    // MPI_Finalize waits for every rank: not with one dead.
    if (!any_dead) MPI_Finalize();
}

int MpiCluster::alive_ranks() const {
    std::lock_guard lock(lock_);
    return alive_ranks_locked();
}

int MpiCluster::alive_ranks_locked() const {
    int n = 0;
    for (bool a : alive_) n += a ? 1 : 0;
    return n;
}

void MpiCluster::set_reply_timeout(double seconds) {
    if (!(seconds > 0)) fail("mpi: a reply timeout of {} s", seconds);
    std::lock_guard lock(lock_);
    options_.reply_timeout_seconds = seconds;
}

std::vector<MpiBatchRecord> MpiCluster::take_batch_records() {
    std::lock_guard lock(lock_);
    return std::exchange(records_, {});
}

void MpiCluster::mark_dead(int rank, const std::string & why) {
    if (!alive_[size_t(rank)]) return;
    alive_[size_t(rank)] = false;
    --alive_count_;
    std::fprintf(stderr, "fhegpt-server: mpi: rank %d is out of the cluster (%s); %d rank(s) left\n", rank, why.c_str(),
                 alive_ranks_locked());
}

std::vector<bool> MpiCluster::send_all(const std::vector<int> & ranks, const std::vector<Message> & messages,
                                       Clock::time_point deadline) {
    std::vector<bool> done(ranks.size(), false);
    std::vector<MPI_Request> requests(ranks.size(), MPI_REQUEST_NULL);
    for (size_t i = 0; i < ranks.size(); ++i) {
        const std::vector<uint8_t> & m = *messages[i];
        if (m.size() > size_t(INT_MAX)) fail("mpi: a message of {} bytes (at most 2 GiB)", m.size());
        // MPI-3 takes a const buffer.
        if (MPI_Isend(m.data(), int(m.size()), MPI_BYTE, ranks[i], kTagCommand, MPI_COMM_WORLD, &requests[i]) !=
            MPI_SUCCESS) {
            mark_dead(ranks[i], "a send failed");
            requests[i] = MPI_REQUEST_NULL;
        }
    }
    for (;;) {
        bool pending = false;
        for (size_t i = 0; i < ranks.size(); ++i) {
            if (done[i] || requests[i] == MPI_REQUEST_NULL) continue;
            int flag = 0;
            if (MPI_Test(&requests[i], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                mark_dead(ranks[i], "a send failed");
                requests[i] = MPI_REQUEST_NULL;
            } else if (flag) {
                done[i] = true;
            } else {
                pending = true;
            }
        }
        if (!pending) break;
        if (Clock::now() > deadline) {
            for (size_t i = 0; i < ranks.size(); ++i) {
                if (done[i] || requests[i] == MPI_REQUEST_NULL) continue;
                mark_dead(ranks[i], "a send timed out");
                MPI_Request_free(&requests[i]);
                abandoned_.push_back(messages[i]); // MPI may still read it
            }
            break;
        }
        std::this_thread::sleep_for(kPollPeriod);
    }
    return done;
}

bool MpiCluster::receive(int rank, std::vector<uint8_t> & message, Clock::time_point deadline) {
    for (;;) {
        int flag = 0;
        MPI_Status status;
        if (MPI_Iprobe(rank, kTagReply, MPI_COMM_WORLD, &flag, &status) != MPI_SUCCESS) {
            mark_dead(rank, "a receive failed");
            return false;
        }
        if (flag) {
            int count = 0;
            MPI_Get_count(&status, MPI_BYTE, &count);
            message.resize(size_t(count));
            if (MPI_Recv(message.data(), count, MPI_BYTE, rank, kTagReply, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS) {
                mark_dead(rank, "a receive failed");
                return false;
            }
            return true;
        }
        if (Clock::now() > deadline) {
            mark_dead(rank, "no answer in time");
            return false;
        }
        std::this_thread::sleep_for(kPollPeriod);
    }
}

std::unique_ptr<circuit::DistributedKeys> MpiCluster::open_keys(std::span<const uint8_t> compressed_key_blob,
                                                                 const tfhe::TfheParameters & params) {
    FHEGPT_CHECK(rank_ == 0, "open_keys on a worker");
    std::lock_guard lock(lock_);
    const uint64_t id = next_session_++;
    std::vector<int> workers;
    for (int r = 1; r < size_; ++r)
        if (alive_[size_t(r)]) workers.push_back(r);
    Writer m;
    m.put<uint8_t>(kOpen);
    m.put<uint64_t>(id);
    m.put_text(params.name);
    m.put_bytes(compressed_key_blob);
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options_.key_timeout_seconds));
    const std::vector<bool> sent = send_all(workers, to_every(workers, std::move(m.bytes)), deadline);
    std::string errors;
    for (size_t w = 0; w < workers.size(); ++w) {
        std::vector<uint8_t> reply;
        if (!sent[w] || !receive(workers[w], reply, deadline)) continue; // out of the cluster from now on
        Reader r(reply);
        r.get<uint64_t>();
        if (r.get<uint8_t>() == 0) errors += fmt::format("{}rank {}: {}", errors.empty() ? "" : "; ", workers[w], r.get_text());
    }
    // A rank that refused the key (not one that died) has the same input as rank 0 had: an
    // error in the key, or in that rank's memory.
    if (!errors.empty()) fail("the cluster could not open the session's keys: {}", errors);
    return std::make_unique<MpiKeys>(shared_from_this(), id);
}

void MpiCluster::close_keys(uint64_t id) noexcept {
    try {
        std::lock_guard lock(lock_);
        if (stopped_) return;
        std::vector<int> workers;
        for (int r = 1; r < size_; ++r)
            if (alive_[size_t(r)]) workers.push_back(r);
        Writer m;
        m.put<uint8_t>(kClose);
        m.put<uint64_t>(id);
        send_all(workers, to_every(workers, std::move(m.bytes)),
                 Clock::now() + std::chrono::seconds(int(kControlTimeoutSeconds)));
    } catch (const std::exception &) { // the keys stay on a worker until it stops
    }
}

void MpiCluster::stop_workers() noexcept {
    try {
        std::lock_guard lock(lock_);
        if (stopped_) return;
        stopped_ = true;
        std::vector<int> workers;
        for (int r = 1; r < size_; ++r)
            if (alive_[size_t(r)]) workers.push_back(r);
        Writer m;
        m.put<uint8_t>(kStop);
        send_all(workers, to_every(workers, std::move(m.bytes)),
                 Clock::now() + std::chrono::seconds(int(kControlTimeoutSeconds)));
    } catch (const std::exception &) {
    }
}

int MpiCluster::serve_worker() {
    FHEGPT_CHECK(rank_ != 0, "serve_worker on rank 0");
    struct SessionKeys {
        tfhe::ServerKey key;
        std::unique_ptr<circuit::LocalBootstrapBatchRunner> runner;
    };
    std::map<uint64_t, std::unique_ptr<SessionKeys>> sessions;
    ThreadPool & pool = ThreadPool::global();
    std::vector<uint8_t> message;
    for (;;) {
        // Polled rather than MPI_Probe, which spins a core at 100% while the server is idle.
        MPI_Status status;
        for (int flag = 0; !flag;) {
            if (MPI_Iprobe(0, kTagCommand, MPI_COMM_WORLD, &flag, &status) != MPI_SUCCESS) return 1; // rank 0 is gone
            if (!flag) std::this_thread::sleep_for(kWorkerPollPeriod);
        }
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        message.resize(size_t(count));
        if (MPI_Recv(message.data(), count, MPI_BYTE, 0, kTagCommand, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return 1;
        Reader r(message);
        const uint8_t command = r.get<uint8_t>();
        if (command == kStop) return 0;
        if (command == kClose) {
            sessions.erase(r.get<uint64_t>());
            continue;
        }
        const uint64_t sequence = command == kBatch ? r.get<uint64_t>() : 0;
        const uint64_t id = r.get<uint64_t>();
        std::vector<uint8_t> reply;
        try {
            if (command == kOpen) {
                const tfhe::TfheParameters & params = tfhe::parameters_by_name(r.get_text());
                auto keys = std::make_unique<SessionKeys>(SessionKeys{
                    tfhe::decompress_server_key(
                        tfhe::deserialize_compressed_server_key(r.get_bytes(), params, "<session key from rank 0>")),
                    nullptr});
                keys->runner = std::make_unique<circuit::LocalBootstrapBatchRunner>(keys->key, pool);
                sessions[id] = std::move(keys);
                Writer w;
                w.put<uint64_t>(0);
                w.put<uint8_t>(1);
                reply = std::move(w.bytes);
            } else if (command == kBatch) {
                auto it = sessions.find(id);
                if (it == sessions.end()) fail("no keys for session {}", id);
                const auto kind = tfhe::BootstrapKeyKind(r.get<uint8_t>());
                if (kind != tfhe::BootstrapKeyKind::standard && kind != tfhe::BootstrapKeyKind::fine)
                    fail("an unknown bootstrapping key kind");
                std::vector<tfhe::LookupTable> tables(r.get<uint32_t>());
                for (auto & t : tables) t = get_lut(r);
                const uint64_t n = r.get<uint64_t>();
                std::vector<const tfhe::LookupTable *> luts(static_cast<size_t>(n));
                for (auto & l : luts) {
                    const uint32_t index = r.get<uint32_t>();
                    if (index >= tables.size()) fail("a table index out of range");
                    l = &tables[index];
                }
                const size_t words = it->second->key.parameters.big_lwe_dimension().value + 1;
                std::vector<tfhe::LweCiphertext> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
                std::vector<const tfhe::LweCiphertext *> in_ptrs;
                std::vector<tfhe::LweCiphertext *> out_ptrs;
                for (size_t i = 0; i < n; ++i) {
                    r.get_words(in[i].data, words);
                    out[i] = tfhe::allocate_lwe_ciphertext(it->second->key);
                    in_ptrs.push_back(&in[i]);
                    out_ptrs.push_back(&out[i]);
                }
                it->second->runner->run(kind, in_ptrs, out_ptrs, luts);
                Writer w;
                w.put<uint64_t>(sequence);
                w.put<uint8_t>(1);
                for (const auto & ct : out) w.put_words(ct.data);
                reply = std::move(w.bytes);
            } else {
                fail("an unknown command {}", command);
            }
        } catch (const std::exception & e) {
            reply = error_reply(sequence, e.what());
        }
        send_blocking(reply, 0, kTagReply);
    }
}

} // namespace fhegpt::cluster
