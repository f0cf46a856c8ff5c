#include "tfhe/fft/negacyclic_fft.h"

#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/commons/decomposition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

using fhegpt::tfhe::aligned_vector;
using fhegpt::tfhe::FftKernel;
using fhegpt::tfhe::NegacyclicFft;

namespace {

std::vector<FftKernel> available_kernels() {
    std::vector<FftKernel> out;
    for (FftKernel k : {FftKernel::Scalar, FftKernel::Avx2, FftKernel::Avx512})
        if (NegacyclicFft::kernel_available(k)) out.push_back(k);
    return out;
}

const char * name_of(FftKernel k) {
    switch (k) {
    case FftKernel::Scalar: return "scalar";
    case FftKernel::Avx2: return "avx2";
    case FftKernel::Avx512: return "avx512";
    default: return "auto";
    }
}

// Exact a * b mod (X^N + 1, 2^64); b read as signed.
std::vector<uint64_t> schoolbook(const std::vector<uint64_t> & a, const std::vector<int64_t> & b) {
    const size_t n = a.size();
    std::vector<uint64_t> out(n, 0);
    for (size_t i = 0; i < n; ++i) {
        if (b[i] == 0) continue;
        const uint64_t bi = static_cast<uint64_t>(b[i]);
        for (size_t j = 0; j < n; ++j) {
            const uint64_t p = a[j] * bi;
            const size_t k = i + j;
            if (k < n) out[k] += p;
            else out[k - n] -= p;
        }
    }
    return out;
}

std::vector<int64_t> random_small(size_t n, int64_t bound, std::mt19937_64 & rng) {
    std::uniform_int_distribution<int64_t> d(-bound, bound);
    std::vector<int64_t> v(n);
    for (auto & x : v) x = d(rng);
    return v;
}

std::vector<uint64_t> random_torus(size_t n, std::mt19937_64 & rng) {
    std::vector<uint64_t> v(n);
    for (auto & x : v) x = rng();
    return v;
}

// a * b through the Fourier domain: coefficients initialised to `init`, backward_add.
std::vector<uint64_t> fft_product(const NegacyclicFft & fft, FftKernel kernel, const std::vector<uint64_t> & a,
                                  const std::vector<int64_t> & b, std::vector<uint64_t> init) {
    const size_t n = a.size();
    aligned_vector<double> fa(n), fb(n), acc(n, 0.0);
    fft.forward_torus(a, fa);
    fft.forward_integer(b, fb);
    NegacyclicFft::multiply_add(acc, fa, fb, kernel);
    fft.backward_add(acc, init);
    return init;
}

int64_t signed_diff(uint64_t x, uint64_t y) { return static_cast<int64_t>(x - y); }

// The kernel an instance runs (sizes below a SIMD kernel's minimum run the scalar one).
FftKernel kernel_of(const NegacyclicFft & fft) {
    for (FftKernel k : {FftKernel::Scalar, FftKernel::Avx2, FftKernel::Avx512})
        if (std::string(fft.instance_kernel_name()) == name_of(k)) return k;
    return FftKernel::Scalar;
}

} // namespace

TEST(TfheFft, KernelName) {
    std::printf("auto kernel: %s\n", NegacyclicFft::kernel_name());
    for (FftKernel k : available_kernels()) {
        NegacyclicFft fft(1024, k);
        EXPECT_STREQ(fft.instance_kernel_name(), name_of(k));
    }
    NegacyclicFft fft(1024);
    EXPECT_STREQ(fft.instance_kernel_name(), NegacyclicFft::kernel_name());
    EXPECT_EQ(fft.polynomial_size(), 1024u);
}

TEST(TfheFft, SmallIntegerProductsAreExact) {
    std::mt19937_64 rng(1);
    for (FftKernel kernel : available_kernels()) {
        for (size_t n = 16; n <= 16384; n *= 2) {
            NegacyclicFft fft(n, kernel);
            const int reps = n <= 1024 ? 3 : 1;
            for (int rep = 0; rep < reps; ++rep) {
                const auto a_signed = random_small(n, 1024, rng);
                const std::vector<uint64_t> a(a_signed.begin(), a_signed.end());
                const auto b = random_small(n, 1024, rng);
                const auto expect = schoolbook(a, b);
                const auto got = fft_product(fft, kernel, a, b, std::vector<uint64_t>(n, 0));
                size_t bad = 0;
                for (size_t i = 0; i < n; ++i) bad += got[i] != expect[i];
                ASSERT_EQ(bad, 0u) << name_of(kernel) << " N=" << n;
            }
        }
    }
}

TEST(TfheFft, MonomialProducts) {
    // X^i * X^j = +-X^(i+j mod N): checks the negacyclic wrap and the order handling exactly.
    for (FftKernel kernel : available_kernels()) {
        for (size_t n : {16u, 32u, 64u, 256u, 2048u}) {
            NegacyclicFft fft(n, kernel);
            for (size_t i : {size_t{0}, size_t{1}, n / 2 - 1, n / 2, n - 1}) {
                for (size_t j : {size_t{0}, size_t{3}, n / 2 + 1, n - 1}) {
                    std::vector<uint64_t> a(n, 0);
                    std::vector<int64_t> b(n, 0);
                    a[i] = 5;
                    b[j] = -7;
                    const auto got = fft_product(fft, kernel, a, b, std::vector<uint64_t>(n, 0));
                    std::vector<uint64_t> expect(n, 0);
                    const size_t k = (i + j) % n;
                    expect[k] = (i + j < n) ? static_cast<uint64_t>(-35) : 35;
                    ASSERT_EQ(got, expect) << name_of(kernel) << " N=" << n << " i=" << i << " j=" << j;
                }
            }
        }
    }
}

TEST(TfheFft, TorusTimesDigitsWithinBound) {
    std::mt19937_64 rng(2);
    for (FftKernel kernel : available_kernels()) {
        for (size_t n : {512u, 1024u, 2048u, 4096u, 8192u}) {
            NegacyclicFft fft(n, kernel);
            int64_t max_err = 0;
            for (int rep = 0; rep < (n <= 2048 ? 4 : 1); ++rep) {
                const auto a = random_torus(n, rng);
                const auto b = random_small(n, int64_t{1} << 22, rng);
                const auto expect = schoolbook(a, b);
                const auto got = fft_product(fft, kernel, a, b, std::vector<uint64_t>(n, 0));
                for (size_t i = 0; i < n; ++i) max_err = std::max(max_err, std::abs(signed_diff(got[i], expect[i])));
            }
            std::printf("%-6s N=%5zu torus x 2^22 digits: max error 2^%.2f (relative 2^%.2f)\n", name_of(kernel), n,
                        std::log2(static_cast<double>(max_err) + 1), std::log2(static_cast<double>(max_err) + 1) - 64);
            // Values reach ~2^63 * 2^22 * sqrt(N) / 3; double keeps 53 bits.
            EXPECT_LT(max_err, int64_t{1} << 44) << name_of(kernel) << " N=" << n;
        }
    }
}

TEST(TfheFft, BackwardAddAccumulatesAndBackwardOverwrites) {
    std::mt19937_64 rng(3);
    for (FftKernel kernel : available_kernels()) {
        for (size_t n : {16u, 32u, 64u, 128u, 1024u, 2048u, 4096u}) {
            NegacyclicFft fft(n, kernel);
            const auto a_signed = random_small(n, 1000, rng);
            const std::vector<uint64_t> a(a_signed.begin(), a_signed.end());
            const auto b = random_small(n, 1000, rng);
            const auto init = random_torus(n, rng);
            const auto prod = schoolbook(a, b);
            const auto got = fft_product(fft, kernel, a, b, init);
            for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], init[i] + prod[i]) << name_of(kernel) << " N=" << n;

            aligned_vector<double> fa(n), fb(n), acc(n, 0.0);
            fft.forward_torus(a, fa);
            fft.forward_integer(b, fb);
            NegacyclicFft::multiply_add(acc, fa, fb, kernel);
            std::vector<uint64_t> out = init;
            fft.backward(acc, out);
            EXPECT_EQ(out, prod) << name_of(kernel) << " N=" << n;
        }
    }
}

TEST(TfheFft, Linearity) {
    std::mt19937_64 rng(4);
    for (FftKernel kernel : available_kernels()) {
        const size_t n = 2048;
        NegacyclicFft fft(n, kernel);
        // sum of two products accumulated in the Fourier domain == sum of the exact products.
        const auto a1s = random_small(n, 1024, rng), a2s = random_small(n, 1024, rng);
        const std::vector<uint64_t> a1(a1s.begin(), a1s.end()), a2(a2s.begin(), a2s.end());
        const auto b1 = random_small(n, 1024, rng), b2 = random_small(n, 1024, rng);
        aligned_vector<double> f1(n), f2(n), g1(n), g2(n), acc(n, 0.0);
        fft.forward_torus(a1, f1);
        fft.forward_torus(a2, f2);
        fft.forward_integer(b1, g1);
        fft.forward_integer(b2, g2);
        NegacyclicFft::multiply_add(acc, f1, g1, kernel);
        NegacyclicFft::multiply_add(acc, f2, g2, kernel);
        std::vector<uint64_t> got(n, 0);
        fft.backward_add(acc, got);
        const auto p1 = schoolbook(a1, b1), p2 = schoolbook(a2, b2);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], p1[i] + p2[i]) << name_of(kernel);

        // forward(a1 + a2) == forward(a1) + forward(a2) up to rounding.
        std::vector<uint64_t> s(n);
        for (size_t i = 0; i < n; ++i) s[i] = a1[i] + a2[i];
        aligned_vector<double> fs(n);
        fft.forward_torus(s, fs);
        double max_dev = 0, max_abs = 0;
        for (size_t i = 0; i < n; ++i) {
            max_dev = std::max(max_dev, std::abs(fs[i] - (f1[i] + f2[i])));
            max_abs = std::max(max_abs, std::abs(fs[i]));
        }
        EXPECT_LT(max_dev, max_abs * 1e-13) << name_of(kernel);
        // Integer and torus forward agree on small values.
        aligned_vector<double> fi(n);
        fft.forward_integer(a1s, fi);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(fi[i], f1[i]) << name_of(kernel);
    }
}

TEST(TfheFft, WrapsHugeValuesModulo2To64) {
    // Torus polynomial times a constant digit 2^22: every output ~2^85, wraps many times.
    std::mt19937_64 rng(5);
    for (FftKernel kernel : available_kernels()) {
        for (size_t n : {16u, 64u, 2048u}) {
            NegacyclicFft fft(n, kernel);
            std::vector<uint64_t> a = random_torus(n, rng);
            a[0] = uint64_t{1} << 63;  // -2^63
            a[1] = (uint64_t{1} << 63) - 1;
            std::vector<int64_t> b(n, 0);
            b[0] = int64_t{1} << 22;
            const auto expect = schoolbook(a, b);
            const auto got = fft_product(fft, kernel, a, b, std::vector<uint64_t>(n, 0));
            for (size_t i = 0; i < n; ++i)
                ASSERT_LT(std::abs(signed_diff(got[i], expect[i])), int64_t{1} << 38) << name_of(kernel) << " i=" << i;
        }
    }
}

TEST(TfheFft, KernelsMatchScalar) {
    std::mt19937_64 rng(6);
    for (FftKernel kernel : available_kernels()) {
        if (kernel == FftKernel::Scalar) continue;
        for (size_t n = 16; n <= 65536; n *= 2) {
            NegacyclicFft ref(n, FftKernel::Scalar), fft(n, kernel);
            const auto a = random_torus(n, rng);
            const auto b = random_small(n, 1 << 22, rng);
            aligned_vector<double> ra(n), fa(n), rb(n), fb(n);
            ref.forward_torus(a, ra);
            fft.forward_torus(a, fa);
            ref.forward_integer(b, rb);
            fft.forward_integer(b, fb);
            double ea = 0, eb = 0, ma = 0, mb = 0;
            for (size_t i = 0; i < n; ++i) {
                ea = std::max(ea, std::abs(ra[i] - fa[i]));
                eb = std::max(eb, std::abs(rb[i] - fb[i]));
                ma = std::max(ma, std::abs(ra[i]));
                mb = std::max(mb, std::abs(rb[i]));
            }
            ASSERT_LT(ea, ma * 1e-13) << name_of(kernel) << " N=" << n;
            ASSERT_LT(eb, mb * 1e-13) << name_of(kernel) << " N=" << n;

            aligned_vector<double> racc(n), facc(n);
            for (size_t i = 0; i < n; ++i) racc[i] = facc[i] = static_cast<double>(rng() % 1000);
            NegacyclicFft::multiply_add(racc, ra, rb, FftKernel::Scalar);
            NegacyclicFft::multiply_add(facc, ra, rb, kernel);
            const size_t h = n / 2;
            for (size_t i = 0; i < n; ++i) {
                const size_t j = i % h;
                const double mag = (std::abs(ra[j]) + std::abs(ra[h + j])) * (std::abs(rb[j]) + std::abs(rb[h + j]));
                ASSERT_NEAR(facc[i], racc[i], mag * 1e-15 + 1e-6) << name_of(kernel) << " N=" << n;
            }

            // Backward of the same (product) spectrum.
            std::vector<uint64_t> rout = random_torus(n, rng), fout = rout;
            aligned_vector<double> r2 = racc, f2 = racc;
            ref.backward_add(r2, rout);
            fft.backward_add(f2, fout);
            int64_t e = 0;
            for (size_t i = 0; i < n; ++i) e = std::max(e, std::abs(signed_diff(rout[i], fout[i])));
            EXPECT_LT(e, int64_t{1} << 44) << name_of(kernel) << " N=" << n;
            // Small-integer spectrum: identical after rounding.
            const auto sa = random_small(n, 1000, rng);
            aligned_vector<double> s1(n), s2(n);
            ref.forward_integer(sa, s1);
            s2 = s1;
            std::vector<uint64_t> o1(n, 0), o2(n, 0);
            ref.backward(s1, o1);
            fft.backward(s2, o2);
            ASSERT_EQ(o1, o2) << name_of(kernel) << " N=" << n;
            for (size_t i = 0; i < n; ++i) ASSERT_EQ(o1[i], static_cast<uint64_t>(sa[i]));
        }
    }
}

// A polynomial a_0 + a_M X^M (M = N/2) has the constant spectrum a_0 + i a_M, and both transforms
// are exact on it: this checks the input and output conversions of every kernel bit for bit.
TEST(TfheFft, ConversionsAreExact) {
    const double cases[] = {0.0,
                            1.0,
                            -1.0,
                            0.5,
                            -0.5,
                            1.5,
                            -2.5,
                            -0.3,
                            -0.7,
                            0x1p52 + 1,
                            -0x1p53,
                            0x1p63,
                            -0x1p63,
                            0x1p63 - 1024,
                            0x1p64,
                            0x1p64 - 2048,
                            -0x1p64,
                            3 * 0x1p63,
                            0x1p64 + 0x1p12,
                            0x1p100 + 0x1p48,
                            -0x1p100 - 0x1p60 + 0x1p48,
                            0x1p113 - 0x1p61,
                            -0x1p96 + 0x1p44 + 0x1p43,
                            1e20,
                            -1e25};
    auto expect_wrap = [](double c) {
        const double r = std::nearbyint(c);  // ties to even
        return static_cast<uint64_t>(static_cast<unsigned __int128>(static_cast<__int128>(r)));
    };
    std::mt19937_64 rng(7);
    for (FftKernel kernel : available_kernels()) {
        for (size_t n : {16u, 32u, 64u, 128u, 2048u, 4096u}) {
            NegacyclicFft fft(n, kernel);
            const size_t m = n / 2;
            for (double c1 : cases) {
                const double c2 = cases[rng() % std::size(cases)];
                aligned_vector<double> f(n);
                for (size_t i = 0; i < m; ++i) {
                    f[i] = c1;
                    f[m + i] = c2;
                }
                const auto init = random_torus(n, rng);
                std::vector<uint64_t> out = init;
                fft.backward_add(f, out);
                for (size_t i = 0; i < n; ++i) {
                    const uint64_t v = i == 0 ? expect_wrap(c1) : i == m ? expect_wrap(c2) : 0;
                    ASSERT_EQ(out[i], init[i] + v) << name_of(kernel) << " N=" << n << " i=" << i << " c=" << c1
                                                   << "," << c2;
                }
            }
            const uint64_t ints[] = {0,
                                     1,
                                     ~uint64_t{0},
                                     uint64_t{1} << 63,
                                     (uint64_t{1} << 63) - 1,
                                     (uint64_t{1} << 63) + 1,
                                     0x00000000FFFFFFFFull,
                                     0xFFFFFFFF00000000ull,
                                     0x123456789ABCDEF0ull,
                                     0xFEDCBA9876543211ull,
                                     (uint64_t{1} << 53) + 1,
                                     static_cast<uint64_t>(-(int64_t{1} << 53) - 1)};
            for (uint64_t v1 : ints) {
                const uint64_t v2 = ints[rng() % std::size(ints)];
                std::vector<uint64_t> a(n, 0);
                a[0] = v1;
                a[m] = v2;
                aligned_vector<double> f(n);
                fft.forward_torus(a, f);
                std::vector<int64_t> ai(n, 0);
                ai[0] = static_cast<int64_t>(v2);
                ai[m] = static_cast<int64_t>(v1);
                aligned_vector<double> g(n);
                fft.forward_integer(ai, g);
                for (size_t i = 0; i < m; ++i) {
                    ASSERT_EQ(f[i], static_cast<double>(static_cast<int64_t>(v1))) << name_of(kernel) << " N=" << n;
                    ASSERT_EQ(f[m + i], static_cast<double>(static_cast<int64_t>(v2))) << name_of(kernel);
                    ASSERT_EQ(g[i], static_cast<double>(static_cast<int64_t>(v2))) << name_of(kernel);
                    ASSERT_EQ(g[m + i], static_cast<double>(static_cast<int64_t>(v1))) << name_of(kernel);
                }
            }
        }
    }
}

TEST(TfheFft, UnalignedBuffersWork) {
    // aligned_vector is recommended, not required: spans into plain vectors at odd offsets.
    std::mt19937_64 rng(8);
    for (FftKernel kernel : available_kernels()) {
        const size_t n = 1024;
        NegacyclicFft fft(n, kernel);
        const auto as = random_small(n, 1000, rng);
        const std::vector<uint64_t> a(as.begin(), as.end());
        const auto b = random_small(n, 1000, rng);
        std::vector<double> fa(n + 1), fb(n + 1), acc(n + 1, 0.0);
        std::span<double> sa(fa.data() + 1, n), sb(fb.data() + 1, n), sacc(acc.data() + 1, n);
        fft.forward_torus(a, sa);
        fft.forward_integer(b, sb);
        NegacyclicFft::multiply_add(sacc, sa, sb, kernel);
        std::vector<uint64_t> out(n + 1, 0);
        fft.backward_add(sacc, std::span<uint64_t>(out.data() + 1, n));
        const auto expect = schoolbook(a, b);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i + 1], expect[i]) << name_of(kernel);
    }
}

// The digits extracted inside the first FFT pass are SignedDecomposer's: the spectrum equals
// forward_integer of the decomposed digits bit for bit, for every level, on every kernel, for
// 1- to 4-level decompositions, the widest base (52 bits) and a full 64-bit decomposition, on
// random coefficients and on the values where rounding and carries wrap (0, 2^63, -1, ...).
TEST(TfheFft, ForwardDecompositionLevelIsForwardIntegerOfTheDigits) {
    using fhegpt::tfhe::DecompositionBaseLog;
    using fhegpt::tfhe::DecompositionLevelCount;
    using fhegpt::tfhe::SignedDecomposer;
    std::mt19937_64 rng(9);
    const std::pair<size_t, size_t> decompositions[] = {{23, 1}, {15, 2}, {11, 3}, {4, 4}, {52, 1}, {16, 4}, {1, 5}};
    const uint64_t edges[] = {0, 1, ~uint64_t{0}, uint64_t{1} << 63, (uint64_t{1} << 63) - 1, uint64_t{1} << 40,
                              (uint64_t{1} << 40) - 1, 0xFFFFFF0000000000ULL, 0x7FFFFF8000000000ULL};
    for (FftKernel kernel : available_kernels())
        for (size_t n : {16u, 32u, 64u, 2048u, 4096u}) {
            NegacyclicFft fft(n, kernel);
            std::vector<uint64_t> x = random_torus(n, rng);
            for (size_t i = 0; i < std::size(edges); ++i) x[(i * 7) % n] = edges[i];
            for (const auto & [base_log, levels] : decompositions) {
                const SignedDecomposer decomposer(DecompositionBaseLog{base_log}, DecompositionLevelCount{levels});
                std::vector<std::vector<int64_t>> digits(levels, std::vector<int64_t>(n));
                std::vector<int64_t> d(levels);
                for (size_t j = 0; j < n; ++j) {
                    decomposer.decompose(x[j], d);
                    for (size_t l = 0; l < levels; ++l) digits[l][j] = d[l];
                }
                for (size_t level = 1; level <= levels; ++level) {
                    aligned_vector<double> fused(n), reference(n);
                    fft.forward_decomposition_level(x, base_log, levels, level, fused);
                    fft.forward_integer(digits[level - 1], reference);
                    for (size_t i = 0; i < n; ++i)
                        ASSERT_EQ(fused[i], reference[i]) << name_of(kernel) << " N=" << n << " base 2^" << base_log
                                                          << " x " << levels << " level " << level << " i=" << i;
                }
            }
        }
}

// The CMux input's digits with the rotation folded into the FFT: forward_decomposition_level_of_rotation
// equals forward_decomposition_level of X^power c - c written out, bit for bit, on every kernel,
// for powers whose rotation boundary falls at every position inside a vector and at the edges
// of the first pass's streams, both halves of [0, 2N), and multi-level decompositions.
TEST(TfheFft, ForwardDecompositionLevelOfRotationIsThatOfTheRotatedDifference) {
    std::mt19937_64 rng(13);
    const std::pair<size_t, size_t> decompositions[] = {{23, 1}, {15, 2}, {4, 4}};
    for (FftKernel kernel : available_kernels())
        for (size_t n : {16u, 32u, 64u, 128u, 2048u, 4096u, 8192u}) {
            NegacyclicFft fft(n, kernel);
            std::vector<uint64_t> x = random_torus(n, rng);
            x[0] = 0;
            x[n - 1] = ~uint64_t{0};
            x[n / 2] = uint64_t{1} << 63;
            std::vector<size_t> powers;
            for (size_t p = 0; p < 10; ++p) powers.insert(powers.end(), {p, n - 1 - p, n + p, 2 * n - 1 - p});
            // The boundary in each of the first pass's 8 streams, with and without the negation.
            for (size_t k = 1; k < 8; ++k)
                for (size_t negation : {size_t{0}, n})
                    for (size_t p : {k * n / 8 - 1, k * n / 8, k * n / 8 + 1, k * n / 8 + 2})
                        if (negation + p < 2 * n) powers.push_back(negation + p);
            for (int i = 0; i < 8; ++i) powers.push_back(rng() % (2 * n));
            for (const auto & [base_log, levels] : decompositions)
                for (size_t power : powers) {
                    std::vector<uint64_t> rotated(n), work(n);
                    for (size_t i = 0; i < n; ++i)
                        rotated[i] = fhegpt::tfhe::monomial_mul_coefficient(x.data(), n, power, i) - x[i];
                    for (size_t level = 1; level <= levels; ++level) {
                        aligned_vector<double> fused(n), reference(n);
                        fft.forward_decomposition_level_of_rotation(x, power, base_log, levels, level, work, fused);
                        fft.forward_decomposition_level(rotated, base_log, levels, level, reference);
                        for (size_t i = 0; i < n; ++i)
                            ASSERT_EQ(fused[i], reference[i]) << name_of(kernel) << " N=" << n << " power " << power
                                                              << " base 2^" << base_log << " level " << level
                                                              << " i=" << i;
                    }
                }
        }
}

namespace {

// The largest |backward_torus - backward| over the coefficients of the product of two spectra.
int64_t backward_torus_error(const NegacyclicFft & fft, FftKernel kernel, std::span<const double> fa,
                             std::span<const double> fb, std::mt19937_64 & rng) {
    const size_t n = fft.polynomial_size();
    aligned_vector<double> spectrum(n, 0.0);
    NegacyclicFft::multiply_add(spectrum, fa, fb, kernel);
    aligned_vector<double> copy = spectrum;
    std::vector<uint64_t> exact(n), torus = random_torus(n, rng); // overwritten
    fft.backward(spectrum, exact);
    fft.backward_torus(copy, torus);
    int64_t worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(signed_diff(torus[i], exact[i])));
    return worst;
}

} // namespace

// backward_torus is backward up to the rounding to a multiple of 2^12 a kernel may apply (<= 2^11),
// on products of torus polynomials and digits (results ~2^89 before the reduction mod 2^64).
TEST(TfheFft, BackwardTorusIsBackwardUpToTheRoundingTo2To12) {
    std::mt19937_64 rng(11);
    for (FftKernel kernel : available_kernels())
        for (size_t n : {16u, 64u, 1024u, 2048u, 4096u}) {
            NegacyclicFft fft(n, kernel);
            aligned_vector<double> fa(n), fb(n);
            fft.forward_torus(random_torus(n, rng), fa);
            fft.forward_integer(random_small(n, 1 << 22, rng), fb);
            EXPECT_LE(backward_torus_error(fft, kernel, fa, fb, rng), int64_t{1} << 11) << name_of(kernel) << " N=" << n;
        }
}

// The same for results below 2^63 in magnitude, of both signs, where a kernel's reduction mod 2^64
// may round once more: within 2^11 + 2^10 (negacyclic_fft.h; the AVX2 kernel exceeds 2^11 here).
TEST(TfheFft, BackwardTorusOfSmallResultsIsBackwardUpToTheRounding) {
    std::mt19937_64 rng(12);
    for (FftKernel kernel : available_kernels())
        for (size_t n : {16u, 64u, 2048u})
            for (int64_t bound : {int64_t{1} << 10, int64_t{1} << 20, int64_t{1} << 30}) {
                NegacyclicFft fft(n, kernel);
                aligned_vector<double> fa(n), fb(n);
                fft.forward_integer(random_small(n, bound, rng), fa);
                fft.forward_integer(random_small(n, 1 << 20, rng), fb);
                EXPECT_LE(backward_torus_error(fft, kernel, fa, fb, rng), (int64_t{1} << 11) + (int64_t{1} << 10))
                    << name_of(kernel) << " N=" << n << " bound " << bound;
            }
}

// The fused second half of an external product equals zeroing a spectrum, multiply_add of each
// row in order, then backward_add, for several row and column counts, up to the rounding to a
// multiple of 2^12 that a kernel may apply (<= 2^11). A different order of the products would
// show: the results are ~2^90 before the reduction mod 2^64, so one rounding differs by >= 2^37.
TEST(TfheFft, BackwardAddSumOfProductsMatchesTheUnfusedSteps) {
    std::mt19937_64 rng(10);
    for (FftKernel kernel : available_kernels())
        for (size_t n : {16u, 64u, 2048u})
            for (size_t rows : {1u, 2u, 3u, 4u, 6u})
                for (size_t cols : {1u, 2u, 3u}) {
                    NegacyclicFft fft(n, kernel);
                    aligned_vector<double> a(rows * n), b(rows * cols * n), work(cols * n);
                    for (size_t r = 0; r < rows; ++r)
                        fft.forward_integer(random_small(n, 1 << 22, rng), std::span<double>(a.data() + r * n, n));
                    for (size_t i = 0; i < rows * cols; ++i)
                        fft.forward_torus(random_torus(n, rng), std::span<double>(b.data() + i * n, n));
                    const std::vector<uint64_t> init = random_torus(cols * n, rng);
                    std::vector<uint64_t> fused = init, reference = init;
                    fft.backward_add_sum_of_products(a, b, rows, cols, work, fused);
                    for (size_t c = 0; c < cols; ++c) {
                        aligned_vector<double> spectrum(n, 0.0);
                        for (size_t r = 0; r < rows; ++r)
                            NegacyclicFft::multiply_add(spectrum, std::span<const double>(a.data() + r * n, n),
                                                        std::span<const double>(b.data() + (r * cols + c) * n, n),
                                                        kernel_of(fft));
                        fft.backward_add(spectrum, std::span<uint64_t>(reference.data() + c * n, n));
                    }
                    for (size_t i = 0; i < cols * n; ++i)
                        ASSERT_LE(std::abs(signed_diff(fused[i], reference[i])), int64_t{1} << 11)
                            << name_of(kernel) << " N=" << n << " rows " << rows << " cols " << cols << " i=" << i;
                }
}
