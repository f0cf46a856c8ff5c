#include "model/sampling.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>

namespace fhegpt::model {

namespace {

// Most likely first; the lower token id first on ties, so that results do not depend on the
// sort's implementation.
bool more_likely(const std::pair<float, int32_t> & a, const std::pair<float, int32_t> & b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

void check_finite(std::span<const float> logits) {
    if (logits.empty()) fail("sampling: no logits");
    for (size_t i = 0; i < logits.size(); ++i)
        if (!std::isfinite(logits[i])) fail("sampling: logit {} of token {} is not finite", logits[i], i);
}

} // namespace

int32_t argmax(std::span<const float> logits) {
    if (logits.empty()) fail("argmax of no logits");
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams & params) : params_(params), rng_(params.seed) {
    if (!std::isfinite(params.temperature)) fail("sampling: temperature {} is not finite", params.temperature);
    if (!(params.top_p > 0.0f)) fail("sampling: top-p must be positive (1: no limit), not {}", params.top_p);
}

int32_t Sampler::sample(std::span<const float> logits) {
    check_finite(logits);
    if (params_.greedy()) return argmax(logits);

    const size_t n = logits.size();
    candidates_.resize(n);
    for (size_t i = 0; i < n; ++i) candidates_[i] = {logits[i], static_cast<int32_t>(i)};

    // top-k: the k largest logits, in no particular order yet.
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
        const auto kth = candidates_.begin() + params_.top_k;
        std::nth_element(candidates_.begin(), kth - 1, candidates_.end(), more_likely);
        candidates_.resize(static_cast<size_t>(params_.top_k));
    }

    // softmax(logit / temperature) over the candidates, in double: a tiny temperature makes the
    // exponents large, and the differences must not round to equal probabilities. Candidates
    // stay ordered by logit, not by the rounded probability.
    float max = candidates_[0].first;
    for (const auto & c : candidates_) max = std::max(max, c.first);
    const double inv_temperature = 1.0 / static_cast<double>(params_.temperature);
    auto weight = [&](float logit) { return std::exp((static_cast<double>(logit) - max) * inv_temperature); };
    double total = 0.0;
    for (const auto & c : candidates_) total += weight(c.first);

    // top-p: the shortest most-likely-first prefix whose probability reaches top_p. The prefix
    // is sorted in growing steps: the nucleus is usually a few dozen tokens of 50k.
    if (params_.top_p < 1.0f) {
        size_t sorted = std::min<size_t>(64, candidates_.size());
        size_t keep = candidates_.size();
        for (;;) {
            std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(sorted),
                              candidates_.end(), more_likely);
            double cumulative = 0.0;
            size_t i = 0;
            for (; i < sorted; ++i) {
                cumulative += weight(candidates_[i].first) / total;
                if (cumulative >= params_.top_p) break;
            }
            if (i < sorted) {
                keep = i + 1;
                break;
            }
            if (sorted == candidates_.size()) break; // rounding: keep everything
            sorted = std::min(candidates_.size(), sorted * 8);
        }
        candidates_.resize(keep);
    } else if (candidates_.size() < logits.size()) {
        std::sort(candidates_.begin(), candidates_.end(), more_likely); // top-k only: k is small
    }

    double kept = 0.0;
    for (const auto & c : candidates_) kept += weight(c.first);
    for (auto & c : candidates_) c.first = static_cast<float>(weight(c.first) / kept);

    // Inverse transform with a uniform double from the top 53 bits of the generator.
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    double cumulative = 0.0;
    for (const auto & c : candidates_) {
        cumulative += c.first;
        if (u < cumulative) return c.second;
    }
    return candidates_.back().second;
}

} // namespace fhegpt::model
