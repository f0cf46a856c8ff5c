// Signed gadget decomposition of torus elements.
//
// With base B = 2^beta and l levels, a torus element x is first rounded to its closest
// representable value x' = round(x * B^l) / B^l (the low 64 - beta*l bits are dropped with
// rounding), then written x' = sum_{i=1..l} d_i / B^i with signed digits d_i in [-B/2, B/2).
// Level i has weight B^-i, i.e. 2^(64 - beta*i) in units of 2^-64. For a uniform x the digits
// are close to uniform on [-B/2, B/2): E[d^2] = (B^2 + 2) / 12, and the dropped part
// x - x' is uniform in [-B^-l / 2, B^-l / 2).
#pragma once

#include "common/check.h"
#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/commons/dimensions.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

class SignedDecomposer {
public:
    SignedDecomposer(DecompositionBaseLog base_log, DecompositionLevelCount level_count)
        : base_log_(base_log.value), level_count_(level_count.value) {
        FHEGPT_CHECK(base_log_ >= 1 && level_count_ >= 1 && base_log_ * level_count_ <= 64,
                     "invalid decomposition: base log %zu, %zu levels", base_log_, level_count_);
    }

    size_t base_log() const { return base_log_; }
    size_t level_count() const { return level_count_; }

    // The kept bits of x, rounded: round(x * B^l) mod B^l as an integer in [0, B^l).
    uint64_t round_to_kept_bits(uint64_t x) const {
        return decomposition_round_to_kept_bits(x, base_log_ * level_count_);
    }

    // x' = round(x * B^l) / B^l as a torus element.
    uint64_t closest_representable(uint64_t x) const {
        size_t kept = base_log_ * level_count_;
        return kept == 64 ? x : round_to_kept_bits(x) << (64 - kept);
    }

    // digits[i] = d_{i+1} (level i+1, weight 2^(64 - beta*(i+1))), digits.size() == l.
    void decompose(uint64_t x, std::span<int64_t> digits) const {
        FHEGPT_CHECK_EQ(digits.size(), level_count_);
        uint64_t state = round_to_kept_bits(x);
        for (size_t i = level_count_; i-- > 0;) digits[i] = decomposition_next_digit(state, base_log_);
    }

    // sum_i d_i * 2^(64 - beta*i) mod 2^64: the inverse of decompose on representable values.
    uint64_t recompose(std::span<const int64_t> digits) const {
        FHEGPT_CHECK_EQ(digits.size(), level_count_);
        uint64_t x = 0;
        for (size_t i = 0; i < level_count_; ++i)
            x += static_cast<uint64_t>(digits[i]) << (64 - base_log_ * (i + 1));
        return x;
    }

    // Decomposes `size` values at once into level-major digits: out[i * size + j] = d_{i+1}(in[j]).
    // `state` is caller scratch of `size` elements. Vectorized (AVX-512 / AVX2 picked at run time).
    void decompose_slice(const uint64_t * in, int64_t * out, uint64_t * state, size_t size) const;

private:
    size_t base_log_;
    size_t level_count_;
};

} // namespace fhegpt::tfhe
