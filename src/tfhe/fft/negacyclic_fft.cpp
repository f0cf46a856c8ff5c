#include "tfhe/fft/negacyclic_fft.h"

#include "common/check.h"
#include "tfhe/fft/fft_internal.h"

#include <cmath>

namespace fhegpt::tfhe {

using fft_detail::KernelOps;
using fft_detail::Plan;

struct NegacyclicFft::Plan : fft_detail::Plan {
    const KernelOps * ops = nullptr;
};

namespace fft_detail {

long double twiddle_theta(int level, size_t block) {
    size_t rev = 0;
    for (int i = 0; i < level; ++i) rev |= ((block >> i) & 1) << (level - 1 - i);
    return static_cast<long double>(1 + 4 * rev) / std::ldexp(1.0L, level + 2);
}

void unit_root(long double theta, double & re, double & im) {
    const long double pi = 3.141592653589793238462643383279502884L;
    theta = std::fmod(theta, 2.0L);
    re = static_cast<double>(std::cos(pi * theta));
    im = static_cast<double>(std::sin(pi * theta));
}

DigitExtraction digit_extraction(size_t base_log, size_t level_count, size_t level) {
    FHEGPT_CHECK(base_log >= 1 && base_log <= 52 && level_count >= 1 && base_log * level_count <= 64,
                 "decomposition base log %zu x %zu levels: digits must fit a double exactly", base_log, level_count);
    FHEGPT_CHECK(level >= 1 && level <= level_count, "decomposition level %zu of %zu", level, level_count);
    const size_t dropped = 64 - base_log * level_count;
    uint64_t offset = dropped > 0 ? uint64_t{1} << (dropped - 1) : 0; // round the dropped bits
    for (size_t p = 0; p < level_count; ++p) offset += uint64_t{1} << (dropped + base_log * p + base_log - 1);
    return {offset, static_cast<unsigned>(64 - base_log * level), (uint64_t{1} << base_log) - 1,
            uint64_t{1} << (base_log - 1)};
}

void build_passes(Plan & p, int final_levels) {
    FHEGPT_CHECK(p.log_m >= final_levels, "size too small for the kernel");
    p.simd_tw.clear();
    p.num_passes = 0;
    auto push = [&](long double theta, double scale) {
        double re, im;
        unit_root(theta, re, im);
        p.simd_tw.push_back(re * scale);
        p.simd_tw.push_back(im * scale);
    };
    const int vertical = p.log_m - final_levels;
    p.final_fused = vertical % 2 == 1;
    for (int l = 0; l < vertical; l += 2) {
        FHEGPT_CHECK(p.num_passes < 16, "too many passes");
        p.passes[p.num_passes++] = {l, p.simd_tw.size()};
        for (size_t b = 0; b < (size_t{1} << l); ++b) {
            const long double t = twiddle_theta(l, b), t1 = twiddle_theta(l + 1, 2 * b);
            push(t, 1.0);
            push(t1, 1.0);
            push(t + t1, 1.0);
        }
    }
    p.out_scale = 0x1p-64 / static_cast<double>(p.m); // exact: a power of two
    p.scaled_offset = p.simd_tw.size();
    if (p.num_passes > 0) {
        const long double t = twiddle_theta(0, 0), t1 = twiddle_theta(1, 0);
        push(t, p.out_scale);
        push(t1, p.out_scale);
        push(t + t1, p.out_scale);
    }
    while (p.simd_tw.size() % 8 != 0) p.simd_tw.push_back(0.0);
    p.final_offset = p.simd_tw.size();
}

} // namespace fft_detail

namespace {

bool cpu_has(FftKernel kernel) {
    switch (kernel) {
    case FftKernel::Auto:
    case FftKernel::Scalar: return true;
    case FftKernel::Avx2:
        return fft_detail::kAvx2Ops != nullptr && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FftKernel::Avx512:
        return fft_detail::kAvx512Ops != nullptr && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512dq");
    }
    return false;
}

const KernelOps * ops_of(FftKernel kernel) {
    switch (kernel) {
    case FftKernel::Avx512: return fft_detail::kAvx512Ops;
    case FftKernel::Avx2: return fft_detail::kAvx2Ops;
    default: return &fft_detail::kScalarOps;
    }
}

FftKernel best_kernel() {
    static const FftKernel best = [] {
        if (cpu_has(FftKernel::Avx512)) return FftKernel::Avx512;
        if (cpu_has(FftKernel::Avx2)) return FftKernel::Avx2;
        return FftKernel::Scalar;
    }();
    return best;
}

} // namespace

NegacyclicFft::NegacyclicFft(size_t polynomial_size) : NegacyclicFft(polynomial_size, FftKernel::Auto) {}

NegacyclicFft::NegacyclicFft(size_t polynomial_size, FftKernel kernel) : plan_(std::make_unique<Plan>()) {
    FHEGPT_CHECK(polynomial_size >= 16 && polynomial_size <= 65536 &&
                     (polynomial_size & (polynomial_size - 1)) == 0,
                 "polynomial size %zu must be a power of two in [16, 65536]", polynomial_size);
    FHEGPT_CHECK(cpu_has(kernel), "FFT kernel %d not available on this CPU", static_cast<int>(kernel));
    if (kernel == FftKernel::Auto) kernel = best_kernel();
    Plan & p = *plan_;
    p.n = polynomial_size;
    p.m = polynomial_size / 2;
    p.log_m = 0;
    while ((size_t{1} << p.log_m) < p.m) ++p.log_m;
    p.tw_re.assign(p.m, 0.0);
    p.tw_im.assign(p.m, 0.0);
    for (int l = 0; l < p.log_m; ++l)
        for (size_t b = 0; b < (size_t{1} << l); ++b)
            fft_detail::twiddle(l, b, p.tw_re[(size_t{1} << l) + b], p.tw_im[(size_t{1} << l) + b]);
    p.ops = ops_of(kernel);
    p.kernel = kernel;
    if (p.m < p.ops->min_m) {
        p.ops = &fft_detail::kScalarOps;
        p.kernel = FftKernel::Scalar;
    }
    if (p.ops->init) p.ops->init(p);
}

NegacyclicFft::~NegacyclicFft() = default;
NegacyclicFft::NegacyclicFft(NegacyclicFft &&) noexcept = default;
NegacyclicFft & NegacyclicFft::operator=(NegacyclicFft &&) noexcept = default;

size_t NegacyclicFft::polynomial_size() const { return plan_->n; }

void NegacyclicFft::forward_torus(std::span<const uint64_t> coefficients, std::span<double> fourier) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    plan_->ops->forward_torus(*plan_, coefficients.data(), fourier.data());
}

void NegacyclicFft::forward_integer(std::span<const int64_t> coefficients, std::span<double> fourier) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    plan_->ops->forward_integer(*plan_, coefficients.data(), fourier.data());
}

void NegacyclicFft::forward_decomposition_level(std::span<const uint64_t> coefficients, size_t base_log,
                                                size_t level_count, size_t level, std::span<double> fourier) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    const fft_detail::DigitExtraction d = fft_detail::digit_extraction(base_log, level_count, level);
    plan_->ops->forward_digits(*plan_, coefficients.data(), d, fourier.data());
}

void NegacyclicFft::forward_decomposition_level_of_rotation(std::span<const uint64_t> coefficients, size_t power,
                                                            size_t base_log, size_t level_count, size_t level,
                                                            std::span<uint64_t> work, std::span<double> fourier) const {
    const size_t n = plan_->n;
    FHEGPT_CHECK_EQ(coefficients.size(), n);
    FHEGPT_CHECK_EQ(fourier.size(), n);
    FHEGPT_CHECK(power < 2 * n, "monomial power %zu >= 2N = %zu", power, 2 * n);
    const fft_detail::DigitExtraction d = fft_detail::digit_extraction(base_log, level_count, level);
    if (plan_->ops->forward_rotated_digits != nullptr) {
        plan_->ops->forward_rotated_digits(*plan_, coefficients.data(), power, d, fourier.data());
        return;
    }
    FHEGPT_CHECK_EQ(work.size(), n);
    for (size_t i = 0; i < n; ++i) work[i] = monomial_mul_coefficient(coefficients.data(), n, power, i) - coefficients[i];
    plan_->ops->forward_digits(*plan_, work.data(), d, fourier.data());
}

bool NegacyclicFft::fuses_rotation() const { return plan_->ops->forward_rotated_digits != nullptr; }

void NegacyclicFft::backward_add_sum_of_products(std::span<const double> a, std::span<const double> b, size_t rows,
                                                 size_t cols, std::span<double> work,
                                                 std::span<uint64_t> coefficients) const {
    const size_t n = plan_->n;
    FHEGPT_CHECK(rows >= 1 && cols >= 1, "sum of %zu x %zu products", rows, cols);
    FHEGPT_CHECK_EQ(a.size(), rows * n);
    FHEGPT_CHECK_EQ(b.size(), rows * cols * n);
    FHEGPT_CHECK_EQ(work.size(), cols * n);
    FHEGPT_CHECK_EQ(coefficients.size(), cols * n);
    const KernelOps & ops = *plan_->ops;
    if (ops.backward_products != nullptr) {
        ops.backward_products(*plan_, a.data(), b.data(), rows, cols, work.data(), coefficients.data());
        return;
    }
    ops.multiply_accumulate(work.data(), a.data(), b.data(), rows, cols, n / 2);
    for (size_t c = 0; c < cols; ++c) ops.backward(*plan_, work.data() + c * n, coefficients.data() + c * n, true);
}

void NegacyclicFft::backward_add(std::span<double> fourier, std::span<uint64_t> coefficients) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    plan_->ops->backward(*plan_, fourier.data(), coefficients.data(), true);
}

void NegacyclicFft::backward(std::span<double> fourier, std::span<uint64_t> coefficients) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    plan_->ops->backward(*plan_, fourier.data(), coefficients.data(), false);
}

void NegacyclicFft::backward_torus(std::span<double> fourier, std::span<uint64_t> coefficients) const {
    FHEGPT_CHECK_EQ(coefficients.size(), plan_->n);
    FHEGPT_CHECK_EQ(fourier.size(), plan_->n);
    if (plan_->ops->backward_torus != nullptr) plan_->ops->backward_torus(*plan_, fourier.data(), coefficients.data());
    else plan_->ops->backward(*plan_, fourier.data(), coefficients.data(), false);
}

void NegacyclicFft::multiply_add(std::span<double> acc, std::span<const double> a, std::span<const double> b) {
    multiply_add(acc, a, b, FftKernel::Auto);
}

void NegacyclicFft::multiply_add(std::span<double> acc, std::span<const double> a, std::span<const double> b,
                                 FftKernel kernel) {
    FHEGPT_CHECK_EQ(a.size(), acc.size());
    FHEGPT_CHECK_EQ(b.size(), acc.size());
    FHEGPT_CHECK(acc.size() % 2 == 0, "odd Fourier size %zu", acc.size());
    FHEGPT_CHECK(cpu_has(kernel), "FFT kernel %d not available on this CPU", static_cast<int>(kernel));
    if (kernel == FftKernel::Auto) kernel = best_kernel();
    ops_of(kernel)->multiply_add(acc.data(), a.data(), b.data(), acc.size() / 2);
}

const char * NegacyclicFft::kernel_name() { return ops_of(best_kernel())->name; }

const char * NegacyclicFft::instance_kernel_name() const { return plan_->ops->name; }

bool NegacyclicFft::kernel_available(FftKernel kernel) { return cpu_has(kernel); }

} // namespace fhegpt::tfhe
