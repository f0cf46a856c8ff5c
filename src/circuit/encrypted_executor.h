// Runs a circuit on LWE ciphertexts with the TFHE engine (server side: evaluation keys only).
//
// Nodes are grouped by bootstrap depth; each depth's lookups run as one batch over all cores
// (or over the machines of a BootstrapBatchRunner), then the linear nodes of that depth follow
// in order. Ciphertexts are released after their
// last use, so memory follows the widest depth rather than the whole circuit.
#pragma once

#include "circuit/bootstrap_batch_runner.h"
#include "circuit/circuit.h"
#include "common/cancellation.h"
#include "tfhe/tfhe.h"

#include <functional>
#include <span>
#include <vector>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::circuit {

struct ExecutionStats {
    int64_t bootstraps = 0;
    double seconds = 0;
};

// Called after each batch: bootstraps done so far, total.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// Fails when a lookup needs more message bits than the key's parameter set reads. With a
// cancellation token, throws Cancelled before the first bootstrap batch after it is raised.
std::vector<tfhe::LweCiphertext> run_encrypted(const Circuit & circuit, const tfhe::ServerKey & key,
                                               std::span<const tfhe::LweCiphertext> inputs, ThreadPool & pool,
                                               const ProgressCallback & progress = {}, ExecutionStats * stats = nullptr,
                                               const CancellationToken * cancel = nullptr);
// The same with inputs that live in several places (a request's ciphertexts and a cache), and
// the batches on `runner` (null: a LocalBootstrapBatchRunner on `pool`).
std::vector<tfhe::LweCiphertext> run_encrypted(const Circuit & circuit, const tfhe::ServerKey & key,
                                               std::span<const tfhe::LweCiphertext * const> inputs, ThreadPool & pool,
                                               const ProgressCallback & progress = {}, ExecutionStats * stats = nullptr,
                                               const CancellationToken * cancel = nullptr,
                                               BootstrapBatchRunner * runner = nullptr);

// Client side: encrypts integer inputs at their ports, decrypts and decodes outputs.
std::vector<tfhe::LweCiphertext> encrypt_inputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                                std::span<const int64_t> inputs);
std::vector<int64_t> decrypt_outputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                     std::span<const tfhe::LweCiphertext> outputs);
// The same for the first inputs.size() inputs only (the rest arrive as ciphertexts, e.g. a KV
// cache), and for outputs first..first + outputs.size() - 1.
std::vector<tfhe::LweCiphertext> encrypt_leading_inputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                                        std::span<const int64_t> inputs);
std::vector<int64_t> decrypt_output_range(const Circuit & circuit, const tfhe::ClientKey & key,
                                          std::span<const tfhe::LweCiphertext> outputs, size_t first);

} // namespace fhegpt::circuit
