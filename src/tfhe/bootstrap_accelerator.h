// A bootstrap backend beside the CPU threads (a GPU: cuda/cuda_bootstrap_backend.h). A
// ServerKey that carries one (ServerKey::accelerator, attached by cuda/bootstrap_device.h's
// make_bootstrap_accelerator) has its batch_keyswitch_bootstrap calls (keyset.h) run there, so
// the executor and the server need no other change. The backend holds a copy of the key's
// material on the device, built from the key it is attached to, and lives as long as that key.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace fhegpt::tfhe {

struct LweCiphertext;
struct LookupTable;
enum class BootstrapKeyKind : uint8_t;

class BootstrapAccelerator {
public:
    virtual ~BootstrapAccelerator() = default;
    // Whether it holds the bootstrapping key of this kind (the others run on the CPU).
    virtual bool serves(BootstrapKeyKind kind) const = 0;
    // The contract of batch_keyswitch_bootstrap: outputs[c * F + j] = function j of luts[c or 0]
    // applied to inputs[c] (key switch, then bootstrap). Safe to call from several threads.
    virtual void batch_keyswitch_bootstrap(BootstrapKeyKind kind, std::span<const LweCiphertext * const> inputs,
                                           std::span<LweCiphertext * const> outputs,
                                           std::span<const LookupTable * const> luts) = 0;
    // A line for logs and benchmarks ("cuda: NVIDIA H100 80GB HBM3, ...").
    virtual std::string description() const = 0;
};

} // namespace fhegpt::tfhe
