// Which device runs a server's bootstraps: `--device cpu|cuda|auto` of the commands. cuda
// installs a CudaBootstrapBackend (built with FHEGPT_CUDA; "no CUDA device" otherwise or
// when the machine has none), auto takes cuda when a CUDA device is present, else the CPU.
#pragma once

#include "tfhe/bootstrap_accelerator.h"

#include <memory>
#include <string>
#include <string_view>

namespace fhegpt::tfhe {

struct ServerKey;

// Whether this build has the CUDA backend (FHEGPT_CUDA found a toolkit).
bool cuda_backend_built();
// CUDA devices this process can use (0 without the backend, a driver or a GPU).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3, compute 9.0, 132 SMs" of device 0, or why there is none.
std::string cuda_device_description();

// The backend for `device` ("cpu": nullptr, "cuda", "auto": cuda when present and the key is
// classic, else nullptr), holding `key`'s keys on the device: assign it to key.accelerator.
// Throws fhegpt::Error for an unknown name and, for "cuda", "no CUDA device ..." when none can
// be used or the refusal of a multi-bit key.
std::shared_ptr<BootstrapAccelerator> make_bootstrap_accelerator(const ServerKey & key, std::string_view device);
// The device a name resolves to on this machine ("cpu" or "cuda"), the same checks.
std::string resolve_bootstrap_device(std::string_view device);

// The CUDA backend for `key` (cuda_bootstrap_backend.cpp, or the stub without the toolkit).
std::shared_ptr<BootstrapAccelerator> make_cuda_bootstrap_backend(const ServerKey & key);

} // namespace fhegpt::tfhe
