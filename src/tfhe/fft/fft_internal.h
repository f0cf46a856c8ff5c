// Internals of the negacyclic FFT, shared by the kernels (not a public interface).
//
// Transform. The folded polynomial Z(Y) = sum_j z_j Y^j, z_j = a_j + i a_{j+M} (M = N/2) satisfies
// a(x) = Z(x) at every x with x^M = i, i.e. at the M roots of X^N + 1 of the form exp(i pi (1+4k)/N);
// the other M roots are their conjugates, redundant for real polynomials. Z is reduced modulo
// Y^M - i by a Cooley-Tukey tree of radix-2 splits: at level l (0 <= l < L = log2 M) block b
// (of 2^l blocks of size M/2^l, in place) holds Z mod (Y^s - t_{l,b}^2), s = M/2^l, and the butterfly
//     (u, v) -> (u + t v, u - t v),   t = t_{l,b} = exp(i pi (1 + 4 brev_l(b)) / 2^(l+2))
// splits it into blocks 2b (mod Y^(s/2) - t) and 2b+1 (mod Y^(s/2) + t). The twist is therefore part
// of the butterflies, and the output (index b after the last level) is in "bit-reversed" order:
// fourier[b] = a(x_b), x_b = (b odd ? -1 : 1) t_{L-1, b/2}. Inverse: Gentleman-Sande butterflies (c0, c1) -> (c0 + c1,
// (c0 - c1) conj(t)), levels in reverse order, then a scale by 1/M.
//
// Storage: fourier[0..M) real parts, fourier[M..2M) imaginary parts; every kernel produces exactly
// the same order as the scalar reference, so Fourier-domain data is portable between kernels.
#pragma once

#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/fft/negacyclic_fft.h"

#include <cstddef>
#include <cstdint>

namespace fhegpt::tfhe::fft_detail {

struct Plan {
    size_t n = 0;     // polynomial size N
    size_t m = 0;     // N / 2 complex points
    int log_m = 0;    // L
    FftKernel kernel = FftKernel::Scalar;
    // t_{l,b} at index 2^l + b (index 0 unused); size m.
    aligned_vector<double> tw_re, tw_im;

    // SIMD kernels: levels [0, 2 * num_passes) are done by radix-4 passes whose butterflies use
    // one twiddle triple per block (broadcast); the remaining levels by a final in-register pass.
    // When final_fused, the last radix-4 pass is executed inside the final pass instead (then the
    // final pass covers 2 more levels on twice larger groups).
    struct Pass {
        int level;     // first level of the pass (levels level, level + 1)
        size_t offset; // into simd_tw: per block b: t_{l,b}, t_{l+1,2b}, t_{l,b} t_{l+1,2b} (re, im)
    };
    Pass passes[16];
    int num_passes = 0;
    bool final_fused = false;
    size_t final_offset = 0;  // into simd_tw: the final pass table (layout private to the kernel)
    size_t scaled_offset = 0; // into simd_tw: passes[0]'s triple times out_scale (backward output)
    double out_scale = 0;     // 2^-64 / M: backward output values are reduced mod 1 at this scale
    aligned_vector<double> simd_tw;
};

// Fills passes / simd_tw for a SIMD kernel whose final pass does `final_levels` levels in
// registers, sets final_fused, scaled_offset, out_scale and final_offset (64-byte aligned).
void build_passes(Plan & plan, int final_levels);

// One level of the signed gadget decomposition, as integer operations on a torus coefficient x:
//   digit = (((x + offset) mod 2^64) >> shift) & mask) - half.
// offset = the rounding half-unit of the dropped bits plus B/2 at every kept level's position:
// the digits of the sum, each minus B/2, are exactly SignedDecomposer's balanced digits (its
// carries are the carries of the addition). mask = B - 1 < 2^52, half = B/2: exact doubles.
struct DigitExtraction {
    uint64_t offset;
    unsigned shift;
    uint64_t mask;
    uint64_t half;
};
// The extraction of level `level` (1 = most significant) of base 2^base_log, level_count levels.
DigitExtraction digit_extraction(size_t base_log, size_t level_count, size_t level);
inline int64_t extract_digit(uint64_t x, const DigitExtraction & d) {
    return static_cast<int64_t>(((x + d.offset) >> d.shift) & d.mask) - static_cast<int64_t>(d.half);
}

using ForwardTorusFn = void (*)(const Plan &, const uint64_t *, double *);
using ForwardIntegerFn = void (*)(const Plan &, const int64_t *, double *);
// forward_integer of the digits extract_digit(coeffs[j], d), computed in the first pass.
using ForwardDigitsFn = void (*)(const Plan &, const uint64_t *, const DigitExtraction &, double *);
// forward_digits of the coefficients of X^power c - c (power < 2N), the CMux input, rotated
// inside the first pass.
using ForwardRotatedDigitsFn = void (*)(const Plan &, const uint64_t * c, size_t power, const DigitExtraction &,
                                        double *);
// add: coeffs += result, else coeffs = result.
using BackwardFn = void (*)(const Plan &, double *, uint64_t *, bool add);
// coeffs = result, possibly rounded to a multiple of 2^12 (negacyclic_fft.h).
using BackwardTorusFn = void (*)(const Plan &, double *, uint64_t *);
// acc[0..2h) += a * b, layout re[0..h) im[h..2h).
using MultiplyAddFn = void (*)(double *, const double *, const double *, size_t half);
// out[c] = sum_{r < rows} a[r] * b[r cols + c] for c < cols (slices of n = 2 half doubles), the
// sum started at zero and accumulated in row order with multiply_add's operations: bit for bit
// what zeroing out[c] and calling multiply_add row by row gives.
using MultiplyAccumulateFn = void (*)(double * out, const double * a, const double * b, size_t rows, size_t cols,
                                      size_t half);
// coeffs[c] += backward(sum_r a[r] * b[r cols + c]) for c < cols, work: cols N doubles of scratch.
// multiply_accumulate into work, then backward(add) of each column, the results possibly rounded
// to multiples of 2^12 (negacyclic_fft.h).
using BackwardProductsFn = void (*)(const Plan &, const double * a, const double * b, size_t rows, size_t cols,
                                    double * work, uint64_t * coeffs);
using PlanInitFn = void (*)(Plan &);

struct KernelOps {
    const char * name;
    size_t min_m;                 // smallest M the kernel handles (smaller: scalar)
    PlanInitFn init;              // fills the kernel-specific tables (may be null)
    ForwardTorusFn forward_torus;
    ForwardIntegerFn forward_integer;
    ForwardDigitsFn forward_digits;
    BackwardFn backward;
    MultiplyAddFn multiply_add;
    MultiplyAccumulateFn multiply_accumulate; // may be null when backward_products is set
    BackwardProductsFn backward_products;     // null: multiply_accumulate, then backward per column
    BackwardTorusFn backward_torus;           // null: backward
    ForwardRotatedDigitsFn forward_rotated_digits; // null: the caller rotates into memory first
};

extern const KernelOps kScalarOps;
// Null when the compiler cannot build them; availability on the CPU is checked separately.
extern const KernelOps * const kAvx2Ops;
extern const KernelOps * const kAvx512Ops;

// theta_{l,b} = (1 + 4 brev_l(b)) / 2^(l+2): t_{l,b} = exp(i pi theta).
long double twiddle_theta(int level, size_t block);
// exp(i pi theta), computed in long double and rounded.
void unit_root(long double theta, double & re, double & im);
inline void twiddle(int level, size_t block, double & re, double & im) {
    unit_root(twiddle_theta(level, block), re, im);
}
// t_{l,b} from the plan's table (same value as twiddle()).
inline void plan_twiddle(const Plan & plan, int level, size_t block, double & re, double & im) {
    re = plan.tw_re[(size_t{1} << level) + block];
    im = plan.tw_im[(size_t{1} << level) + block];
}

// Scalar reduction of x (|x| < 2^116, finite) to round(x) mod 2^64.
inline uint64_t wrap_to_u64(double x) {
    // r = x - 2^64 * round(x / 2^64) is exact and lies in [-2^63, 2^63].
    const double k = __builtin_nearbyint(x * 0x1p-64);
    const double r = __builtin_nearbyint(x - k * 0x1p64);
    if (r >= 0x1p63) return uint64_t{1} << 63;
    return static_cast<uint64_t>(static_cast<int64_t>(r));
}

} // namespace fhegpt::tfhe::fft_detail
