#include "tfhe/algorithms/fourier_monomials.h"

#include "common/check.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/algorithms/polynomial.h"

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

namespace fhegpt::tfhe {

namespace {

// Largest |fourier(X^d p) - zeta^d fourier(p)| over the points, relative to max |fourier(p)|, for
// a fixed pseudo-random torus polynomial p: whether the table describes this FFT.
double relative_shift_error(const NegacyclicFft & fft, const FourierMonomialTable & table, uint32_t degree) {
    const size_t n = fft.polynomial_size(), h = n / 2;
    std::vector<uint64_t> p(n), shifted(n);
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (uint64_t & x : p) x = state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    polynomial_monomial_mul(shifted, p, degree);
    aligned_vector<double> fp(n), fs(n), w(n);
    fft.forward_torus(p, fp);
    fft.forward_torus(shifted, fs);
    table.monomial(degree, w);
    double scale = 0, error = 0;
    for (size_t j = 0; j < h; ++j) {
        const double re = w[j] * fp[j] - w[h + j] * fp[h + j], im = w[j] * fp[h + j] + w[h + j] * fp[j];
        scale = std::max(scale, std::hypot(fp[j], fp[h + j]));
        error = std::max(error, std::hypot(fs[j] - re, fs[h + j] - im));
    }
    return error / scale;
}

} // namespace

FourierMonomialTable::FourierMonomialTable(const NegacyclicFft & fft) {
    const size_t n = fft.polynomial_size(), h = n / 2, two_n = 2 * n;
    FHEGPT_CHECK(n >= 16 && two_n <= (size_t{1} << 31), "polynomial size %zu", n);
    root_real_.resize(two_n);
    root_imaginary_.resize(two_n);
    roots_.resize(2 * two_n);
    for (size_t t = 0; t < two_n; ++t) {
        const double angle = std::numbers::pi * static_cast<double>(t) / static_cast<double>(n);
        root_real_[t] = roots_[2 * t] = std::cos(angle);
        root_imaginary_[t] = roots_[2 * t + 1] = std::sin(angle);
    }
    std::vector<int64_t> one(n, 0), x(n, 0);
    one[0] = 1;
    x[1] = 1;
    aligned_vector<double> f_one(n), f_x(n);
    fft.forward_integer(one, f_one);
    fft.forward_integer(x, f_x);
    exponents_.resize(h);
    for (size_t j = 0; j < h; ++j) {
        // zeta_j = f_x / f_one; the transform of 1 is the FFT's scale at that point.
        FHEGPT_CHECK(std::abs(f_one[h + j]) < 1e-9 * std::abs(f_one[j]) && f_one[j] > 0,
                     "the negacyclic FFT is not an evaluation at roots of unity (point %zu)", j);
        const double re = f_x[j] / f_one[j], im = f_x[h + j] / f_one[j];
        const double turns = std::atan2(im, re) * static_cast<double>(n) / std::numbers::pi;
        const int64_t t = (static_cast<int64_t>(std::llround(turns)) % static_cast<int64_t>(two_n) + two_n) % two_n;
        FHEGPT_CHECK(t % 2 == 1 && std::hypot(re - root_real_[t], im - root_imaginary_[t]) < 1e-9,
                     "point %zu of the negacyclic FFT is not a primitive 2N-th root of unity", j);
        exponents_[j] = static_cast<uint32_t>(t);
    }
    blocks_are_quarter_turns_ = h % 4 == 0;
    const uint32_t quarter = static_cast<uint32_t>(n / 2), mask = static_cast<uint32_t>(two_n - 1);
    for (size_t i = 0; i < 4 && blocks_are_quarter_turns_; ++i) {
        const uint32_t offset = (exponents_[i] - exponents_[0]) & mask;
        block_quarter_turns_[i] = offset / quarter;
        blocks_are_quarter_turns_ = offset % quarter == 0;
    }
    for (size_t q = 0; q < h / 4 && blocks_are_quarter_turns_; ++q)
        for (size_t i = 0; i < 4; ++i)
            if (((exponents_[4 * q + i] - exponents_[4 * q]) & mask) != block_quarter_turns_[i] * quarter)
                blocks_are_quarter_turns_ = false;
    for (uint32_t degree : {uint32_t{1}, uint32_t(n - 1), uint32_t(n + 3), uint32_t(two_n - 1)})
        FHEGPT_CHECK(relative_shift_error(fft, *this, degree) < 1e-9,
                     "X^%u does not transform as the Fourier monomial table predicts (N = %zu)", degree, n);
}

void FourierMonomialTable::monomial(uint32_t degree, std::span<double> fourier) const {
    const size_t n = polynomial_size(), h = n / 2;
    FHEGPT_CHECK_EQ(fourier.size(), n);
    FHEGPT_CHECK(degree < 2 * n, "monomial degree %u >= 2N = %zu", degree, 2 * n);
    const uint32_t mask = static_cast<uint32_t>(2 * n - 1);
    for (size_t j = 0; j < h; ++j) {
        const uint32_t t = (exponents_[j] * degree) & mask;
        fourier[j] = root_real_[t];
        fourier[h + j] = root_imaginary_[t];
    }
}

const FourierMonomialTable & fourier_monomial_table(PolynomialSize polynomial_size) {
    static std::mutex mutex;
    static std::map<size_t, std::unique_ptr<FourierMonomialTable>> tables;
    const NegacyclicFft & fft = fft_plan(polynomial_size);
    std::lock_guard lock(mutex);
    auto & table = tables[polynomial_size.value];
    if (!table) table = std::make_unique<FourierMonomialTable>(fft);
    return *table;
}

} // namespace fhegpt::tfhe
