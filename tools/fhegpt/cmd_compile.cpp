// fhegpt compile: the circuit of a quantized part at a sequence length, and what it costs:
// the widest lookup, bootstraps by kind (and by layer for whole blocks), the parameter set of
// each lookup kind, and the time estimated from the bootstrap speed measured on this machine
// (tfhe/speed_calibration.h: a short calibration the first time, cached on disk).
#include "circuit/analysis.h"
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
#include <thread>

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

void run_compile(const CompileOptions & opt) {
    const model::Gpt2Model model = model::load_gpt2_model(opt.quant.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.quant.model_dir);
    const PartSpec part = parse_part(opt.quant.part, model.hparams);
    if (opt.seq_len < 1 || opt.seq_len > model.hparams.n_ctx)
        fail("--seq-len {}: must be in [1, {}]", opt.seq_len, model.hparams.n_ctx);
    const QuantizedPart quantized = calibrate_part(model, tokenizer, part, opt.quant, opt.n_bits);
    // Widths are reported for the (first) head; a block adds its context rounding and output.
    const quant::QuantizedHead * first_head = quantized.head ? &*quantized.head
                                            : quantized.attention ? &quantized.attention->heads[0] : nullptr;
    if (quantized.blocks)
        for (const circuit::QuantizedBlock & b : quantized.blocks->blocks)
            if (b.attention && !first_head) first_head = &b.attention->heads[0];
    // With --kv-cache: the circuit of one new token at position seq_len - 1 on the cache.
    const circuit::Circuit circuit =
        opt.kv_cache ? quantized.build_row_circuit(opt.seq_len - 1, opt.seq_len) : quantized.build_circuit(opt.seq_len);
    const circuit::CircuitAnalysis a = circuit::analyze(circuit);

    const tfhe::TfheParameters * chosen = circuit::choose_parameters(circuit);
    const bool has_set = chosen != nullptr;
    const std::string set = has_set ? chosen->name : "none";
    const unsigned threads = opt.threads > 0 ? unsigned(opt.threads) : std::max(1u, std::thread::hardware_concurrency());
    // The noise of the chosen set, and of the cheapest set that reads the lookups (for comparison).
    std::vector<circuit::NoiseAnalysis> noise;
    for (const tfhe::TfheParameters * p : tfhe::production_parameter_sets())
        if (int(p->message_bits) >= a.max_lookup_bits && (noise.empty() || p == chosen)) {
            noise.push_back(circuit::analyze_noise(circuit, *p));
            if (p == chosen) break;
        }
    // Lookups of these kinds run on the chosen set's fine bootstrapping key.
    const std::vector<std::string> fine_kinds = has_set ? noise.back().fine_kinds : std::vector<std::string>{};
    const int64_t fine_bootstraps = has_set ? noise.back().fine_bootstraps : 0;
    const auto on_fine = [&](const std::string & kind) {
        return std::find(fine_kinds.begin(), fine_kinds.end(), kind) != fine_kinds.end();
    };
    std::optional<tfhe::SpeedCalibration> speed;
    if (has_set) {
        if (!opt.json) std::fprintf(stderr, "compile: bootstrap speed of %s on this machine...\n", set.c_str());
        speed = tfhe::calibrate_bootstrap_speed(*chosen, {threads, opt.recalibrate, {}});
    }
    const double estimate = speed ? speed->estimate_seconds(a.bootstraps - fine_bootstraps, fine_bootstraps) : -1;

    nlohmann::json j;
    j["part"] = part.text();
    j["n_bits"] = opt.n_bits;
    j["seq_len"] = opt.seq_len;
    j["kv_cache"] = opt.kv_cache;
    j["max_bit_width"] = a.max_lookup_bits;
    j["pbs_total"] = a.bootstraps;
    j["pbs_by_kind"] = a.bootstraps_by_kind;
    j["pbs_by_depth"] = a.bootstraps_by_depth; // the executor's batches, in order (0: none at that depth)
    nlohmann::json params = nlohmann::json::object();
    for (const auto & [kind, bits] : a.lookup_bits_by_kind)
        params[kind] = {{"input_bits", bits}, {"parameter_set", set},
                        {"bootstrap_key", on_fine(kind) ? "fine" : "standard"}};
    j["params_by_lookup"] = params;
    j["estimated_seconds"] = estimate;
    if (speed)
        j["bootstrap_speed"] = {{"cpu", speed->cpu},
                                {"fft_kernel", speed->fft_kernel},
                                {"threads", speed->threads},
                                {"measured_at", speed->measured_at},
                                {"from_cache", speed->from_cache},
                                {"pbs_per_s", speed->standard.batch_per_second},
                                {"fine_pbs_per_s", speed->fine ? speed->fine->batch_per_second : 0.0}};
    j["parameter_set"] = set;
    j["fine_bootstraps"] = fine_bootstraps;
    nlohmann::json noise_json = nlohmann::json::array();
    for (const circuit::NoiseAnalysis & na : noise)
        noise_json.push_back({{"parameter_set", na.parameter_set},
                              {"worst_log2_p_fail", na.worst_log2_p_fail},
                              {"worst_kind", na.worst_kind},
                              {"log2_expected_failures", na.log2_expected_failures}});
    j["noise"] = noise_json;
    j["threads"] = threads;
    j["depth"] = a.depth;
    j["widths"] = nlohmann::json::object();
    if (first_head) {
        const quant::QuantizedHead & head = *first_head;
        j["widths"] = {{"x", head.x_bits},
                       {"weights", opt.quant.weight_bits ? opt.quant.weight_bits : opt.n_bits},
                       {"qkv_accumulator", {head.acc_bits[0], head.acc_bits[1], head.acc_bits[2]}},
                       {"q_k_v", head.lut_bits}, // buckets; their log codes: q_k_v_levels per sign
                       {"q_k_v_levels", head.top_code() + 1},
                       {"score", head.score_bits},
                       {"softmax_denominator", head.denominator_bits(opt.seq_len)},
                       {"output", head.output_bits(opt.seq_len)}};
        j["score_bucket_width"] = head.score_bucket_width();
        j["exp_reference"] = head.exp_reference;
    }
    if (quantized.blocks) {
        j["pbs_by_layer"] = a.bootstraps_by_section;
        j["widths"]["residual"] = quantized.blocks->residual.width;
        j["widths"]["lookups"] = quantized.blocks->lut_bits;
    }
    if (quantized.attention) {
        std::vector<int> context;
        for (int32_t h = 0; h < quantized.attention->n_head; ++h) context.push_back(quantized.attention->context_width(h));
        j["widths"]["context_by_head"] = context;
        j["widths"]["block_output"] = quantized.attention->out_bits;
    }
    j["inputs"] = a.inputs;
    j["outputs"] = a.outputs;
    j["linear_nodes"] = a.linear_nodes;
    j["tables"] = a.tables;
    if (opt.json) {
        std::printf("%s\n", j.dump(2).c_str());
        return;
    }
    std::printf("%s of %s at n_bits %d, %d positions%s\n", part.text().c_str(), opt.quant.model_dir.c_str(), opt.n_bits,
                opt.seq_len, opt.kv_cache ? " (one new token on the KV cache)" : "");
    if (first_head) {
        const quant::QuantizedHead & head = *first_head;
        std::printf("  widths%s: x %d, weights %d, q/k/v accumulators %d/%d/%d, q/k/v buckets %d (log codes, %lld levels "
                    "per sign), scores %d, softmax sum %d, output %d bits\n",
                    quantized.blocks ? " of the first head" : "", head.x_bits,
                    opt.quant.weight_bits ? opt.quant.weight_bits : opt.n_bits, head.acc_bits[0], head.acc_bits[1],
                    head.acc_bits[2], head.lut_bits, static_cast<long long>(head.top_code() + 1), head.score_bits,
                    head.denominator_bits(opt.seq_len), head.output_bits(opt.seq_len));
    }
    if (quantized.blocks) {
        std::printf("  residual stream %d bits, lookups %d bits; bootstraps by layer:", quantized.blocks->residual.width,
                    quantized.blocks->lut_bits);
        for (const auto & [section, count] : a.bootstraps_by_section)
            std::printf(" %s %lld", section.c_str(), static_cast<long long>(count));
        std::printf("\n");
    }
    if (quantized.attention) {
        std::printf("  block: head outputs rounded to %d bits from", quantized.attention->lut_bits);
        for (int32_t h = 0; h < quantized.attention->n_head; ++h) std::printf(" %d", quantized.attention->context_width(h));
        std::printf(" bits; c_proj output %d bits\n", quantized.attention->out_bits);
    }
    std::printf("  compiled with %d-bit lookups: parameter set %s\n", a.max_lookup_bits, set.c_str());
    for (const circuit::NoiseAnalysis & na : noise)
        std::printf("    with %-24s worst bootstrap log2 p_fail %7.1f (%s), expected failures per run 2^%.1f%s\n",
                    na.parameter_set.c_str(), na.worst_log2_p_fail, na.worst_kind.c_str(), na.log2_expected_failures,
                    na.parameter_set == set ? "" : " (too many)");
    std::printf("  bootstraps: %lld in %d sequential batches\n", static_cast<long long>(a.bootstraps), a.depth);
    for (const auto & [kind, count] : a.bootstraps_by_kind) {
        const int bits = a.lookup_bits_by_kind.at(kind);
        const char * key = on_fine(kind) ? ", fine bootstrapping key" : "";
        if (bits == 0)
            std::printf("    %-26s %7lld  (sign%s)\n", kind.c_str(), static_cast<long long>(count), key);
        else
            std::printf("    %-26s %7lld  (%d-bit%s)\n", kind.c_str(), static_cast<long long>(count), bits, key);
    }
    if (has_set)
        std::printf("  estimated time: %.1f s at %.0f PBS/s%s (%s, %s%s)\n", estimate, speed->standard.batch_per_second,
                    speed->fine ? fmt::format(", fine key {:.0f} PBS/s", speed->fine->batch_per_second).c_str() : "",
                    set.c_str(), speed->machine_description().c_str(),
                    speed->from_cache ? "; cached, --recalibrate to measure again" : "");
    else
        std::printf("  no production parameter set reads %d-bit lookups (1..6 exist): simulation only\n", a.max_lookup_bits);
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
