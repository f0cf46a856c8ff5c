// fhegpt compile: the circuit of a quantized part at a sequence length, and what it costs:
// the widest lookup, bootstraps by kind (and by layer for whole blocks), the parameter set of
// each lookup kind, and the time estimated from the bootstrap speed measured on this machine
// (tfhe/speed_calibration.h: a short calibration the first time, cached on disk).
#include "circuit/noise_analysis.h"
#include "circuit/attention_circuit.h"
#include "circuit/head_circuit.h"
#include "commands.h"
#include "common/error.h"
#include "quantized_part.h"
#include "tfhe/speed_calibration.h"
#include "tfhe/tfhe.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fhegpt::cli {

namespace {

struct CompileOptions {
    QuantOptions quant;
    int n_bits = 4;
    int32_t seq_len = 6;
    int32_t threads = 0;
    bool json = false;
    bool kv_cache = false;
    bool recalibrate = false;
};

// What compile reports about a part: its circuit's cost, the parameter set and noise, the time
// estimate, and the widths of its (first) head. Both printers read this alone.
struct CompileReport {
    std::string part, model_dir;
    int n_bits = 0, weight_bits = 0;
    int32_t seq_len = 0;
    bool kv_cache = false;
    circuit::CircuitAnalysis analysis;
    const tfhe::TfheParameters * chosen = nullptr; // null: no production set reads the lookups
    std::vector<circuit::NoiseAnalysis> noise;      // the cheapest set that reads the lookups, then the chosen one
    std::vector<std::string> fine_kinds;            // lookup kinds on the chosen set's fine key
    int64_t fine_bootstraps = 0;
    unsigned threads = 0;
    std::optional<tfhe::SpeedCalibration> speed;
    double estimate = -1; // seconds; -1 without a set
    // Widths are reported for the (first) head; a block adds its context rounding and output.
    const quant::QuantizedHead * first_head = nullptr;
    const circuit::QuantizedAttention * attention = nullptr;
    const circuit::QuantizedBlocks * blocks = nullptr;

    std::string parameter_set() const { return chosen ? chosen->name : "none"; }
    bool on_fine(const std::string & kind) const {
        return std::find(fine_kinds.begin(), fine_kinds.end(), kind) != fine_kinds.end();
    }
};

const quant::QuantizedHead * first_head_of(const QuantizedPart & quantized) {
    if (quantized.head) return &*quantized.head;
    if (quantized.attention) return &quantized.attention->heads[0];
    if (quantized.blocks)
        for (const circuit::QuantizedBlock & b : quantized.blocks->blocks)
            if (b.attention) return &b.attention->heads[0];
    return nullptr;
}

// The parameter set the noise analysis chooses, the noise of the cheapest set that reads the
// lookups (for comparison) and of the chosen one.
void choose_parameters(CompileReport & r, const circuit::Circuit & circuit) {
    r.chosen = circuit::choose_parameters(circuit);
    for (const tfhe::TfheParameters * p : tfhe::production_parameter_sets())
        if (int(p->message_bits) >= r.analysis.max_lookup_bits && (r.noise.empty() || p == r.chosen)) {
            r.noise.push_back(circuit::analyze_noise(circuit, *p));
            if (p == r.chosen) break;
        }
    if (r.chosen) {
        r.fine_kinds = r.noise.back().fine_kinds;
        r.fine_bootstraps = r.noise.back().fine_bootstraps;
    }
}

// The bootstrap speed of the chosen set on this machine (cached) and the estimate from it.
void estimate_time(CompileReport & r, bool recalibrate, bool quiet) {
    if (!r.chosen) return;
    if (!quiet) std::fprintf(stderr, "compile: bootstrap speed of %s on this machine...\n", r.chosen->name.c_str());
    r.speed = tfhe::calibrate_bootstrap_speed(*r.chosen, {r.threads, recalibrate, {}});
    r.estimate = r.speed->estimate_seconds(r.analysis.bootstraps - r.fine_bootstraps, r.fine_bootstraps);
}

void print_json(const CompileReport & r) {
    const circuit::CircuitAnalysis & a = r.analysis;
    const std::string set = r.parameter_set();
    nlohmann::json j;
    j["part"] = r.part;
    j["n_bits"] = r.n_bits;
    j["seq_len"] = r.seq_len;
    j["kv_cache"] = r.kv_cache;
    j["max_bit_width"] = a.max_lookup_bits;
    j["pbs_total"] = a.bootstraps;
    j["pbs_by_kind"] = a.bootstraps_by_kind;
    j["pbs_by_depth"] = a.bootstraps_by_depth; // the executor's batches, in order (0: none at that depth)
    nlohmann::json params = nlohmann::json::object();
    for (const auto & [kind, bits] : a.lookup_bits_by_kind)
        params[kind] = {{"input_bits", bits}, {"parameter_set", set},
                        {"bootstrap_key", r.on_fine(kind) ? "fine" : "standard"}};
    j["params_by_lookup"] = params;
    j["estimated_seconds"] = r.estimate;
    if (r.speed)
        j["bootstrap_speed"] = {{"cpu", r.speed->cpu},
                                {"fft_kernel", r.speed->fft_kernel},
                                {"threads", r.speed->threads},
                                {"measured_at", r.speed->measured_at},
                                {"from_cache", r.speed->from_cache},
                                {"pbs_per_s", r.speed->standard.batch_per_second},
                                {"fine_pbs_per_s", r.speed->fine ? r.speed->fine->batch_per_second : 0.0}};
    j["parameter_set"] = set;
    j["fine_bootstraps"] = r.fine_bootstraps;
    nlohmann::json noise_json = nlohmann::json::array();
    for (const circuit::NoiseAnalysis & na : r.noise)
        noise_json.push_back({{"parameter_set", na.parameter_set},
                              {"worst_log2_p_fail", na.worst_log2_p_fail},
                              {"worst_kind", na.worst_kind},
                              {"log2_expected_failures", na.log2_expected_failures}});
    j["noise"] = noise_json;
    j["threads"] = r.threads;
    j["depth"] = a.depth;
    j["widths"] = nlohmann::json::object();
    if (r.first_head) {
        const quant::QuantizedHead & head = *r.first_head;
        j["widths"] = {{"x", head.x_bits},
                       {"weights", r.weight_bits},
                       {"qkv_accumulator", {head.acc_bits[0], head.acc_bits[1], head.acc_bits[2]}},
                       {"q_k_v", head.lut_bits}, // buckets; their log codes: q_k_v_levels per sign
                       {"q_k_v_levels", head.top_code() + 1},
                       {"score", head.score_bits},
                       {"softmax_denominator", head.denominator_bits(r.seq_len)},
                       {"output", head.output_bits(r.seq_len)}};
        j["score_bucket_width"] = head.score_bucket_width();
        j["exp_reference"] = head.exp_reference;
    }
    if (r.blocks) {
        j["pbs_by_layer"] = a.bootstraps_by_section;
        j["widths"]["residual"] = r.blocks->residual.width;
        j["stream_noise_log2"] = r.blocks->stream_noise_log2;
        j["widths"]["lookups"] = r.blocks->lut_bits;
    }
    if (r.attention) {
        std::vector<int> context;
        for (int32_t h = 0; h < r.attention->n_head; ++h) context.push_back(r.attention->context_width(h));
        j["widths"]["context_by_head"] = context;
        j["widths"]["block_output"] = r.attention->out_bits;
    }
    j["inputs"] = a.inputs;
    j["outputs"] = a.outputs;
    j["linear_nodes"] = a.linear_nodes;
    j["tables"] = a.tables;
    std::printf("%s\n", j.dump(2).c_str());
}

void print_text(const CompileReport & r) {
    const circuit::CircuitAnalysis & a = r.analysis;
    const std::string set = r.parameter_set();
    std::printf("%s of %s at n_bits %d, %d positions%s\n", r.part.c_str(), r.model_dir.c_str(), r.n_bits, r.seq_len,
                r.kv_cache ? " (one new token on the KV cache)" : "");
    if (r.first_head) {
        const quant::QuantizedHead & head = *r.first_head;
        std::printf("  widths%s: x %d, weights %d, q/k/v accumulators %d/%d/%d, q/k/v buckets %d (log codes, %lld levels "
                    "per sign), scores %d, softmax sum %d, output %d bits\n",
                    r.blocks ? " of the first head" : "", head.x_bits, r.weight_bits, head.acc_bits[0], head.acc_bits[1],
                    head.acc_bits[2], head.lut_bits, static_cast<long long>(head.top_code() + 1), head.score_bits,
                    head.denominator_bits(r.seq_len), head.output_bits(r.seq_len));
    }
    if (r.blocks) {
        std::printf("  residual stream %d bits (calibrated for c_proj inputs of noise 2^%.1f), lookups %d bits; "
                    "bootstraps by layer:",
                    r.blocks->residual.width, r.blocks->stream_noise_log2, r.blocks->lut_bits);
        for (const auto & [section, count] : a.bootstraps_by_section)
            std::printf(" %s %lld", section.c_str(), static_cast<long long>(count));
        std::printf("\n");
    }
    if (r.attention) {
        std::printf("  block: head outputs rounded to %d bits from", r.attention->lut_bits);
        for (int32_t h = 0; h < r.attention->n_head; ++h) std::printf(" %d", r.attention->context_width(h));
        std::printf(" bits; c_proj output %d bits\n", r.attention->out_bits);
    }
    std::printf("  compiled with %d-bit lookups: parameter set %s\n", a.max_lookup_bits, set.c_str());
    for (const circuit::NoiseAnalysis & na : r.noise)
        std::printf("    with %-24s worst bootstrap log2 p_fail %7.1f (%s), expected failures per run 2^%.1f%s\n",
                    na.parameter_set.c_str(), na.worst_log2_p_fail, na.worst_kind.c_str(), na.log2_expected_failures,
                    na.parameter_set == set ? "" : " (too many)");
    std::printf("  bootstraps: %lld in %d sequential batches\n", static_cast<long long>(a.bootstraps), a.depth);
    for (const auto & [kind, count] : a.bootstraps_by_kind) {
        const int bits = a.lookup_bits_by_kind.at(kind);
        const char * key = r.on_fine(kind) ? ", fine bootstrapping key" : "";
        if (bits == 0)
            std::printf("    %-26s %7lld  (sign%s)\n", kind.c_str(), static_cast<long long>(count), key);
        else
            std::printf("    %-26s %7lld  (%d-bit%s)\n", kind.c_str(), static_cast<long long>(count), bits, key);
    }
    if (r.speed)
        std::printf("  estimated time: %.1f s at %.0f PBS/s%s (%s, %s%s)\n", r.estimate, r.speed->standard.batch_per_second,
                    r.speed->fine ? fmt::format(", fine key {:.0f} PBS/s", r.speed->fine->batch_per_second).c_str() : "",
                    set.c_str(), r.speed->machine_description().c_str(),
                    r.speed->from_cache ? "; cached, --recalibrate to measure again" : "");
    else if (uint32_t(a.max_lookup_bits) > tfhe::widest_production_message_bits())
        std::printf("  no production parameter set reads %d-bit lookups (1..%u exist): simulation only\n", a.max_lookup_bits,
                    tfhe::widest_production_message_bits());
    else
        std::printf("  no production parameter set runs it with negligible failures: simulation only\n");
}

// Stages: quantize the part on the calibration prompts, build its circuit (with --kv-cache, the
// circuit of one new token at position seq_len - 1 on the cache), analyze its cost and noise,
// estimate its time, print.
void run_compile(const CompileOptions & opt) {
    const model::Gpt2Model model = model::load_gpt2_model(opt.quant.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.quant.model_dir);
    const PartSpec part = parse_part(opt.quant.part, model.hparams);
    if (opt.seq_len < 1 || opt.seq_len > model.hparams.n_ctx)
        fail("--seq-len {}: must be in [1, {}]", opt.seq_len, model.hparams.n_ctx);
    const QuantizedPart quantized = calibrate_part(model, tokenizer, part, opt.quant, opt.n_bits);

    const circuit::Circuit circuit =
        opt.kv_cache ? quantized.build_row_circuit(opt.seq_len - 1, opt.seq_len) : quantized.build_circuit(opt.seq_len);

    CompileReport r;
    r.part = part.text();
    r.model_dir = opt.quant.model_dir;
    r.n_bits = opt.n_bits;
    r.weight_bits = opt.quant.weight_bits ? opt.quant.weight_bits : opt.n_bits;
    r.seq_len = opt.seq_len;
    r.kv_cache = opt.kv_cache;
    r.first_head = first_head_of(quantized);
    r.attention = quantized.attention ? &*quantized.attention : nullptr;
    r.blocks = quantized.blocks ? &*quantized.blocks : nullptr;
    r.threads = opt.threads > 0 ? unsigned(opt.threads) : std::max(1u, std::thread::hardware_concurrency());
    r.analysis = circuit::analyze(circuit);
    choose_parameters(r, circuit);
    estimate_time(r, opt.recalibrate, opt.json);

    if (opt.json) print_json(r);
    else print_text(r);
}

} // namespace

void add_compile_command(CLI::App & app) {
    auto opt = std::make_shared<CompileOptions>();
    CLI::App * cmd = app.add_subcommand("compile", "Build the TFHE circuit of a quantized part and report its cost");
    add_quant_options(*cmd, opt->quant);
    cmd->add_option("--n-bits", opt->n_bits, "activation and weight bits")->check(CLI::Range(2, 11))->capture_default_str();
    cmd->add_option("--seq-len", opt->seq_len, "positions")->capture_default_str();
    cmd->add_option("-t,--threads", opt->threads, "threads for the estimate (0: all cores)")->check(CLI::NonNegativeNumber);
    cmd->add_flag("--json", opt->json, "print one JSON object");
    cmd->add_flag("--recalibrate", opt->recalibrate, "measure the bootstrap speed again instead of reading its cache");
    cmd->add_flag("--kv-cache", opt->kv_cache,
                  "the cost of one new token at position seq-len - 1 with the encrypted KV cache");
    cmd->callback([opt] { run_compile(*opt); });
}

} // namespace fhegpt::cli
