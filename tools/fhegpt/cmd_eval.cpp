// fhegpt eval: the accuracy cost of quantizing a part of the model, as the founding document
// measures it: over every token position of the evaluation prompts, is the float model's
// top-1 prediction within the quantized model's top-1 / top-5 / top-10? Also the mean KL
// divergence of the next-token distributions, which moves with every logit, not only with
// flipped predictions. The quantized part runs through the circuit's clear simulation
// (bit-exact with the encrypted run). Writes a CSV
// and an SVG plot, one panel per part (--part layer0.head0,layer0.attn puts them side by side;
// --part layer0.mlp,layer0,all the whole blocks).
#include "circuit/quantized_part_seams.h"
#include "commands.h"
#include "common/error.h"
#include "common/svg_plot.h"
#include "model/agreement.h"
#include "model/gpt2_forward.h"
#include "quantized_part.h"

#include <chrono>
#include <cstdio>
#include <fstream>

namespace fhegpt::cli {

namespace {

// Eval names the parameter set of one new token at position 7 on the cache, the cost reference of
// `fhegpt compile` and docs/whole-model.md.
constexpr int32_t kParameterReportPositions = 8;

struct EvalOptions {
    QuantOptions quant;
    std::string n_bits = "2..8";
    std::string prompts_path = "data/eval_prompts.txt";
    std::string csv_path = "eval.csv";
    std::string plot_path = "eval.svg";
    int32_t max_prompts = 0;
};

// "B", "B1,B2,..." or "LO..HI" (hand-parsed: GCC 12 warns inside <regex> under sanitizers).
std::vector<int> parse_bit_list(const std::string & text) {
    auto number = [&](const std::string & piece) {
        if (piece.empty() || piece.size() > 2 || piece.find_first_not_of("0123456789") != std::string::npos)
            fail("--n-bits '{}': expected B, B1,B2,... or LO..HI", text);
        return std::stoi(piece);
    };
    std::vector<int> bits;
    const size_t dots = text.find("..");
    if (dots != std::string::npos) {
        const int lo = number(text.substr(0, dots)), hi = number(text.substr(dots + 2));
        for (int b = lo; b <= hi; ++b) bits.push_back(b);
    } else {
        size_t start = 0;
        while (start <= text.size()) {
            const size_t comma = std::min(text.find(',', start), text.size());
            bits.push_back(number(text.substr(start, comma - start)));
            start = comma + 1;
        }
    }
    if (bits.empty()) fail("--n-bits '{}': empty range", text);
    for (int b : bits)
        if (b < 2 || b > 11) fail("--n-bits: {} is outside 2..11", b);
    return bits;
}

// "layer0.head0,layer0.attn": one panel each.
std::vector<PartSpec> parse_parts(const std::string & text, const model::Gpt2HParams & hp) {
    std::vector<PartSpec> parts;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        parts.push_back(parse_part(text.substr(start, comma - start), hp));
        start = comma + 1;
    }
    return parts;
}

void run_eval(const EvalOptions & opt) {
    const model::Gpt2Model model = model::load_gpt2_model(opt.quant.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.quant.model_dir);
    const std::vector<PartSpec> parts = parse_parts(opt.quant.part, model.hparams);
    const std::vector<int> bit_list = parse_bit_list(opt.n_bits);
    std::vector<std::string> prompts = read_prompt_lines(opt.prompts_path);
    if (opt.max_prompts > 0 && prompts.size() > size_t(opt.max_prompts)) prompts.resize(size_t(opt.max_prompts));

    // Float logits of every prompt, once.
    std::vector<std::vector<int32_t>> tokens;
    std::vector<std::vector<float>> reference;
    {
        model::Gpt2Context ctx(model);
        for (const std::string & p : prompts) {
            tokens.push_back(tokenizer.encode(p));
            if (tokens.back().size() > size_t(model.hparams.n_ctx)) tokens.back().resize(size_t(model.hparams.n_ctx));
            ctx.reset();
            const auto logits = ctx.eval(tokens.back(), model::Logits::all);
            reference.emplace_back(logits.begin(), logits.end());
        }
    }

    std::ofstream csv(opt.csv_path);
    if (!csv) fail("{}: cannot write", opt.csv_path);
    csv << "part,n_bits,weight_bits,per_channel,weight_rounding,lut_bits,scales,positions,top1,top5,top10,mean_kl,parameter_set\n";
    std::vector<PlotPanel> panels;
    for (const PartSpec & part : parts) {
        PlotPanel panel{part.text() + (opt.quant.per_channel ? " (per-channel weights)" : "") +
                            (opt.quant.rounding() == quant::WeightRounding::nearest ? " (weights rounded to nearest)" : "") +
                            (opt.quant.absmax_scales ? " (absmax scales)" : ""),
                        "n_bits",
                        "agreement with the float model", {{"top-1", {}, {}}, {"top-5", {}, {}}, {"top-10", {}, {}}}};
        const PartCalibration calibration = calibration_inputs(model, tokenizer, part, opt.quant);
        for (int bits : bit_list) {
            const auto start = std::chrono::steady_clock::now();
            const QuantizedPart quantized = quantize_part(model, part, opt.quant, calibration, bits);
            model::TopKAgreement total;
            model::Gpt2Context ctx(model);
            quantized.install(ctx, circuit::Executor::simulate);
            for (size_t i = 0; i < prompts.size(); ++i) {
                ctx.reset();
                const auto logits = ctx.eval(tokens[i], model::Logits::all);
                total.add(model::top_k_agreement(reference[i], logits, model.hparams.n_vocab));
            }
            // None: no production set runs this configuration (simulation only).
            const tfhe::TfheParameters * params =
                quantized.fastest_parameters(std::min(kParameterReportPositions, model.hparams.n_ctx));
            const std::string set = params ? params->name : "none";
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::fprintf(stderr, "%s n_bits %2d (lookups %d bits): top-1 %.4f top-5 %.4f top-10 %.4f mean KL %.5f over %lld positions, "
                         "parameter set %s (%.1f s)\n",
                         part.text().c_str(), bits, quantized.lut_bits(), total.top1(), total.top5(), total.top10(),
                         total.mean_kl(), static_cast<long long>(total.positions), set.c_str(), seconds);
            const int weight_bits = opt.quant.weight_bits ? opt.quant.weight_bits : bits;
            const quant::WeightRounding rounding = quant::effective_weight_rounding(opt.quant.rounding(), weight_bits);
            csv << part.text() << ',' << bits << ',' << weight_bits << ',' << (opt.quant.per_channel ? 1 : 0) << ','
                << quant::weight_rounding_name(rounding) << ',' << quantized.lut_bits() << ','
                << (opt.quant.absmax_scales ? "absmax" : "clipped") << ',' << total.positions << ',' << total.top1() << ',' << total.top5() << ',' << total.top10() << ',' << total.mean_kl() << ',' << set << '\n';
            for (int s = 0; s < 3; ++s) panel.series[s].x.push_back(bits);
            panel.series[0].y.push_back(total.top1());
            panel.series[1].y.push_back(total.top5());
            panel.series[2].y.push_back(total.top10());
        }
        panels.push_back(std::move(panel));
    }
    if (!csv.flush()) fail("{}: write error", opt.csv_path);
    std::ofstream svg(opt.plot_path);
    svg << render_svg_line_panels(panels, "fhegpt: top-k agreement of the quantized model with the float model (" +
                                              opt.quant.model_dir + ")");
    if (!svg.flush()) fail("{}: write error", opt.plot_path);
    std::printf("wrote %s and %s\n", opt.csv_path.c_str(), opt.plot_path.c_str());
}

} // namespace

void add_eval_command(CLI::App & app) {
    auto opt = std::make_shared<EvalOptions>();
    CLI::App * cmd = app.add_subcommand("eval", "Top-k agreement and mean KL divergence of a quantized part against the float model");
    add_quant_options(*cmd, opt->quant); // --part may list several parts, comma-separated: one panel each
    cmd->add_option("--n-bits", opt->n_bits, "bit widths: B, B1,B2,... or LO..HI (2..11)")->capture_default_str();
    cmd->add_option("--prompts", opt->prompts_path, "evaluation prompts, one per line")->capture_default_str();
    cmd->add_option("--csv", opt->csv_path, "CSV output")->capture_default_str();
    cmd->add_option("--plot", opt->plot_path, "SVG plot output")->capture_default_str();
    cmd->add_option("--max-prompts", opt->max_prompts, "use only the first N prompts (0: all)")->check(CLI::NonNegativeNumber);
    cmd->callback([opt] { run_eval(*opt); });
}

} // namespace fhegpt::cli
