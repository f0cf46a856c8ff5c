// Calibrating a run of quantized blocks (quantized_blocks.h) on the float model's activations
// over the calibration prompts: every head and the MLPs on the (folded, model/gpt2_fold.h)
// model's normalized inputs, the residual stream's units and width, c_proj into the stream,
// and every LayerNorm's widths, sum of squares and levels. Optionally (sequential) every stage
// is then calibrated again, in the run's order, on the circuit's own upstream integers.
#pragma once

#include "circuit/quantized_blocks.h"
#include "model/block_range.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "quant/quantized_head.h"
#include "tfhe/commons/parameters.h"

#include <span>
#include <string>
#include <vector>

namespace fhegpt::circuit {

// The float residual stream at every point of the run, each row centred, over the calibration
// sequences (one after the other, `lengths` positions each).
struct BlockCalibration {
    std::vector<int32_t> lengths;
    std::vector<float> start;                         // [positions, n_embd] where the run starts
    std::vector<std::vector<float>> after_attention;  // per block of the run (empty: none)
    std::vector<std::vector<float>> after_block;      // per block of the run
};
BlockCalibration collect_block_calibration(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                           std::span<const std::string> prompts, const model::BlockRangeSpec & spec);
// The same over token sequences (each cut to the model's context).
BlockCalibration collect_block_calibration(const model::Gpt2Model & model, std::span<const std::vector<int32_t>> sequences,
                                           const model::BlockRangeSpec & spec);

struct BlocksQuantConfig {
    quant::HeadQuantConfig head;  // n_bits, weight_bits, lut_bits, rounding, clipping: the heads, and
                                  // the MLPs' inputs and c_fc alike
    int residual_width = 0;       // B; 0: the widest whose noise the parameter sets' fine key allows
    // b of the LayerNorms' and the GELUs' buckets (quantized_layer_norm.h): lut_bits costs two
    // sign bootstraps per value, lut_bits - 1 one. 0: lut_bits for the LayerNorms (their inputs
    // span the stream's heavy tails: at 6-bit lookups 5-bit buckets left 11% error on fhegpt-tiny,
    // 6-bit 7%), lut_bits - 1 for the GELUs from 5-bit lookups on.
    int ln_bucket_bits = 0;
    int gelu_bucket_bits = 0;
    int sum_width = 12;           // W_S of the LayerNorms' sums of squares
    int output_bits = 12;         // ln_f's outputs (signed, before its bias)
    double fine_noise_log2 = 0;   // the c_proj inputs' noise (log2 of its standard deviation on
                                  // the 2^64 torus); 0: the fine key of the fastest production set
                                  // that reads the lookups, or of the set that the noise analysis
                                  // of one new token at position 7 then picks if its outputs are
                                  // less noisy (quantize_blocks calibrates the stream again for it)
    double headroom = 1.25;       // calibrated ranges are widened by this factor
    // Calibrate each stage again, in the run's order, on the circuit's own upstream integers
    // (block_calibration.cpp). Off by default: on fhegpt-tiny it did not improve layer0 or all
    // (docs/whole-model.md, "Tried and not kept").
    bool sequential = false;
};

QuantizedBlocks quantize_blocks(const model::Gpt2Model & model, const model::BlockRangeSpec & spec,
                                const BlockCalibration & calibration, const BlocksQuantConfig & config);

// The noise (standard deviation on the 2^64 torus) that a set's bootstrap outputs bring into the
// residual stream: its fine key's, or its only key's. BlocksQuantConfig::fine_noise_log2 is its
// log2 when the stream is calibrated for one set.
double stream_input_noise(const tfhe::TfheParameters & params);

} // namespace fhegpt::circuit
