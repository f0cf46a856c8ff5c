#include "tfhe/algorithms/polynomial.h"

#include "common/check.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/commons/decomposition.h"

#include <algorithm>

namespace fhegpt::tfhe {

void polynomial_monomial_mul(std::span<uint64_t> out, std::span<const uint64_t> in, size_t power) {
    const size_t n = in.size();
    FHEGPT_CHECK_EQ(out.size(), n);
    FHEGPT_CHECK(power < 2 * n, "monomial power %zu >= 2N = %zu", power, 2 * n);
    for (size_t t = 0; t < n; ++t) out[t] = monomial_mul_coefficient(in.data(), n, power, t);
}

namespace {

// out = X^shift in - in (negate: -X^shift in - in), vectorized for the blind rotation.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void monomial_mul_sub_kernel(uint64_t * __restrict dst, const uint64_t * __restrict src, size_t n, size_t shift,
                             bool negate) {
    if (!negate) {
        for (size_t t = 0; t < shift; ++t) dst[t] = 0 - src[n - shift + t] - src[t];
        for (size_t t = shift; t < n; ++t) dst[t] = src[t - shift] - src[t];
    } else {
        for (size_t t = 0; t < shift; ++t) dst[t] = src[n - shift + t] - src[t];
        for (size_t t = shift; t < n; ++t) dst[t] = 0 - src[t - shift] - src[t];
    }
}

} // namespace

void polynomial_monomial_mul_sub(std::span<uint64_t> out, std::span<const uint64_t> in, size_t power) {
    const size_t n = in.size();
    FHEGPT_CHECK_EQ(out.size(), n);
    FHEGPT_CHECK(power < 2 * n, "monomial power %zu >= 2N = %zu", power, 2 * n);
    const bool negate = power >= n;
    monomial_mul_sub_kernel(out.data(), in.data(), n, negate ? power - n : power, negate);
}

void polynomial_add_mul_binary_schoolbook(std::span<uint64_t> out, std::span<const uint64_t> a,
                                          std::span<const uint64_t> key) {
    const size_t n = a.size();
    FHEGPT_CHECK_EQ(out.size(), n);
    FHEGPT_CHECK_EQ(key.size(), n);
    uint64_t * dst = out.data();
    const uint64_t * src = a.data();
    for (size_t s = 0; s < n; ++s) {
        if (key[s] == 0) continue;
        // += X^s * a
        for (size_t t = 0; t < s; ++t) dst[t] -= src[n - s + t];
        for (size_t t = s; t < n; ++t) dst[t] += src[t - s];
    }
}

namespace {
constexpr size_t kLimbBits = 16;
constexpr size_t kLimbCount = 4;
// Below this size the schoolbook product is as fast as four FFT round trips.
constexpr size_t kFftThreshold = 128;
} // namespace

BinaryKeyMultiplier::BinaryKeyMultiplier(std::span<const uint64_t> key, PolynomialSize polynomial_size)
    : n_(polynomial_size.value), count_(key.size() / polynomial_size.value), use_fft_(n_ >= kFftThreshold) {
    FHEGPT_CHECK_EQ(key.size(), count_ * n_);
    if (!use_fft_) {
        key_.assign(key.begin(), key.end());
        return;
    }
    const NegacyclicFft & fft = fft_plan(polynomial_size);
    key_fourier_.resize(count_ * n_);
    std::vector<int64_t> integer(n_);
    for (size_t j = 0; j < count_; ++j) {
        for (size_t t = 0; t < n_; ++t) integer[t] = static_cast<int64_t>(key[j * n_ + t]);
        fft.forward_integer(integer, std::span<double>(key_fourier_.data() + j * n_, n_));
    }
    limbs_.resize(kLimbCount * n_);
    state_.resize(n_);
    limb_fourier_.resize(n_);
    product_.resize(n_);
    partial_.resize(n_);
}

void BinaryKeyMultiplier::add_mul(std::span<uint64_t> out, std::span<const uint64_t> a, size_t j) {
    FHEGPT_CHECK_EQ(out.size(), n_);
    FHEGPT_CHECK_EQ(a.size(), n_);
    FHEGPT_CHECK(j < count_, "key polynomial %zu of %zu", j, count_);
    if (!use_fft_) {
        polynomial_add_mul_binary_schoolbook(out, a, std::span<const uint64_t>(key_.data() + j * n_, n_));
        return;
    }
    const NegacyclicFft & fft = fft_plan(PolynomialSize{n_});
    // a = sum_i d_i 2^(64 - 16 i) mod 2^64 with signed 16-bit digits (exact: 64 bits kept).
    SignedDecomposer limbs(DecompositionBaseLog{kLimbBits}, DecompositionLevelCount{kLimbCount});
    limbs.decompose_slice(a.data(), limbs_.data(), state_.data(), n_);
    std::span<const double> key_fourier(key_fourier_.data() + j * n_, n_);
    for (size_t i = 0; i < kLimbCount; ++i) {
        fft.forward_integer(std::span<const int64_t>(limbs_.data() + i * n_, n_), limb_fourier_);
        std::fill(product_.begin(), product_.end(), 0.0);
        NegacyclicFft::multiply_add(product_, limb_fourier_, key_fourier);
        std::fill(partial_.begin(), partial_.end(), 0);
        fft.backward_add(product_, partial_); // exact: |coefficients| <= N 2^15
        const size_t shift = 64 - kLimbBits * (i + 1);
        for (size_t t = 0; t < n_; ++t) out[t] += partial_[t] << shift;
    }
}

} // namespace fhegpt::tfhe
