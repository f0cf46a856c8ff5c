// Negacyclic FFT over Z[X]/(X^N + 1) on doubles: the transform behind the external product.
//
// A polynomial of size N is folded into N/2 complex values z_j = (a_j + i a_{j+N/2}) w^j with
// w = exp(i pi / N) (the "twist"), then transformed by a complex FFT of size N/2. Products of
// polynomials mod X^N + 1 become pointwise products of these N/2 values.
//
// Fourier-domain layout (FourierPolynomial): N doubles, the N/2 real parts first, then the
// N/2 imaginary parts, in an order private to this module (bit-reversed); only forward(),
// multiply_add() and backward_add() need to agree on it. Every kernel uses the same order, so
// Fourier-domain data (e.g. a bootstrapping key) can be shared between kernels and machines.
// Buffers need no particular alignment; 64-byte aligned ones (aligned_vector<double> below) are
// a little faster. All methods are const and use no shared scratch: one NegacyclicFft can be
// used from many threads at once.
//
// Precision: forward_torus of a random 64-bit torus polynomial times forward_integer of digits in
// [-2^22, 2^22], backward_add: max error ~2^40 (N = 2048) to ~2^41 (N = 8192) out of 2^64 (the
// result's magnitude ~2^89 has 53 bits in double precision). Small-integer products are exact.
// Cost at N = 2048 (build/bench/bench-tfhe-fft): forward ~0.7 us, backward ~0.75 us on a
// 2-core AMD EPYC with AVX-512; forward ~1.9 us, backward ~2.5 us on a 2-core AMD EPYC Zen 3
// (AVX2 + FMA, no AVX-512).
#pragma once

#include "tfhe/fft/aligned_memory.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace fhegpt::tfhe {

// Kernel selection. Auto picks the best one this CPU supports (avx512 > avx2 > scalar); the
// others are testing / benchmarking hooks. All kernels use the same Fourier layout and order,
// so Fourier-domain data may be shared between them.
enum class FftKernel { Auto, Scalar, Avx2, Avx512 };

class NegacyclicFft {
public:
    // polynomial_size: a power of two, 16 <= N <= 65536. Precomputes twiddles and twists.
    explicit NegacyclicFft(size_t polynomial_size);
    // Same with a forced kernel (must be available on this CPU: kernel_available()).
    NegacyclicFft(size_t polynomial_size, FftKernel kernel);
    ~NegacyclicFft();
    NegacyclicFft(NegacyclicFft &&) noexcept;
    NegacyclicFft & operator=(NegacyclicFft &&) noexcept;

    size_t polynomial_size() const;

    // Torus coefficients, read as signed 64-bit integers (two's complement), to the Fourier domain.
    // Spans have exactly N elements (checked); coefficients and fourier must not overlap.
    void forward_torus(std::span<const uint64_t> coefficients, std::span<double> fourier) const;
    // Small signed integer coefficients (decomposition digits) to the Fourier domain. Any int64 is
    // accepted (rounded to the nearest double), exactness of products needs small values.
    void forward_integer(std::span<const int64_t> coefficients, std::span<double> fourier) const;
    // forward_integer of the signed digits of one level (1 = most significant) of the gadget
    // decomposition of torus coefficients with base 2^base_log and level_count levels: exactly the
    // digits of SignedDecomposer::decompose (commons/decomposition.h), bit for bit the same
    // spectrum as forward_integer of them, but extracted inside the first FFT pass instead of
    // being written out. base_log <= 52 (the digits are exact doubles).
    void forward_decomposition_level(std::span<const uint64_t> coefficients, size_t base_log, size_t level_count,
                                     size_t level, std::span<double> fourier) const;
    // forward_decomposition_level of the coefficients of X^power c - c mod X^N + 1 (c: `coefficients`,
    // power < 2N), the input of a CMux: bit for bit the same spectrum. Kernels that fuse the rotation
    // (fuses_rotation()) read c directly in their first pass; the others write X^power c - c to
    // `work` (N elements, else unused) first.
    void forward_decomposition_level_of_rotation(std::span<const uint64_t> coefficients, size_t power, size_t base_log,
                                                 size_t level_count, size_t level, std::span<uint64_t> work,
                                                 std::span<double> fourier) const;
    // Whether forward_decomposition_level_of_rotation reads c directly (else: through `work`).
    bool fuses_rotation() const;
    // The second half of an external product: for each column c < cols,
    //   coefficients_c += round(inverse transform of sum_{r < rows} a_r * b_{r cols + c}) mod 2^64,
    // where x_i is the i-th N-element slice of x (b: the row-major layout of a Fourier GGSW).
    // work: cols N doubles of scratch. The same as zeroing a spectrum, multiply_add of each row in
    // order, then backward_add, on this instance's kernel, except that a kernel may round the
    // result to a multiple of 2^12 instead of 1 (error <= 2^11 in 2^64, <= 2^11 + 2^10 for results
    // of magnitude below 2^63: far below the transform's own error on torus products; the AVX2
    // kernel does, to halve its output conversion); some
    // kernels also sum the products inside the first inverse pass.
    void backward_add_sum_of_products(std::span<const double> a, std::span<const double> b, size_t rows, size_t cols,
                                      std::span<double> work, std::span<uint64_t> coefficients) const;
    // coefficients += round(inverse transform of fourier) mod 2^64. `fourier` is destroyed (scratch).
    // Any finite magnitude wraps correctly (values beyond 2^63 keep their top 53 bits).
    void backward_add(std::span<double> fourier, std::span<uint64_t> coefficients) const;
    // coefficients = round(inverse transform of fourier) mod 2^64. `fourier` is destroyed (scratch).
    void backward(std::span<double> fourier, std::span<uint64_t> coefficients) const;
    // backward, except that a kernel may round the result to a multiple of 2^12 instead of 1, as
    // backward_add_sum_of_products may (the AVX2 kernel does): for torus results, whose transform
    // error is far larger.
    void backward_torus(std::span<double> fourier, std::span<uint64_t> coefficients) const;

    // acc += a * b pointwise (complex) in the Fourier layout; all of size N.
    static void multiply_add(std::span<double> acc, std::span<const double> a, std::span<const double> b);
    // Same with a forced kernel (testing / benchmarking hook).
    static void multiply_add(std::span<double> acc, std::span<const double> a, std::span<const double> b,
                             FftKernel kernel);

    // Name of the kernel picked at run time for this CPU ("avx512", "avx2" or "scalar").
    static const char * kernel_name();
    // Name of the kernel this instance uses.
    const char * instance_kernel_name() const;
    // Whether `kernel` can run on this CPU (Auto and Scalar always can).
    static bool kernel_available(FftKernel kernel);

private:
    struct Plan;
    std::unique_ptr<Plan> plan_;
};

} // namespace fhegpt::tfhe
