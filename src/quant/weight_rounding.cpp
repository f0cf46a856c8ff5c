#include "quant/weight_rounding.h"

#include "common/error.h"
#include "quant/quantizer.h"

#include <algorithm>
#include <cmath>

namespace fhegpt::quant {

namespace {

// H + damp * mean(diag H) * I, n x n.
std::vector<double> damped(std::span<const double> h, size_t n, double damp) {
    if (h.size() != n * n) fail("weight rounding: a {}-entry Gram matrix for dimension {}", h.size(), n);
    double mean_diagonal = 0;
    for (size_t i = 0; i < n; ++i) mean_diagonal += h[i * n + i];
    mean_diagonal /= double(n);
    std::vector<double> out(h.begin(), h.end());
    const double ridge = damp * (mean_diagonal > 0 ? mean_diagonal : 1.0);
    for (size_t i = 0; i < n; ++i) out[i * n + i] += ridge;
    return out;
}

// In place: the lower Cholesky factor L of a symmetric positive definite a (a = L L^T).
void cholesky_lower(std::vector<double> & a, size_t n) {
    for (size_t j = 0; j < n; ++j) {
        double d = a[j * n + j];
        for (size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) fail("weight rounding: the calibration Gram matrix is not positive definite");
        const double l = std::sqrt(d);
        a[j * n + j] = l;
        for (size_t i = j + 1; i < n; ++i) {
            double s = a[i * n + j];
            for (size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / l;
        }
        for (size_t k = j + 1; k < n; ++k) a[j * n + k] = 0;
    }
}

// a^-1 from its lower Cholesky factor l.
std::vector<double> inverse_from_cholesky(const std::vector<double> & l, size_t n) {
    // L^-1 by forward substitution, then a^-1 = L^-T L^-1.
    std::vector<double> li(n * n, 0.0);
    for (size_t c = 0; c < n; ++c) {
        li[c * n + c] = 1.0 / l[c * n + c];
        for (size_t i = c + 1; i < n; ++i) {
            double s = 0;
            for (size_t k = c; k < i; ++k) s += l[i * n + k] * li[k * n + c];
            li[i * n + c] = -s / l[i * n + i];
        }
    }
    std::vector<double> inv(n * n, 0.0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j <= i; ++j) {
            double s = 0;
            for (size_t k = i; k < n; ++k) s += li[k * n + i] * li[k * n + j];
            inv[i * n + j] = inv[j * n + i] = s;
        }
    return inv;
}

} // namespace

std::vector<double> augmented_gram(std::span<const int64_t> x, int64_t samples, int32_t dim) {
    if (samples <= 0 || dim <= 0 || x.size() != size_t(samples) * size_t(dim))
        fail("weight rounding: {} inputs for {} samples of {}", x.size(), samples, dim);
    const size_t n = size_t(dim) + 1;
    std::vector<double> h(n * n, 0.0);
    std::vector<double> row(n);
    for (int64_t s = 0; s < samples; ++s) {
        for (int32_t r = 0; r < dim; ++r) row[size_t(r)] = double(x[size_t(s) * dim + r]);
        row[n - 1] = 1.0;
        for (size_t i = 0; i < n; ++i) {
            if (row[i] == 0) continue;
            for (size_t j = 0; j <= i; ++j) h[i * n + j] += row[i] * row[j];
        }
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < i; ++j) h[j * n + i] = h[i * n + j];
    return h;
}

GptqFactor gptq_factor(std::span<const double> gram, int32_t dim, double damp) {
    if (dim <= 0) fail("weight rounding: {} input rows", dim);
    const size_t n = size_t(dim) + 1;
    // U: the upper Cholesky factor of H^-1 (H^-1 = U^T U). Row r's error, divided by U_rr and
    // times U_rj, is what rows j > r must absorb (GPTQ's update).
    std::vector<double> l = damped(gram, n, damp);
    cholesky_lower(l, n);
    GptqFactor factor{dim, inverse_from_cholesky(l, n)};
    cholesky_lower(factor.lower, n); // lower factor L' of H^-1 = L' L'^T; U = L'^T reads lower[j * n + r]
    return factor;
}

RoundedWeights round_weights_gptq(std::span<const double> w, int32_t dim, int32_t cols,
                                  std::span<const double> scales, int bits, std::span<const double> gram, double damp) {
    return round_weights_gptq(w, dim, cols, scales, bits, gptq_factor(gram, dim, damp));
}

RoundedWeights round_weights_gptq(std::span<const double> w, int32_t dim, int32_t cols,
                                  std::span<const double> scales, int bits, const GptqFactor & factor) {
    const size_t n = size_t(dim) + 1;
    if (dim <= 0 || cols <= 0 || w.size() != n * size_t(cols) || scales.size() != size_t(cols))
        fail("weight rounding: {} weights and {} scales for {} rows and {} columns", w.size(), scales.size(), n, cols);
    if (factor.dim != dim || factor.lower.size() != n * n)
        fail("weight rounding: a factor of {} rows for {} rows", factor.dim, dim);
    const double level = static_cast<double>(max_level(bits));
    const std::vector<double> & u = factor.lower;

    std::vector<double> work(w.begin(), w.end());
    RoundedWeights out;
    out.values.resize(size_t(dim) * size_t(cols));
    std::vector<double> err(static_cast<size_t>(cols));
    for (size_t r = 0; r < size_t(dim); ++r) {
        const double u_rr = u[r * n + r];
        for (int32_t c = 0; c < cols; ++c) {
            const double target = work[r * cols + c] / scales[size_t(c)];
            const double q = std::clamp(std::nearbyint(target), -level, level);
            out.values[r * cols + c] = static_cast<int64_t>(q);
            err[c] = (target - q) * scales[size_t(c)] / u_rr;
        }
        for (size_t j = r + 1; j < n; ++j) {
            const double u_rj = u[j * n + r];
            if (u_rj == 0) continue;
            for (int32_t c = 0; c < cols; ++c) work[j * cols + c] -= err[c] * u_rj;
        }
    }
    out.bias.resize(static_cast<size_t>(cols));
    for (int32_t c = 0; c < cols; ++c) out.bias[c] = work[size_t(dim) * cols + c] / scales[size_t(c)];
    return out;
}

} // namespace fhegpt::quant
