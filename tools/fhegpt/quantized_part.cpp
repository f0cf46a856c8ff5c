#include "quantized_part.h"

#include "circuit/noise_analysis.h"
#include "circuit/attention_circuit.h"
#include "circuit/block_circuit.h"
#include "circuit/head_calibration.h"
#include "circuit/head_circuit.h"
#include "common/error.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace fhegpt::cli {

std::string PartSpec::text() const {
    if (blocks) {
        if (from_mlp) return fmt::format("layer{}.mlp", layer);
        if (final_norm && layer == 0) return "all";
        return layer == last ? fmt::format("layer{}", layer) : fmt::format("layers{}-{}", layer, last);
    }
    return head < 0 ? fmt::format("layer{}.attn", layer) : fmt::format("layer{}.head{}", layer, head);
}

PartSpec parse_part(const std::string & text, const model::Gpt2HParams & hp) {
    // Hand-parsed: GCC 12 warns inside <regex> under sanitizers.
    auto digits = [](const std::string & s) {
        return !s.empty() && s.size() <= 4 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    PartSpec part;
    if (text == "all") {
        part.blocks = part.final_norm = true;
        part.layer = 0;
        part.last = hp.n_layer - 1;
        return part;
    }
    if (text.rfind("layers", 0) == 0) {
        const std::string range = text.substr(6);
        const size_t dash = range.find('-');
        if (dash == std::string::npos || !digits(range.substr(0, dash)) || !digits(range.substr(dash + 1)))
            fail("--part '{}': expected layersA-B", text);
        part.blocks = true;
        part.layer = std::stoi(range.substr(0, dash));
        part.last = std::stoi(range.substr(dash + 1));
        if (part.layer > part.last) fail("--part {}: layer {} comes after layer {}", text, part.layer, part.last);
        if (part.last >= hp.n_layer) fail("--part {}: the model has {} layers", text, hp.n_layer);
        return part;
    }
    const size_t dot = text.find('.');
    const std::string first = text.substr(0, dot == std::string::npos ? text.size() : dot);
    const std::string second = dot == std::string::npos ? std::string() : text.substr(dot + 1);
    const bool layer_ok = first.rfind("layer", 0) == 0 && digits(first.substr(5));
    const bool head_ok = second.rfind("head", 0) == 0 && digits(second.substr(4));
    if (!layer_ok || !(dot == std::string::npos || second == "attn" || second == "mlp" || head_ok))
        fail("--part '{}': expected layerL.headH, layerL.attn, layerL.mlp, layerL, layersA-B or all", text);
    part.layer = std::stoi(first.substr(5));
    if (part.layer >= hp.n_layer) fail("--part {}: the model has {} layers", text, hp.n_layer);
    if (dot == std::string::npos || second == "mlp") {
        part.blocks = true;
        part.last = part.layer;
        part.from_mlp = second == "mlp";
        return part;
    }
    part.head = second == "attn" ? -1 : std::stoi(second.substr(4));
    if (part.head >= hp.n_head) fail("--part {}: the model has {} heads per layer", text, hp.n_head);
    return part;
}

std::vector<std::string> read_prompt_lines(const std::string & path) {
    std::ifstream in(path);
    if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
    if (lines.empty()) fail("{}: no prompts", path);
    return lines;
}

void add_quant_options(CLI::App & command, QuantOptions & o) {
    command.add_option("-m,--model", o.model_dir, "Hugging Face GPT-2 directory")->capture_default_str();
    command.add_option("--part", o.part,
                       "protected part: layerL.headH (one head), layerL.attn (the attention block), layerL.mlp (the MLP "
                       "half of a block), layerL (a whole block), layersA-B (blocks A to B) or all (every block and ln_f)")
        ->capture_default_str();
    command.add_option("--calibration", o.calibration_path, "calibration prompts, one per line")->capture_default_str();
    command.add_flag("--per-channel", o.per_channel,
                     "power-of-two weight scales per output channel; each extra column bit costs a bootstrap per value "
                     "(default: per tensor)");
    command.add_flag("--per-tensor-inputs", o.per_tensor_inputs,
                     "one scale for all input channels (default: one per channel, folded into the weights)");
    command.add_flag("--absmax-scales", o.absmax_scales,
                     "input and weight scales from the calibration absmax (default: clips chosen on the calibration "
                     "inputs, never at the cost of a bootstrap)");
    command
        .add_option("--weight-rounding", o.weight_rounding,
                    "nearest: every weight to its nearest level; gptq: rounding errors compensated on the "
                    "calibration inputs (GPTQ), from 3 weight bits on")
        ->check(CLI::IsMember({"nearest", "gptq"}))
        ->capture_default_str();
    command.add_option("--weight-bits", o.weight_bits, "weight bits (default: --n-bits)")->check(CLI::Range(0, 16));
    command.add_option("--residual-bits", o.residual_bits,
                       "whole blocks: bits of the encrypted residual stream (default: the widest the noise of c_proj allows, "
                       "calibrated)")
        ->check(CLI::Range(0, 40));
    command.add_option("--ln-bucket-bits", o.ln_bucket_bits,
                       "whole blocks: bits of the LayerNorms' input buckets (default: --lut-bits, two sign bootstraps per "
                       "value; one bit fewer costs one)")
        ->check(CLI::Range(0, 12));
    command.add_option("--gelu-bucket-bits", o.gelu_bucket_bits,
                       "whole blocks: bits of the GELUs' input buckets (default: --lut-bits - 1 from 5-bit lookups on, one "
                       "sign bootstrap per value; else --lut-bits, two)")
        ->check(CLI::Range(0, 12));
    command.add_option("--stream-set", o.stream_set,
                       "whole blocks: calibrate the residual stream for the outputs of this parameter set (its fine key): "
                       "a finer set's lets the stream be wider, and the noise analysis then needs a set at least as fine "
                       "(default: the fastest set that runs the part)");
    command.add_flag("--sequential-calibration", o.sequential_calibration,
                     "whole blocks: after the calibration on the float model's activations, calibrate each stage again, "
                     "in order, on the circuit's own upstream outputs");
    command.add_option("--lut-bits", o.lut_bits,
                       "bits every lookup reads, and of the q/k/v buckets (default: --n-bits, at least 3)")
        ->check(CLI::Range(0, 12));
}

PartCalibration calibration_inputs(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                   const PartSpec & part, const QuantOptions & options) {
    PartCalibration c;
    const std::vector<std::string> prompts = read_prompt_lines(options.calibration_path);
    if (part.blocks) c.blocks = circuit::collect_block_calibration(model, tokenizer, prompts, part.block_range());
    else c.layer = circuit::collect_layer_inputs(model, tokenizer, prompts, part.layer);
    return c;
}

QuantizedPart quantize_part(const model::Gpt2Model & model, const PartSpec & part, const QuantOptions & options,
                            const PartCalibration & calibration, int n_bits) {
    const circuit::LayerInputs & inputs = calibration.layer;
    quant::HeadQuantConfig config;
    config.n_bits = n_bits;
    config.weight_bits = options.weight_bits;
    config.per_channel = options.per_channel;
    config.input_per_channel = !options.per_tensor_inputs;
    config.calibrated_clipping = !options.absmax_scales;
    config.lut_bits = options.lut_bits;
    config.weight_rounding = options.rounding();
    QuantizedPart out;
    out.part = part;
    if (part.blocks) {
        circuit::BlocksQuantConfig blocks;
        blocks.head = config;
        blocks.residual_width = options.residual_bits;
        blocks.ln_bucket_bits = options.ln_bucket_bits;
        blocks.gelu_bucket_bits = options.gelu_bucket_bits;
        blocks.sequential = options.sequential_calibration;
        if (!options.stream_set.empty())
            blocks.fine_noise_log2 = std::log2(circuit::stream_input_noise(tfhe::parameters_by_name(options.stream_set)));
        out.blocks = circuit::quantize_blocks(model, part.block_range(), calibration.blocks, blocks);
    } else if (!options.stream_set.empty())
        fail("--stream-set applies to whole blocks (layerL.mlp, layerL, layersA-B, all), not to {}", part.text());
    else if (part.head >= 0)
        out.head = circuit::quantize_head_for_circuit(model::head_qkv_weights(model, part.layer, part.head), inputs.x,
                                                      inputs.lengths, config);
    else
        out.attention = circuit::quantize_attention(model, part.layer, inputs.x, inputs.lengths, config);
    return out;
}

QuantizedPart calibrate_part(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                             const PartSpec & part, const QuantOptions & options, int n_bits) {
    return quantize_part(model, part, options, calibration_inputs(model, tokenizer, part, options), n_bits);
}

int QuantizedPart::lut_bits() const { return head ? head->lut_bits : attention ? attention->lut_bits : blocks->lut_bits; }

circuit::Circuit QuantizedPart::build_circuit(int32_t n) const {
    if (blocks) return circuit::build_blocks_circuit(*blocks, n);
    return head ? circuit::build_head_circuit(*head, n) : circuit::build_attention_circuit(*attention, n);
}

circuit::Circuit QuantizedPart::build_row_circuit(int32_t first, int32_t n) const {
    if (blocks) return circuit::build_blocks_row_circuit(*blocks, first, n);
    return head ? circuit::build_head_row_circuit(*head, first, n, head->output_width)
                : circuit::build_attention_row_circuit(*attention, first, n);
}

const tfhe::TfheParameters * QuantizedPart::fastest_parameters(int32_t n) const {
    // The blocks' calibration already ran the noise analysis at its number of positions.
    if (blocks && blocks->parameter_positions == n)
        return blocks->parameter_set.empty() ? nullptr : &tfhe::parameters_by_name(blocks->parameter_set);
    return circuit::choose_parameters(blocks ? build_row_circuit(n - 1, n) : build_circuit(n));
}

const tfhe::TfheParameters & QuantizedPart::parameters(int32_t n, const std::string & name) const {
    const tfhe::TfheParameters * chosen = !name.empty() ? &tfhe::parameters_by_name(name) : fastest_parameters(n);
    if (!chosen)
        fail("no production parameter set evaluates {} with negligible failures at {} positions; try fewer bits", part.text(), n);
    if (int(chosen->message_bits) < lut_bits())
        fail("--params {}: {} message bits, the part's lookups read {}", chosen->name, chosen->message_bits, lut_bits());
    if (chosen->insecure) std::fprintf(stderr, "warning: %s is an insecure test parameter set\n", chosen->name.c_str());
    return *chosen;
}

const std::vector<circuit::HeadRunRecord> & QuantizedPart::install(model::Gpt2Context & ctx, circuit::Executor executor,
                                                                    circuit::EncryptedKeys keys, bool kv_cache) const {
    if (blocks) {
        auto seam = std::make_unique<circuit::QuantizedBlockRange>(*blocks, executor, std::move(keys), kv_cache);
        const auto & runs = seam->runs();
        ctx.set_block_range(part.block_range(), std::move(seam));
        return runs;
    }
    if (head) {
        auto seam = std::make_unique<circuit::QuantizedHeadAttention>(*head, executor, std::move(keys), kv_cache);
        const auto & runs = seam->runs();
        ctx.set_head_attention(part.layer, part.head, std::move(seam));
        return runs;
    }
    auto seam = std::make_unique<circuit::QuantizedLayerAttention>(*attention, executor, std::move(keys), kv_cache);
    const auto & runs = seam->runs();
    ctx.set_layer_attention(part.layer, std::move(seam));
    return runs;
}

} // namespace fhegpt::cli
