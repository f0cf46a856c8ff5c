// Launchers of the CUDA kernels of a batched KS-PBS (pbs_kernels.cu), on raw device pointers:
// the only interface between nvcc-compiled code and the rest of the engine
// (cuda_bootstrap_backend.cpp), so that the .cu sees no engine headers but coefficient_ops.h.
//
// Device layouts (B ciphertexts of one chunk, k + 1 = columns, l = PBS levels, N / 2 = half):
//   big inputs   uint64 [B][k N + 1]           small  uint64 [B][n + 1]    switched uint32 [B][n + 1]
//   accumulator  uint64 [B][k + 1][N]          digit spectra double2 [B][(k + 1) l][N / 2] (row
//   r = level (k + 1) + column, like the GGSW rows)   output spectra double2 [B][k + 1][N / 2]
//   key spectra  double2 [n][(k + 1) l][k + 1][N / 2]   twist double2 [N / 2] = exp(i pi j / N)
//   luts uint64 [L][N], lut_of uint32 [B], slot_stride uint32 [L]   outputs uint64 [B F][k N + 1]
// A polynomial a of size N is folded to z_j = (a_j + i a_{j + N/2}) w^j, whose complex FFT of size
// N / 2 evaluates a at the roots of X^N + 1 with X^(N/2) = i: products mod X^N + 1 become
// pointwise (the same transform as the CPU's, tfhe/fft/negacyclic_fft.h, in cuFFT's order).
#pragma once

#include <cstddef>
#include <cstdint>

struct CUstream_st;

namespace fhegpt::tfhe::cuda {

using Stream = CUstream_st *;

struct KeyswitchShape {
    size_t input_dimension;  // n' = k N
    size_t output_dimension; // n
    size_t base_log;
    size_t level_count;
};

struct RotationShape {
    size_t lwe_dimension;   // n
    size_t glwe_dimension;  // k
    size_t polynomial_size; // N
    size_t base_log;
    size_t level_count;
};

// small[b] = key switch of input[b] (top 32 bits kept, as the CPU's keyswitch_lwe_ciphertext_group).
void launch_keyswitch(const uint64_t * inputs, const uint32_t * ksk, uint64_t * small, size_t count,
                      const KeyswitchShape & shape, Stream stream);
// switched[b] = modulus switch of small[b] to Z_2N (centred: the mean-noise reduction).
void launch_modulus_switch(const uint64_t * small, uint32_t * switched, size_t count, size_t lwe_dimension,
                           size_t polynomial_size, bool centred, Stream stream);
// acc[b] = (0, ..., X^(-switched body) luts[lut_of[b]]).
void launch_initialize_accumulators(const uint64_t * luts, const uint32_t * lut_of, const uint32_t * switched,
                                    uint64_t * accumulators, size_t count, const RotationShape & shape,
                                    Stream stream);
// digit_spectra = fold + twist of the digits of X^(a_i) acc - acc, a_i = switched[b][i] (before the FFT).
void launch_rotate_decompose(const uint64_t * accumulators, const uint32_t * switched, const void * twist,
                             void * digit_spectra, size_t count, size_t i, const RotationShape & shape,
                             Stream stream);
// output_spectra[b][c] = sum_r digit_spectra[b][r] * key_spectra[i][r][c].
void launch_multiply_key(const void * digit_spectra, const void * key_spectra, void * output_spectra, size_t count,
                         size_t i, const RotationShape & shape, Stream stream);
// acc[b][c] += round(untwist(output_spectra[b][c]) / (N / 2)) mod 2^64 (after the inverse FFT).
void launch_untwist_add(const void * output_spectra, const void * twist, uint64_t * accumulators, size_t count,
                        const RotationShape & shape, Stream stream);
// Key preparation: spectra (before the FFT) = fold + twist of torus polynomials read as signed.
void launch_fold_torus(const uint64_t * coefficients, const void * twist, void * spectra, size_t polynomials,
                       size_t polynomial_size, Stream stream);
// outputs[b F + j] = sample extraction of coefficient j slot_stride[lut_of[b]] of acc[b].
void launch_sample_extract(const uint64_t * accumulators, const uint32_t * lut_of, const uint32_t * slot_stride,
                           uint64_t * outputs, size_t count, size_t functions, const RotationShape & shape,
                           Stream stream);
// twist[j] = exp(i pi j / N), j < N / 2.
void launch_twist_table(void * twist, size_t polynomial_size, Stream stream);

} // namespace fhegpt::tfhe::cuda
