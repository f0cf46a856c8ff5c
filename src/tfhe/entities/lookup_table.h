// Lookup table of a programmable bootstrap: the test polynomial V in T[X]/(X^N + 1) that the
// blind rotation turns into X^(-phi) V, phi being the modulus-switched phase in Z_2N.
//
// For an input message modulus p (padding bit: the phase of m is in the box of width N / p
// coefficients centred on m N / p), coefficient t of V holds the output for the message whose
// box contains t: V[t] = f(m) for t in [m w - w/2, m w + w/2), w = N / p, and the top half box
// [N - w/2, N) holds -f(0) (negacyclic wrap of m = 0 with negative noise). The constant
// coefficient of X^(-phi) V is then f(m) for every phi within w/2 of m w. With p = 1 (a sign
// lookup) the box is the half torus centred on 0: f(0) there, -f(0) on the other half.
//
// Many-LUT: with c = function_count > 1 functions, each box holds c slots of width
// s = slot_stride = floor(w / c): slot j of message m covers [m w + j s - s/2, m w + j s + s/2)
// and holds f_j(m); output j is the sample extraction of coefficient j s (the phase of m lands
// in slot 0, shifted by j s it lands in slot j). The noise must stay within half a slot, so
// c <= (precision the parameter set is designed for) / p. With c = 1, s = w: the single case.
#pragma once

#include "tfhe/commons/dimensions.h"

#include <cstdint>
#include <vector>

namespace fhegpt::tfhe {

struct LookupTable {
    PolynomialSize polynomial_size;
    uint64_t input_modulus = 0;  // p: messages read from the input, padding bit excluded
    uint64_t output_modulus = 0; // q: outputs are encoded as f(m) 2^63 / q (0 for raw torus outputs)
    size_t function_count = 1;   // c
    size_t slot_stride = 0;      // coefficients between the outputs of consecutive functions
    std::vector<uint64_t> polynomial; // V, N torus elements

    bool operator==(const LookupTable &) const = default;
};

} // namespace fhegpt::tfhe
