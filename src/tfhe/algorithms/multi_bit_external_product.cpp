#include "tfhe/algorithms/multi_bit_external_product.h"

#include "common/check.h"
#include "common/thread_pool.h"
#include "tfhe/commons/decomposition.h"
#include "tfhe/entities/lwe_multi_bit_bootstrap_key.h"

#include <algorithm>
#include <vector>

// Some GCC 12 intrinsics start from undefined vectors, which -Wmaybe-uninitialized flags (as in fft_avx2.cpp).
#pragma GCC diagnostic push
#if !defined(__clang__) // clang has no such warning and rejects unknown ones under -Werror
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace fhegpt::tfhe {

namespace {

constexpr size_t kBlock = kMultiBitPointBlock;
constexpr size_t kMaxSubsets = size_t{1} << kMaxGroupingFactor;
constexpr size_t kMaxColumns = 8; // k + 1

// What both kernels need: the group's key, its shape, the exponents, the monomial table and the
// digit / output buffers.
struct Task {
    const double * group;     // 2^g GGSWs in the block layout
    size_t subsets;           // 2^g
    size_t rows;              // (k + 1) l
    size_t columns;           // k + 1
    size_t n;                 // N
    const uint32_t * const * exponents;
    size_t count;
    const uint32_t * point_exponents; // e_j of the Fourier points
    const double * roots;             // interleaved (cos, sin) of pi t / N
    const double * digits;            // per ciphertext: rows Fourier polynomials
    size_t digits_stride;
    double * output;                  // per ciphertext: columns Fourier polynomials
    size_t output_stride;
};

// ---- any x86-64 CPU -------------------------------------------------------------------------

void multiply_generic(const Task & t) {
    const size_t h = t.n / 2, polynomials = t.rows * t.columns, run = t.subsets * polynomials * 2 * kBlock;
    const uint32_t mask = static_cast<uint32_t>(2 * t.n - 1);
    double twiddle_re[kMaxSubsets][kBlock], twiddle_im[kMaxSubsets][kBlock];
    for (size_t b = 0; b < h / kBlock; ++b) {
        const double * key = t.group + b * run;
        for (size_t c = 0; c < t.count; ++c) {
            for (size_t s = 1; s < t.subsets; ++s)
                for (size_t i = 0; i < kBlock; ++i) {
                    const uint32_t index = (t.point_exponents[b * kBlock + i] * t.exponents[c][s - 1]) & mask;
                    twiddle_re[s][i] = t.roots[2 * index];
                    twiddle_im[s][i] = t.roots[2 * index + 1];
                }
            double out_re[kMaxColumns][kBlock] = {}, out_im[kMaxColumns][kBlock] = {};
            for (size_t r = 0; r < t.rows; ++r) {
                const double * d = t.digits + c * t.digits_stride + r * t.n + b * kBlock;
                for (size_t col = 0; col < t.columns; ++col) {
                    const size_t p = r * t.columns + col;
                    double re[kBlock], im[kBlock];
                    for (size_t i = 0; i < kBlock; ++i) {
                        re[i] = key[p * 2 * kBlock + i];
                        im[i] = key[p * 2 * kBlock + kBlock + i];
                    }
                    for (size_t s = 1; s < t.subsets; ++s) {
                        const double * g = key + (s * polynomials + p) * 2 * kBlock;
                        for (size_t i = 0; i < kBlock; ++i) {
                            re[i] += twiddle_re[s][i] * g[i] - twiddle_im[s][i] * g[kBlock + i];
                            im[i] += twiddle_re[s][i] * g[kBlock + i] + twiddle_im[s][i] * g[i];
                        }
                    }
                    for (size_t i = 0; i < kBlock; ++i) {
                        out_re[col][i] += d[i] * re[i] - d[h + i] * im[i];
                        out_im[col][i] += d[i] * im[i] + d[h + i] * re[i];
                    }
                }
            }
            for (size_t col = 0; col < t.columns; ++col) {
                double * out = t.output + c * t.output_stride + col * t.n + b * kBlock;
                for (size_t i = 0; i < kBlock; ++i) {
                    out[i] = out_re[col][i];
                    out[h + i] = out_im[col][i];
                }
            }
        }
    }
}

// ---- AVX2 + FMA -----------------------------------------------------------------------------

#define FHEGPT_MB_AVX2 __attribute__((target("avx2,fma")))
#define FHEGPT_MB_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

// The twiddles of 4 points (exponents e[0..3] times `degree`): four 16-byte loads of
// interleaved roots, transposed into real and imaginary vectors (cheaper than two gathers).
FHEGPT_MB_AVX2_INLINE void load_twiddles(const double * roots, const uint32_t * e, uint32_t degree, uint32_t mask,
                                         double * re, double * im) {
    const double * r0 = roots + 2 * ((e[0] * degree) & mask);
    const double * r1 = roots + 2 * ((e[1] * degree) & mask);
    const double * r2 = roots + 2 * ((e[2] * degree) & mask);
    const double * r3 = roots + 2 * ((e[3] * degree) & mask);
    const __m256d a = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r0)), _mm_loadu_pd(r2), 1); // r0 i0 r2 i2
    const __m256d b = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r1)), _mm_loadu_pd(r3), 1); // r1 i1 r3 i3
    _mm256_store_pd(re, _mm256_unpacklo_pd(a, b));
    _mm256_store_pd(im, _mm256_unpackhi_pd(a, b));
}

// Columns first .. first + Q - 1 (Q <= 2) of row r of the GGSW sum at one block of points, times
// the row's digits (dr, di), added to out (Q columns of re, im). Each complex sum is kept as two
// partial sums (the a c and the b d products of (a + ib)(c + id)), so that no chain of dependent
// FMAs is longer than 2^g - 1; 4 Q accumulators, a twiddle and a key pair fit the 16 ymm registers.
template <size_t Q>
FHEGPT_MB_AVX2_INLINE void multiply_columns_avx2(const double * key, size_t subsets, size_t polynomials, size_t first,
                                                 const double (*twiddle_re)[kBlock],
                                                 const double (*twiddle_im)[kBlock], __m256d dr, __m256d di,
                                                 __m256d * out_re, __m256d * out_im) {
    constexpr size_t row = 2 * kBlock;
    __m256d re[Q], im[Q], re2[Q], im2[Q];
    for (size_t q = 0; q < Q; ++q) {
        re[q] = _mm256_load_pd(key + (first + q) * row);
        im[q] = _mm256_load_pd(key + (first + q) * row + kBlock);
        re2[q] = _mm256_setzero_pd();
        im2[q] = _mm256_setzero_pd();
    }
    for (size_t s = 1; s < subsets; ++s) {
        const __m256d wr = _mm256_load_pd(twiddle_re[s]), wi = _mm256_load_pd(twiddle_im[s]);
        const double * g = key + (s * polynomials + first) * row;
        for (size_t q = 0; q < Q; ++q) {
            const __m256d gr = _mm256_load_pd(g + q * row), gi = _mm256_load_pd(g + q * row + kBlock);
            re[q] = _mm256_fmadd_pd(wr, gr, re[q]);
            re2[q] = _mm256_fnmadd_pd(wi, gi, re2[q]);
            im[q] = _mm256_fmadd_pd(wr, gi, im[q]);
            im2[q] = _mm256_fmadd_pd(wi, gr, im2[q]);
        }
    }
    for (size_t q = 0; q < Q; ++q) {
        const __m256d cr = _mm256_add_pd(re[q], re2[q]), ci = _mm256_add_pd(im[q], im2[q]);
        out_re[q] = _mm256_fnmadd_pd(di, ci, _mm256_fmadd_pd(dr, cr, out_re[q]));
        out_im[q] = _mm256_fmadd_pd(di, cr, _mm256_fmadd_pd(dr, ci, out_im[q]));
    }
}

FHEGPT_MB_AVX2 void multiply_avx2(const Task & t) {
    const size_t h = t.n / 2, polynomials = t.rows * t.columns, run = t.subsets * polynomials * 2 * kBlock;
    const size_t blocks = h / kBlock;
    const uint32_t mask = static_cast<uint32_t>(2 * t.n - 1);
    alignas(32) double twiddle_re[kMaxSubsets][kBlock], twiddle_im[kMaxSubsets][kBlock];
    for (size_t b = 0; b < blocks; ++b) {
        const double * key = t.group + b * run;
        const uint32_t * points = t.point_exponents + b * kBlock;
        // The next block's run of the key, a share per ciphertext, to L1 ahead of its first use:
        // its lines are read in a strided order the hardware prefetchers follow poorly.
        const char * next = reinterpret_cast<const char *>(key + run);
        const size_t lines = b + 1 < blocks ? run * sizeof(double) / 64 : 0;
        const size_t share = (lines + t.count - 1) / t.count;
        for (size_t c = 0; c < t.count; ++c) {
            for (size_t l = c * share; l < std::min(lines, (c + 1) * share); ++l)
                _mm_prefetch(next + l * 64, _MM_HINT_T0);
            for (size_t s = 1; s < t.subsets; ++s)
                load_twiddles(t.roots, points, t.exponents[c][s - 1], mask, twiddle_re[s], twiddle_im[s]);
            __m256d out_re[kMaxColumns], out_im[kMaxColumns];
            for (size_t col = 0; col < t.columns; ++col) out_re[col] = out_im[col] = _mm256_setzero_pd();
            for (size_t r = 0; r < t.rows; ++r) {
                const double * d = t.digits + c * t.digits_stride + r * t.n + b * kBlock;
                const __m256d dr = _mm256_loadu_pd(d), di = _mm256_loadu_pd(d + h);
                size_t col = 0;
                for (; col + 2 <= t.columns; col += 2)
                    multiply_columns_avx2<2>(key, t.subsets, polynomials, r * t.columns + col, twiddle_re, twiddle_im,
                                             dr, di, out_re + col, out_im + col);
                if (col < t.columns)
                    multiply_columns_avx2<1>(key, t.subsets, polynomials, r * t.columns + col, twiddle_re, twiddle_im,
                                             dr, di, out_re + col, out_im + col);
            }
            for (size_t col = 0; col < t.columns; ++col) {
                double * out = t.output + c * t.output_stride + col * t.n + b * kBlock;
                _mm256_storeu_pd(out, out_re[col]);
                _mm256_storeu_pd(out + h, out_im[col]);
            }
        }
    }
}

bool has_avx2_fma() {
    static const bool available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return available;
}

} // namespace

bool multi_bit_kernel_available(MultiBitKernel kernel) { return kernel != MultiBitKernel::Avx2 || has_avx2_fma(); }

size_t multi_bit_fourier_stride(PolynomialSize polynomial_size, size_t polynomials) {
    return polynomials * polynomial_size.value + 8;
}

void interleave_multi_bit_fourier_key(FourierLweBootstrapKey & key) {
    FHEGPT_CHECK(key.grouping_factor.is_multi_bit() && valid_grouping_factor(key.input_lwe_dimension, key.grouping_factor),
                 "not a multi-bit key (grouping factor %zu)", key.grouping_factor.value);
    const size_t n = key.polynomial_size.value, h = n / 2, subsets = key.grouping_factor.ggsw_per_group();
    const size_t polynomials = key.row_count() * (key.glwe_dimension.value + 1);
    const size_t group_doubles = subsets * key.ggsw_size();
    const size_t groups = key.input_lwe_dimension.value / key.grouping_factor.value;
    FHEGPT_CHECK(h % kBlock == 0, "polynomial size %zu", n);
    ThreadPool::global().parallel_for(groups, [&](size_t begin, size_t end, size_t) {
        std::vector<double> standard(group_doubles);
        for (size_t group = begin; group < end; ++group) {
            double * data = key.ggsw(group * subsets);
            std::copy_n(data, group_doubles, standard.data());
            for (size_t b = 0; b < h / kBlock; ++b)
                for (size_t s = 0; s < subsets; ++s)
                    for (size_t p = 0; p < polynomials; ++p) {
                        const double * from = standard.data() + (s * polynomials + p) * n + b * kBlock;
                        double * to = data + ((b * subsets + s) * polynomials + p) * 2 * kBlock;
                        std::copy_n(from, kBlock, to);
                        std::copy_n(from + h, kBlock, to + kBlock);
                    }
        }
    });
}

void multiply_multi_bit_ggsw_sums(const FourierLweBootstrapKey & bsk, size_t group,
                                  std::span<const uint32_t * const> exponents, const FourierMonomialTable & table,
                                  std::span<const double> digits, std::span<double> output, MultiBitKernel kernel) {
    const size_t subsets = bsk.grouping_factor.ggsw_per_group(), columns = bsk.glwe_dimension.value + 1;
    const size_t rows = bsk.row_count();
    FHEGPT_CHECK(bsk.grouping_factor.is_multi_bit(), "not a multi-bit key");
    FHEGPT_CHECK(multi_bit_kernel_available(kernel), "the AVX2 multi-bit kernel needs AVX2 and FMA");
    FHEGPT_CHECK(group < bsk.input_lwe_dimension.value / bsk.grouping_factor.value, "group %zu of a key of %zu bits",
                 group, bsk.input_lwe_dimension.value);
    FHEGPT_CHECK(columns <= kMaxColumns, "GLWE dimension %zu", bsk.glwe_dimension.value);
    FHEGPT_CHECK_EQ(table.polynomial_size(), bsk.polynomial_size.value);
    const size_t digits_stride = multi_bit_fourier_stride(bsk.polynomial_size, rows);
    const size_t output_stride = multi_bit_fourier_stride(bsk.polynomial_size, columns);
    FHEGPT_CHECK_EQ(digits.size(), exponents.size() * digits_stride);
    FHEGPT_CHECK_EQ(output.size(), exponents.size() * output_stride);
    const Task task{bsk.ggsw(group * subsets),
                    subsets,
                    rows,
                    columns,
                    bsk.polynomial_size.value,
                    exponents.data(),
                    exponents.size(),
                    table.exponents().data(),
                    table.roots().data(),
                    digits.data(),
                    digits_stride,
                    output.data(),
                    output_stride};
    if (kernel == MultiBitKernel::Avx2 || (kernel == MultiBitKernel::Auto && has_avx2_fma()))
        multiply_avx2(task);
    else
        multiply_generic(task);
}

void multi_bit_external_product_assign(const FourierLweBootstrapKey & bsk, size_t group,
                                       std::span<const uint32_t * const> exponents,
                                       std::span<uint64_t *> accumulators, std::span<uint64_t *> spare,
                                       const FourierMonomialTable & table, ExternalProductScratch & scratch,
                                       std::span<double> digits, std::span<double> output) {
    const size_t count = exponents.size(), n = bsk.polynomial_size.value, columns = bsk.glwe_dimension.value + 1;
    const size_t rows = bsk.row_count(), glwe = columns * n;
    FHEGPT_CHECK(accumulators.size() == count && spare.size() == count, "%zu accumulators, %zu spares, %zu exponents",
                 accumulators.size(), spare.size(), count);
    FHEGPT_CHECK(scratch.glwe_dimension == bsk.glwe_dimension && scratch.polynomial_size == bsk.polynomial_size &&
                     scratch.level_count == bsk.level_count,
                 "external product scratch of another shape");
    const size_t digits_stride = multi_bit_fourier_stride(bsk.polynomial_size, rows);
    const size_t output_stride = multi_bit_fourier_stride(bsk.polynomial_size, columns);
    const NegacyclicFft & fft = *scratch.fft;
    // Digits of every accumulator, level-major like the GGSW rows (external_product.h), transformed.
    const SignedDecomposer decomposer(bsk.base_log, bsk.level_count);
    for (size_t c = 0; c < count; ++c) {
        decomposer.decompose_slice(accumulators[c], scratch.digits.data(), scratch.state.data(), glwe);
        for (size_t r = 0; r < rows; ++r)
            fft.forward_integer(std::span<const int64_t>(scratch.digits.data() + r * n, n),
                                digits.subspan(c * digits_stride + r * n, n));
    }
    multiply_multi_bit_ggsw_sums(bsk, group, exponents, table, digits.first(count * digits_stride),
                                 output.first(count * output_stride));
    for (size_t c = 0; c < count; ++c) {
        for (size_t col = 0; col < columns; ++col)
            fft.backward(output.subspan(c * output_stride + col * n, n), std::span<uint64_t>(spare[c] + col * n, n));
        std::swap(accumulators[c], spare[c]);
    }
}

} // namespace fhegpt::tfhe
