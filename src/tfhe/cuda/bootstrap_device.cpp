#include "tfhe/cuda/bootstrap_device.h"

#include "common/error.h"
#include "tfhe/keyset.h"

namespace fhegpt::tfhe {

std::string resolve_bootstrap_device(std::string_view device) {
    if (device == "cpu") return "cpu";
    if (device == "auto") return cuda_device_count() > 0 ? "cuda" : "cpu";
    if (device == "cuda") {
        if (!cuda_backend_built())
            fail("--device cuda: no CUDA device: this build has no CUDA backend (configure with FHEGPT_CUDA=ON and a "
                 "CUDA toolkit)");
        if (cuda_device_count() == 0) fail("--device cuda: no CUDA device ({})", cuda_device_description());
        return "cuda";
    }
    fail("unknown device '{}' (cpu, cuda or auto)", device);
}

std::shared_ptr<BootstrapAccelerator> make_bootstrap_accelerator(const ServerKey & key, std::string_view device) {
    if (resolve_bootstrap_device(device) == "cpu") return nullptr;
    // auto keeps multi-bit sets on the CPU; an explicit cuda reports them (the backend's error).
    if (device == "auto" && key.bootstrap_key.grouping_factor.is_multi_bit()) return nullptr;
    return make_cuda_bootstrap_backend(key);
}

} // namespace fhegpt::tfhe
