// Portable scalar reference kernel: in-place radix-2 Cooley-Tukey (forward) / Gentleman-Sande
// (backward) on the split re/im layout, twist folded into the butterflies (see fft_internal.h).
#include "tfhe/fft/fft_internal.h"

namespace fhegpt::tfhe::fft_detail {
namespace {

void forward_levels(const Plan & plan, double * re, double * im) {
    const size_t m = plan.m;
    for (int l = 0; l < plan.log_m; ++l) {
        const size_t blocks = size_t{1} << l;
        const size_t h = m >> (l + 1);
        for (size_t b = 0; b < blocks; ++b) {
            const double tr = plan.tw_re[blocks + b], ti = plan.tw_im[blocks + b];
            double * xr = re + 2 * h * b;
            double * xi = im + 2 * h * b;
            for (size_t j = 0; j < h; ++j) {
                const double ur = xr[j], ui = xi[j];
                const double vr = xr[j + h] * tr - xi[j + h] * ti;
                const double vi = xr[j + h] * ti + xi[j + h] * tr;
                xr[j] = ur + vr;
                xi[j] = ui + vi;
                xr[j + h] = ur - vr;
                xi[j + h] = ui - vi;
            }
        }
    }
}

void forward_torus(const Plan & plan, const uint64_t * coeffs, double * fourier) {
    const size_t m = plan.m;
    for (size_t j = 0; j < m; ++j) {
        fourier[j] = static_cast<double>(static_cast<int64_t>(coeffs[j]));
        fourier[m + j] = static_cast<double>(static_cast<int64_t>(coeffs[m + j]));
    }
    forward_levels(plan, fourier, fourier + m);
}

void forward_integer(const Plan & plan, const int64_t * coeffs, double * fourier) {
    const size_t m = plan.m;
    for (size_t j = 0; j < m; ++j) {
        fourier[j] = static_cast<double>(coeffs[j]);
        fourier[m + j] = static_cast<double>(coeffs[m + j]);
    }
    forward_levels(plan, fourier, fourier + m);
}

void forward_digits(const Plan & plan, const uint64_t * coeffs, const DigitExtraction & d, double * fourier) {
    for (size_t j = 0; j < plan.n; ++j) fourier[j] = static_cast<double>(extract_digit(coeffs[j], d));
    forward_levels(plan, fourier, fourier + plan.m);
}

void forward_rotated_digits(const Plan & plan, const uint64_t * coeffs, size_t power, const DigitExtraction & d,
                            double * fourier) {
    for (size_t j = 0; j < plan.n; ++j)
        fourier[j] = static_cast<double>(extract_digit(monomial_mul_coefficient(coeffs, plan.n, power, j) - coeffs[j], d));
    forward_levels(plan, fourier, fourier + plan.m);
}

void backward(const Plan & plan, double * fourier, uint64_t * coeffs, bool add) {
    const size_t m = plan.m;
    double * re = fourier;
    double * im = fourier + m;
    for (int l = plan.log_m - 1; l >= 0; --l) {
        const size_t blocks = size_t{1} << l;
        const size_t h = m >> (l + 1);
        for (size_t b = 0; b < blocks; ++b) {
            const double tr = plan.tw_re[blocks + b], ti = -plan.tw_im[blocks + b];
            double * xr = re + 2 * h * b;
            double * xi = im + 2 * h * b;
            for (size_t j = 0; j < h; ++j) {
                const double ar = xr[j], ai = xi[j], br = xr[j + h], bi = xi[j + h];
                xr[j] = ar + br;
                xi[j] = ai + bi;
                const double dr = ar - br, di = ai - bi;
                xr[j + h] = dr * tr - di * ti;
                xi[j + h] = dr * ti + di * tr;
            }
        }
    }
    const double scale = 1.0 / static_cast<double>(m);
    for (size_t j = 0; j < m; ++j) {
        const uint64_t lo = wrap_to_u64(re[j] * scale);
        const uint64_t hi = wrap_to_u64(im[j] * scale);
        coeffs[j] = add ? coeffs[j] + lo : lo;
        coeffs[m + j] = add ? coeffs[m + j] + hi : hi;
    }
}

void multiply_add(double * acc, const double * a, const double * b, size_t h) {
    for (size_t j = 0; j < h; ++j) {
        const double ar = a[j], ai = a[h + j], br = b[j], bi = b[h + j];
        acc[j] += ar * br - ai * bi;
        acc[h + j] += ar * bi + ai * br;
    }
}

void multiply_accumulate(double * out, const double * a, const double * b, size_t rows, size_t cols, size_t h) {
    for (size_t c = 0; c < cols; ++c) {
        double * o = out + 2 * h * c;
        for (size_t j = 0; j < 2 * h; ++j) o[j] = 0.0;
        for (size_t r = 0; r < rows; ++r) multiply_add(o, a + 2 * h * r, b + 2 * h * (r * cols + c), h);
    }
}

} // namespace

const KernelOps kScalarOps = {"scalar",       1,           nullptr, forward_torus, forward_integer, forward_digits,
                              backward,       multiply_add, multiply_accumulate, nullptr, nullptr,
                              forward_rotated_digits};

} // namespace fhegpt::tfhe::fft_detail
