// Process-wide cache of negacyclic FFT plans, one per polynomial size: plans are read-only
// after construction, so one plan serves every thread.
#pragma once

#include "tfhe/commons/dimensions.h"
#include "tfhe/fft/negacyclic_fft.h"

namespace fhegpt::tfhe {

// The plan for polynomials of size N (built on first use; the reference stays valid).
const NegacyclicFft & fft_plan(PolynomialSize polynomial_size);
// The same with a forced kernel (testing / benchmarking; must be available on this CPU).
const NegacyclicFft & fft_plan(PolynomialSize polynomial_size, FftKernel kernel);

} // namespace fhegpt::tfhe
