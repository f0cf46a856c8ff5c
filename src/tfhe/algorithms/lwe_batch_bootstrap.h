// Batched key switch + programmable bootstrap over a thread pool.
//
// The inputs are cut into groups of `group_size` consecutive inputs, handed to the threads one
// group at a time (a thread the OS delays takes fewer). Per group: key switch of the group (each
// KSK entry applied to the whole group while in cache), modulus switch, one grouped blind
// rotation (each GGSW applied to the whole group), sample extraction into the caller's outputs. All scratch lives in a
// BootstrapWorkspace allocated once per key shape and reused: the batch never allocates.
#pragma once

#include "common/thread_pool.h"
#include "tfhe/algorithms/lwe_programmable_bootstrap.h"
#include "tfhe/entities/lwe_keyswitch_key.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

struct BootstrapThreadScratch {
    ProgrammableBootstrapScratch pbs;
    std::vector<uint32_t> keyswitch;     // group (n + 1)
    std::vector<LweCiphertext> switched; // group small ciphertexts (key switch outputs)
};

struct BootstrapWorkspace {
    size_t group_size = 0;
    std::vector<BootstrapThreadScratch> threads;

    size_t size_bytes() const;
};

// The group size batches use by default (4).
size_t default_bootstrap_group_size(const FourierLweBootstrapKey & bsk);
// Scratch for `thread_count` threads (use ThreadPool::size()); group_size 0: the default.
BootstrapWorkspace allocate_bootstrap_workspace(const FourierLweBootstrapKey & bsk, size_t thread_count,
                                                size_t group_size = 0);

// outputs[c * F + j] = function j of luts[c or 0] applied to inputs[c], F = function count.
// luts: one table for all inputs or one per input. ksk: key switch first (inputs of dimension
// k N, KS-PBS order); nullptr: inputs are already under the small key (dimension n).
void batch_keyswitch_programmable_bootstrap(std::span<const LweCiphertext * const> inputs,
                                            std::span<LweCiphertext * const> outputs,
                                            std::span<const LookupTable * const> luts, const LweKeyswitchKey * ksk,
                                            const FourierLweBootstrapKey & bsk, ModulusSwitchType modulus_switch,
                                            BootstrapWorkspace & workspace, ThreadPool & pool);
// Same on contiguous vectors (builds the pointer arrays, then calls the above).
void batch_keyswitch_programmable_bootstrap(std::span<const LweCiphertext> inputs, std::span<LweCiphertext> outputs,
                                            std::span<const LookupTable * const> luts, const LweKeyswitchKey * ksk,
                                            const FourierLweBootstrapKey & bsk, ModulusSwitchType modulus_switch,
                                            BootstrapWorkspace & workspace, ThreadPool & pool);

} // namespace fhegpt::tfhe
