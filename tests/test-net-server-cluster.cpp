// The part server with a BootstrapCluster (the seam that an MPI job implements,
// cluster/mpi_cluster.h), here an in-process stand-in that behaves like a two-rank job: at
// session creation it reads and decompresses the uploaded key blob as a worker would, and it
// runs each batch's second half with that copy of the keys, the first half with the server's.
// - Remote values equal the local clear simulation; every batch went through the cluster;
//   each session's keys were opened once and dropped with the session.
// - A batch that fails for want of a machine (BootstrapRunnerFailure) gives the client a 503
//   with the cluster's message; the session stays at its position, and the same request then
//   succeeds with the simulated values.
// The real MPI job, killed ranks included: cli.server.mpi (tests/cli-mpi-server.py).
#include "net-server-test-util.h"
#include "circuit/bootstrap_batch_runner.h"
#include "circuit/quantized_part_seams.h"
#include "common/error.h"
#include "net/part_client.h"
#include "tfhe/serialization/serialization.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::test;

struct ClusterCounters {
    std::atomic<int> keys_opened{0}, keys_dropped{0}, batches{0}, worker_bootstraps{0};
    std::atomic<int> fail_at_batch{-1}; // the batch (counted from 0) that fails, once
};

class HalvingRunner final : public circuit::BootstrapBatchRunner {
public:
    HalvingRunner(const tfhe::ServerKey & key, const tfhe::ServerKey & worker_key, ThreadPool & pool,
                  ClusterCounters & counters)
        : local_(key, pool), worker_(worker_key, pool), counters_(counters) {}
    void run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
             std::span<tfhe::LweCiphertext * const> outputs, std::span<const tfhe::LookupTable * const> luts) override {
        const int batch = counters_.batches++;
        int expected = batch;
        if (counters_.fail_at_batch.compare_exchange_strong(expected, -1))
            throw circuit::BootstrapRunnerFailure("the test cluster lost rank 1");
        ASSERT_EQ(luts.size(), inputs.size());
        const size_t half = inputs.size() / 2;
        local_.run(kind, inputs.first(half), outputs.first(half), luts.first(half));
        worker_.run(kind, inputs.subspan(half), outputs.subspan(half), luts.subspan(half));
        counters_.worker_bootstraps += int(inputs.size() - half);
    }

private:
    circuit::LocalBootstrapBatchRunner local_, worker_;
    ClusterCounters & counters_;
};

class TestKeys final : public circuit::DistributedKeys {
public:
    TestKeys(tfhe::ServerKey key, ClusterCounters & counters) : key_(std::move(key)), counters_(counters) {
        ++counters_.keys_opened;
    }
    ~TestKeys() override { ++counters_.keys_dropped; }
    std::unique_ptr<circuit::BootstrapBatchRunner> runner(const tfhe::ServerKey & key, ThreadPool & pool) override {
        return std::make_unique<HalvingRunner>(key, key_, pool, counters_);
    }

private:
    tfhe::ServerKey key_; // the "worker's" copy, from the uploaded blob
    ClusterCounters & counters_;
};

class TestCluster final : public circuit::BootstrapCluster {
public:
    explicit TestCluster(ClusterCounters & counters) : counters_(counters) {}
    std::unique_ptr<circuit::DistributedKeys> open_keys(std::span<const uint8_t> blob,
                                                        const tfhe::TfheParameters & params) override {
        return std::make_unique<TestKeys>(
            tfhe::decompress_server_key(tfhe::deserialize_compressed_server_key(blob, params, "<test cluster>")),
            counters_);
    }
    int size() const override { return 2; }

private:
    ClusterCounters & counters_;
};

std::vector<float> simulate_rows(circuit::QuantizedHeadAttention & seam, std::span<const float> x, int32_t n_new,
                                 int32_t n_past) {
    std::vector<float> rows(size_t(n_new) * kHeadDim);
    seam.forward(x.subspan(size_t(n_past) * kEmbd, size_t(n_new) * kEmbd), n_new, n_past, rows);
    return rows;
}

std::vector<float> remote_rows(net::RemotePart & remote, std::span<const float> x, int32_t n_new, int32_t n_past) {
    return to_reals(remote.run(x.subspan(size_t(n_past) * kEmbd, size_t(n_new) * kEmbd), n_new, n_past),
                    remote.manifest().output_unit);
}

TEST(NetServerCluster, BatchesGoThroughTheClusterAndEqualTheSimulation) {
    ClusterCounters counters;
    net::ServerOptions options;
    options.cluster = std::make_shared<TestCluster>(counters);
    TestServer server(served_head(), options);
    const std::vector<float> x = test::normal_x(size_t(4) * kEmbd, 31);
    circuit::QuantizedHeadAttention simulated(test_head(), circuit::Executor::simulate, {}, true);
    {
        net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
        EXPECT_EQ(counters.keys_opened.load(), 1);
        EXPECT_EQ(remote_rows(remote, x, 3, 0), simulate_rows(simulated, x, 3, 0));
        const int batches = counters.batches.load();
        EXPECT_GT(batches, 0);
        EXPECT_EQ(remote_rows(remote, x, 1, 3), simulate_rows(simulated, x, 1, 3));
        EXPECT_GT(counters.batches.load(), batches);
        EXPECT_GT(counters.worker_bootstraps.load(), 0);
    } // the client closes its session
    for (int i = 0; i < 100 && counters.keys_dropped.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(counters.keys_dropped.load(), 1);
}

TEST(NetServerCluster, ALostMachineFailsTheEvaluationAndKeepsTheSession) {
    ClusterCounters counters;
    net::ServerOptions options;
    options.cluster = std::make_shared<TestCluster>(counters);
    TestServer server(served_head(), options);
    const std::vector<float> x = test::normal_x(size_t(4) * kEmbd, 32);
    circuit::QuantizedHeadAttention simulated(test_head(), circuit::Executor::simulate, {}, true);
    net::RemotePart remote(server.url(), kHeadName, kBits, kEmbd);
    EXPECT_EQ(remote_rows(remote, x, 3, 0), simulate_rows(simulated, x, 3, 0));

    counters.fail_at_batch = counters.batches.load() + 2; // the third batch of the next evaluation
    try {
        remote_rows(remote, x, 1, 3);
        FAIL() << "the evaluation did not fail";
    } catch (const Error & e) {
        EXPECT_NE(std::string(e.what()).find("HTTP 503: the test cluster lost rank 1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(server.log_lines_with("POST /v1/eval 503", 1).size(), 1u);
    // The session is still at position 3: the same request now succeeds.
    EXPECT_EQ(remote_rows(remote, x, 1, 3), simulate_rows(simulated, x, 1, 3));
    EXPECT_EQ(server.server().session_count(), 1u);
    EXPECT_EQ(counters.keys_opened.load(), 1);
    EXPECT_EQ(server.server().health().max_ranks, 2);
}

} // namespace
