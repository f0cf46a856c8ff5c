// Running mean and variance of a sample of phase errors (the TFHE noise tests).
#pragma once

#include <cstddef>

namespace fhegpt::tfhe::test {

struct SampleStats {
    double sum = 0, sum2 = 0;
    size_t count = 0;
    void add(double x) {
        sum += x;
        sum2 += x * x;
        ++count;
    }
    double mean() const { return sum / static_cast<double>(count); }
    double variance() const { return sum2 / static_cast<double>(count) - mean() * mean(); }
};

} // namespace fhegpt::tfhe::test
