// Batched KS-PBS on an NVIDIA GPU: the key switching key and the classic bootstrapping keys of a
// ServerKey resident on the device (the bootstrapping keys in the Fourier domain of cuFFT's
// transform, pbs_kernels.h), batches of a whole depth level in chunks of up to max_chunk
// ciphertexts. Per chunk: key switch, modulus switch, accumulator set-up, n CMux steps of
// (rotate + decompose, batched forward FFTs, key products, batched inverse FFTs, add), sample
// extraction. The same results as the CPU engine up to the FFT's rounding (noise of the same size).
// Multi-bit keys are not supported (the constructor fails for a multi-bit standard key).
#pragma once

#include "tfhe/bootstrap_accelerator.h"
#include "tfhe/keyset.h"

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace fhegpt::tfhe {

class CudaBootstrapBackend final : public BootstrapAccelerator {
public:
    // Uploads `key`'s keys to device 0 (the backend keeps no reference to `key`). Throws
    // fhegpt::Error "no CUDA device ..." without one, or for a multi-bit key.
    explicit CudaBootstrapBackend(const ServerKey & key, size_t max_chunk = 4096);
    ~CudaBootstrapBackend() override;

    bool serves(BootstrapKeyKind kind) const override;
    void batch_keyswitch_bootstrap(BootstrapKeyKind kind, std::span<const LweCiphertext * const> inputs,
                                   std::span<LweCiphertext * const> outputs,
                                   std::span<const LookupTable * const> luts) override;
    std::string description() const override;

    // Device memory the keys take (bytes).
    size_t key_bytes() const;

private:
    struct DeviceState;
    bool centred_modulus_switch_;
    size_t max_chunk_;
    std::unique_ptr<DeviceState> device_;
    std::mutex mutex_; // one batch at a time on the device
};

} // namespace fhegpt::tfhe
