#include "tfhe/algorithms/lwe_linear_algebra.h"

#include "common/check.h"

#include <algorithm>

namespace fhegpt::tfhe {

namespace {
void check_same(const LweCiphertext & a, const LweCiphertext & b) { FHEGPT_CHECK_EQ(a.data.size(), b.data.size()); }
} // namespace

void lwe_ciphertext_add_assign(LweCiphertext & lhs, const LweCiphertext & rhs) {
    check_same(lhs, rhs);
    for (size_t i = 0; i < lhs.data.size(); ++i) lhs.data[i] += rhs.data[i];
}

void lwe_ciphertext_add(LweCiphertext & output, const LweCiphertext & lhs, const LweCiphertext & rhs) {
    check_same(lhs, rhs);
    check_same(output, lhs);
    for (size_t i = 0; i < lhs.data.size(); ++i) output.data[i] = lhs.data[i] + rhs.data[i];
}

void lwe_ciphertext_sub_assign(LweCiphertext & lhs, const LweCiphertext & rhs) {
    check_same(lhs, rhs);
    for (size_t i = 0; i < lhs.data.size(); ++i) lhs.data[i] -= rhs.data[i];
}

void lwe_ciphertext_sub(LweCiphertext & output, const LweCiphertext & lhs, const LweCiphertext & rhs) {
    check_same(lhs, rhs);
    check_same(output, lhs);
    for (size_t i = 0; i < lhs.data.size(); ++i) output.data[i] = lhs.data[i] - rhs.data[i];
}

void lwe_ciphertext_opposite_assign(LweCiphertext & ciphertext) {
    for (uint64_t & x : ciphertext.data) x = 0 - x;
}

void lwe_ciphertext_cleartext_mul_assign(LweCiphertext & ciphertext, int64_t cleartext) {
    const uint64_t c = static_cast<uint64_t>(cleartext);
    for (uint64_t & x : ciphertext.data) x *= c;
}

void lwe_ciphertext_plaintext_add_assign(LweCiphertext & ciphertext, uint64_t plaintext) {
    FHEGPT_CHECK(!ciphertext.data.empty(), "plaintext added to an unallocated LWE ciphertext");
    ciphertext.body() += plaintext;
}

void lwe_ciphertext_plaintext_sub_assign(LweCiphertext & ciphertext, uint64_t plaintext) {
    FHEGPT_CHECK(!ciphertext.data.empty(), "plaintext subtracted from an unallocated LWE ciphertext");
    ciphertext.body() -= plaintext;
}

void lwe_ciphertext_cleartext_mul_add_assign(LweCiphertext & output, const LweCiphertext & input, int64_t weight) {
    check_same(output, input);
    const uint64_t w = static_cast<uint64_t>(weight);
    uint64_t * out = output.data.data();
    const uint64_t * in = input.data.data();
    for (size_t i = 0; i < output.data.size(); ++i) out[i] += w * in[i];
}

void lwe_ciphertext_dot_product(LweCiphertext & output, std::span<const LweCiphertext * const> inputs,
                                std::span<const int64_t> weights) {
    FHEGPT_CHECK_EQ(inputs.size(), weights.size());
    std::fill(output.data.begin(), output.data.end(), 0);
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (weights[i] == 0) {
            check_same(output, *inputs[i]);
            continue;
        }
        lwe_ciphertext_cleartext_mul_add_assign(output, *inputs[i], weights[i]);
    }
}

void lwe_ciphertext_dot_product(LweCiphertext & output, std::span<const LweCiphertext> inputs,
                                std::span<const int64_t> weights) {
    FHEGPT_CHECK_EQ(inputs.size(), weights.size());
    std::fill(output.data.begin(), output.data.end(), 0);
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (weights[i] == 0) {
            check_same(output, inputs[i]);
            continue;
        }
        lwe_ciphertext_cleartext_mul_add_assign(output, inputs[i], weights[i]);
    }
}

} // namespace fhegpt::tfhe
