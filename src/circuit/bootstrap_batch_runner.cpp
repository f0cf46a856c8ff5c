#include "circuit/bootstrap_batch_runner.h"

#include "common/thread_pool.h"

namespace fhegpt::circuit {

LocalBootstrapBatchRunner::LocalBootstrapBatchRunner(const tfhe::ServerKey & key, ThreadPool & pool)
    : key_(key), pool_(pool) {}

void LocalBootstrapBatchRunner::run(tfhe::BootstrapKeyKind kind, std::span<const tfhe::LweCiphertext * const> inputs,
                                    std::span<tfhe::LweCiphertext * const> outputs,
                                    std::span<const tfhe::LookupTable * const> luts) {
    if (inputs.empty()) return;
    const bool fine = kind == tfhe::BootstrapKeyKind::fine;
    bool & allocated = fine ? has_fine_ : has_standard_;
    tfhe::BootstrapWorkspace & workspace = fine ? fine_ : standard_;
    if (!allocated) {
        workspace = tfhe::allocate_bootstrap_workspace(key_, pool_, kind);
        allocated = true;
    }
    tfhe::batch_keyswitch_bootstrap(key_, kind, inputs, outputs, luts, workspace, pool_);
}

} // namespace fhegpt::circuit
