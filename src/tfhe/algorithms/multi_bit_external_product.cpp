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
    const uint32_t * quarter_turns;   // FourierMonomialTable::block_quarter_turns (AVX2 kernel)
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

// The factors of the 4 points of a block for one exponent d: the block's first root
// root(e_{4q} d), read once as (re, im, re, im), turned by i^(k_i d) in lane i
// (FourierMonomialTable::block_quarter_turns): (re, im) i^m is (re, im), (-im, re), (-re, -im) or
// (im, -re) for m = 0..3, i.e. a choice of element and a sign per lane, for each d mod 4.
struct QuarterTurnLanes {
    alignas(32) int64_t pick_re[4][4]; // _mm256_permutevar_pd controls: 0 takes re, 2 takes im
    alignas(32) int64_t pick_im[4][4];
    alignas(32) uint64_t sign_re[4][4]; // sign bits to flip
    alignas(32) uint64_t sign_im[4][4];
};

QuarterTurnLanes quarter_turn_lanes(const uint32_t * turns) {
    QuarterTurnLanes lanes{};
    constexpr uint64_t kSign = uint64_t{1} << 63;
    for (uint32_t d = 0; d < 4; ++d)
        for (size_t i = 0; i < 4; ++i) {
            const uint32_t m = (turns[i] * d) & 3;
            lanes.pick_re[d][i] = m % 2 == 1 ? 2 : 0;
            lanes.pick_im[d][i] = m % 2 == 1 ? 0 : 2;
            lanes.sign_re[d][i] = m == 1 || m == 2 ? kSign : 0;
            lanes.sign_im[d][i] = m == 2 || m == 3 ? kSign : 0;
        }
    return lanes;
}

// The key's run of one block of points as the products below read it: for subset s > 0 and
// polynomial p, with G = c + i d at the 4 points, the vectors c, d - c and c + d, so that a
// product by a factor w = a + i b takes 3 FMAs instead of 4 (Karatsuba: w G = (k1 - k3) +
// i (k1 + k2), k1 = (a + b) c, k2 = a (d - c), k3 = b (c + d)); for s = 0, c and d as they are.
// Formed once per block and reused by every ciphertext of the group.
constexpr size_t kMaxPreparedPolynomials = 16; // (k + 1)^2 l of every set (k = 1, l <= 4)
constexpr size_t kPrepared = 3 * kBlock;       // doubles per (subset, polynomial)

FHEGPT_MB_AVX2_INLINE void prepare_block_avx2(const double * key, size_t subsets, size_t polynomials,
                                              double * prepared) {
    for (size_t i = 0; i < subsets * polynomials; ++i) {
        const __m256d c = _mm256_load_pd(key + i * 2 * kBlock), d = _mm256_load_pd(key + i * 2 * kBlock + kBlock);
        double * out = prepared + i * kPrepared;
        _mm256_store_pd(out, c);
        _mm256_store_pd(out + kBlock, i < polynomials ? d : _mm256_sub_pd(d, c));
        _mm256_store_pd(out + 2 * kBlock, _mm256_add_pd(c, d));
    }
}

// Polynomials first .. first + Q - 1 (Q <= 4) of the GGSW sum at one block of points, each times
// the digits of its row, added to its column of out; polynomial `first` is (row, column) =
// (r, col). The 12 sums are independent FMA chains (2 FMA units of latency 4 need 8), the
// factors of a block are formed once per subset for the Q polynomials.
template <size_t Q>
FHEGPT_MB_AVX2_INLINE void multiply_polynomials_avx2(const Task & t, const double * prepared, size_t first, size_t r,
                                                     size_t col, uint32_t e0, const uint32_t * degrees,
                                                     const QuarterTurnLanes & lanes, const double * digits,
                                                     __m256d * out_re, __m256d * out_im) {
    const size_t polynomials = t.rows * t.columns, h = t.n / 2;
    const uint32_t mask = static_cast<uint32_t>(2 * t.n - 1);
    __m256d k1[Q], k2[Q], k3[Q];
    for (size_t q = 0; q < Q; ++q) k1[q] = k2[q] = k3[q] = _mm256_setzero_pd();
    for (size_t s = 1; s < t.subsets; ++s) {
        const uint32_t d = degrees[s - 1], m = d & 3;
        const __m256d root = _mm256_broadcast_pd(reinterpret_cast<const __m128d *>(t.roots + 2 * ((e0 * d) & mask)));
        const __m256d wr = _mm256_xor_pd(
            _mm256_permutevar_pd(root, _mm256_load_si256(reinterpret_cast<const __m256i *>(lanes.pick_re[m]))),
            _mm256_load_pd(reinterpret_cast<const double *>(lanes.sign_re[m])));
        const __m256d wi = _mm256_xor_pd(
            _mm256_permutevar_pd(root, _mm256_load_si256(reinterpret_cast<const __m256i *>(lanes.pick_im[m]))),
            _mm256_load_pd(reinterpret_cast<const double *>(lanes.sign_im[m])));
        const __m256d ws = _mm256_add_pd(wr, wi);
        const double * g = prepared + (s * polynomials + first) * kPrepared;
        for (size_t q = 0; q < Q; ++q) {
            k1[q] = _mm256_fmadd_pd(ws, _mm256_load_pd(g + q * kPrepared), k1[q]);
            k2[q] = _mm256_fmadd_pd(wr, _mm256_load_pd(g + q * kPrepared + kBlock), k2[q]);
            k3[q] = _mm256_fmadd_pd(wi, _mm256_load_pd(g + q * kPrepared + 2 * kBlock), k3[q]);
        }
    }
    for (size_t q = 0; q < Q; ++q) {
        const double * g0 = prepared + (first + q) * kPrepared;
        const __m256d re = _mm256_add_pd(_mm256_load_pd(g0), _mm256_sub_pd(k1[q], k3[q]));
        const __m256d im = _mm256_add_pd(_mm256_load_pd(g0 + kBlock), _mm256_add_pd(k1[q], k2[q]));
        const __m256d dr = _mm256_loadu_pd(digits + r * t.n), di = _mm256_loadu_pd(digits + r * t.n + h);
        out_re[col] = _mm256_fnmadd_pd(di, im, _mm256_fmadd_pd(dr, re, out_re[col]));
        out_im[col] = _mm256_fmadd_pd(di, re, _mm256_fmadd_pd(dr, im, out_im[col]));
        if (++col == t.columns) {
            col = 0;
            ++r;
        }
    }
}

FHEGPT_MB_AVX2 void multiply_avx2(const Task & t) {
    const size_t h = t.n / 2, polynomials = t.rows * t.columns, run = t.subsets * polynomials * 2 * kBlock;
    const size_t blocks = h / kBlock;
    const QuarterTurnLanes lanes = quarter_turn_lanes(t.quarter_turns);
    alignas(32) double prepared[kMaxSubsets * kMaxPreparedPolynomials * kPrepared];
    for (size_t b = 0; b < blocks; ++b) {
        const double * key = t.group + b * run;
        const uint32_t e0 = t.point_exponents[b * kBlock];
        // The next block's run of the key to L1 ahead of its first use, a share per ciphertext:
        // its lines are read in a strided order the hardware prefetchers follow poorly.
        const char * next = reinterpret_cast<const char *>(key + run);
        const size_t lines = b + 1 < blocks ? run * sizeof(double) / 64 : 0;
        const size_t share = (lines + t.count - 1) / t.count;
        prepare_block_avx2(key, t.subsets, polynomials, prepared);
        for (size_t c = 0; c < t.count; ++c) {
            for (size_t l = c * share; l < std::min(lines, (c + 1) * share); ++l)
                _mm_prefetch(next + l * 64, _MM_HINT_T0);
            const double * digits = t.digits + c * t.digits_stride + b * kBlock;
            const uint32_t * e = t.exponents[c];
            __m256d out_re[kMaxColumns], out_im[kMaxColumns];
            for (size_t col = 0; col < t.columns; ++col) out_re[col] = out_im[col] = _mm256_setzero_pd();
            size_t p = 0, r = 0, col = 0; // polynomial p is (row r, column col)
            for (; p + 4 <= polynomials; p += 4) {
                multiply_polynomials_avx2<4>(t, prepared, p, r, col, e0, e, lanes, digits, out_re, out_im);
                for (col += 4; col >= t.columns; col -= t.columns) ++r;
            }
            switch (polynomials - p) {
            case 3: multiply_polynomials_avx2<3>(t, prepared, p, r, col, e0, e, lanes, digits, out_re, out_im); break;
            case 2: multiply_polynomials_avx2<2>(t, prepared, p, r, col, e0, e, lanes, digits, out_re, out_im); break;
            case 1: multiply_polynomials_avx2<1>(t, prepared, p, r, col, e0, e, lanes, digits, out_re, out_im); break;
            default: break;
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
                    table.block_quarter_turns().data(),
                    digits.data(),
                    digits_stride,
                    output.data(),
                    output_stride};
    // The AVX2 kernel reads one root per block of points (fourier_monomials.h) and holds a block
    // of the key's group on the stack: without that structure (no FFT order has lacked it) or for
    // more polynomials per GGSW than any set has, the generic kernel does the work.
    const bool avx2 = kernel == MultiBitKernel::Avx2 || (kernel == MultiBitKernel::Auto && has_avx2_fma());
    if (avx2 && table.blocks_are_quarter_turns() && rows * columns <= kMaxPreparedPolynomials)
        multiply_avx2(task);
    else
        multiply_generic(task);
}

void multi_bit_external_product_assign(const FourierLweBootstrapKey & bsk, size_t group,
                                       std::span<const uint32_t * const> exponents,
                                       std::span<uint64_t *> accumulators, std::span<uint64_t *> spare,
                                       const FourierMonomialTable & table, ExternalProductScratch & scratch,
                                       std::span<double> digits, std::span<double> output, MultiBitKernel kernel) {
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
    // The FFT extracts the digits in its first pass; bases past 52 bits (no parameter set has
    // them) are decomposed into memory first.
    const size_t base_log = bsk.base_log.value, levels = bsk.level_count.value;
    for (size_t c = 0; c < count; ++c) {
        if (base_log <= 52) {
            for (size_t level = 0; level < levels; ++level)
                for (size_t col = 0; col < columns; ++col)
                    fft.forward_decomposition_level(std::span<const uint64_t>(accumulators[c] + col * n, n), base_log,
                                                    levels, level + 1,
                                                    digits.subspan(c * digits_stride + (level * columns + col) * n, n));
            continue;
        }
        const SignedDecomposer decomposer(bsk.base_log, bsk.level_count);
        decomposer.decompose_slice(accumulators[c], scratch.digits.data(), scratch.state.data(), glwe);
        for (size_t r = 0; r < rows; ++r)
            fft.forward_integer(std::span<const int64_t>(scratch.digits.data() + r * n, n),
                                digits.subspan(c * digits_stride + r * n, n));
    }
    multiply_multi_bit_ggsw_sums(bsk, group, exponents, table, digits.first(count * digits_stride),
                                 output.first(count * output_stride), kernel);
    for (size_t c = 0; c < count; ++c) {
        for (size_t col = 0; col < columns; ++col)
            fft.backward_torus(output.subspan(c * output_stride + col * n, n),
                               std::span<uint64_t>(spare[c] + col * n, n));
        std::swap(accumulators[c], spare[c]);
    }
}

} // namespace fhegpt::tfhe
