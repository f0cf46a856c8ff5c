// Polynomial arithmetic in T[X]/(X^N + 1) (uint64_t coefficients, wrapping): negacyclic
// rotations for the blind rotation, and exact products by binary key polynomials for
// encryption (GLWE bodies, B = sum_j A_j S_j + ...).
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/negacyclic_fft.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::tfhe {

// out = X^power * in mod X^N + 1, power in [0, 2N). out and in must not overlap.
void polynomial_monomial_mul(std::span<uint64_t> out, std::span<const uint64_t> in, size_t power);
// out = X^power * in - in, power in [0, 2N). out and in must not overlap.
void polynomial_monomial_mul_sub(std::span<uint64_t> out, std::span<const uint64_t> in, size_t power);
// out += a * key, key with coefficients in {0, 1}; O(N * weight(key)), exact.
void polynomial_add_mul_binary_schoolbook(std::span<uint64_t> out, std::span<const uint64_t> a,
                                          std::span<const uint64_t> key);

// Exact products a * S_j by the k binary polynomials of a GLWE key, through the FFT: a is split
// into four signed 16-bit limbs, each limb product (|coefficient| <= N 2^15) is computed exactly
// in double precision and the four are recombined mod 2^64. Owns its scratch: one per thread.
class BinaryKeyMultiplier {
public:
    // key: k polynomials of size N (k N values in {0, 1}), as in GlweSecretKey::data.
    BinaryKeyMultiplier(std::span<const uint64_t> key, PolynomialSize polynomial_size);
    // out += a * key polynomial j.
    void add_mul(std::span<uint64_t> out, std::span<const uint64_t> a, size_t j);

private:
    size_t n_;
    size_t count_;
    bool use_fft_;
    std::vector<uint64_t> key_;          // coefficient form (schoolbook path)
    aligned_vector<double> key_fourier_; // count * N (FFT path)
    std::vector<int64_t> limbs_;         // 4 N
    std::vector<uint64_t> state_;        // N
    aligned_vector<double> limb_fourier_; // N
    aligned_vector<double> product_;      // N
    std::vector<uint64_t> partial_;       // N
};

} // namespace fhegpt::tfhe
