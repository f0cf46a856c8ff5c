// Top-k agreement between reference and modified logits: ranks, ties, accumulation, shapes.
#include "common/error.h"
#include "model/agreement.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {

using fhegpt::model::top_k_agreement;
using fhegpt::model::TopKAgreement;

// A modified row of n tokens in which token `token` has exactly `rank` tokens above it.
std::vector<float> row_with_rank(int n, int token, int rank) {
    std::vector<float> row(static_cast<size_t>(n), 0.0f);
    row[static_cast<size_t>(token)] = 1.0f;
    int above = 0;
    for (int t = 0; t < n && above < rank; ++t)
        if (t != token) {
            row[static_cast<size_t>(t)] = 2.0f + static_cast<float>(t);
            ++above;
        }
    return row;
}

TEST(TopKAgreement, IdenticalLogitsAgreeFully) {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> logits(50 * 37);
    for (float & l : logits) l = normal(rng);
    const TopKAgreement a = top_k_agreement(logits, logits, 37);
    EXPECT_EQ(a.positions, 50);
    EXPECT_EQ(a.hits_top1, 50);
    EXPECT_DOUBLE_EQ(a.top1(), 1.0);
    EXPECT_DOUBLE_EQ(a.top5(), 1.0);
    EXPECT_DOUBLE_EQ(a.top10(), 1.0);
}

TEST(TopKAgreement, KnownRanks) {
    constexpr int n_vocab = 20;
    // Reference top-1 is token 3 at every position; the modified model ranks it 0, 1, 4, 5, 9, 10, 19.
    const std::vector<int> ranks = {0, 1, 4, 5, 9, 10, 19};
    std::vector<float> reference, modified;
    for (int rank : ranks) {
        std::vector<float> ref_row(n_vocab, -1.0f);
        ref_row[3] = 5.0f;
        reference.insert(reference.end(), ref_row.begin(), ref_row.end());
        const std::vector<float> mod_row = row_with_rank(n_vocab, 3, rank);
        modified.insert(modified.end(), mod_row.begin(), mod_row.end());
    }
    const TopKAgreement a = top_k_agreement(reference, modified, n_vocab);
    EXPECT_EQ(a.positions, 7);
    EXPECT_EQ(a.hits_top1, 1);  // rank 0
    EXPECT_EQ(a.hits_top5, 3);  // ranks 0, 1, 4
    EXPECT_EQ(a.hits_top10, 5); // ranks 0, 1, 4, 5, 9
    EXPECT_DOUBLE_EQ(a.top1(), 1.0 / 7);
    EXPECT_DOUBLE_EQ(a.top5(), 3.0 / 7);
    EXPECT_DOUBLE_EQ(a.top10(), 5.0 / 7);
}

TEST(TopKAgreement, ReferenceTieTakesLowestId) {
    // Reference: tokens 1 and 4 tie for first; token 1 is the reference's choice.
    const std::vector<float> reference = {0.0f, 9.0f, 0.0f, 0.0f, 9.0f, 0.0f};
    // Modified prefers token 4 strictly over token 1: token 1 has rank 1, not a top-1 hit.
    const std::vector<float> prefers_4 = {0.0f, 5.0f, 0.0f, 0.0f, 6.0f, 0.0f};
    TopKAgreement a = top_k_agreement(reference, prefers_4, 6);
    EXPECT_EQ(a.hits_top1, 0);
    EXPECT_EQ(a.hits_top5, 1);
    // Modified prefers token 1: a top-1 hit.
    const std::vector<float> prefers_1 = {0.0f, 6.0f, 0.0f, 0.0f, 5.0f, 0.0f};
    a = top_k_agreement(reference, prefers_1, 6);
    EXPECT_EQ(a.hits_top1, 1);
}

TEST(TopKAgreement, ModifiedTiesAreGenerous) {
    // Reference picks token 2; the modified model ties token 2 with tokens 0 and 5 at the top.
    const std::vector<float> reference = {0.0f, 0.0f, 3.0f, 0.0f, 0.0f, 0.0f};
    const std::vector<float> modified = {7.0f, 1.0f, 7.0f, 1.0f, 1.0f, 7.0f};
    const TopKAgreement a = top_k_agreement(reference, modified, 6);
    EXPECT_EQ(a.hits_top1, 1); // nothing strictly above: rank 0

    // All equal logits: every token has rank 0.
    const std::vector<float> flat(12, 0.25f);
    const TopKAgreement b = top_k_agreement(flat, flat, 12);
    EXPECT_EQ(b.hits_top1, 1);

    // Six tokens strictly above, ties among them do not matter: rank 6.
    const std::vector<float> ref10 = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const std::vector<float> mod10 = {1, 2, 2, 2, 3, 3, 3, 0, 1, 1};
    const TopKAgreement c = top_k_agreement(ref10, mod10, 10);
    EXPECT_EQ(c.hits_top5, 0);
    EXPECT_EQ(c.hits_top10, 1);
}

TEST(TopKAgreement, InfinitiesAllowed) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> reference = {-inf, 1.0f, -inf, 0.0f};
    const std::vector<float> modified = {-inf, -inf, 2.0f, 0.0f};
    const TopKAgreement a = top_k_agreement(reference, modified, 4);
    EXPECT_EQ(a.hits_top1, 0);
    EXPECT_EQ(a.hits_top5, 1); // token 1 at -inf: 2 tokens strictly above
}

TEST(TopKAgreement, AddAccumulates) {
    TopKAgreement total;
    EXPECT_DOUBLE_EQ(total.top1(), 0.0);
    total.add({4, 1, 2, 3});
    total.add({6, 5, 6, 6});
    EXPECT_EQ(total.positions, 10);
    EXPECT_EQ(total.hits_top1, 6);
    EXPECT_EQ(total.hits_top5, 8);
    EXPECT_EQ(total.hits_top10, 9);
    EXPECT_DOUBLE_EQ(total.top1(), 0.6);
    EXPECT_DOUBLE_EQ(total.top5(), 0.8);
    EXPECT_DOUBLE_EQ(total.top10(), 0.9);
}

TEST(TopKAgreement, EmptyInputHasNoPositions) {
    const TopKAgreement a = top_k_agreement({}, {}, 5);
    EXPECT_EQ(a.positions, 0);
    EXPECT_DOUBLE_EQ(a.top1(), 0.0);
}

TEST(TopKAgreement, ShapeErrors) {
    const std::vector<float> six(6, 0.0f), eight(8, 0.0f), seven(7, 0.0f);
    EXPECT_THROW(top_k_agreement(six, six, 0), fhegpt::Error);
    EXPECT_THROW(top_k_agreement(six, six, -3), fhegpt::Error);
    EXPECT_THROW(top_k_agreement(six, eight, 2), fhegpt::Error);
    EXPECT_THROW(top_k_agreement(seven, seven, 2), fhegpt::Error);
    EXPECT_NO_THROW(top_k_agreement(six, six, 3));
    try {
        top_k_agreement(six, eight, 2);
        FAIL() << "no error for different sizes";
    } catch (const fhegpt::Error & e) {
        EXPECT_NE(std::string(e.what()).find("6"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("8"), std::string::npos) << e.what();
    }
}

TEST(TopKAgreement, NanFails) {
    std::vector<float> reference(8, 0.0f), modified(8, 0.0f);
    modified[5] = std::nanf("");
    EXPECT_THROW(top_k_agreement(reference, modified, 4), fhegpt::Error);
    EXPECT_THROW(top_k_agreement(modified, reference, 4), fhegpt::Error);
}

TEST(TopKAgreement, MeanKlDivergence) {
    // Position 0: p = (1/2, 1/2), q = (3/4, 1/4): KL = (ln(2/3) + ln 2) / 2. Position 1: equal.
    const std::vector<float> reference = {0.0f, 0.0f, 1.0f, -2.0f};
    const std::vector<float> modified = {std::log(3.0f) + 5.0f, 5.0f, 4.0f, 1.0f}; // shifts do not matter
    const TopKAgreement a = top_k_agreement(reference, modified, 2);
    const double expected = (std::log(2.0 / 3.0) + std::log(2.0)) / 2.0;
    EXPECT_NEAR(a.kl_sum, expected, 1e-6);
    EXPECT_NEAR(a.mean_kl(), expected / 2.0, 1e-6);
    EXPECT_NEAR(top_k_agreement(reference, reference, 2).mean_kl(), 0.0, 1e-12);
    TopKAgreement sum = a;
    sum.add(a);
    EXPECT_NEAR(sum.mean_kl(), expected / 2.0, 1e-6);
    EXPECT_DOUBLE_EQ(TopKAgreement{}.mean_kl(), 0.0);
}

TEST(TopKAgreement, KlOfAMaskedTokenIsInfinite) {
    // The modified model masks a token the reference predicts; a token the reference masks adds nothing.
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> flat = {0.0f, 0.0f}, masked = {0.0f, -inf};
    EXPECT_TRUE(std::isinf(top_k_agreement(flat, masked, 2).mean_kl()));
    EXPECT_NEAR(top_k_agreement(masked, masked, 2).mean_kl(), 0.0, 1e-12);
}

} // namespace
