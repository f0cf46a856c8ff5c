// The kernels of a batched KS-PBS (launchers and layouts: pbs_kernels.h). Per-coefficient logic
// comes from tfhe/commons/coefficient_ops.h, the functions the CPU engine runs and tests.
#include "tfhe/cuda/pbs_kernels.h"

#include "tfhe/commons/coefficient_ops.h"
#include "tfhe/commons/negacyclic_fold.h"

#include <cuda_runtime.h>

namespace fhegpt::tfhe::cuda {

namespace {

constexpr unsigned kThreads = 256;
// Key switch tiling: a block computes kKsThreads output coefficients of kKsTile ciphertexts, so
// each key element read from memory serves kKsTile ciphertexts; kKsChunk input coefficients'
// digits are staged in shared memory at a time.
constexpr unsigned kKsThreads = 128;
constexpr unsigned kKsTile = 8;
constexpr unsigned kKsChunk = 16;
constexpr unsigned kKsMaxLevels = 32; // base_log * levels <= 32 (the stored key bits)

unsigned blocks_for(size_t items, unsigned threads) { return static_cast<unsigned>((items + threads - 1) / threads); }

__device__ double2 complex_mul_add(double2 acc, double2 a, double2 b) {
    acc.x = fma(a.x, b.x, fma(-a.y, b.y, acc.x));
    acc.y = fma(a.x, b.y, fma(a.y, b.x, acc.y));
    return acc;
}

__device__ TwistFactor twist_at(const double2 * twist, size_t j) {
    const double2 w = twist[j];
    return {w.x, w.y};
}

__global__ void keyswitch_kernel(const uint64_t * inputs, const uint32_t * ksk, uint64_t * small, unsigned count,
                                 KeyswitchShape shape) {
    __shared__ int32_t digits[kKsChunk][kKsMaxLevels][kKsTile];
    const size_t n_in = shape.input_dimension, n = shape.output_dimension, levels = shape.level_count;
    const size_t entry = n + 1, in_size = n_in + 1;
    const size_t j = size_t(blockIdx.x) * kKsThreads + threadIdx.x;
    const size_t first = size_t(blockIdx.y) * kKsTile;
    uint32_t acc[kKsTile];
#pragma unroll
    for (unsigned t = 0; t < kKsTile; ++t) {
        const size_t b = first + t;
        // (0, round32(b')) - sum d KSK: the body starts as the input's body, rounded to 32 bits.
        acc[t] = (j == n && b < count) ? static_cast<uint32_t>((inputs[b * in_size + n_in] + (uint64_t{1} << 31)) >> 32)
                                       : 0u;
    }
    for (size_t i0 = 0; i0 < n_in; i0 += kKsChunk) {
        __syncthreads();
        for (unsigned slot = threadIdx.x; slot < kKsChunk * kKsTile; slot += kKsThreads) {
            const unsigned ii = slot / kKsTile, t = slot % kKsTile;
            const size_t b = first + t, i = i0 + ii;
            uint64_t state = 0;
            if (b < count && i < n_in)
                state = decomposition_round_to_kept_bits(inputs[b * in_size + i], shape.base_log * levels);
            for (size_t level = levels; level-- > 0;)
                digits[ii][level][t] = static_cast<int32_t>(decomposition_next_digit(state, shape.base_log));
        }
        __syncthreads();
        if (j >= entry) continue;
        const size_t chunk = n_in - i0 < kKsChunk ? n_in - i0 : kKsChunk;
        for (size_t ii = 0; ii < chunk; ++ii) {
            const uint32_t * rows = ksk + (i0 + ii) * levels * entry + j;
            for (size_t level = 0; level < levels; ++level) {
                const uint32_t row = rows[level * entry];
#pragma unroll
                for (unsigned t = 0; t < kKsTile; ++t) acc[t] -= static_cast<uint32_t>(digits[ii][level][t]) * row;
            }
        }
    }
    if (j >= entry) return;
#pragma unroll
    for (unsigned t = 0; t < kKsTile; ++t)
        if (first + t < count) small[(first + t) * entry + j] = static_cast<uint64_t>(acc[t]) << 32;
}

__global__ void modulus_switch_kernel(const uint64_t * small, uint32_t * switched, size_t n, unsigned shift,
                                      uint64_t mod_mask, bool centred) {
    __shared__ long long partial[kThreads];
    const uint64_t * a = small + size_t(blockIdx.x) * (n + 1);
    uint32_t * out = switched + size_t(blockIdx.x) * (n + 1);
    long long sum = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        const uint64_t rounded = modulus_switch_rounded(a[i], shift);
        out[i] = static_cast<uint32_t>(rounded & mod_mask);
        if (centred) sum += modulus_switch_half_error(a[i], rounded, shift);
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[n] = modulus_switch_body(a[n], partial[0], shift, mod_mask);
}

__global__ void initialize_accumulators_kernel(const uint64_t * luts, const uint32_t * lut_of,
                                               const uint32_t * switched, uint64_t * accumulators,
                                               RotationShape shape) {
    const size_t b = blockIdx.x, big_n = shape.polynomial_size, k = shape.glwe_dimension;
    const size_t body = switched[b * (shape.lwe_dimension + 1) + shape.lwe_dimension];
    const size_t power = (2 * big_n - body) % (2 * big_n);
    const uint64_t * lut = luts + size_t(lut_of[b]) * big_n;
    uint64_t * acc = accumulators + b * (k + 1) * big_n;
    for (size_t t = threadIdx.x; t < (k + 1) * big_n; t += blockDim.x)
        acc[t] = t < k * big_n ? 0 : monomial_mul_coefficient(lut, big_n, power, t - k * big_n);
}

// Block (b, column): the l digit polynomials of column c of X^a acc - acc, folded and twisted.
__global__ void rotate_decompose_kernel(const uint64_t * accumulators, const uint32_t * switched,
                                        const double2 * twist, double2 * digit_spectra, size_t i,
                                        RotationShape shape) {
    const size_t b = blockIdx.x, c = blockIdx.y, big_n = shape.polynomial_size, half = big_n / 2;
    const size_t k1 = shape.glwe_dimension + 1, levels = shape.level_count;
    const size_t power = switched[b * (shape.lwe_dimension + 1) + i];
    const uint64_t * acc = accumulators + (b * k1 + c) * big_n;
    double2 * out = digit_spectra + b * k1 * levels * half;
    for (size_t j = threadIdx.x; j < half; j += blockDim.x) {
        const uint64_t lo = monomial_mul_coefficient(acc, big_n, power, j) - acc[j];
        const uint64_t hi = monomial_mul_coefficient(acc, big_n, power, j + half) - acc[j + half];
        uint64_t state_lo = decomposition_round_to_kept_bits(lo, shape.base_log * levels);
        uint64_t state_hi = decomposition_round_to_kept_bits(hi, shape.base_log * levels);
        const TwistFactor w = twist_at(twist, j);
        for (size_t level = levels; level-- > 0;) {
            const double lo_digit = static_cast<double>(decomposition_next_digit(state_lo, shape.base_log));
            const double hi_digit = static_cast<double>(decomposition_next_digit(state_hi, shape.base_log));
            double2 & z = out[(level * k1 + c) * half + j];
            fold_twist(lo_digit, hi_digit, w, z.x, z.y);
        }
    }
}

// Block (b, column c): one output spectrum, the sum over the (k + 1) l rows.
__global__ void multiply_key_kernel(const double2 * digit_spectra, const double2 * key_spectra,
                                    double2 * output_spectra, size_t i, RotationShape shape) {
    const size_t b = blockIdx.x, c = blockIdx.y, half = shape.polynomial_size / 2;
    const size_t k1 = shape.glwe_dimension + 1, rows = k1 * shape.level_count;
    const double2 * digits = digit_spectra + b * rows * half;
    const double2 * key = key_spectra + i * rows * k1 * half;
    for (size_t f = threadIdx.x; f < half; f += blockDim.x) {
        double2 sum = make_double2(0.0, 0.0);
        for (size_t r = 0; r < rows; ++r) sum = complex_mul_add(sum, digits[r * half + f], key[(r * k1 + c) * half + f]);
        output_spectra[(b * k1 + c) * half + f] = sum;
    }
}

__global__ void untwist_add_kernel(const double2 * output_spectra, const double2 * twist, uint64_t * accumulators,
                                   RotationShape shape) {
    const size_t b = blockIdx.x, c = blockIdx.y, big_n = shape.polynomial_size, half = big_n / 2;
    const size_t k1 = shape.glwe_dimension + 1;
    const double scale = 1.0 / static_cast<double>(half);
    const double2 * spectrum = output_spectra + (b * k1 + c) * half;
    uint64_t * acc = accumulators + (b * k1 + c) * big_n;
    for (size_t j = threadIdx.x; j < half; j += blockDim.x) {
        double lo, hi;
        untwist(spectrum[j].x, spectrum[j].y, twist_at(twist, j), scale, lo, hi);
        acc[j] += wrap_to_torus(lo);
        acc[j + half] += wrap_to_torus(hi);
    }
}

__global__ void fold_torus_kernel(const uint64_t * coefficients, const double2 * twist, double2 * spectra,
                                  size_t polynomial_size) {
    const size_t p = blockIdx.x, half = polynomial_size / 2;
    const uint64_t * a = coefficients + p * polynomial_size;
    for (size_t j = threadIdx.x; j < half; j += blockDim.x) {
        double2 & z = spectra[p * half + j];
        fold_twist(static_cast<double>(static_cast<int64_t>(a[j])), static_cast<double>(static_cast<int64_t>(a[j + half])),
                   twist_at(twist, j), z.x, z.y);
    }
}

__global__ void sample_extract_kernel(const uint64_t * accumulators, const uint32_t * lut_of,
                                      const uint32_t * slot_stride, uint64_t * outputs, size_t functions,
                                      RotationShape shape) {
    const size_t o = blockIdx.x, b = o / functions, f = o % functions;
    const size_t big_n = shape.polynomial_size, k = shape.glwe_dimension;
    const size_t h = f * slot_stride[lut_of[b]];
    const uint64_t * acc = accumulators + b * (k + 1) * big_n;
    uint64_t * out = outputs + o * (k * big_n + 1);
    for (size_t t = threadIdx.x; t < k * big_n; t += blockDim.x)
        out[t] = sample_extract_mask_coefficient(acc + (t / big_n) * big_n, big_n, h, t % big_n);
    if (threadIdx.x == 0) out[k * big_n] = acc[k * big_n + h];
}

__global__ void twist_table_kernel(double2 * twist, size_t polynomial_size) {
    const size_t j = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= polynomial_size / 2) return;
    double s, c;
    sincospi(static_cast<double>(j) / static_cast<double>(polynomial_size), &s, &c);
    twist[j] = make_double2(c, s);
}

} // namespace

void launch_keyswitch(const uint64_t * inputs, const uint32_t * ksk, uint64_t * small, size_t count,
                      const KeyswitchShape & shape, Stream stream) {
    const dim3 grid(blocks_for(shape.output_dimension + 1, kKsThreads), blocks_for(count, kKsTile));
    keyswitch_kernel<<<grid, kKsThreads, 0, stream>>>(inputs, ksk, small, static_cast<unsigned>(count), shape);
}

void launch_modulus_switch(const uint64_t * small, uint32_t * switched, size_t count, size_t lwe_dimension,
                           size_t polynomial_size, bool centred, Stream stream) {
    const unsigned shift = 64 - modulus_switch_log_2n(polynomial_size);
    const uint64_t mod_mask = 2 * uint64_t(polynomial_size) - 1;
    modulus_switch_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(small, switched, lwe_dimension, shift,
                                                                                  mod_mask, centred);
}

void launch_initialize_accumulators(const uint64_t * luts, const uint32_t * lut_of, const uint32_t * switched,
                                    uint64_t * accumulators, size_t count, const RotationShape & shape,
                                    Stream stream) {
    initialize_accumulators_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(luts, lut_of, switched,
                                                                                           accumulators, shape);
}

void launch_rotate_decompose(const uint64_t * accumulators, const uint32_t * switched, const void * twist,
                             void * digit_spectra, size_t count, size_t i, const RotationShape & shape,
                             Stream stream) {
    const dim3 grid(static_cast<unsigned>(count), static_cast<unsigned>(shape.glwe_dimension + 1));
    rotate_decompose_kernel<<<grid, kThreads, 0, stream>>>(accumulators, switched, static_cast<const double2 *>(twist),
                                                           static_cast<double2 *>(digit_spectra), i, shape);
}

void launch_multiply_key(const void * digit_spectra, const void * key_spectra, void * output_spectra, size_t count,
                         size_t i, const RotationShape & shape, Stream stream) {
    const dim3 grid(static_cast<unsigned>(count), static_cast<unsigned>(shape.glwe_dimension + 1));
    multiply_key_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const double2 *>(digit_spectra),
                                                       static_cast<const double2 *>(key_spectra),
                                                       static_cast<double2 *>(output_spectra), i, shape);
}

void launch_untwist_add(const void * output_spectra, const void * twist, uint64_t * accumulators, size_t count,
                        const RotationShape & shape, Stream stream) {
    const dim3 grid(static_cast<unsigned>(count), static_cast<unsigned>(shape.glwe_dimension + 1));
    untwist_add_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const double2 *>(output_spectra),
                                                      static_cast<const double2 *>(twist), accumulators, shape);
}

void launch_fold_torus(const uint64_t * coefficients, const void * twist, void * spectra, size_t polynomials,
                       size_t polynomial_size, Stream stream) {
    fold_torus_kernel<<<static_cast<unsigned>(polynomials), kThreads, 0, stream>>>(
        coefficients, static_cast<const double2 *>(twist), static_cast<double2 *>(spectra), polynomial_size);
}

void launch_sample_extract(const uint64_t * accumulators, const uint32_t * lut_of, const uint32_t * slot_stride,
                           uint64_t * outputs, size_t count, size_t functions, const RotationShape & shape,
                           Stream stream) {
    sample_extract_kernel<<<static_cast<unsigned>(count * functions), kThreads, 0, stream>>>(
        accumulators, lut_of, slot_stride, outputs, functions, shape);
}

void launch_twist_table(void * twist, size_t polynomial_size, Stream stream) {
    twist_table_kernel<<<blocks_for(polynomial_size / 2, kThreads), kThreads, 0, stream>>>(
        static_cast<double2 *>(twist), polynomial_size);
}

} // namespace fhegpt::tfhe::cuda
