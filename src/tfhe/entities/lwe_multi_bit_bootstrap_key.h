// Multi-bit bootstrapping keys: the layout an LweBootstrapKey, SeededLweBootstrapKey or
// FourierLweBootstrapKey has when its grouping factor g is 2, 3 or 4 (dimensions.h).
//
// The n bits of the small LWE key are cut into n / g groups of g consecutive bits. For group j
// and every subset S of the group (S an integer in [0, 2^g), bit b of S standing for key bit
// s_{j g + b}), GGSW number j 2^g + S encrypts the indicator
//     f_S = prod_b (b in S ? s_{j g + b} : 1 - s_{j g + b}),
// which is 1 for exactly one S: the set S* of the group's key bits that are 1. Hence, for any
// exponents e_S with e_{} = 0,
//     X^(e_S*) = sum_S f_S X^(e_S),
// and the Fourier-domain GGSW sum_S X^(e_S) GGSW(f_S) (a pointwise product with the monomial's
// transform per term, no FFT) encrypts X^(e_S*): one external product with it multiplies the
// accumulator by X^(e_S*). The blind rotation takes e_S = round(2N sum_{b in S} a_{j g + b} / q)
// (the mask elements summed before rounding: one rounding error per group, not g), so it costs
// n / g external products and (2^g - 1) (k + 1)^2 l pointwise multiply-adds of N/2 complex
// values per group, against n external products for the classic key. The key holds
// (n / g) 2^g GGSWs: 2^g / g times the classic key (2x for g = 2, 2.7x for 3, 4x for 4). As in
// TFHE-rs (LweMultiBitBootstrapKey), the empty subset's GGSW encrypts prod_b (1 - s_b) so that
// its term needs no rotation.
#pragma once

#include "tfhe/commons/dimensions.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

inline constexpr size_t kMaxGroupingFactor = 4;

// f_S for the g key bits of one group (binary values): 1 iff S is the set of the bits that are 1.
// Branch-free on the key bits.
inline int64_t multi_bit_subset_indicator(std::span<const uint64_t> group_key_bits, size_t subset) {
    uint64_t product = 1;
    for (size_t b = 0; b < group_key_bits.size(); ++b) {
        const uint64_t selected = (subset >> b) & 1;
        product *= group_key_bits[b] ^ selected ^ 1; // s_b if selected, 1 - s_b otherwise
    }
    return static_cast<int64_t>(product);
}

// Whether a key of n input bits can have grouping factor g: g in [1, kMaxGroupingFactor], n a
// positive multiple of g.
constexpr bool valid_grouping_factor(LweDimension n, LweBskGroupingFactor g) {
    return g.value >= 1 && g.value <= kMaxGroupingFactor && n.value > 0 && n.value % g.value == 0;
}

} // namespace fhegpt::tfhe
