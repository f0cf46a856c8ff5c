// AVX2 + FMA kernel: 4 complex values per vector, split re/im. Same structure as the AVX-512 one:
// radix-4 passes over levels [0, L-3) with broadcast twiddles, the first fused with the
// int64 -> double conversion, then a final pass per 8-point block doing the last 3 levels in
// registers (the last radix-4 pass fused into it when L-3 is odd); backward mirrors it with the
// scaling, the mod-2^64 conversion and the add fused into its last pass.
#include "common/check.h"
#include "tfhe/fft/fft_internal.h"

#include <array>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic push
#if !defined(__clang__) // clang has no such warning and rejects unknown ones under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace fhegpt::tfhe::fft_detail {
namespace {

#define FHEGPT_K256 __attribute__((target("avx2,fma")))
#define FHEGPT_K256_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

struct Cx {
    __m256d re, im;
};

FHEGPT_K256_INLINE Cx load(const double * re, const double * im) { return {_mm256_loadu_pd(re), _mm256_loadu_pd(im)}; }
FHEGPT_K256_INLINE void store(double * re, double * im, Cx x) {
    _mm256_storeu_pd(re, x.re);
    _mm256_storeu_pd(im, x.im);
}
FHEGPT_K256_INLINE Cx add(Cx a, Cx b) { return {_mm256_add_pd(a.re, b.re), _mm256_add_pd(a.im, b.im)}; }
FHEGPT_K256_INLINE Cx sub(Cx a, Cx b) { return {_mm256_sub_pd(a.re, b.re), _mm256_sub_pd(a.im, b.im)}; }
FHEGPT_K256_INLINE Cx mul(Cx a, __m256d wr, __m256d wi) {
    return {_mm256_fmsub_pd(a.re, wr, _mm256_mul_pd(a.im, wi)), _mm256_fmadd_pd(a.re, wi, _mm256_mul_pd(a.im, wr))};
}
FHEGPT_K256_INLINE Cx mulc(Cx a, __m256d wr, __m256d wi) {
    return {_mm256_fmadd_pd(a.re, wr, _mm256_mul_pd(a.im, wi)), _mm256_fmsub_pd(a.im, wr, _mm256_mul_pd(a.re, wi))};
}

// Exact-as-possible int64 -> double (one rounding): x = hi * 2^32 + lo, hi signed, lo unsigned.
FHEGPT_K256_INLINE __m256d load_i64(const int64_t * p) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
    // 2^52 + (hi + 2^31) and 2^52 + lo, as doubles.
    const __m256d hi = _mm256_castsi256_pd(
        _mm256_xor_si256(_mm256_srli_epi64(x, 32), _mm256_set1_epi64x(0x4330000080000000LL)));
    const __m256d lo = _mm256_castsi256_pd(_mm256_blend_epi32(x, _mm256_set1_epi64x(0x4330000000000000LL), 0xAA));
    // hi' * 2^32 - (2^84 + 2^63 + 2^52) = hi * 2^32 - 2^52, exact; + lo' rounds once.
    const __m256d t = _mm256_fmsub_pd(hi, _mm256_set1_pd(0x1p32), _mm256_set1_pd(0x1p84 + 0x1p63 + 0x1p52));
    return _mm256_add_pd(t, lo);
}

// y = x * 2^-64 (already scaled): round(x) mod 2^64, for finite |y| < 2^52.
FHEGPT_K256_INLINE __m256i wrap_scaled(__m256d y) {
    constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m256d f = _mm256_sub_pd(y, _mm256_round_pd(y, kNearest));                        // [-1/2, 1/2], exact
    const __m256d r = _mm256_round_pd(_mm256_mul_pd(f, _mm256_set1_pd(0x1p64)), kNearest);   // [-2^63, 2^63]
    const __m256d h = _mm256_floor_pd(_mm256_mul_pd(r, _mm256_set1_pd(0x1p-32)));            // [-2^31, 2^31]
    const __m256d l = _mm256_fnmadd_pd(h, _mm256_set1_pd(0x1p32), r);                         // [0, 2^32), exact
    const __m256d magic = _mm256_set1_pd(0x1p52 + 0x1p51); // low 32 mantissa bits of v + magic = v mod 2^32
    const __m256i hb = _mm256_castpd_si256(_mm256_add_pd(h, magic));
    const __m256i lb = _mm256_castpd_si256(_mm256_add_pd(l, magic));
    return _mm256_blend_epi32(_mm256_slli_epi64(hb, 32), lb, 0x55);
}

// The same rounded to a multiple of 2^12: 2^12 round(x / 2^12) mod 2^64, in four operations.
// f = y - floor(y) in [0, 1]; f 2^52 + 2^52 rounds to an integer in [2^52, 2^53] whose low 52
// bits are round(f 2^52) mod 2^52 and whose exponent bits the shift by 12 pushes out (2^53 gives 0,
// as it should). y - floor(y) is exact except for y in (-1/2, 0) (|x| < 2^63), where it rounds
// to a multiple of 2^-53: the error is then <= 2^11 + 2^10 instead of 2^11.
FHEGPT_K256_INLINE __m256i wrap_scaled_torus(__m256d y) {
    constexpr int kDown = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
    const __m256d f = _mm256_sub_pd(y, _mm256_round_pd(y, kDown));
    const __m256d r = _mm256_fmadd_pd(f, _mm256_set1_pd(0x1p52), _mm256_set1_pd(0x1p52));
    return _mm256_slli_epi64(_mm256_castpd_si256(r), 12);
}

// Output conversions: coefficients = result, += result, or the same rounded to 2^12 (Torus).
enum class Out { Set, Add, SetTorus, AddTorus };

template <Out Mode>
FHEGPT_K256_INLINE void store_u64(uint64_t * p, __m256d y) {
    __m256i v = Mode == Out::SetTorus || Mode == Out::AddTorus ? wrap_scaled_torus(y) : wrap_scaled(y);
    if (Mode == Out::Add || Mode == Out::AddTorus)
        v = _mm256_add_epi64(v, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), v);
}

struct Tw3 {
    __m256d r0, i0, r1, i1, r2, i2;
};
FHEGPT_K256_INLINE Tw3 load_tw3(const double * t) {
    return {_mm256_set1_pd(t[0]), _mm256_set1_pd(t[1]), _mm256_set1_pd(t[2]),
            _mm256_set1_pd(t[3]), _mm256_set1_pd(t[4]), _mm256_set1_pd(t[5])};
}

FHEGPT_K256_INLINE void fwd_bfly4(Cx & x0, Cx & x1, Cx & x2, Cx & x3, const Tw3 & t) {
    const Cx pp = mul(x2, t.r0, t.i0);
    const Cx qq = mul(x1, t.r1, t.i1);
    const Cx rr = mul(x3, t.r2, t.i2);
    const Cx s0 = add(x0, pp), d0 = sub(x0, pp);
    const Cx s1 = add(qq, rr), d1 = sub(qq, rr);
    x0 = add(s0, s1);
    x1 = sub(s0, s1);
    x2 = {_mm256_sub_pd(d0.re, d1.im), _mm256_add_pd(d0.im, d1.re)};
    x3 = {_mm256_add_pd(d0.re, d1.im), _mm256_sub_pd(d0.im, d1.re)};
}

FHEGPT_K256_INLINE void inv_bfly4(Cx & x0, Cx & x1, Cx & x2, Cx & x3, const Tw3 & t) {
    const Cx s = add(x0, x1), d = sub(x0, x1), s2 = add(x2, x3);
    // (x2 - x3) * (-i); x3.re - x2.re is -(x2.re - x3.re) exactly (rounding to nearest is
    // symmetric), without the negation.
    const Cx e = {_mm256_sub_pd(x2.im, x3.im), _mm256_sub_pd(x3.re, x2.re)};
    x0 = add(s, s2);
    x1 = mulc(add(d, e), t.r1, t.i1);
    x2 = mulc(sub(s, s2), t.r0, t.i0);
    x3 = mulc(sub(d, e), t.r2, t.i2);
}

// ---- forward -------------------------------------------------------------------------------

// Sources of the first forward pass: the values of points i..i+3, converted to doubles. InPlace:
// the pass reads and writes the Fourier buffer.
struct InPlace {};
struct I64Source {
    const int64_t * p;
};
FHEGPT_K256_INLINE __m256d load_src(const I64Source & s, size_t i) { return load_i64(s.p + i); }

// The digits of one decomposition level (fft_internal.h, DigitExtraction), extracted with four
// integer operations; 2^52 + digit + half is built in the mantissa, then 2^52 + half subtracted
// (both exact). Masked = false where the shift alone leaves at most the mask's bits (the most
// significant level): the AND is skipped.
template <bool Masked>
struct DigitSource {
    const uint64_t * p;
    __m256i offset, mask;
    __m256i shift; // per lane (vpsrlvq): as fast as one count here, and valgrind decodes it
    __m256d bias;
};
// Whether (x >> d.shift) & d.mask == x >> d.shift for every x.
inline bool digit_needs_mask(const DigitExtraction & d) { return ((~uint64_t{0} >> d.shift) & ~d.mask) != 0; }
template <bool Masked>
FHEGPT_K256_INLINE DigitSource<Masked> make_digit_source(const uint64_t * p, const DigitExtraction & d) {
    return {p, _mm256_set1_epi64x(static_cast<long long>(d.offset)), _mm256_set1_epi64x(static_cast<long long>(d.mask)),
            _mm256_set1_epi64x(static_cast<long long>(d.shift)), _mm256_set1_pd(0x1p52 + static_cast<double>(d.half))};
}
// The digits of x, given x + offset.
template <bool Masked>
FHEGPT_K256_INLINE __m256d digits_of_offset(__m256i x_plus_offset, const DigitSource<Masked> & s) {
    __m256i x = _mm256_srlv_epi64(x_plus_offset, s.shift);
    if constexpr (Masked) x = _mm256_and_si256(x, s.mask);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, _mm256_set1_epi64x(0x4330000000000000LL))),
                         s.bias); // (2^52 + value) - (2^52 + half)
}
template <bool Masked>
FHEGPT_K256_INLINE __m256d load_src(const DigitSource<Masked> & s, size_t i) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s.p + i));
    return digits_of_offset(_mm256_add_epi64(x, s.offset), s);
}

// Radix-4 pass; a Source other than InPlace supplies the inputs (first pass: points i of the
// real parts, m + i of the imaginary parts).
template <class Source>
FHEGPT_K256 void fwd_radix4(const Plan & p, const Plan::Pass & pass, const Source & source, double * re, double * im) {
    // A local copy: the vector stores below may alias anything, so fields read through the
    // reference would be reloaded at every step.
    const Source src = source;
    const size_t m = p.m;
    const size_t blocks = size_t{1} << pass.level;
    const size_t q = m >> (pass.level + 2);
    const double * tw = p.simd_tw.data() + pass.offset;
    for (size_t b = 0; b < blocks; ++b) {
        const Tw3 t = load_tw3(tw + 6 * b);
        double * xr = re + 4 * q * b;
        double * xi = im + 4 * q * b;
        for (size_t j = 0; j < q; j += 4) {
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

// Final pass table, per 8-point group g (20 doubles):
//   [0..2) t_{L-3,g}; [2..4) unused; [4..8) / [8..12) W1 re / im; [12..16) / [16..20) W2 re / im.
// Lane layouts (position bits b2 b1 b0): L0 (loaded): vector b2, lane (b1 b0);
//   L1: vector b1, lane (b2 b0), W1[lane] = t_{L-2, 2g + b2};
//   L2: vector b0, lane (b2 b1), W2[lane] = t_{L-1, 4g + 2 b2 + b1}.
// With final_fused, the last radix-4 pass (levels L-4, L-3) first runs on 16-point groups.
constexpr size_t kFinalStride = 20;

void init(Plan & p) {
    build_passes(p, 3);
    const size_t groups = p.m / 8;
    const int l = p.log_m;
    p.simd_tw.resize(p.final_offset + groups * kFinalStride, 0.0);
    for (size_t g = 0; g < groups; ++g) {
        double * t = p.simd_tw.data() + p.final_offset + g * kFinalStride;
        plan_twiddle(p, l - 3, g, t[0], t[1]);
        for (size_t lane = 0; lane < 4; ++lane) {
            const size_t hi = lane >> 1 & 1, lo = lane & 1;
            plan_twiddle(p, l - 2, 2 * g + hi, t[4 + lane], t[8 + lane]);
            plan_twiddle(p, l - 1, 4 * g + 2 * hi + lo, t[12 + lane], t[16 + lane]);
        }
    }
}

// Levels L-2, L-1 of K 8-point groups whose level L-3 is done (s[k]: b2 = 0, d[k]: b2 = 1),
// interleaved step by step (each group alone is one long dependency chain); stores.
template <int K>
FHEGPT_K256_INLINE void fwd_tail8(double * const * xr, double * const * xi, const double * tab, Cx * s, Cx * d) {
    Cx u[K], v[K];
    for (int k = 0; k < K; ++k) { // L0 -> L1
        const double * t = tab + k * kFinalStride;
        u[k] = {_mm256_permute2f128_pd(s[k].re, d[k].re, 0x20), _mm256_permute2f128_pd(s[k].im, d[k].im, 0x20)};
        v[k] = {_mm256_permute2f128_pd(s[k].re, d[k].re, 0x31), _mm256_permute2f128_pd(s[k].im, d[k].im, 0x31)};
        v[k] = mul(v[k], _mm256_loadu_pd(t + 4), _mm256_loadu_pd(t + 8));
    }
    for (int k = 0; k < K; ++k) {
        s[k] = add(u[k], v[k]);
        d[k] = sub(u[k], v[k]);
    }
    for (int k = 0; k < K; ++k) { // L1 -> L2
        const double * t = tab + k * kFinalStride;
        u[k] = {_mm256_unpacklo_pd(s[k].re, d[k].re), _mm256_unpacklo_pd(s[k].im, d[k].im)};
        v[k] = {_mm256_unpackhi_pd(s[k].re, d[k].re), _mm256_unpackhi_pd(s[k].im, d[k].im)};
        v[k] = mul(v[k], _mm256_loadu_pd(t + 12), _mm256_loadu_pd(t + 16));
    }
    for (int k = 0; k < K; ++k) {
        const Cx ss = add(u[k], v[k]), dd = sub(u[k], v[k]);
        // back to natural order: x = [p0 p1 p4 p5], y = [p2 p3 p6 p7]
        const Cx x = {_mm256_unpacklo_pd(ss.re, dd.re), _mm256_unpacklo_pd(ss.im, dd.im)};
        const Cx y = {_mm256_unpackhi_pd(ss.re, dd.re), _mm256_unpackhi_pd(ss.im, dd.im)};
        _mm256_storeu_pd(xr[k], _mm256_permute2f128_pd(x.re, y.re, 0x20));
        _mm256_storeu_pd(xi[k], _mm256_permute2f128_pd(x.im, y.im, 0x20));
        _mm256_storeu_pd(xr[k] + 4, _mm256_permute2f128_pd(x.re, y.re, 0x31));
        _mm256_storeu_pd(xi[k] + 4, _mm256_permute2f128_pd(x.im, y.im, 0x31));
    }
}

FHEGPT_K256 void fwd_final(const Plan & p, double * re, double * im) {
    const size_t m = p.m;
    const double * tab = p.simd_tw.data() + p.final_offset;
    if (!p.final_fused) {
        size_t g = 0;
        for (; g + 2 <= m / 8; g += 2, tab += 2 * kFinalStride) {
            double * xr[2] = {re + 8 * g, re + 8 * g + 8};
            double * xi[2] = {im + 8 * g, im + 8 * g + 8};
            Cx s[2], d[2];
            for (int k = 0; k < 2; ++k) {
                const Cx a = load(xr[k], xi[k]);
                const Cx b = mul(load(xr[k] + 4, xi[k] + 4), _mm256_set1_pd(tab[k * kFinalStride]),
                                 _mm256_set1_pd(tab[k * kFinalStride + 1]));
                s[k] = add(a, b);
                d[k] = sub(a, b);
            }
            fwd_tail8<2>(xr, xi, tab, s, d);
        }
        for (; g < m / 8; ++g, tab += kFinalStride) {
            double * xr[1] = {re + 8 * g};
            double * xi[1] = {im + 8 * g};
            const Cx a = load(xr[0], xi[0]);
            const Cx b = mul(load(xr[0] + 4, xi[0] + 4), _mm256_set1_pd(tab[0]), _mm256_set1_pd(tab[1]));
            Cx s[1] = {add(a, b)}, d[1] = {sub(a, b)};
            fwd_tail8<1>(xr, xi, tab, s, d);
        }
        return;
    }
    const double * head = p.simd_tw.data() + p.passes[p.num_passes - 1].offset;
    for (size_t g = 0; g < m / 16; ++g, tab += 2 * kFinalStride) {
        double * xr[2] = {re + 16 * g, re + 16 * g + 8};
        double * xi[2] = {im + 16 * g, im + 16 * g + 8};
        Cx x0 = load(xr[0], xi[0]), x1 = load(xr[0] + 4, xi[0] + 4);
        Cx x2 = load(xr[1], xi[1]), x3 = load(xr[1] + 4, xi[1] + 4);
        fwd_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * g));
        Cx s[2] = {x0, x2}, d[2] = {x1, x3};
        fwd_tail8<2>(xr, xi, tab, s, d);
    }
}

template <class Source>
FHEGPT_K256 void convert_in(const Plan & p, const Source & src, double * re, double * im) {
    for (size_t j = 0; j < p.m; j += 4) {
        _mm256_storeu_pd(re + j, load_src(src, j));
        _mm256_storeu_pd(im + j, load_src(src, p.m + j));
    }
}

template <class Source>
FHEGPT_K256 void forward_from(const Plan & p, const Source & src, double * fourier) {
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

FHEGPT_K256 void forward_torus(const Plan & p, const uint64_t * coeffs, double * fourier) {
    forward_from(p, I64Source{reinterpret_cast<const int64_t *>(coeffs)}, fourier);
}
FHEGPT_K256 void forward_integer(const Plan & p, const int64_t * coeffs, double * fourier) {
    forward_from(p, I64Source{coeffs}, fourier);
}
FHEGPT_K256 void forward_digits(const Plan & p, const uint64_t * coeffs, const DigitExtraction & d, double * fourier) {
    if (digit_needs_mask(d)) forward_from(p, make_digit_source<true>(coeffs, d), fourier);
    else forward_from(p, make_digit_source<false>(coeffs, d), fourier);
}

// ---- forward of the digits of a CMux input X^power c - c ----------------------------------------
//
// The first radix-4 pass (level 0, one block) reads 8 streams of q = N/8 coefficients: stream k
// holds points k q + j (k < 4: real parts of x_k, else imaginary parts of x_(k-4)). Coefficient i
// of X^power c is c[i - s] (i >= s) or -c[i - s + N] (i < s), s = power mod N, all negated when
// power >= N. So stream k reads c at a fixed offset and sign, except where i crosses s: streams
// k < s / q are all below s, those above all at or past it, and stream s / q crosses s at
// j = s mod q. The pass runs in two segments of fixed offsets and signs around that point, and
// the one vector that straddles it (when s is not a multiple of 4) is built coefficient by
// coefficient. Each segment is a kernel specialized for its streams' signs; the straddling step
// applies them at run time as (v ^ sign) - sign, with "- sign" folded into the digit extraction's
// offset.
struct RotatedStreams {
    const uint64_t * c;
    size_t q;
    ptrdiff_t read[8];     // stream k, point j: (X^power c)[k q + j] = sign_k c[k q + j + read[k]]
    __m256i sign[8];       // 0 or all ones
    __m256i adjust[8];     // offset - sign (the digit extraction's offset, the negation's + 1)
};

// The tail of step j of the first pass, shared by both step kernels: the butterflies of the
// four inputs x[k] (points k q + j), stored at stride q.
FHEGPT_K256_INLINE void rotated_first_butterflies(Cx * x, const Tw3 & t, size_t q, size_t j, double * re,
                                                  double * im) {
    fwd_bfly4(x[0], x[1], x[2], x[3], t);
    store(re + j, im + j, x[0]);
    store(re + q + j, im + q + j, x[1]);
    store(re + 2 * q + j, im + 2 * q + j, x[2]);
    store(re + 3 * q + j, im + 3 * q + j, x[3]);
}

// Butterflies of step j of the first pass, given the 8 streams' rotated values r[k] (each
// xor-ed with its sign, adjust[k] completing the negation and adding the offset).
template <bool Masked>
FHEGPT_K256_INLINE void rotated_first_step(const RotatedStreams & r, size_t j, const __m256i * rot,
                                           const __m256i * adjust, const DigitSource<Masked> & d, const Tw3 & t,
                                           double * re, double * im) {
    Cx x[4];
    for (int k = 0; k < 4; ++k) {
        __m256d v[2];
        for (int h = 0; h < 2; ++h) {
            const size_t i = (4 * h + k) * r.q + j;
            const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(r.c + i));
            v[h] = digits_of_offset(_mm256_add_epi64(_mm256_sub_epi64(rot[4 * h + k], c), adjust[4 * h + k]), d);
        }
        x[k] = {v[0], v[1]};
    }
    rotated_first_butterflies(x, t, r.q, j, re, im);
}

// Steps [j0, j1) of a segment where streams k < Below read the wrapped coefficients c[i - s + N]
// (i + wrapped, wrapped = N - s), the others c[i - s] (i + direct, direct = -s), those of sign -1
// (wrapped != Negate) negated: offset - (c' + c) or (c' - c) + offset, two operations with the
// sign known at compile time (the run-time-sign step takes three). Q: the stream length q when
// known at compile time (0: the argument), then every stream's offset is an immediate and one
// index serves all 24 accesses (else the index arithmetic spills).
template <bool Masked, int Below, bool Negate, size_t Q>
FHEGPT_K256 void rotated_first_segment(const uint64_t * c, ptrdiff_t direct, ptrdiff_t wrapped, size_t q_arg,
                                       size_t j0, size_t j1, const DigitSource<Masked> & digits, const Tw3 & t,
                                       double * re, double * im) {
    const size_t q = Q != 0 ? Q : q_arg;
    const DigitSource<Masked> d = digits; // local: not reloaded after each store
    for (size_t j = j0; j < j1; j += 4) {
        Cx x[4];
        for (int k = 0; k < 4; ++k) {
            __m256d v[2];
            for (int h = 0; h < 2; ++h) {
                const int stream = 4 * h + k;
                const size_t i = static_cast<size_t>(stream) * q + j;
                const __m256i ci = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i));
                const ptrdiff_t from = static_cast<ptrdiff_t>(i) + (stream < Below ? wrapped : direct);
                const __m256i rot = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + from));
                const __m256i x_plus_offset = (stream < Below) != Negate
                                                  ? _mm256_sub_epi64(d.offset, _mm256_add_epi64(rot, ci))
                                                  : _mm256_add_epi64(_mm256_sub_epi64(rot, ci), d.offset);
                v[h] = digits_of_offset(x_plus_offset, d);
            }
            x[k] = {v[0], v[1]};
        }
        rotated_first_butterflies(x, t, q, j, re, im);
    }
}

template <bool Masked>
using RotatedSegmentFn = void (*)(const uint64_t *, ptrdiff_t, ptrdiff_t, size_t, size_t, size_t,
                                  const DigitSource<Masked> &, const Tw3 &, double *, double *);
template <bool Masked, bool Negate, size_t Q, int... Below>
constexpr std::array<RotatedSegmentFn<Masked>, sizeof...(Below)>
rotated_segments(std::integer_sequence<int, Below...>) {
    return {&rotated_first_segment<Masked, Below, Negate, Q>...};
}
// [negate][below], below in 0..8.
template <bool Masked, size_t Q>
constexpr std::array<std::array<RotatedSegmentFn<Masked>, 9>, 2> kRotatedSegments = {
    rotated_segments<Masked, false, Q>(std::make_integer_sequence<int, 9>{}),
    rotated_segments<Masked, true, Q>(std::make_integer_sequence<int, 9>{})};
// The segments for q = N / 8: specialized for the production sets' N = 2048, 4096 and 8192,
// generic otherwise.
template <bool Masked>
const std::array<std::array<RotatedSegmentFn<Masked>, 9>, 2> & rotated_segments_for(size_t q) {
    switch (q) {
    case 256: return kRotatedSegments<Masked, 256>;
    case 512: return kRotatedSegments<Masked, 512>;
    case 1024: return kRotatedSegments<Masked, 1024>;
    default: return kRotatedSegments<Masked, 0>;
    }
}

// Stream k reads the wrapped coefficients c[i - s + N], negated (unless `negate`), or c[i - s].
FHEGPT_K256_INLINE void set_stream(RotatedStreams & r, size_t k, bool wrapped, size_t n, size_t s, bool negate,
                                   __m256i offset) {
    r.read[k] = wrapped ? static_cast<ptrdiff_t>(n - s) : -static_cast<ptrdiff_t>(s);
    r.sign[k] = wrapped != negate ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    r.adjust[k] = _mm256_sub_epi64(offset, r.sign[k]);
}

template <bool Masked>
FHEGPT_K256 void forward_rotated_digits_impl(const Plan & p, const uint64_t * coeffs, size_t power,
                                             const DigitExtraction & de, double * fourier) {
    const size_t n = p.n;
    const int separate = p.num_passes - (p.final_fused ? 1 : 0);
    double * re = fourier;
    double * im = fourier + p.m;
    const DigitSource<Masked> d = make_digit_source<Masked>(coeffs, de);
    const Tw3 t = load_tw3(p.simd_tw.data() + p.passes[0].offset);
    const bool negate = power >= n;
    const size_t s = negate ? power - n : power;
    RotatedStreams r;
    r.c = coeffs;
    r.q = p.m / 4;
    const size_t crossing = s / r.q, at = s % r.q; // stream `crossing` passes s at step `at`
    const size_t before = at & ~size_t{3}, after = (at + 3) & ~size_t{3};
    // Streams k <= crossing wrapped before the crossing step, k < crossing from it on.
    const ptrdiff_t direct = -static_cast<ptrdiff_t>(s), wrapped = static_cast<ptrdiff_t>(n - s);
    const auto & segments = rotated_segments_for<Masked>(r.q);
    segments[negate][crossing + 1](coeffs, direct, wrapped, r.q, 0, before, d, t, re, im);
    if (before != after) { // the straddling step: stream `crossing` built coefficient by coefficient
        for (size_t k = 0; k < 8; ++k) set_stream(r, k, k < crossing, n, s, negate, d.offset);
        alignas(32) uint64_t straddle[4];
        for (size_t lane = 0; lane < 4; ++lane)
            straddle[lane] = monomial_mul_coefficient(coeffs, n, power, crossing * r.q + before + lane);
        __m256i rot[8], adjust[8];
        for (size_t k = 0; k < 8; ++k) {
            const uint64_t * from = coeffs + static_cast<ptrdiff_t>(k * r.q + before) + r.read[k];
            rot[k] = k == crossing ? _mm256_load_si256(reinterpret_cast<const __m256i *>(straddle))
                                   : _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(from)),
                                                      r.sign[k]);
            adjust[k] = k == crossing ? d.offset : r.adjust[k];
        }
        rotated_first_step(r, before, rot, adjust, d, t, re, im);
    }
    segments[negate][crossing](coeffs, direct, wrapped, r.q, after, r.q, d, t, re, im);
    for (int i = 1; i < separate; ++i) fwd_radix4(p, p.passes[i], InPlace{}, re, im);
    fwd_final(p, re, im);
}

FHEGPT_K256 void forward_rotated_digits(const Plan & p, const uint64_t * coeffs, size_t power,
                                        const DigitExtraction & de, double * fourier) {
    const size_t n = p.n;
    const int separate = p.num_passes - (p.final_fused ? 1 : 0);
    if (separate == 0) { // N <= 32: no separate first pass; rotate into a local copy
        uint64_t rotated[32];
        FHEGPT_CHECK(n <= 32, "N = %zu with no separate first pass", n);
        for (size_t i = 0; i < n; ++i) rotated[i] = monomial_mul_coefficient(coeffs, n, power, i) - coeffs[i];
        forward_digits(p, rotated, de, fourier);
        return;
    }
    if (digit_needs_mask(de)) forward_rotated_digits_impl<true>(p, coeffs, power, de, fourier);
    else forward_rotated_digits_impl<false>(p, coeffs, power, de, fourier);
}

// ---- backward ------------------------------------------------------------------------------

// c += a * b on 4 complex values (re at a, im at a + h): the operation order of multiply_add.
FHEGPT_K256_INLINE void mac4(__m256d & cr, __m256d & ci, const double * a, const double * b, size_t h) {
    const __m256d ar = _mm256_loadu_pd(a), ai = _mm256_loadu_pd(a + h);
    const __m256d br = _mm256_loadu_pd(b), bi = _mm256_loadu_pd(b + h);
    cr = _mm256_fnmadd_pd(ai, bi, _mm256_fmadd_pd(ar, br, cr));
    ci = _mm256_fmadd_pd(ai, br, _mm256_fmadd_pd(ar, bi, ci));
}

FHEGPT_K256_INLINE void mac1(double & cr, double & ci, const double * a, const double * b, size_t h) {
    cr = __builtin_fma(-a[h], b[h], __builtin_fma(a[0], b[0], cr));
    ci = __builtin_fma(a[h], b[0], __builtin_fma(a[0], b[h], ci));
}

// Spectrum sources of the first inverse pass: the 4 complex values at points i..i+3. In place,
// or the sum of row products of an external product, accumulated with multiply_add's operations
// in row order (the sums are bit for bit those of the unfused calls); Rows > 0: the row count
// known at compile time.
struct SpecInPlace {
    const double * re;
    const double * im;
};
FHEGPT_K256_INLINE Cx load_spec(const SpecInPlace & s, size_t i) { return load(s.re + i, s.im + i); }

template <int Rows>
struct SpecProducts {
    const double * a; // row r at a + r n
    const double * b; // row r at b + r b_stride
    size_t rows, n, b_stride, h;
};
template <int Rows>
FHEGPT_K256_INLINE Cx load_spec(const SpecProducts<Rows> & s, size_t i) {
    __m256d cr = _mm256_setzero_pd(), ci = _mm256_setzero_pd();
    const size_t rows = Rows > 0 ? static_cast<size_t>(Rows) : s.rows;
    for (size_t r = 0; r < rows; ++r) mac4(cr, ci, s.a + r * s.n + i, s.b + r * s.b_stride + i, s.h);
    return {cr, ci};
}

// Inverse of fwd_tail8 on K groups (points pos[k] .. pos[k] + 7 of `src`): undoes levels L-1,
// L-2; returns the L0 pairs.
template <int K, class Source>
FHEGPT_K256_INLINE void inv_head8(const Source & src, const size_t * pos, const double * tab, Cx * s_out, Cx * d_out) {
    Cx s[K], d[K];
    for (int k = 0; k < K; ++k) { // level L-1 (layout L2)
        const double * t = tab + k * kFinalStride;
        const Cx a = load_spec(src, pos[k]), b = load_spec(src, pos[k] + 4);
        const Cx x = {_mm256_permute2f128_pd(a.re, b.re, 0x20), _mm256_permute2f128_pd(a.im, b.im, 0x20)};
        const Cx y = {_mm256_permute2f128_pd(a.re, b.re, 0x31), _mm256_permute2f128_pd(a.im, b.im, 0x31)};
        const Cx u = {_mm256_unpacklo_pd(x.re, y.re), _mm256_unpacklo_pd(x.im, y.im)};
        const Cx v = {_mm256_unpackhi_pd(x.re, y.re), _mm256_unpackhi_pd(x.im, y.im)};
        s[k] = add(u, v);
        d[k] = mulc(sub(u, v), _mm256_loadu_pd(t + 12), _mm256_loadu_pd(t + 16));
    }
    for (int k = 0; k < K; ++k) { // L2 -> L1, level L-2
        const double * t = tab + k * kFinalStride;
        const Cx u = {_mm256_unpacklo_pd(s[k].re, d[k].re), _mm256_unpacklo_pd(s[k].im, d[k].im)};
        const Cx v = {_mm256_unpackhi_pd(s[k].re, d[k].re), _mm256_unpackhi_pd(s[k].im, d[k].im)};
        s[k] = add(u, v);
        d[k] = mulc(sub(u, v), _mm256_loadu_pd(t + 4), _mm256_loadu_pd(t + 8));
    }
    for (int k = 0; k < K; ++k) { // L1 -> L0
        s_out[k] = {_mm256_permute2f128_pd(s[k].re, d[k].re, 0x20), _mm256_permute2f128_pd(s[k].im, d[k].im, 0x20)};
        d_out[k] = {_mm256_permute2f128_pd(s[k].re, d[k].re, 0x31), _mm256_permute2f128_pd(s[k].im, d[k].im, 0x31)};
    }
}

// The in-register levels of the inverse transform: reads `src`, writes re / im.
template <class Source>
FHEGPT_K256 void inv_final(const Plan & p, const Source & source, double * re, double * im) {
    const Source src = source; // local: not reloaded after each store (see fwd_radix4)
    const size_t m = p.m;
    const double * tab = p.simd_tw.data() + p.final_offset;
    if (!p.final_fused) {
        size_t g = 0;
        for (; g + 2 <= m / 8; g += 2, tab += 2 * kFinalStride) {
            const size_t pos[2] = {8 * g, 8 * g + 8};
            Cx u[2], v[2];
            inv_head8<2>(src, pos, tab, u, v);
            for (int k = 0; k < 2; ++k) {
                const double * t = tab + k * kFinalStride;
                store(re + pos[k], im + pos[k], add(u[k], v[k]));
                store(re + pos[k] + 4, im + pos[k] + 4,
                      mulc(sub(u[k], v[k]), _mm256_set1_pd(t[0]), _mm256_set1_pd(t[1])));
            }
        }
        for (; g < m / 8; ++g, tab += kFinalStride) {
            const size_t pos[1] = {8 * g};
            Cx u[1], v[1];
            inv_head8<1>(src, pos, tab, u, v);
            store(re + pos[0], im + pos[0], add(u[0], v[0]));
            store(re + pos[0] + 4, im + pos[0] + 4,
                  mulc(sub(u[0], v[0]), _mm256_set1_pd(tab[0]), _mm256_set1_pd(tab[1])));
        }
        return;
    }
    const double * head = p.simd_tw.data() + p.passes[p.num_passes - 1].offset;
    for (size_t g = 0; g < m / 16; ++g, tab += 2 * kFinalStride) {
        const size_t pos[2] = {16 * g, 16 * g + 8};
        Cx u[2], v[2];
        inv_head8<2>(src, pos, tab, u, v);
        Cx x0 = u[0], x1 = v[0], x2 = u[1], x3 = v[1];
        inv_bfly4(x0, x1, x2, x3, load_tw3(head + 6 * g));
        store(re + pos[0], im + pos[0], x0);
        store(re + pos[0] + 4, im + pos[0] + 4, x1);
        store(re + pos[1], im + pos[1], x2);
        store(re + pos[1] + 4, im + pos[1] + 4, x3);
    }
}

FHEGPT_K256 void inv_radix4(const Plan & p, const Plan::Pass & pass, double * re, double * im) {
    const size_t blocks = size_t{1} << pass.level;
    const size_t q = p.m >> (pass.level + 2);
    const double * tw = p.simd_tw.data() + pass.offset;
    for (size_t b = 0; b < blocks; ++b) {
        const Tw3 t = load_tw3(tw + 6 * b);
        double * xr = re + 4 * q * b;
        double * xi = im + 4 * q * b;
        for (size_t j = 0; j < q; j += 4) {
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

template <Out Mode>
FHEGPT_K256 void inv_radix4_out(const Plan & p, double * re, double * im, uint64_t * dst) {
    const size_t m = p.m;
    const size_t q = m / 4;
    const Tw3 t = load_tw3(p.simd_tw.data() + p.scaled_offset);
    const __m256d scale = _mm256_set1_pd(p.out_scale);
    for (size_t j = 0; j < q; j += 4) {
        Cx x0 = load(re + j, im + j), x1 = load(re + q + j, im + q + j);
        Cx x2 = load(re + 2 * q + j, im + 2 * q + j), x3 = load(re + 3 * q + j, im + 3 * q + j);
        inv_bfly4(x0, x1, x2, x3, t);
        store_u64<Mode>(dst + j, _mm256_mul_pd(x0.re, scale));
        store_u64<Mode>(dst + m + j, _mm256_mul_pd(x0.im, scale));
        store_u64<Mode>(dst + q + j, x1.re);
        store_u64<Mode>(dst + m + q + j, x1.im);
        store_u64<Mode>(dst + 2 * q + j, x2.re);
        store_u64<Mode>(dst + m + 2 * q + j, x2.im);
        store_u64<Mode>(dst + 3 * q + j, x3.re);
        store_u64<Mode>(dst + m + 3 * q + j, x3.im);
    }
}

template <Out Mode>
FHEGPT_K256 void convert_out(const Plan & p, const double * re, const double * im, uint64_t * dst) {
    const __m256d scale = _mm256_set1_pd(p.out_scale);
    for (size_t j = 0; j < p.m; j += 4) {
        store_u64<Mode>(dst + j, _mm256_mul_pd(_mm256_loadu_pd(re + j), scale));
        store_u64<Mode>(dst + p.m + j, _mm256_mul_pd(_mm256_loadu_pd(im + j), scale));
    }
}

// The levels after inv_final, then the output conversion (Out: coefficients = or +=, rounded or not).
template <Out Mode>
FHEGPT_K256 void backward_rest(const Plan & p, double * re, double * im, uint64_t * dst) {
    const int separate = p.num_passes - (p.final_fused ? 1 : 0);
    if (separate == 0) {
        convert_out<Mode>(p, re, im, dst);
        return;
    }
    for (int i = separate - 1; i >= 1; --i) inv_radix4(p, p.passes[i], re, im);
    inv_radix4_out<Mode>(p, re, im, dst);
}

template <Out Mode>
FHEGPT_K256 void backward_impl(const Plan & p, double * fourier, uint64_t * dst) {
    double * re = fourier;
    double * im = fourier + p.m;
    inv_final(p, SpecInPlace{re, im}, re, im);
    backward_rest<Mode>(p, re, im, dst);
}

void backward(const Plan & p, double * fourier, uint64_t * coeffs, bool add_to) {
    if (add_to) backward_impl<Out::Add>(p, fourier, coeffs);
    else backward_impl<Out::Set>(p, fourier, coeffs);
}

void backward_torus(const Plan & p, double * fourier, uint64_t * coeffs) {
    backward_impl<Out::SetTorus>(p, fourier, coeffs);
}

// The products are summed inside the first inverse pass (no spectrum written out, then re-read),
// and the result is added rounded to a multiple of 2^12 (the contract allows it).
template <int Rows>
FHEGPT_K256 void backward_products_rows(const Plan & p, const double * a, const double * b, size_t rows, size_t cols,
                                        double * work, uint64_t * coeffs) {
    const size_t n = p.n;
    for (size_t c = 0; c < cols; ++c) {
        double * re = work + c * n;
        double * im = re + p.m;
        inv_final(p, SpecProducts<Rows>{a, b + c * n, rows, n, cols * n, p.m}, re, im);
        backward_rest<Out::AddTorus>(p, re, im, coeffs + c * n);
    }
}

void backward_products(const Plan & p, const double * a, const double * b, size_t rows, size_t cols, double * work,
                       uint64_t * coeffs) {
    switch (rows) {
    case 1: backward_products_rows<1>(p, a, b, rows, cols, work, coeffs); break;
    case 2: backward_products_rows<2>(p, a, b, rows, cols, work, coeffs); break;
    case 4: backward_products_rows<4>(p, a, b, rows, cols, work, coeffs); break;
    default: backward_products_rows<0>(p, a, b, rows, cols, work, coeffs); break;
    }
}

FHEGPT_K256 void multiply_add(double * acc, const double * a, const double * b, size_t h) {
    size_t j = 0;
    for (; j + 4 <= h; j += 4) {
        __m256d cr = _mm256_loadu_pd(acc + j), ci = _mm256_loadu_pd(acc + h + j);
        mac4(cr, ci, a + j, b + j, h);
        _mm256_storeu_pd(acc + j, cr);
        _mm256_storeu_pd(acc + h + j, ci);
    }
    for (; j < h; ++j) mac1(acc[j], acc[h + j], a + j, b + j, h);
}

const KernelOps kOps = {"avx2",       8,       init,           forward_torus,
                        forward_integer, forward_digits, backward, multiply_add,
                        nullptr,      backward_products, backward_torus, forward_rotated_digits};

} // namespace

const KernelOps * const kAvx2Ops = &kOps;

} // namespace fhegpt::tfhe::fft_detail

#else

namespace fhegpt::tfhe::fft_detail {
const KernelOps * const kAvx2Ops = nullptr;
}

#endif
