// What the eval / compile / run-encrypted / generate commands share: naming the protected part
// (--part layerL.headH, layerL.attn, layerL.mlp, layerL, layersA-B or all), reading prompt files,
// and calibrating its quantized form on the calibration prompts (never on the evaluation prompts).
#pragma once

#include "circuit/block_calibration.h"
#include "circuit/quantized_attention.h"
#include "circuit/quantized_blocks.h"
#include "circuit/quantized_part_seams.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "quant/quantized_head.h"

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fhegpt::cli {

struct PartSpec {
    int32_t layer = 0;
    int32_t head = -1; // -1: the whole attention block of the layer (unless `blocks`)
    // A run of whole blocks on the encrypted residual stream (quantized_blocks.h): layerL.mlp
    // (from_mlp), layerL, layersA-B (layer A to `last`), all (every block and ln_f).
    bool blocks = false;
    int32_t last = 0;
    bool from_mlp = false;
    bool final_norm = false;
    std::string text() const;
    model::BlockRangeSpec block_range() const { return {layer, last, from_mlp, final_norm}; }
};
// "layer0.head3", "layer0.attn", "layer0.mlp", "layer0", "layers0-2" or "all"; checked against
// the model.
PartSpec parse_part(const std::string & text, const model::Gpt2HParams & hparams);

std::vector<std::string> read_prompt_lines(const std::string & path);

struct QuantOptions {
    std::string model_dir = "models/fhegpt-tiny";
    std::string part = "layer0.head0";
    std::string calibration_path = "data/calibration_prompts.txt";
    bool per_channel = false;
    bool per_tensor_inputs = false;
    bool absmax_scales = false;
    int weight_bits = 0;
    int lut_bits = 0;
    int residual_bits = 0; // whole blocks: the residual stream's width (0: calibrated)
    int ln_bucket_bits = 0;   // whole blocks: the LayerNorms' buckets (0: lut_bits)
    int gelu_bucket_bits = 0; // whole blocks: the GELUs' buckets (0: lut_bits - 1 from 5 bits on)
    bool sequential_calibration = false; // whole blocks: each stage again on the circuit's upstream outputs
    std::string stream_set; // whole blocks: the set whose outputs the stream is calibrated for (empty: the fastest)
    std::string weight_rounding = "gptq"; // or "nearest" (checked by add_quant_options)

    quant::WeightRounding rounding() const {
        return weight_rounding == "nearest" ? quant::WeightRounding::nearest : quant::WeightRounding::gptq;
    }
};
void add_quant_options(CLI::App & command, QuantOptions & options);

// The part's activations on the calibration prompts: the float model's ln_1 outputs (a head or
// an attention block), or the residual stream along a run of blocks.
struct PartCalibration {
    circuit::LayerInputs layer;
    circuit::BlockCalibration blocks;
};
PartCalibration calibration_inputs(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                   const PartSpec & part, const QuantOptions & options);
// A quantized head, attention block or run of blocks, and what the commands do with each.
struct QuantizedPart {
    PartSpec part;
    std::optional<quant::QuantizedHead> head;             // layerL.headH
    std::optional<circuit::QuantizedAttention> attention; // layerL.attn
    std::optional<circuit::QuantizedBlocks> blocks;       // layerL.mlp, layerL, layersA-B, all

    int lut_bits() const;
    circuit::Circuit build_circuit(int32_t n) const;
    // Rows first..n-1 on the encrypted key/value cache (the cost of new tokens).
    circuit::Circuit build_row_circuit(int32_t first, int32_t n) const;
    // The parameter set for n positions on ciphertexts: `name`, or (empty) the fastest
    // production set whose noise analysis keeps failures negligible (for whole blocks, on the
    // circuit of the n-th token on the cache: the whole sequence's circuit would be too large). Refuses a set narrower
    // than the part's lookups; warns on stderr about an insecure one.
    const tfhe::TfheParameters & parameters(int32_t n, const std::string & name) const;
    // That choice without a name: null where no production set runs the part at n positions.
    const tfhe::TfheParameters * fastest_parameters(int32_t n) const;
    // Installs the part behind the model's seam; returns its records of encrypted runs.
    // kv_cache: evaluate only new rows on the (encrypted) key/value cache of every head.
    const std::vector<circuit::HeadRunRecord> & install(model::Gpt2Context & ctx, circuit::Executor executor,
                                                         circuit::EncryptedKeys keys = {}, bool kv_cache = false) const;
};

// Quantizes the part of `model` at n_bits from those activations.
QuantizedPart quantize_part(const model::Gpt2Model & model, const PartSpec & part, const QuantOptions & options,
                            const PartCalibration & calibration, int n_bits);
// Both at once.
QuantizedPart calibrate_part(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                             const PartSpec & part, const QuantOptions & options, int n_bits);

} // namespace fhegpt::cli
