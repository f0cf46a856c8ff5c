// Per-coefficient steps of a key switch and a programmable bootstrap, shared by the CPU engine
// (algorithms/) and the CUDA kernels (cuda/): plain functions of integers without checks or
// allocations, callable from device code (host_device.h). Callers check the shapes.
#pragma once

#include "tfhe/commons/host_device.h"

#include <cstddef>
#include <cstdint>

namespace fhegpt::tfhe {

// --- modulus switch 2^64 -> 2N (algorithms/modulus_switch.h) ----------------------------------

// log2(2N) for a power-of-two N; the torus unit of Z_2N is 2^(64 - log_2n).
FHEGPT_HOST_DEVICE unsigned modulus_switch_log_2n(size_t polynomial_size) {
    unsigned log = 0;
    while ((size_t{1} << log) < polynomial_size) ++log;
    return log + 1;
}

// round(a 2N / 2^64) before the reduction mod 2N (may equal 2N): shift = 64 - log2(2N).
FHEGPT_HOST_DEVICE uint64_t modulus_switch_rounded(uint64_t a, unsigned shift) {
    return ((a >> (shift - 1)) + 1) >> 1;
}

// Half the rounding error of a switched mask element, (rounded 2^shift - a) / 2 (signed,
// torus units): the centred mean-noise reduction adds the sum of these to the body.
FHEGPT_HOST_DEVICE int64_t modulus_switch_half_error(uint64_t a, uint64_t rounded, unsigned shift) {
    return static_cast<int64_t>((rounded << shift) - a) / 2;
}

// The switched body: body + half_error_sum - half a unit, rounded mod 2N.
FHEGPT_HOST_DEVICE uint32_t modulus_switch_body(uint64_t body, int64_t half_error_sum, unsigned shift,
                                                 uint64_t mod_mask) {
    const uint64_t centred = body + static_cast<uint64_t>(half_error_sum) - (uint64_t{1} << (shift - 1));
    return static_cast<uint32_t>(modulus_switch_rounded(centred, shift) & mod_mask);
}

// --- signed gadget decomposition (commons/decomposition.h) ------------------------------------

// round(x B^l) mod B^l: the kept bits of x, rounded (kept = base_log * levels <= 64).
FHEGPT_HOST_DEVICE uint64_t decomposition_round_to_kept_bits(uint64_t x, size_t kept) {
    if (kept == 64) return x;
    const size_t shift = 64 - kept;
    const uint64_t rounded = ((x >> (shift - 1)) + 1) >> 1;
    return rounded & ((uint64_t{1} << kept) - 1);
}

// One step from the least significant level up: returns the signed digit of `state`'s lowest
// base_log bits and moves state to the next level (carry included).
FHEGPT_HOST_DEVICE int64_t decomposition_next_digit(uint64_t & state, size_t base_log) {
    const uint64_t mask = (uint64_t{1} << base_log) - 1;
    const uint64_t digit = state & mask;
    const uint64_t carry = digit >> (base_log - 1);
    state = (state >> base_log) + carry;
    return static_cast<int64_t>(digit) - static_cast<int64_t>(carry << base_log);
}

// The digit of level `level` (1 = most significant) of x, computed from scratch (a kernel
// thread that needs one level only): the least significant levels are stepped through.
FHEGPT_HOST_DEVICE int64_t decomposition_digit(uint64_t x, size_t base_log, size_t level_count, size_t level) {
    uint64_t state = decomposition_round_to_kept_bits(x, base_log * level_count);
    int64_t digit = 0;
    for (size_t i = level_count; i >= level; --i) digit = decomposition_next_digit(state, base_log);
    return digit;
}

// --- negacyclic monomials and sample extraction ------------------------------------------------

// Coefficient t of X^power * in mod X^N + 1, power in [0, 2N).
FHEGPT_HOST_DEVICE uint64_t monomial_mul_coefficient(const uint64_t * in, size_t n, size_t power, size_t t) {
    const bool negate = power >= n;
    const size_t shift = negate ? power - n : power;
    // Coefficient t comes from t - shift, negated when it wraps (once more if power >= N).
    const bool wraps = t < shift;
    const uint64_t value = wraps ? in[n - shift + t] : in[t - shift];
    return (wraps != negate) ? 0 - value : value;
}

// Coefficient t of the mask of the LWE sample extracted at coefficient h of a GLWE polynomial
// a (the body is the polynomial's coefficient h): a[h - t] for t <= h, -a[N + h - t] after.
FHEGPT_HOST_DEVICE uint64_t sample_extract_mask_coefficient(const uint64_t * a, size_t n, size_t h, size_t t) {
    return t <= h ? a[h - t] : 0 - a[n + h - t];
}

} // namespace fhegpt::tfhe
