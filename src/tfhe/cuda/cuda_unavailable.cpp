// The CUDA entry points of a build without the CUDA toolkit (FHEGPT_CUDA=OFF or none found).
#include "common/error.h"
#include "tfhe/cuda/bootstrap_device.h"

namespace fhegpt::tfhe {

bool cuda_backend_built() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_description() { return "this build has no CUDA backend"; }

std::shared_ptr<BootstrapAccelerator> make_cuda_bootstrap_backend(const ServerKey &) {
    fail("no CUDA device: this build has no CUDA backend (configure with FHEGPT_CUDA=ON and a CUDA toolkit)");
}

} // namespace fhegpt::tfhe
