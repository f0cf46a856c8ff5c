// The fold and twist that turn a negacyclic product of size N into a complex cyclic one of size
// N / 2, per coefficient pair, for transforms done elsewhere (cuFFT in the CUDA backend):
//   forward: z_j = (a_j + i a_{j + N/2}) w^j, w = exp(i pi / N), then a forward complex DFT
//            (exponent -2 pi i j k / (N / 2)) evaluates a at the roots x of X^N + 1 with
//            x^(N/2) = i, so products mod X^N + 1 are pointwise;
//   inverse: an unnormalised inverse DFT (exponent +), then (a_j, a_{j + N/2}) = z_j w^-j / (N / 2).
// The CPU's own transform (tfhe/fft/negacyclic_fft.h) is the same map in another order.
// Callable from device code (host_device.h); the CPU tests run it with a plain DFT.
#pragma once

#include "tfhe/commons/host_device.h"

#include <math.h>
#include <stdint.h>

namespace fhegpt::tfhe {

// twist w^j = exp(i pi j / N) as (cos, sin).
struct TwistFactor {
    double re, im;
};

// z = (lo + i hi) w.
FHEGPT_HOST_DEVICE void fold_twist(double lo, double hi, TwistFactor w, double & re, double & im) {
    re = lo * w.re - hi * w.im;
    im = lo * w.im + hi * w.re;
}

// (lo, hi) = z w^-1 scale (scale = 1 / (N / 2) after an unnormalised inverse transform).
FHEGPT_HOST_DEVICE void untwist(double re, double im, TwistFactor w, double scale, double & lo, double & hi) {
    lo = (re * w.re + im * w.im) * scale;
    hi = (im * w.re - re * w.im) * scale;
}

// round(x) mod 2^64 for any finite x: the multiple of 2^64 is taken off first (exactly: both
// terms are multiples of x's unit in the last place), so magnitudes past 2^64 wrap correctly.
FHEGPT_HOST_DEVICE uint64_t wrap_to_torus(double x) {
    const double r = rint(x);
    const double q = rint(r * 0x1p-64);
    double rem = fma(-q, 0x1p64, r); // |rem| <= 2^63
    if (rem >= 0x1p63) rem -= 0x1p64;
    return static_cast<uint64_t>(static_cast<int64_t>(rem));
}

} // namespace fhegpt::tfhe
