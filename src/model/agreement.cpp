#include "model/agreement.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace fhegpt::model {

namespace {

double fraction(int64_t hits, int64_t positions) {
    return positions > 0 ? static_cast<double>(hits) / static_cast<double>(positions) : 0.0;
}

void check_no_nan(std::span<const float> row, const char * which, size_t position) {
    for (size_t t = 0; t < row.size(); ++t)
        if (std::isnan(row[t])) fail("top-k agreement: {} logit of token {} at position {} is NaN", which, t, position);
}

// KL(softmax(reference) || softmax(modified)) of one position, in nats, by log-sum-exp.
double kl_divergence(std::span<const float> reference, std::span<const float> modified) {
    double ref_max = -INFINITY, mod_max = -INFINITY;
    for (size_t t = 0; t < reference.size(); ++t) {
        ref_max = std::max(ref_max, double(reference[t]));
        mod_max = std::max(mod_max, double(modified[t]));
    }
    double ref_sum = 0, mod_sum = 0;
    for (size_t t = 0; t < reference.size(); ++t) {
        ref_sum += std::exp(double(reference[t]) - ref_max);
        mod_sum += std::exp(double(modified[t]) - mod_max);
    }
    const double ref_log_z = ref_max + std::log(ref_sum), mod_log_z = mod_max + std::log(mod_sum);
    double kl = 0;
    for (size_t t = 0; t < reference.size(); ++t) {
        const double log_p = double(reference[t]) - ref_log_z;
        if (std::isinf(log_p)) continue; // p = 0 contributes nothing
        kl += std::exp(log_p) * (log_p - (double(modified[t]) - mod_log_z));
    }
    return std::max(kl, 0.0); // rounding can leave a tiny negative
}

} // namespace

double TopKAgreement::top1() const { return fraction(hits_top1, positions); }
double TopKAgreement::top5() const { return fraction(hits_top5, positions); }
double TopKAgreement::top10() const { return fraction(hits_top10, positions); }
double TopKAgreement::mean_kl() const { return positions > 0 ? kl_sum / static_cast<double>(positions) : 0.0; }

void TopKAgreement::add(const TopKAgreement & other) {
    positions += other.positions;
    hits_top1 += other.hits_top1;
    hits_top5 += other.hits_top5;
    hits_top10 += other.hits_top10;
    kl_sum += other.kl_sum;
}

TopKAgreement top_k_agreement(std::span<const float> reference_logits, std::span<const float> modified_logits,
                              int32_t n_vocab) {
    if (n_vocab <= 0) fail("top-k agreement: n_vocab {} is not positive", n_vocab);
    if (reference_logits.size() != modified_logits.size())
        fail("top-k agreement: reference has {} logits but modified has {}", reference_logits.size(),
             modified_logits.size());
    const size_t vocab = static_cast<size_t>(n_vocab);
    if (reference_logits.size() % vocab != 0)
        fail("top-k agreement: {} logits are not a whole number of rows of n_vocab {}", reference_logits.size(),
             n_vocab);

    TopKAgreement result;
    const size_t n_positions = reference_logits.size() / vocab;
    for (size_t p = 0; p < n_positions; ++p) {
        const auto reference = reference_logits.subspan(p * vocab, vocab);
        const auto modified = modified_logits.subspan(p * vocab, vocab);
        check_no_nan(reference, "reference", p);
        check_no_nan(modified, "modified", p);

        size_t best = 0; // lowest id among the largest
        for (size_t t = 1; t < vocab; ++t)
            if (reference[t] > reference[best]) best = t;

        const float target = modified[best];
        int64_t rank = 0; // tokens strictly above the reference's choice
        for (size_t t = 0; t < vocab; ++t)
            if (modified[t] > target) ++rank;

        ++result.positions;
        if (rank < 1) ++result.hits_top1;
        if (rank < 5) ++result.hits_top5;
        if (rank < 10) ++result.hits_top10;
        result.kl_sum += kl_divergence(reference, modified);
    }
    return result;
}

} // namespace fhegpt::model
