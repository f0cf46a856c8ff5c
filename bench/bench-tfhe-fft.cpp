// Negacyclic FFT: forward / backward per kernel and size, and a one-external-product proxy
// (N = 2048, k = 1, 1 level: 2 forward_integer + 4 multiply_add + 2 backward_add), and the same
// product through the fused calls the engine uses (digits extracted in the forward transform,
// products summed in the inverse one).
#include "tfhe/fft/negacyclic_fft.h"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using fhegpt::tfhe::aligned_vector;
using fhegpt::tfhe::FftKernel;
using fhegpt::tfhe::NegacyclicFft;

namespace {

const char * name_of(FftKernel k) {
    switch (k) {
    case FftKernel::Scalar: return "scalar";
    case FftKernel::Avx2: return "avx2";
    case FftKernel::Avx512: return "avx512";
    default: return "auto";
    }
}

std::vector<uint64_t> random_torus(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> v(n);
    for (auto & x : v) x = rng();
    return v;
}

std::vector<int64_t> random_digits(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> v(n);
    for (auto & x : v) x = static_cast<int64_t>(rng() % (1u << 23)) - (1 << 22);
    return v;
}

void bm_forward_torus(benchmark::State & state, FftKernel kernel) {
    const size_t n = static_cast<size_t>(state.range(0));
    NegacyclicFft fft(n, kernel);
    const auto a = random_torus(n, 1);
    aligned_vector<double> f(n);
    for (auto _ : state) {
        fft.forward_torus(a, f);
        benchmark::DoNotOptimize(f.data());
        benchmark::ClobberMemory();
    }
}

void bm_forward_integer(benchmark::State & state, FftKernel kernel) {
    const size_t n = static_cast<size_t>(state.range(0));
    NegacyclicFft fft(n, kernel);
    const auto a = random_digits(n, 1);
    aligned_vector<double> f(n);
    for (auto _ : state) {
        fft.forward_integer(a, f);
        benchmark::DoNotOptimize(f.data());
        benchmark::ClobberMemory();
    }
}

void bm_backward_add(benchmark::State & state, FftKernel kernel) {
    const size_t n = static_cast<size_t>(state.range(0));
    NegacyclicFft fft(n, kernel);
    const auto a = random_torus(n, 1);
    aligned_vector<double> f0(n), f(n);
    fft.forward_torus(a, f0);
    std::vector<uint64_t> out(n, 0);
    for (auto _ : state) {
        fft.backward_add(f, out);  // f is scratch; its content after the first call does not matter
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
}

void bm_multiply_add(benchmark::State & state, FftKernel kernel) {
    const size_t n = static_cast<size_t>(state.range(0));
    aligned_vector<double> acc(n, 0.0), a(n, 1.0), b(n, 0.5);
    for (auto _ : state) {
        NegacyclicFft::multiply_add(acc, a, b, kernel);
        benchmark::DoNotOptimize(acc.data());
        benchmark::ClobberMemory();
    }
}

// One external product of a GLWE (k = 1) by a GGSW row set, 1 decomposition level, N = 2048:
// forward the 2 digit polynomials, 4 multiply-adds against the (pre-transformed) GGSW, 2 backward_add.
void bm_external_product(benchmark::State & state, FftKernel kernel) {
    const size_t n = 2048;
    NegacyclicFft fft(n, kernel);
    const auto d0 = random_digits(n, 1), d1 = random_digits(n, 2);
    aligned_vector<double> ggsw[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            ggsw[i][j].resize(n);
            fft.forward_torus(random_torus(n, 10 + 2 * i + j), ggsw[i][j]);
        }
    aligned_vector<double> fd0(n), fd1(n), acc0(n), acc1(n);
    std::vector<uint64_t> out0(n, 0), out1(n, 0);
    for (auto _ : state) {
        fft.forward_integer(d0, fd0);
        fft.forward_integer(d1, fd1);
        std::fill(acc0.begin(), acc0.end(), 0.0);
        std::fill(acc1.begin(), acc1.end(), 0.0);
        NegacyclicFft::multiply_add(acc0, fd0, ggsw[0][0], kernel);
        NegacyclicFft::multiply_add(acc1, fd0, ggsw[0][1], kernel);
        NegacyclicFft::multiply_add(acc0, fd1, ggsw[1][0], kernel);
        NegacyclicFft::multiply_add(acc1, fd1, ggsw[1][1], kernel);
        fft.backward_add(acc0, out0);
        fft.backward_add(acc1, out1);
        benchmark::DoNotOptimize(out0.data());
        benchmark::DoNotOptimize(out1.data());
        benchmark::ClobberMemory();
    }
}

// The same product as the engine computes it: digits of two random torus polynomials (base 2^23,
// 1 level) extracted inside the forward transforms, the row products summed inside the first
// inverse pass (NegacyclicFft::forward_decomposition_level, backward_add_sum_of_products).
void bm_external_product_fused(benchmark::State & state, FftKernel kernel) {
    const size_t n = 2048;
    NegacyclicFft fft(n, kernel);
    const auto in0 = random_torus(n, 1), in1 = random_torus(n, 2);
    aligned_vector<double> ggsw(4 * n), digits(2 * n), work(2 * n);
    for (size_t i = 0; i < 4; ++i) fft.forward_torus(random_torus(n, 10 + i), std::span<double>(ggsw.data() + i * n, n));
    std::vector<uint64_t> out(2 * n, 0);
    for (auto _ : state) {
        fft.forward_decomposition_level(in0, 23, 1, 1, std::span<double>(digits.data(), n));
        fft.forward_decomposition_level(in1, 23, 1, 1, std::span<double>(digits.data() + n, n));
        fft.backward_add_sum_of_products(digits, ggsw, 2, 2, work, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
}

int register_all() {
    for (FftKernel k : {FftKernel::Avx512, FftKernel::Avx2, FftKernel::Scalar}) {
        if (!NegacyclicFft::kernel_available(k)) continue;
        const std::string s = name_of(k);
        auto sizes = [](benchmark::internal::Benchmark * b) {
            for (long n : {1024, 2048, 4096, 8192}) b->Arg(n);
        };
        benchmark::RegisterBenchmark(("forward_torus/" + s).c_str(), bm_forward_torus, k)->Apply(sizes);
        benchmark::RegisterBenchmark(("forward_integer/" + s).c_str(), bm_forward_integer, k)->Apply(sizes);
        benchmark::RegisterBenchmark(("backward_add/" + s).c_str(), bm_backward_add, k)->Apply(sizes);
        benchmark::RegisterBenchmark(("multiply_add/" + s).c_str(), bm_multiply_add, k)->Arg(2048);
        benchmark::RegisterBenchmark(("external_product_n2048/" + s).c_str(), bm_external_product, k);
        benchmark::RegisterBenchmark(("external_product_fused_n2048/" + s).c_str(), bm_external_product_fused, k);
    }
    return 0;
}

const int registered = register_all();

} // namespace

BENCHMARK_MAIN();
