// Sampling: greedy, temperature, top-k, top-p, seeds.
#include "common/error.h"
#include "model/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace {

using namespace fhegpt::model;

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 3.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> logits(n);
    for (float & l : logits) l = normal(rng);
    return logits;
}

// Logits whose softmax at temperature 1 is `probs`.
std::vector<float> logits_of(const std::vector<double> & probs) {
    std::vector<float> logits;
    for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
    return logits;
}

std::map<int32_t, int> histogram(Sampler & sampler, const std::vector<float> & logits, int draws) {
    std::map<int32_t, int> counts;
    for (int i = 0; i < draws; ++i) counts[sampler.sample(logits)]++;
    return counts;
}

TEST(Sampling, ArgmaxTakesTheLowestIndexOnTies) {
    EXPECT_EQ(argmax(std::vector<float>{1, 3, 2}), 1);
    EXPECT_EQ(argmax(std::vector<float>{5, 1, 5}), 0);
    EXPECT_EQ(argmax(std::vector<float>{-2}), 0);
    EXPECT_THROW(argmax(std::vector<float>{}), fhegpt::Error);
}

TEST(Sampling, GreedyIsArgmax) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const std::vector<float> logits = random_logits(1000, seed);
        Sampler greedy({});
        EXPECT_EQ(greedy.sample(logits), argmax(logits));
    }
}

TEST(Sampling, TopKOneEqualsGreedy) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const std::vector<float> logits = random_logits(5000, seed, 1.0f);
        SamplingParams params;
        params.temperature = 1.5f;
        params.top_k = 1;
        params.top_p = 0.9f;
        params.seed = seed;
        Sampler sampler(params);
        for (int i = 0; i < 5; ++i) EXPECT_EQ(sampler.sample(logits), argmax(logits));
    }
}

TEST(Sampling, TemperatureTowardsZeroBecomesGreedy) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const std::vector<float> logits = random_logits(2000, seed, 0.5f);
        SamplingParams params;
        params.temperature = 1e-4f;
        params.seed = seed;
        Sampler sampler(params);
        for (int i = 0; i < 5; ++i) EXPECT_EQ(sampler.sample(logits), argmax(logits));
        params.temperature = 0.0f; // exactly 0: greedy by definition
        Sampler zero(params);
        EXPECT_EQ(zero.sample(logits), argmax(logits));
        params.temperature = -1.0f;
        Sampler negative(params);
        EXPECT_EQ(negative.sample(logits), argmax(logits));
    }
}

TEST(Sampling, FollowsTheSoftmaxDistribution) {
    const std::vector<double> probs = {0.5, 0.25, 0.125, 0.0625, 0.0625};
    SamplingParams params;
    params.temperature = 1.0f;
    params.seed = 3;
    Sampler sampler(params);
    const int draws = 40000;
    const auto counts = histogram(sampler, logits_of(probs), draws);
    for (size_t i = 0; i < probs.size(); ++i) {
        const double expected = probs[i] * draws;
        const double sigma = std::sqrt(draws * probs[i] * (1 - probs[i]));
        EXPECT_NEAR(counts.count(static_cast<int32_t>(i)) ? counts.at(static_cast<int32_t>(i)) : 0, expected, 5 * sigma)
            << "token " << i;
    }
}

TEST(Sampling, HigherTemperatureFlattens) {
    const std::vector<float> logits = logits_of({0.7, 0.2, 0.1});
    SamplingParams cold, hot;
    cold.temperature = 0.5f;
    hot.temperature = 3.0f;
    cold.seed = hot.seed = 11;
    Sampler cold_sampler(cold), hot_sampler(hot);
    const int draws = 20000;
    const int cold_top = histogram(cold_sampler, logits, draws)[0];
    const int hot_top = histogram(hot_sampler, logits, draws)[0];
    // p(top) at T=0.5: 0.49 / 0.54 = 0.907; at T=3: 0.888 / (0.888 + 0.585 + 0.464) = 0.46.
    EXPECT_NEAR(cold_top / static_cast<double>(draws), 0.49 / 0.54, 0.02);
    EXPECT_LT(hot_top, draws / 2);
}

TEST(Sampling, TopKKeepsTheKMostLikely) {
    const std::vector<float> logits = random_logits(3000, 5, 1.0f);
    std::vector<int32_t> order(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    const std::set<int32_t> top5(order.begin(), order.begin() + 5);

    SamplingParams params;
    params.temperature = 5.0f; // flat: without top-k, the tail would be sampled all the time
    params.top_k = 5;
    params.seed = 9;
    Sampler sampler(params);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) {
        const int32_t token = sampler.sample(logits);
        EXPECT_TRUE(top5.count(token)) << token;
        seen.insert(token);
    }
    EXPECT_EQ(seen, top5);
    EXPECT_EQ(sampler.last_candidates().size(), 5u);
}

TEST(Sampling, TopPCutsTheTail) {
    // Probabilities 0.5, 0.3, 0.15, 0.05: the nucleus of 0.7 is {0, 1}, of 0.85 {0, 1, 2}.
    const std::vector<float> logits = logits_of({0.3, 0.05, 0.5, 0.15});
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_p = 0.7f;
    params.seed = 21;
    Sampler sampler(params);
    const int draws = 20000;
    const auto counts = histogram(sampler, logits, draws);
    EXPECT_EQ(counts.size(), 2u);
    EXPECT_EQ(counts.count(1), 0u);
    EXPECT_EQ(counts.count(3), 0u);
    // Renormalized over the nucleus: 0.5 / 0.8 and 0.3 / 0.8.
    EXPECT_NEAR(counts.at(2) / static_cast<double>(draws), 0.625, 0.02);
    ASSERT_EQ(sampler.last_candidates().size(), 2u);
    EXPECT_EQ(sampler.last_candidates()[0].second, 2);
    EXPECT_NEAR(sampler.last_candidates()[0].first, 0.625, 1e-6);

    params.top_p = 0.85f;
    Sampler wider(params);
    const auto wider_counts = histogram(wider, logits, draws);
    EXPECT_EQ(wider_counts.size(), 3u);
    EXPECT_EQ(wider_counts.count(1), 0u);

    params.top_p = 0.01f; // at least the most likely token is kept
    Sampler narrow(params);
    EXPECT_EQ(histogram(narrow, logits, 100).at(2), 100);
}

TEST(Sampling, TopPOnALargeVocabulary) {
    // Sorting grows in steps: check a nucleus that needs more than the first step.
    const std::vector<float> logits = random_logits(50257, 17, 0.3f); // flat: a wide nucleus
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_p = 0.5f;
    params.seed = 1;
    Sampler sampler(params);
    sampler.sample(logits);
    const auto kept = sampler.last_candidates();
    ASSERT_GT(kept.size(), 64u);
    // Kept: the most likely tokens, in order, and their original mass just reaches 0.5.
    double max = -1e30, total = 0;
    for (float l : logits) max = std::max(max, static_cast<double>(l));
    for (float l : logits) total += std::exp(l - max);
    double mass = 0, mass_without_last = 0;
    for (size_t i = 0; i < kept.size(); ++i) {
        const double p = std::exp(logits[static_cast<size_t>(kept[i].second)] - max) / total;
        if (i + 1 < kept.size()) mass_without_last += p;
        mass += p;
        if (i > 0) {
            EXPECT_GE(logits[static_cast<size_t>(kept[i - 1].second)], logits[static_cast<size_t>(kept[i].second)]);
        }
    }
    EXPECT_GE(mass, 0.5 - 1e-6);
    EXPECT_LT(mass_without_last, 0.5 + 1e-6);
}

TEST(Sampling, SameSeedSameSequence) {
    const std::vector<float> logits = random_logits(1000, 2, 1.0f);
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_k = 50;
    params.top_p = 0.9f;
    params.seed = 1234;
    Sampler a(params), b(params);
    params.seed = 1235;
    Sampler c(params);
    std::vector<int32_t> sa, sb, sc;
    for (int i = 0; i < 50; ++i) {
        sa.push_back(a.sample(logits));
        sb.push_back(b.sample(logits));
        sc.push_back(c.sample(logits));
    }
    EXPECT_EQ(sa, sb);
    EXPECT_NE(sa, sc);
}

TEST(Sampling, RejectsBadInput) {
    SamplingParams params;
    params.temperature = 1.0f;
    params.top_p = 0.0f;
    EXPECT_THROW(Sampler{params}, fhegpt::Error);
    params.top_p = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(Sampler{params}, fhegpt::Error);
    params.top_p = 1.0f;
    params.temperature = std::numeric_limits<float>::infinity();
    EXPECT_THROW(Sampler{params}, fhegpt::Error);
    params.temperature = 1.0f;
    Sampler sampler(params);
    EXPECT_THROW(sampler.sample(std::vector<float>{}), fhegpt::Error);
    EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, std::numeric_limits<float>::quiet_NaN()}), fhegpt::Error);
}

} // namespace
