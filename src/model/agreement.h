// Top-k agreement between a reference model and a modified one (quantized, encrypted, with a
// replaced attention): for each token position, the reference's top-1 token is looked up in
// the modified model's ranking; agreement@k is the fraction of positions where it ranks among
// the modified model's k best.
//
// Ties: the reference's top-1 token is the lowest token id among the largest logits (as
// argmax in sampling.h). Its rank in the modified model is the number of tokens with a
// strictly greater modified logit, so ties are generous to the modified model: a token tied
// for first place has rank 0 and counts as a top-1 hit.
//
// Top-1 agreement moves in steps of whole flipped predictions; the mean KL divergence
// KL(reference || modified) of the next-token distributions (softmax of the logits) moves with
// every change of the logits, so it separates techniques that top-1 cannot tell apart on a
// thousand positions.
#pragma once

#include <cstdint>
#include <span>

namespace fhegpt::model {

struct TopKAgreement {
    int64_t positions = 0;
    int64_t hits_top1 = 0, hits_top5 = 0, hits_top10 = 0;
    double kl_sum = 0; // nats, summed over positions

    // Fractions of positions; 0 when there are no positions.
    double top1() const;
    double top5() const;
    double top10() const;
    double mean_kl() const; // nats; 0 when there are no positions

    // Accumulates another batch of positions (another text window, another prompt).
    void add(const TopKAgreement & other);
};

// reference_logits and modified_logits: [n_positions, n_vocab], row-major. Throws fhegpt::Error
// when n_vocab is not positive, the sizes differ or are not a multiple of n_vocab, or a logit
// is NaN. (Infinite logits are allowed: -inf is a masked token; a token the reference can
// predict and the modified model masks makes the KL divergence infinite.)
TopKAgreement top_k_agreement(std::span<const float> reference_logits, std::span<const float> modified_logits,
                              int32_t n_vocab);

} // namespace fhegpt::model
