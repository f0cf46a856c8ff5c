// Negacyclic FFT over Z[X]/(X^N + 1) on doubles: the transform behind the external product.
//
// A polynomial of size N is folded into N/2 complex values z_j = (a_j + i a_{j+N/2}) w^j with
// w = exp(i pi / N) (the "twist"), then transformed by a complex FFT of size N/2. Products of
// polynomials mod X^N + 1 become pointwise products of these N/2 values.
//
// Fourier-domain layout (FourierPolynomial): N doubles, the N/2 real parts first, then the
// N/2 imaginary parts, in an order private to this module (it may be bit-reversed); only
// forward(), multiply_add() and backward_add() need to agree on it. Buffers of doubles passed
// here should be 64-byte aligned for the AVX-512 path (aligned_vector<double> below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

// std::allocator with 64-byte alignment, for SIMD-friendly buffers.
template <typename T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <typename U>
    AlignedAllocator(const AlignedAllocator<U> &) noexcept {}
    T * allocate(size_t n) { return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T * p, size_t) noexcept { ::operator delete(p, std::align_val_t{64}); }
    template <typename U>
    bool operator==(const AlignedAllocator<U> &) const noexcept { return true; }
};
template <typename T>
using aligned_vector = std::vector<T, AlignedAllocator<T>>;

class NegacyclicFft {
public:
    // polynomial_size: a power of two, 16 <= N <= 65536. Precomputes twiddles and twists.
    explicit NegacyclicFft(size_t polynomial_size);
    ~NegacyclicFft();
    NegacyclicFft(NegacyclicFft &&) noexcept;
    NegacyclicFft & operator=(NegacyclicFft &&) noexcept;

    size_t polynomial_size() const;

    // Torus coefficients, read as signed 64-bit integers (two's complement), to the Fourier domain.
    void forward_torus(std::span<const uint64_t> coefficients, std::span<double> fourier) const;
    // Small signed integer coefficients (decomposition digits) to the Fourier domain.
    void forward_integer(std::span<const int64_t> coefficients, std::span<double> fourier) const;
    // coefficients += round(inverse transform of fourier) mod 2^64. `fourier` is destroyed (scratch).
    void backward_add(std::span<double> fourier, std::span<uint64_t> coefficients) const;

    // acc += a * b pointwise (complex) in the Fourier layout; all of size N.
    static void multiply_add(std::span<double> acc, std::span<const double> a, std::span<const double> b);

    // Name of the kernel picked at run time for this CPU ("avx512", "avx2" or "scalar").
    static const char * kernel_name();

private:
    struct Plan;
    std::unique_ptr<Plan> plan_;
};

} // namespace fhegpt::tfhe
