#include "tfhe/bootstrap_accelerator.h"

#include <mutex>

namespace fhegpt::tfhe {

namespace {
std::mutex accelerator_mutex;
std::shared_ptr<BootstrapAccelerator> accelerator_instance;
} // namespace

void install_bootstrap_accelerator(std::shared_ptr<BootstrapAccelerator> accelerator) {
    std::lock_guard lock(accelerator_mutex);
    accelerator_instance = std::move(accelerator);
}

std::shared_ptr<BootstrapAccelerator> installed_bootstrap_accelerator() {
    std::lock_guard lock(accelerator_mutex);
    return accelerator_instance;
}

} // namespace fhegpt::tfhe
