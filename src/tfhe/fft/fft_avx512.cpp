// AVX-512 kernel (avx512f + avx512dq): 8 complex values per vector, split re/im.
//
// Forward: radix-4 passes over levels [0, L-4) with one broadcast twiddle triple per block, the
// first fused with the int64 -> double conversion; then a final pass per 16-point block doing the
// last 4 levels in registers (vertical, then 128-bit-chunk shuffles, then unpacks, with per-lane
// twiddles) and a permute back to the scalar order. If L-4 is odd, the last radix-4 pass runs
// inside the final pass (32-point blocks). Backward: the exact mirror, the last pass fused with
// the scaling (folded into its twiddles), the mod-2^64 conversion and the add.
#include "tfhe/fft/fft_internal.h"

#include <type_traits>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 flags the self-initialised _mm512_undefined_*() inside its own intrinsic headers.
#pragma GCC diagnostic push
#if !defined(__clang__) // clang has no such warning and rejects unknown ones under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace fhegpt::tfhe::fft_detail {
namespace {

#define FHEGPT_K512 __attribute__((target("avx512f,avx512dq")))
#define FHEGPT_K512_INLINE __attribute__((target("avx512f,avx512dq"), always_inline)) inline

struct Cx {
    __m512d re, im;
};

FHEGPT_K512_INLINE Cx load(const double * re, const double * im) { return {_mm512_loadu_pd(re), _mm512_loadu_pd(im)}; }
FHEGPT_K512_INLINE void store(double * re, double * im, Cx x) {
    _mm512_storeu_pd(re, x.re);
    _mm512_storeu_pd(im, x.im);
}
FHEGPT_K512_INLINE Cx add(Cx a, Cx b) { return {_mm512_add_pd(a.re, b.re), _mm512_add_pd(a.im, b.im)}; }
FHEGPT_K512_INLINE Cx sub(Cx a, Cx b) { return {_mm512_sub_pd(a.re, b.re), _mm512_sub_pd(a.im, b.im)}; }
// a * (wr + i wi)
FHEGPT_K512_INLINE Cx mul(Cx a, __m512d wr, __m512d wi) {
    return {_mm512_fmsub_pd(a.re, wr, _mm512_mul_pd(a.im, wi)), _mm512_fmadd_pd(a.re, wi, _mm512_mul_pd(a.im, wr))};
}
// a * conj(wr + i wi)
FHEGPT_K512_INLINE Cx mulc(Cx a, __m512d wr, __m512d wi) {
    return {_mm512_fmadd_pd(a.re, wr, _mm512_mul_pd(a.im, wi)), _mm512_fmsub_pd(a.im, wr, _mm512_mul_pd(a.re, wi))};
}

FHEGPT_K512_INLINE __m512d load_i64(const int64_t * p) {
    return _mm512_cvtepi64_pd(_mm512_loadu_si512(static_cast<const void *>(p)));
}

// y = x * 2^-64 (already scaled): round(x) mod 2^64, for finite |y| < 2^52.
FHEGPT_K512_INLINE __m512i wrap_scaled(__m512d y) {
    // f = y - round(y) in [-1/2, 1/2] (exact), then f * 2^64 in [-2^63, 2^63] (exact);
    // +-2^63 converts to 0x8000000000000000 (integer indefinite), which is right mod 2^64.
    const __m512d f = _mm512_reduce_pd(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_cvt_roundpd_epi64(_mm512_mul_pd(f, _mm512_set1_pd(0x1p64)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

template <bool Add>
FHEGPT_K512_INLINE void store_u64(uint64_t * p, __m512d y) {
    __m512i v = wrap_scaled(y);
    if (Add) v = _mm512_add_epi64(v, _mm512_loadu_si512(static_cast<const void *>(p)));
    _mm512_storeu_si512(static_cast<void *>(p), v);
}

struct Tw3 {
    __m512d r0, i0, r1, i1, r2, i2;
};
FHEGPT_K512_INLINE Tw3 load_tw3(const double * t) {
    return {_mm512_set1_pd(t[0]), _mm512_set1_pd(t[1]), _mm512_set1_pd(t[2]),
            _mm512_set1_pd(t[3]), _mm512_set1_pd(t[4]), _mm512_set1_pd(t[5])};
}

// Forward radix-4 (levels l, l+1) on quarters x0..x3 of a block, in place.
FHEGPT_K512_INLINE void fwd_bfly4(Cx & x0, Cx & x1, Cx & x2, Cx & x3, const Tw3 & t) {
    const Cx pp = mul(x2, t.r0, t.i0);
    const Cx qq = mul(x1, t.r1, t.i1);
    const Cx rr = mul(x3, t.r2, t.i2);
    const Cx s0 = add(x0, pp), d0 = sub(x0, pp);
    const Cx s1 = add(qq, rr), d1 = sub(qq, rr);
    x0 = add(s0, s1);
    x1 = sub(s0, s1);
    x2 = {_mm512_sub_pd(d0.re, d1.im), _mm512_add_pd(d0.im, d1.re)}; // d0 + i d1
    x3 = {_mm512_add_pd(d0.re, d1.im), _mm512_sub_pd(d0.im, d1.re)}; // d0 - i d1
}

// Inverse radix-4 (levels l+1, l), in place; x0 is left unscaled, x1..x3 get the (possibly
// pre-scaled) conjugate twiddles.
FHEGPT_K512_INLINE void inv_bfly4(Cx & x0, Cx & x1, Cx & x2, Cx & x3, const Tw3 & t) {
    const Cx s = add(x0, x1), d = sub(x0, x1), s2 = add(x2, x3), e2 = sub(x2, x3);
    const Cx e = {e2.im, _mm512_sub_pd(_mm512_setzero_pd(), e2.re)}; // (x2 - x3) * (-i)
    x0 = add(s, s2);
    x1 = mulc(add(d, e), t.r1, t.i1);
    x2 = mulc(sub(s, s2), t.r0, t.i0);
    x3 = mulc(sub(d, e), t.r2, t.i2);
}

// ---- forward -------------------------------------------------------------------------------

// Sources of the first forward pass: the values of points i..i+7, converted to doubles. InPlace:
// the pass reads and writes the Fourier buffer.
struct InPlace {};
struct I64Source {
    const int64_t * p;
};
FHEGPT_K512_INLINE __m512d load_src(const I64Source & s, size_t i) { return load_i64(s.p + i); }

// The digits of one decomposition level (fft_internal.h, DigitExtraction): |digit| < 2^51, so
// the int64 -> double conversion is exact.
struct DigitSource {
    const uint64_t * p;
    __m512i offset, mask;
    __m128i shift;
    __m512d half;
};
FHEGPT_K512_INLINE DigitSource make_digit_source(const uint64_t * p, const DigitExtraction & d) {
    return {p, _mm512_set1_epi64(static_cast<long long>(d.offset)), _mm512_set1_epi64(static_cast<long long>(d.mask)),
            _mm_cvtsi64_si128(static_cast<long long>(d.shift)), _mm512_set1_pd(static_cast<double>(d.half))};
}
FHEGPT_K512_INLINE __m512d load_src(const DigitSource & s, size_t i) {
    __m512i x = _mm512_loadu_si512(static_cast<const void *>(s.p + i));
    x = _mm512_and_si512(_mm512_srl_epi64(_mm512_add_epi64(x, s.offset), s.shift), s.mask);
    return _mm512_sub_pd(_mm512_cvtepi64_pd(x), s.half);
}

// Radix-4 pass; a Source other than InPlace supplies the inputs (first pass: points i of the
// real parts, m + i of the imaginary parts).
template <class Source>
FHEGPT_K512 void fwd_radix4(const Plan & p, const Plan::Pass & pass, const Source & src, double * re, double * im) {
    const size_t m = p.m;
    const size_t blocks = size_t{1} << pass.level;
    const size_t q = m >> (pass.level + 2);
    const double * tw = p.simd_tw.data() + pass.offset;
    for (size_t b = 0; b < blocks; ++b) {
        const Tw3 t = load_tw3(tw + 6 * b);
        double * xr = re + 4 * q * b;
        double * xi = im + 4 * q * b;
        for (size_t j = 0; j < q; j += 8) {
            Cx x0, x1, x2, x3;
            if constexpr (std::is_same_v<Source, InPlace>) {
                x0 = load(xr + j, xi + j);
                x1 = load(xr + q + j, xi + q + j);
                x2 = load(xr + 2 * q + j, xi + 2 * q + j);
                x3 = load(xr + 3 * q + j, xi + 3 * q + j);
            } else {
                const size_t i = 4 * q * b + j;
                x0 = {load_src(src, i), load_src(src, m + i)};
                x1 = {load_src(src, q + i), load_src(src, m + q + i)};
                x2 = {load_src(src, 2 * q + i), load_src(src, m + 2 * q + i)};
                x3 = {load_src(src, 3 * q + i), load_src(src, m + 3 * q + i)};
            }
            fwd_bfly4(x0, x1, x2, x3, t);
            store(xr + j, xi + j, x0);
            store(xr + q + j, xi + q + j, x1);
            store(xr + 2 * q + j, xi + 2 * q + j, x2);
            store(xr + 3 * q + j, xi + 3 * q + j, x3);
        }
    }
}

// Final pass table, per 16-point group g (40 doubles):
//   [0..2) t_{L-4,g}; [2..4) t_{L-3,2g}; [4..6) t_{L-3,2g+1}; [6..8) unused;
//   [8..16) / [16..24) W2 re / im; [24..32) / [32..40) W3 re / im (per lane, see below).
constexpr size_t kFinalStride = 40;

// Lane layouts inside a group (position bits b3 b2 b1 b0):
//   L0 (as loaded): vector b3, lane (b2 b1 b0)
//   L1: vector b2, lane (b3 b1 b0)   -- level L-3
//   L2: vector b1, lane (b2 b3 b0)   -- level L-2, W2[lane] = t_{L-2, 4g + 2 b3 + b2}
//   L3: vector b0, lane (b2 b3 b1)   -- level L-1, W3[lane] = t_{L-1, 8g + 4 b3 + 2 b2 + b1}
// The stores permute back to the natural (scalar) order.
// With final_fused, the last radix-4 pass (levels L-5, L-4) first runs on 32-point groups, and
// the t_{L-4,g} entries are unused.
void init(Plan & p) {
    build_passes(p, 4);
    const size_t groups = p.m / 16;
    const int l = p.log_m;
    p.simd_tw.resize(p.final_offset + groups * kFinalStride, 0.0);
    for (size_t g = 0; g < groups; ++g) {
        double * t = p.simd_tw.data() + p.final_offset + g * kFinalStride;
        plan_twiddle(p, l - 4, g, t[0], t[1]);
        plan_twiddle(p, l - 3, 2 * g, t[2], t[3]);
        plan_twiddle(p, l - 3, 2 * g + 1, t[4], t[5]);
        for (size_t lane = 0; lane < 8; ++lane) {
            const size_t hi = lane >> 2 & 1, mid = lane >> 1 & 1, lo = lane & 1;
            plan_twiddle(p, l - 2, 4 * g + 2 * mid + hi, t[8 + lane], t[16 + lane]);
            plan_twiddle(p, l - 1, 8 * g + 4 * mid + 2 * hi + lo, t[24 + lane], t[32 + lane]);
        }
    }
}

alignas(64) const int64_t kOut0[8] = {0, 8, 1, 9, 4, 12, 5, 13};
alignas(64) const int64_t kOut1[8] = {2, 10, 3, 11, 6, 14, 7, 15};
alignas(64) const int64_t kIn0[8] = {0, 2, 8, 10, 4, 6, 12, 14};
alignas(64) const int64_t kIn1[8] = {1, 3, 9, 11, 5, 7, 13, 15};
alignas(64) const int64_t kL2toL1a[8] = {0, 1, 8, 9, 2, 3, 10, 11};
alignas(64) const int64_t kL2toL1b[8] = {4, 5, 12, 13, 6, 7, 14, 15};

// Groups of the final pass processed together, step by step: one group alone is a ~60-cycle
// dependency chain; 4 interleaved run ~1.4x faster than 1 (2: ~1.2x; 8: no better than 4).
constexpr int kInterleave = 4;

FHEGPT_K512_INLINE __m512i load_idx(const int64_t * p) { return _mm512_load_si512(static_cast<const void *>(p)); }

// Levels L-3 .. L-1 of K 16-point groups (K consecutive tables) whose level L-4 is done
// (s[k]: b3 = 0, d[k]: b3 = 1); stores group k at xr[k] / xi[k]. The K groups are interleaved
// step by step: each group alone is one long dependency chain.
template <int K>
FHEGPT_K512_INLINE void fwd_tail16(double * const * xr, double * const * xi, const double * tab, Cx * s, Cx * d,
                                   __m512i o0, __m512i o1) {
    Cx u[K], v[K];
    for (int k = 0; k < K; ++k) { // level L-3: L0 -> L1
        const double * t = tab + k * kFinalStride;
        u[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0x44), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0x44)};
        v[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0xEE), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0xEE)};
        const __m512d w1r = _mm512_insertf64x4(_mm512_set1_pd(t[2]), _mm256_set1_pd(t[4]), 1);
        const __m512d w1i = _mm512_insertf64x4(_mm512_set1_pd(t[3]), _mm256_set1_pd(t[5]), 1);
        v[k] = mul(v[k], w1r, w1i);
    }
    for (int k = 0; k < K; ++k) {
        s[k] = add(u[k], v[k]);
        d[k] = sub(u[k], v[k]);
    }
    for (int k = 0; k < K; ++k) { // level L-2: L1 -> L2
        const double * t = tab + k * kFinalStride;
        u[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0x88), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0x88)};
        v[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0xDD), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0xDD)};
        v[k] = mul(v[k], _mm512_load_pd(t + 8), _mm512_load_pd(t + 16));
    }
    for (int k = 0; k < K; ++k) {
        s[k] = add(u[k], v[k]);
        d[k] = sub(u[k], v[k]);
    }
    for (int k = 0; k < K; ++k) { // level L-1: L2 -> L3
        const double * t = tab + k * kFinalStride;
        u[k] = {_mm512_unpacklo_pd(s[k].re, d[k].re), _mm512_unpacklo_pd(s[k].im, d[k].im)};
        v[k] = {_mm512_unpackhi_pd(s[k].re, d[k].re), _mm512_unpackhi_pd(s[k].im, d[k].im)};
        v[k] = mul(v[k], _mm512_load_pd(t + 24), _mm512_load_pd(t + 32));
    }
    for (int k = 0; k < K; ++k) {
        const Cx ss = add(u[k], v[k]), dd = sub(u[k], v[k]);
        _mm512_storeu_pd(xr[k], _mm512_permutex2var_pd(ss.re, o0, dd.re));
        _mm512_storeu_pd(xi[k], _mm512_permutex2var_pd(ss.im, o0, dd.im));
        _mm512_storeu_pd(xr[k] + 8, _mm512_permutex2var_pd(ss.re, o1, dd.re));
        _mm512_storeu_pd(xi[k] + 8, _mm512_permutex2var_pd(ss.im, o1, dd.im));
    }
}

FHEGPT_K512 void fwd_final(const Plan & p, double * re, double * im) {
    const double * tab = p.simd_tw.data() + p.final_offset;
    const __m512i o0 = load_idx(kOut0), o1 = load_idx(kOut1);
    if (!p.final_fused) {
        // kInterleave groups per iteration, then the remainder one by one.
        constexpr int K = kInterleave;
        size_t g = 0;
        for (; g + K <= p.m / 16; g += K, tab += K * kFinalStride) {
            double * xr[K];
            double * xi[K];
            Cx s[K], d[K];
            for (int k = 0; k < K; ++k) {
                xr[k] = re + 16 * (g + k);
                xi[k] = im + 16 * (g + k);
                const Cx a = load(xr[k], xi[k]);
                const Cx b = mul(load(xr[k] + 8, xi[k] + 8), _mm512_set1_pd(tab[k * kFinalStride]),
                                 _mm512_set1_pd(tab[k * kFinalStride + 1]));
                s[k] = add(a, b);
                d[k] = sub(a, b);
            }
            fwd_tail16<K>(xr, xi, tab, s, d, o0, o1);
        }
        for (; g < p.m / 16; ++g, tab += kFinalStride) {
            double * xr[1] = {re + 16 * g};
            double * xi[1] = {im + 16 * g};
            const Cx a = load(xr[0], xi[0]);
            const Cx b = mul(load(xr[0] + 8, xi[0] + 8), _mm512_set1_pd(tab[0]), _mm512_set1_pd(tab[1]));
            Cx s[1] = {add(a, b)}, d[1] = {sub(a, b)};
            fwd_tail16<1>(xr, xi, tab, s, d, o0, o1);
        }
        return;
    }
    // Fused: radix-4 head on 32-point groups (levels L-5, L-4), then the tails of both halves.
    const double * head = p.simd_tw.data() + p.passes[p.num_passes - 1].offset;
    constexpr int H = kInterleave >= 2 ? kInterleave / 2 : 1;
    size_t g = 0;
    for (; g + H <= p.m / 32; g += H, tab += 2 * H * kFinalStride) {
        double * xr[2 * H];
        double * xi[2 * H];
        Cx s[2 * H], d[2 * H];
        for (int k = 0; k < H; ++k) {
            xr[2 * k] = re + 32 * (g + k);
            xi[2 * k] = im + 32 * (g + k);
            xr[2 * k + 1] = xr[2 * k] + 16;
            xi[2 * k + 1] = xi[2 * k] + 16;
            Cx x0 = load(xr[2 * k], xi[2 * k]), x1 = load(xr[2 * k] + 8, xi[2 * k] + 8);
            Cx x2 = load(xr[2 * k] + 16, xi[2 * k] + 16), x3 = load(xr[2 * k] + 24, xi[2 * k] + 24);
            fwd_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * (g + k)));
            s[2 * k] = x0;
            d[2 * k] = x1;
            s[2 * k + 1] = x2;
            d[2 * k + 1] = x3;
        }
        fwd_tail16<2 * H>(xr, xi, tab, s, d, o0, o1);
    }
    for (; g < p.m / 32; ++g, tab += 2 * kFinalStride) {
        double * xr[2] = {re + 32 * g, re + 32 * g + 16};
        double * xi[2] = {im + 32 * g, im + 32 * g + 16};
        Cx x0 = load(xr[0], xi[0]), x1 = load(xr[0] + 8, xi[0] + 8);
        Cx x2 = load(xr[1], xi[1]), x3 = load(xr[1] + 8, xi[1] + 8);
        fwd_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * g));
        Cx s[2] = {x0, x2}, d[2] = {x1, x3};
        fwd_tail16<2>(xr, xi, tab, s, d, o0, o1);
    }
}

template <class Source>
FHEGPT_K512 void convert_in(const Plan & p, const Source & src, double * re, double * im) {
    for (size_t j = 0; j < p.m; j += 8) {
        _mm512_storeu_pd(re + j, load_src(src, j));
        _mm512_storeu_pd(im + j, load_src(src, p.m + j));
    }
}

template <class Source>
FHEGPT_K512 void forward_from(const Plan & p, const Source & src, double * fourier) {
    double * re = fourier;
    double * im = fourier + p.m;
    const int separate = p.num_passes - (p.final_fused ? 1 : 0);
    if (separate == 0) {
        convert_in(p, src, re, im);
    } else {
        fwd_radix4(p, p.passes[0], src, re, im);
        for (int i = 1; i < separate; ++i) fwd_radix4(p, p.passes[i], InPlace{}, re, im);
    }
    fwd_final(p, re, im);
}

FHEGPT_K512 void forward_torus(const Plan & p, const uint64_t * coeffs, double * fourier) {
    forward_from(p, I64Source{reinterpret_cast<const int64_t *>(coeffs)}, fourier);
}
FHEGPT_K512 void forward_integer(const Plan & p, const int64_t * coeffs, double * fourier) {
    forward_from(p, I64Source{coeffs}, fourier);
}
FHEGPT_K512 void forward_digits(const Plan & p, const uint64_t * coeffs, const DigitExtraction & d, double * fourier) {
    forward_from(p, make_digit_source(coeffs, d), fourier);
}

// ---- backward ------------------------------------------------------------------------------

// Inverse of fwd_tail16 on K groups: loads, undoes levels L-1 .. L-3; returns the L0 pairs.
template <int K>
FHEGPT_K512_INLINE void inv_head16(const double * const * xr, const double * const * xi, const double * tab,
                                   Cx * s_out, Cx * d_out, __m512i i0, __m512i i1, __m512i ca, __m512i cb) {
    Cx s[K], d[K];
    for (int k = 0; k < K; ++k) { // level L-1 (layout L3)
        const double * t = tab + k * kFinalStride;
        const Cx a = load(xr[k], xi[k]), b = load(xr[k] + 8, xi[k] + 8);
        const Cx u = {_mm512_permutex2var_pd(a.re, i0, b.re), _mm512_permutex2var_pd(a.im, i0, b.im)};
        const Cx v = {_mm512_permutex2var_pd(a.re, i1, b.re), _mm512_permutex2var_pd(a.im, i1, b.im)};
        s[k] = add(u, v);
        d[k] = mulc(sub(u, v), _mm512_load_pd(t + 24), _mm512_load_pd(t + 32));
    }
    for (int k = 0; k < K; ++k) { // L3 -> L2, level L-2
        const double * t = tab + k * kFinalStride;
        const Cx u = {_mm512_unpacklo_pd(s[k].re, d[k].re), _mm512_unpacklo_pd(s[k].im, d[k].im)};
        const Cx v = {_mm512_unpackhi_pd(s[k].re, d[k].re), _mm512_unpackhi_pd(s[k].im, d[k].im)};
        s[k] = add(u, v);
        d[k] = mulc(sub(u, v), _mm512_load_pd(t + 8), _mm512_load_pd(t + 16));
    }
    for (int k = 0; k < K; ++k) { // L2 -> L1, level L-3
        const double * t = tab + k * kFinalStride;
        const Cx u = {_mm512_permutex2var_pd(s[k].re, ca, d[k].re), _mm512_permutex2var_pd(s[k].im, ca, d[k].im)};
        const Cx v = {_mm512_permutex2var_pd(s[k].re, cb, d[k].re), _mm512_permutex2var_pd(s[k].im, cb, d[k].im)};
        const __m512d w1r = _mm512_insertf64x4(_mm512_set1_pd(t[2]), _mm256_set1_pd(t[4]), 1);
        const __m512d w1i = _mm512_insertf64x4(_mm512_set1_pd(t[3]), _mm256_set1_pd(t[5]), 1);
        s[k] = add(u, v);
        d[k] = mulc(sub(u, v), w1r, w1i);
    }
    for (int k = 0; k < K; ++k) { // L1 -> L0
        s_out[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0x44), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0x44)};
        d_out[k] = {_mm512_shuffle_f64x2(s[k].re, d[k].re, 0xEE), _mm512_shuffle_f64x2(s[k].im, d[k].im, 0xEE)};
    }
}

FHEGPT_K512 void inv_final(const Plan & p, double * re, double * im) {
    const double * tab = p.simd_tw.data() + p.final_offset;
    const __m512i i0 = load_idx(kIn0), i1 = load_idx(kIn1);
    const __m512i ca = load_idx(kL2toL1a), cb = load_idx(kL2toL1b);
    if (!p.final_fused) {
        constexpr int K = kInterleave;
        size_t g = 0;
        for (; g + K <= p.m / 16; g += K, tab += K * kFinalStride) {
            double * xr[K];
            double * xi[K];
            Cx u[K], v[K];
            for (int k = 0; k < K; ++k) {
                xr[k] = re + 16 * (g + k);
                xi[k] = im + 16 * (g + k);
            }
            inv_head16<K>(xr, xi, tab, u, v, i0, i1, ca, cb);
            for (int k = 0; k < K; ++k) {
                const double * t = tab + k * kFinalStride;
                store(xr[k], xi[k], add(u[k], v[k]));
                store(xr[k] + 8, xi[k] + 8, mulc(sub(u[k], v[k]), _mm512_set1_pd(t[0]), _mm512_set1_pd(t[1])));
            }
        }
        for (; g < p.m / 16; ++g, tab += kFinalStride) {
            double * xr[1] = {re + 16 * g};
            double * xi[1] = {im + 16 * g};
            Cx u[1], v[1];
            inv_head16<1>(xr, xi, tab, u, v, i0, i1, ca, cb);
            store(xr[0], xi[0], add(u[0], v[0]));
            store(xr[0] + 8, xi[0] + 8, mulc(sub(u[0], v[0]), _mm512_set1_pd(tab[0]), _mm512_set1_pd(tab[1])));
        }
        return;
    }
    const double * head = p.simd_tw.data() + p.passes[p.num_passes - 1].offset;
    constexpr int H = kInterleave >= 2 ? kInterleave / 2 : 1;
    size_t g = 0;
    for (; g + H <= p.m / 32; g += H, tab += 2 * H * kFinalStride) {
        double * xr[2 * H];
        double * xi[2 * H];
        Cx u[2 * H], v[2 * H];
        for (int k = 0; k < 2 * H; ++k) {
            xr[k] = re + 16 * (2 * g + k);
            xi[k] = im + 16 * (2 * g + k);
        }
        inv_head16<2 * H>(xr, xi, tab, u, v, i0, i1, ca, cb);
        for (int k = 0; k < H; ++k) {
            Cx x0 = u[2 * k], x1 = v[2 * k], x2 = u[2 * k + 1], x3 = v[2 * k + 1];
            inv_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * (g + k)));
            store(xr[2 * k], xi[2 * k], x0);
            store(xr[2 * k] + 8, xi[2 * k] + 8, x1);
            store(xr[2 * k] + 16, xi[2 * k] + 16, x2);
            store(xr[2 * k] + 24, xi[2 * k] + 24, x3);
        }
    }
    for (; g < p.m / 32; ++g, tab += 2 * kFinalStride) {
        double * xr[2] = {re + 32 * g, re + 32 * g + 16};
        double * xi[2] = {im + 32 * g, im + 32 * g + 16};
        Cx u[2], v[2];
        inv_head16<2>(xr, xi, tab, u, v, i0, i1, ca, cb);
        Cx x0 = u[0], x1 = v[0], x2 = u[1], x3 = v[1];
        inv_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * g));
        store(xr[0], xi[0], x0);
        store(xr[0] + 8, xi[0] + 8, x1);
        store(xr[0] + 16, xi[0] + 16, x2);
        store(xr[0] + 24, xi[0] + 24, x3);
    }
}

FHEGPT_K512 void inv_radix4(const Plan & p, const Plan::Pass & pass, double * re, double * im) {
    const size_t blocks = size_t{1} << pass.level;
    const size_t q = p.m >> (pass.level + 2);
    const double * tw = p.simd_tw.data() + pass.offset;
    for (size_t b = 0; b < blocks; ++b) {
        const Tw3 t = load_tw3(tw + 6 * b);
        double * xr = re + 4 * q * b;
        double * xi = im + 4 * q * b;
        for (size_t j = 0; j < q; j += 8) {
            Cx x0 = load(xr + j, xi + j), x1 = load(xr + q + j, xi + q + j);
            Cx x2 = load(xr + 2 * q + j, xi + 2 * q + j), x3 = load(xr + 3 * q + j, xi + 3 * q + j);
            inv_bfly4(x0, x1, x2, x3, t);
            store(xr + j, xi + j, x0);
            store(xr + q + j, xi + q + j, x1);
            store(xr + 2 * q + j, xi + 2 * q + j, x2);
            store(xr + 3 * q + j, xi + 3 * q + j, x3);
        }
    }
}

// Last inverse pass (levels 1, 0), fused with the output: twiddles pre-scaled by out_scale.
template <bool Add>
FHEGPT_K512 void inv_radix4_out(const Plan & p, double * re, double * im, uint64_t * dst) {
    const size_t m = p.m;
    const size_t q = m / 4;
    const Tw3 t = load_tw3(p.simd_tw.data() + p.scaled_offset);
    const __m512d scale = _mm512_set1_pd(p.out_scale);
    for (size_t j = 0; j < q; j += 8) {
        Cx x0 = load(re + j, im + j), x1 = load(re + q + j, im + q + j);
        Cx x2 = load(re + 2 * q + j, im + 2 * q + j), x3 = load(re + 3 * q + j, im + 3 * q + j);
        inv_bfly4(x0, x1, x2, x3, t);
        store_u64<Add>(dst + j, _mm512_mul_pd(x0.re, scale));
        store_u64<Add>(dst + m + j, _mm512_mul_pd(x0.im, scale));
        store_u64<Add>(dst + q + j, x1.re);
        store_u64<Add>(dst + m + q + j, x1.im);
        store_u64<Add>(dst + 2 * q + j, x2.re);
        store_u64<Add>(dst + m + 2 * q + j, x2.im);
        store_u64<Add>(dst + 3 * q + j, x3.re);
        store_u64<Add>(dst + m + 3 * q + j, x3.im);
    }
}

template <bool Add>
FHEGPT_K512 void convert_out(const Plan & p, const double * re, const double * im, uint64_t * dst) {
    const __m512d scale = _mm512_set1_pd(p.out_scale);
    for (size_t j = 0; j < p.m; j += 8) {
        store_u64<Add>(dst + j, _mm512_mul_pd(_mm512_loadu_pd(re + j), scale));
        store_u64<Add>(dst + p.m + j, _mm512_mul_pd(_mm512_loadu_pd(im + j), scale));
    }
}

template <bool Add>
FHEGPT_K512 void backward_impl(const Plan & p, double * fourier, uint64_t * dst) {
    double * re = fourier;
    double * im = fourier + p.m;
    inv_final(p, re, im);
    const int separate = p.num_passes - (p.final_fused ? 1 : 0);
    if (separate == 0) {
        convert_out<Add>(p, re, im, dst);
        return;
    }
    for (int i = separate - 1; i >= 1; --i) inv_radix4(p, p.passes[i], re, im);
    inv_radix4_out<Add>(p, re, im, dst);
}

void backward(const Plan & p, double * fourier, uint64_t * coeffs, bool add_to) {
    if (add_to) backward_impl<true>(p, fourier, coeffs);
    else backward_impl<false>(p, fourier, coeffs);
}

// ---- pointwise -----------------------------------------------------------------------------

// c += a * b on 8 complex values (re at a, im at a + h): the operation order of multiply_add.
FHEGPT_K512_INLINE void mac8(__m512d & cr, __m512d & ci, const double * a, const double * b, size_t h) {
    const __m512d ar = _mm512_loadu_pd(a), ai = _mm512_loadu_pd(a + h);
    const __m512d br = _mm512_loadu_pd(b), bi = _mm512_loadu_pd(b + h);
    cr = _mm512_fnmadd_pd(ai, bi, _mm512_fmadd_pd(ar, br, cr));
    ci = _mm512_fmadd_pd(ai, br, _mm512_fmadd_pd(ar, bi, ci));
}

FHEGPT_K512_INLINE void mac1(double & cr, double & ci, const double * a, const double * b, size_t h) {
    cr = __builtin_fma(-a[h], b[h], __builtin_fma(a[0], b[0], cr));
    ci = __builtin_fma(a[h], b[0], __builtin_fma(a[0], b[h], ci));
}

FHEGPT_K512 void multiply_add(double * acc, const double * a, const double * b, size_t h) {
    size_t j = 0;
    for (; j + 8 <= h; j += 8) {
        __m512d cr = _mm512_loadu_pd(acc + j), ci = _mm512_loadu_pd(acc + h + j);
        mac8(cr, ci, a + j, b + j, h);
        _mm512_storeu_pd(acc + j, cr);
        _mm512_storeu_pd(acc + h + j, ci);
    }
    for (; j < h; ++j) mac1(acc[j], acc[h + j], a + j, b + j, h);
}

FHEGPT_K512 void multiply_accumulate(double * out, const double * a, const double * b, size_t rows, size_t cols,
                                     size_t h) {
    const size_t n = 2 * h;
    for (size_t c = 0; c < cols; ++c) {
        double * o = out + c * n;
        size_t j = 0;
        for (; j + 8 <= h; j += 8) {
            __m512d cr = _mm512_setzero_pd(), ci = _mm512_setzero_pd();
            for (size_t r = 0; r < rows; ++r) mac8(cr, ci, a + r * n + j, b + (r * cols + c) * n + j, h);
            _mm512_storeu_pd(o + j, cr);
            _mm512_storeu_pd(o + h + j, ci);
        }
        for (; j < h; ++j) {
            double cr = 0.0, ci = 0.0;
            for (size_t r = 0; r < rows; ++r) mac1(cr, ci, a + r * n + j, b + (r * cols + c) * n + j, h);
            o[j] = cr;
            o[h + j] = ci;
        }
    }
}

const KernelOps kOps = {"avx512", 16,          init, forward_torus, forward_integer, forward_digits,
                        backward, multiply_add, multiply_accumulate, nullptr, nullptr, nullptr};

} // namespace

const KernelOps * const kAvx512Ops = &kOps;

} // namespace fhegpt::tfhe::fft_detail

#else

namespace fhegpt::tfhe::fft_detail {
const KernelOps * const kAvx512Ops = nullptr;
}

#endif
