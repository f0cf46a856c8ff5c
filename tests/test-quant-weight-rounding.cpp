// GPTQ weight rounding (quant/weight_rounding.h): where inputs are uncorrelated it is nearest
// rounding; where they correlate it moves less of W x; levels stay in range; bad shapes fail.
#include "common/error.h"
#include "quant/quantizer.h"
#include "quant/weight_rounding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace fhegpt::quant;

// Sum over samples and columns of (x (w - s q) + (b - s bias))^2: how far the rounded weights
// move the outputs on the inputs x.
double output_error(const std::vector<int64_t> & x, int64_t samples, int32_t dim, const std::vector<double> & w,
                    int32_t cols, const std::vector<double> & scales, const std::vector<int64_t> & q,
                    const std::vector<double> & bias) {
    double total = 0;
    for (int64_t s = 0; s < samples; ++s)
        for (int32_t c = 0; c < cols; ++c) {
            double e = w[size_t(dim) * cols + c] - scales[c] * bias[c];
            for (int32_t r = 0; r < dim; ++r)
                e += double(x[size_t(s) * dim + r]) * (w[size_t(r) * cols + c] - scales[c] * double(q[size_t(r) * cols + c]));
            total += e * e;
        }
    return total;
}

// Nearest rounding of the same weights: the bias row stays real.
RoundedWeights round_nearest(const std::vector<double> & w, int32_t dim, int32_t cols, const std::vector<double> & scales,
                             int bits) {
    RoundedWeights out;
    for (int32_t r = 0; r < dim; ++r)
        for (int32_t c = 0; c < cols; ++c) out.values.push_back(quantize_value(w[size_t(r) * cols + c], scales[c], bits));
    for (int32_t c = 0; c < cols; ++c) out.bias.push_back(w[size_t(dim) * cols + c] / scales[c]);
    return out;
}

TEST(WeightRounding, UncorrelatedInputsRoundToNearest) {
    // Every sign pattern of 4 channels: zero-mean, mutually orthogonal, orthogonal to the bias.
    const int32_t dim = 4, cols = 3;
    const int64_t samples = 16;
    std::vector<int64_t> x;
    for (int64_t s = 0; s < samples; ++s)
        for (int32_t r = 0; r < dim; ++r) x.push_back(((s >> r) & 1) ? 3 : -3);
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<double> w(size_t(dim + 1) * cols);
    for (double & v : w) v = u(rng);
    const std::vector<double> scales = {0.1, 0.13, 0.07};
    const RoundedWeights gptq = round_weights_gptq(w, dim, cols, scales, 4, augmented_gram(x, samples, dim), kGptqDamping);
    const RoundedWeights nearest = round_nearest(w, dim, cols, scales, 4);
    EXPECT_EQ(gptq.values, nearest.values);
    for (int32_t c = 0; c < cols; ++c) EXPECT_NEAR(gptq.bias[c], nearest.bias[c], 1e-9);
}

TEST(WeightRounding, CorrelatedInputsMoveTheOutputsLess) {
    // Inputs that share a few latent factors, as LayerNorm outputs do.
    const int32_t dim = 24, cols = 8, factors = 4;
    const int64_t samples = 400;
    std::mt19937 rng(11);
    std::normal_distribution<double> g(0.0, 1.0);
    std::vector<double> mix(size_t(factors) * dim);
    for (double & m : mix) m = g(rng);
    std::vector<int64_t> x;
    for (int64_t s = 0; s < samples; ++s) {
        std::vector<double> z(static_cast<size_t>(factors));
        for (double & v : z) v = g(rng);
        for (int32_t r = 0; r < dim; ++r) {
            double v = 0.3 * g(rng) + 2.0; // a common offset: the bias row has work to do
            for (int32_t f = 0; f < factors; ++f) v += z[f] * mix[size_t(f) * dim + r];
            x.push_back(static_cast<int64_t>(std::nearbyint(2.0 * v)));
        }
    }
    std::vector<double> w(size_t(dim + 1) * cols);
    for (double & v : w) v = 0.2 * g(rng);
    const std::vector<double> scales(static_cast<size_t>(cols), 0.06);
    const RoundedWeights gptq = round_weights_gptq(w, dim, cols, scales, 4, augmented_gram(x, samples, dim), kGptqDamping);
    const RoundedWeights nearest = round_nearest(w, dim, cols, scales, 4);
    const double e_gptq = output_error(x, samples, dim, w, cols, scales, gptq.values, gptq.bias);
    const double e_nearest = output_error(x, samples, dim, w, cols, scales, nearest.values, nearest.bias);
    EXPECT_LT(e_gptq, 0.5 * e_nearest) << "gptq " << e_gptq << ", nearest " << e_nearest;
    for (int64_t q : gptq.values) {
        EXPECT_GE(q, -max_level(4));
        EXPECT_LE(q, max_level(4));
    }
}

TEST(WeightRounding, LevelsStayInRangeAndDeadChannelsAreFine) {
    // Weights far beyond the range clamp; a channel that is always 0 has only the damping.
    const int32_t dim = 3, cols = 2;
    const int64_t samples = 5;
    const std::vector<int64_t> x = {1, 0, 2, -1, 0, 1, 2, 0, -2, 1, 0, 1, 0, 0, -1};
    const std::vector<double> w = {40.0, -40.0, 0.3, 0.2, -0.1, 50.0, 1.0, -1.0};
    const std::vector<double> scales = {1.0, 1.0};
    const RoundedWeights out = round_weights_gptq(w, dim, cols, scales, 3, augmented_gram(x, samples, dim), kGptqDamping);
    ASSERT_EQ(out.values.size(), size_t(dim) * cols);
    for (int64_t q : out.values) {
        EXPECT_GE(q, -3);
        EXPECT_LE(q, 3);
    }
    for (double b : out.bias) EXPECT_TRUE(std::isfinite(b));
}

TEST(WeightRounding, RejectsBadShapes) {
    const std::vector<int64_t> x = {1, 2, 3, 4};
    EXPECT_THROW(augmented_gram(x, 3, 2), fhegpt::Error);
    EXPECT_THROW(augmented_gram(x, 0, 4), fhegpt::Error);
    const std::vector<double> gram = augmented_gram(x, 2, 2);
    const std::vector<double> w(6, 0.5), scales(2, 1.0), one_scale(1, 1.0);
    EXPECT_NO_THROW(round_weights_gptq(w, 2, 2, scales, 4, gram, kGptqDamping));
    EXPECT_THROW(round_weights_gptq(w, 2, 2, one_scale, 4, gram, kGptqDamping), fhegpt::Error); // scales
    EXPECT_THROW(round_weights_gptq(std::vector<double>(4, 0.5), 2, 2, scales, 4, gram, kGptqDamping),
                 fhegpt::Error);                                                                // no bias row
    EXPECT_THROW(round_weights_gptq(w, 2, 2, scales, 4, std::vector<double>(4, 1.0), kGptqDamping),
                 fhegpt::Error);                                                                // Gram size
    EXPECT_THROW(round_weights_gptq(w, 2, 2, scales, 1, gram, kGptqDamping), fhegpt::Error);   // bits
}

} // namespace
