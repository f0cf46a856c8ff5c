#include "tfhe/algorithms/fft_plans.h"

#include <map>
#include <memory>
#include <mutex>

namespace fhegpt::tfhe {

const NegacyclicFft & fft_plan(PolynomialSize polynomial_size) { return fft_plan(polynomial_size, FftKernel::Auto); }

const NegacyclicFft & fft_plan(PolynomialSize polynomial_size, FftKernel kernel) {
    static std::mutex mutex;
    static std::map<std::pair<size_t, FftKernel>, std::unique_ptr<NegacyclicFft>> plans;
    std::lock_guard lock(mutex);
    auto & plan = plans[{polynomial_size.value, kernel}];
    if (!plan) plan = std::make_unique<NegacyclicFft>(polynomial_size.value, kernel);
    return *plan;
}

} // namespace fhegpt::tfhe
