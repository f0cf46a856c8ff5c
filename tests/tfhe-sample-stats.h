// Running mean and variance of a sample of phase errors (the TFHE noise tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace fhegpt::tfhe::test {

struct SampleStats {
    double sum = 0, sum2 = 0, sum4 = 0;
    size_t count = 0;
    void add(double x) {
        sum += x;
        sum2 += x * x;
        sum4 += x * x * x * x;
        ++count;
    }
    double mean() const { return sum / static_cast<double>(count); }
    double variance() const { return sum2 / static_cast<double>(count) - mean() * mean(); }
    // The mean square (the error's variance with its mean included) and its standard error from
    // the sample's fourth moment: heavy tails (the multi-bit sets' errors) need more samples
    // than the sqrt(2 / n) of a Gaussian.
    double mean_square() const { return sum2 / static_cast<double>(count); }
    double mean_square_standard_error() const {
        const double n = static_cast<double>(count);
        return std::sqrt(std::max(0.0, sum4 / n - mean_square() * mean_square()) / n);
    }
};

} // namespace fhegpt::tfhe::test
