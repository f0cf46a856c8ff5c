#include "tfhe/algorithms/fft_plans.h"

#include <map>
#include <memory>
#include <mutex>

namespace fhegpt::tfhe {

const NegacyclicFft & fft_plan(PolynomialSize polynomial_size) {
    static std::mutex mutex;
    static std::map<size_t, std::unique_ptr<NegacyclicFft>> plans;
    std::lock_guard lock(mutex);
    auto & plan = plans[polynomial_size.value];
    if (!plan) plan = std::make_unique<NegacyclicFft>(polynomial_size.value);
    return *plan;
}

} // namespace fhegpt::tfhe
