// Where a depth level's batch of key switch + bootstraps runs: the seam between the encrypted
// executor (which orders the work) and the machines that do it.
//
// The executor hands each batch to a BootstrapBatchRunner and waits for the outputs. The local
// runner runs it on the threads of one pool (one process); a distributed runner splits it over
// the ranks of an MPI job (cluster/mpi_cluster.h), each rank over its own threads. A session's
// evaluation keys reach the other machines once, when the session opens (DistributedKeys).
#pragma once

#include "common/error.h"
#include "tfhe/tfhe.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::circuit {

// A batch that could not be done for want of a machine (a rank that died or stopped
// answering), not because of anything in its input.
class BootstrapRunnerFailure : public Error {
public:
    using Error::Error;
};

class BootstrapBatchRunner {
public:
    virtual ~BootstrapBatchRunner() = default;
    // outputs[i] = bootstrap(keyswitch(inputs[i])) through luts[i], with the bootstrapping key
    // of `kind`. All three spans have the same length; outputs are allocated by the caller.
    // Throws BootstrapRunnerFailure when the work cannot be done (a machine stopped answering).
    virtual void run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
                     std::span<tfhe::LweCiphertext * const> outputs,
                     std::span<const tfhe::LookupTable * const> luts) = 0;
    // What the batches so far cost beyond the bootstraps (for logs; empty when nothing).
    virtual std::string summary() const { return {}; }
};

// On every thread of `pool`, with workspaces allocated on first use and kept.
class LocalBootstrapBatchRunner final : public BootstrapBatchRunner {
public:
    LocalBootstrapBatchRunner(const tfhe::ServerKey & key, ThreadPool & pool);
    void run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
             std::span<tfhe::LweCiphertext * const> outputs, std::span<const tfhe::LookupTable * const> luts) override;

private:
    const tfhe::ServerKey & key_;
    ThreadPool & pool_;
    tfhe::BootstrapWorkspace standard_, fine_;
    bool has_standard_ = false, has_fine_ = false;
};

// A session's evaluation keys held by other machines as well: they were sent there when the
// session opened, and are dropped there when this object is destroyed.
class DistributedKeys {
public:
    virtual ~DistributedKeys() = default;
    // A runner for one evaluation: its share of each batch runs here with `key` on `pool`.
    virtual std::unique_ptr<BootstrapBatchRunner> runner(const tfhe::ServerKey & key, ThreadPool & pool) = 0;
};

// Machines that can hold sessions' keys (an MPI job's ranks).
class BootstrapCluster {
public:
    virtual ~BootstrapCluster() = default;
    // Sends a compressed server key blob (tfhe/serialization) of `params` to every machine,
    // each of which decompresses it; fails with fhegpt::Error when one cannot.
    virtual std::unique_ptr<DistributedKeys> open_keys(std::span<const uint8_t> compressed_key_blob,
                                                       const tfhe::TfheParameters & params) = 0;
    // Machines (processes) that share the work, this one included.
    virtual int size() const = 0;
    // Those of them still in the cluster; cheap and lock-free (health checks ask it).
    virtual int alive() const { return size(); }
};

} // namespace fhegpt::circuit
