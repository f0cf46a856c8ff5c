// Symmetric quantizers (quant/quantizer.h): the least-squared-error clip beats absmax where an
// outlier stretches the range, keeps absmax where the values fill it, and handles zeros.
#include "quant/quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace fhegpt::quant;

double squared_error(const std::vector<float> & values, double scale, int bits) {
    double total = 0;
    for (float v : values) {
        const double e = double(quantize_value(v, scale, bits)) * scale - v;
        total += e * e;
    }
    return total;
}

TEST(Quantizer, MseScaleClipsAnOutlier) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> values(2000);
    for (float & v : values) v = normal(rng);
    values[17] = 12.0f; // one outlier, 3x the rest's range
    for (int bits : {3, 4, 5}) {
        const double absmax_scale = symmetric_scale(absmax(values), bits);
        const double scale = mse_scale(values, bits);
        EXPECT_LT(scale, 0.6 * absmax_scale) << bits << " bits";
        EXPECT_GE(scale, 0.2 * absmax_scale * (1 - 1e-12)) << bits << " bits";
        EXPECT_LT(squared_error(values, scale, bits), 0.7 * squared_error(values, absmax_scale, bits)) << bits << " bits";
    }
}

TEST(Quantizer, MseScaleKeepsAFullGrid) {
    // Every level of a 4-bit grid, equally often: clipping can only add error.
    std::vector<float> values;
    for (int rep = 0; rep < 10; ++rep)
        for (int level = -7; level <= 7; ++level) values.push_back(0.25f * float(level));
    EXPECT_DOUBLE_EQ(mse_scale(values, 4), symmetric_scale(absmax(values), 4));
    EXPECT_DOUBLE_EQ(squared_error(values, mse_scale(values, 4), 4), 0.0);
}

TEST(Quantizer, MseScaleOfZerosIsOne) {
    const std::vector<float> zeros(10, 0.0f);
    EXPECT_EQ(mse_scale(zeros, 4), 1.0);
    EXPECT_EQ(mse_scale(std::vector<float>(), 4), 1.0);
}

} // namespace
