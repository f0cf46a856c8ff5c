// Choosing the next token from a row of logits: greedy (argmax), or sampling from the
// distribution softmax(logits / temperature) restricted to the top_k most likely tokens and
// then to the smallest set of them whose probability reaches top_p (nucleus sampling).
// The random generator is std::mt19937_64, seeded: a run is reproducible, not secret.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace fhegpt::model {

struct SamplingParams {
    float temperature = 0.0f; // <= 0: greedy
    int32_t top_k = 0;        // <= 0: no limit
    float top_p = 1.0f;       // >= 1: no limit; (0, 1): the nucleus
    uint64_t seed = 0;

    bool greedy() const { return temperature <= 0.0f || top_k == 1; }
};

// The index of the largest logit, the lowest index on ties.
int32_t argmax(std::span<const float> logits);

class Sampler {
public:
    // Throws fhegpt::Error for a top_p that is not positive or a non-finite temperature.
    explicit Sampler(const SamplingParams & params);

    // The next token; throws fhegpt::Error if the logits are empty or not finite.
    int32_t sample(std::span<const float> logits);

    // The candidates kept by the last sample() that was not greedy, with their probabilities
    // renormalized over the kept set (for tests and diagnostics); most likely first when top-k
    // or top-p limited them, else in token order.
    std::span<const std::pair<float, int32_t>> last_candidates() const { return candidates_; }

    const SamplingParams & params() const { return params_; }

private:
    SamplingParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> candidates_; // (logit, then probability; token)
};

} // namespace fhegpt::model
