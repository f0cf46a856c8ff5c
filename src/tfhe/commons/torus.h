// The discretized torus T_q = 2^-64 Z / Z, represented by uint64_t with wrapping arithmetic,
// and the encoding of small messages on it.
//
// Encoding with a padding bit: a message m in Z_p (p a power of two) is the torus element
// m * Delta with Delta = 2^63 / p, so the most significant bit stays free (the padding bit)
// and a programmable bootstrap can read the message without the negacyclic sign ambiguity.
// Decoding rounds to the nearest multiple of Delta. The phase of a ciphertext is its
// message plus its noise; the noise of a phase is phase - encoded message, read as a signed
// 64-bit integer (units of 2^-64 of the torus).
#pragma once

#include "common/check.h"

#include <bit>
#include <cmath>
#include <cstdint>

namespace fhegpt::tfhe {

// Largest message modulus a padded encoding supports (leaves room for rounding).
inline constexpr uint64_t kMaxMessageModulus = uint64_t{1} << 32;

// Whether p is a power of two with 2 <= p <= kMaxMessageModulus.
inline constexpr bool is_valid_message_modulus(uint64_t p) {
    return p >= 2 && p <= kMaxMessageModulus && std::has_single_bit(p);
}

// Delta = 2^63 / p: the torus distance between two consecutive messages (padding bit kept).
inline uint64_t delta_with_padding(uint64_t message_modulus) {
    FHEGPT_CHECK(is_valid_message_modulus(message_modulus), "message modulus %llu is not a power of two in [2, 2^32]",
                 (unsigned long long)message_modulus);
    return (uint64_t{1} << 63) / message_modulus;
}

// m * Delta (wrapping): m is taken as is, so m in [p, 2p) sets the padding bit and m in
// [2p, ...) wraps; encode a signed message with encode_message((uint64_t)m, p).
inline uint64_t encode_message(uint64_t message, uint64_t message_modulus) {
    return message * delta_with_padding(message_modulus);
}

// round(phase / Delta) mod p: the message of a phase whose noise is below Delta / 2.
inline uint64_t decode_message(uint64_t phase, uint64_t message_modulus) {
    uint64_t delta = delta_with_padding(message_modulus);
    uint64_t rounded = (phase + delta / 2) / delta; // delta is a power of two: exact
    return rounded & (message_modulus - 1);
}

// round(phase / Delta) mod 2p: like decode_message but keeps the padding bit.
inline uint64_t decode_message_with_padding(uint64_t phase, uint64_t message_modulus) {
    uint64_t delta = delta_with_padding(message_modulus);
    return ((phase + delta / 2) / delta) & (2 * message_modulus - 1);
}

// A torus element read as a signed integer in [-2^63, 2^63) (units of 2^-64).
inline int64_t torus_to_signed(uint64_t t) { return static_cast<int64_t>(t); }

// A torus element as a real number in [-1/2, 1/2).
inline double torus_to_double(uint64_t t) { return std::ldexp(static_cast<double>(static_cast<int64_t>(t)), -64); }

// A real number to the nearest torus element (x mod 1).
inline uint64_t torus_from_double(double x) {
    long double frac = static_cast<long double>(x) - std::floor(static_cast<long double>(x)); // [0, 1)
    long double scaled = std::roundl(std::ldexp(frac, 64));                                 // [0, 2^64]
    if (scaled >= std::ldexp(1.0L, 63)) scaled -= std::ldexp(1.0L, 64);                      // [-2^63, 2^63)
    return static_cast<uint64_t>(static_cast<int64_t>(scaled));
}

// Noise of `phase` with respect to `expected` (signed, units of 2^-64).
inline int64_t torus_noise(uint64_t phase, uint64_t expected) { return static_cast<int64_t>(phase - expected); }

} // namespace fhegpt::tfhe
