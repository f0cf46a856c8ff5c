// A bootstrap backend beside the CPU threads (a GPU: cuda/cuda_bootstrap_backend.h) to which
// batch_keyswitch_bootstrap (keyset.h) hands its batches while one is installed for the
// server key in use. The executor and the server keep calling keyset.h; a command that picks a
// device installs the backend for the lifetime of its key (ScopedBootstrapAccelerator).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace fhegpt::tfhe {

struct ServerKey;
struct LweCiphertext;
struct LookupTable;
enum class BootstrapKeyKind : uint8_t;

class BootstrapAccelerator {
public:
    virtual ~BootstrapAccelerator() = default;
    // Whether this backend holds the keys of `key` of this kind (the same object it was built from).
    virtual bool serves(const ServerKey & key, BootstrapKeyKind kind) const = 0;
    // The contract of batch_keyswitch_bootstrap: outputs[c * F + j] = function j of luts[c or 0]
    // applied to inputs[c] (key switch, then bootstrap). Safe to call from several threads.
    virtual void batch_keyswitch_bootstrap(BootstrapKeyKind kind, std::span<const LweCiphertext * const> inputs,
                                           std::span<LweCiphertext * const> outputs,
                                           std::span<const LookupTable * const> luts) = 0;
    // A line for logs and benchmarks ("cuda: NVIDIA H100 80GB HBM3").
    virtual std::string description() const = 0;
};

// The backend batches go to while it serves their key (nullptr: the CPU for all).
void install_bootstrap_accelerator(std::shared_ptr<BootstrapAccelerator> accelerator);
std::shared_ptr<BootstrapAccelerator> installed_bootstrap_accelerator();

// Installs a backend for a scope and restores the previous one after it.
class ScopedBootstrapAccelerator {
public:
    explicit ScopedBootstrapAccelerator(std::shared_ptr<BootstrapAccelerator> accelerator)
        : previous_(installed_bootstrap_accelerator()) {
        install_bootstrap_accelerator(std::move(accelerator));
    }
    ~ScopedBootstrapAccelerator() { install_bootstrap_accelerator(std::move(previous_)); }
    ScopedBootstrapAccelerator(const ScopedBootstrapAccelerator &) = delete;
    ScopedBootstrapAccelerator & operator=(const ScopedBootstrapAccelerator &) = delete;

private:
    std::shared_ptr<BootstrapAccelerator> previous_;
};

} // namespace fhegpt::tfhe
