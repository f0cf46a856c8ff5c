// What projection calibration (projection_calibration.cpp) reads of softmax calibration
// (softmax_calibration.cpp); the public calls are in quantized_head.h (calibration_scores,
// attention_error, calibrate_softmax).
#pragma once

#include "quant/quantized_head.h"

#include <cstdint>
#include <span>
#include <vector>

namespace fhegpt::quant {

// Projection p's codes of n positions, [n, d] (head_stages.h).
std::vector<int64_t> calibration_codes(const QuantizedHead & head, int p, std::span<const int64_t> x_int, int32_t n);
// The scores S_ij of every row of the calibration sequences from the q and k codes of all
// their positions ([positions, d] each).
std::vector<std::vector<int64_t>> scores_of_codes(const QuantizedHead & head, std::span<const int64_t> q,
                                                  std::span<const int64_t> k, std::span<const int32_t> lengths);
// B_S: twice the widest calibrated row of scores fits 2^B_S.
int score_bits_of(const std::vector<std::vector<int64_t>> & scores, int lut_bits);
// Sets window_bits and exp_reference (calibrate_softmax) against the softmax of the scores, or
// against `reference` (float attention weights, row by row) where given; returns the attention
// error reached.
double calibrate_window(QuantizedHead & head, const std::vector<std::vector<int64_t>> & scores,
                        const std::vector<std::vector<double>> * reference);
// The float attention weights of every calibration row, from float q and k ([positions, d]).
std::vector<std::vector<double>> reference_attention(const std::vector<double> & q, const std::vector<double> & k,
                                                     std::span<const int32_t> lengths, int32_t d);

} // namespace fhegpt::quant
