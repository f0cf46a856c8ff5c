// fhegpt perplexity: the perplexity of a GPT-2 checkpoint on a text file. The tokens are cut
// into consecutive non-overlapping windows of --ctx tokens; every token of a window but its
// first is predicted from the tokens before it in the window. Progress goes to stderr; the last
// line of stdout is the perplexity alone. --logits FILE also writes the logits the score was
// computed from, for comparison with other implementations (tests/hf checks them against
// Hugging Face transformers).
#include "commands.h"
#include "common/error.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace fhegpt::cli {

namespace {

struct PerplexityOptions {
    std::string model_dir;
    std::string text_path;
    int32_t n_ctx = 0;
    int32_t threads = 0;
    std::string logits_path; // empty: none written
};

// "must be >= 0" without CLI11's NonNegativeNumber message, which prints DBL_MAX in full.
const CLI::Validator kNonNegative(
    [](std::string & text) {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "'" + text + "' is not a number";
        return value >= 0 ? std::string() : "must be >= 0, not " + text;
    },
    ">= 0");

std::string read_file(const std::string & path) {
    std::FILE * f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) fail("{}: cannot open: {}", path, std::strerror(errno));
    std::string data;
    char buffer[1 << 16];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) data.append(buffer, n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) fail("{}: read error", path);
    return data;
}

void run_perplexity(const PerplexityOptions & opt) {
    const model::Gpt2Model model = model::load_gpt2_model(opt.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.model_dir);
    if (tokenizer.vocab_size() > model.hparams.n_vocab)
        fail("{}: the tokenizer has {} tokens, the model only {}", opt.model_dir, tokenizer.vocab_size(),
             model.hparams.n_vocab);
    const int32_t window = opt.n_ctx == 0 ? model.hparams.n_ctx : opt.n_ctx;
    if (window < 2 || window > model.hparams.n_ctx)
        fail("--ctx {}: the window must be in [2, {}] (the model's context)", window, model.hparams.n_ctx);

    const std::vector<int32_t> tokens = tokenizer.encode(read_file(opt.text_path));
    if (tokens.size() < 2) fail("{}: {} tokens, at least 2 are needed", opt.text_path, tokens.size());

    model::Gpt2ContextParams params;
    params.n_ctx = window;
    params.n_threads = opt.threads;
    model::Gpt2Context ctx(model, params);
    std::fprintf(stderr, "%s: %zu tokens, windows of %d tokens\n", opt.text_path.c_str(), tokens.size(), window);

    std::FILE * logits_file = nullptr;
    if (!opt.logits_path.empty()) {
        logits_file = std::fopen(opt.logits_path.c_str(), "wb");
        if (logits_file == nullptr) fail("{}: cannot create: {}", opt.logits_path, std::strerror(errno));
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE *)> logits_closer(logits_file, [](std::FILE * f) { return f ? std::fclose(f) : 0; });
    model::PerplexityLogits write_logits;
    if (logits_file != nullptr) {
        write_logits = [&](std::span<const float> rows) {
            static_assert(std::endian::native == std::endian::little, "--logits writes little-endian float32");
            if (std::fwrite(rows.data(), sizeof(float), rows.size(), logits_file) != rows.size())
                fail("{}: write error: {}", opt.logits_path, std::strerror(errno));
        };
    }

    const model::PerplexityResult result = model::evaluate_perplexity(
        ctx, tokens, window, [](int32_t done, int32_t total, const model::PerplexityResult & so_far) {
            std::fprintf(stderr, "[%d/%d] perplexity %.4f over %lld tokens, %.0f tokens/s\n", done, total,
                         so_far.perplexity(), static_cast<long long>(so_far.n_predicted),
                         static_cast<double>(so_far.n_predicted + so_far.n_windows) / so_far.seconds);
        },
        write_logits);
    if (logits_file != nullptr && std::fclose(logits_closer.release()) != 0)
        fail("{}: write error: {}", opt.logits_path, std::strerror(errno));
    std::fprintf(stderr, "predicted %lld tokens in %d windows, mean negative log-likelihood %.6f nats\n",
                 static_cast<long long>(result.n_predicted), result.n_windows, result.mean_nll());
    std::printf("%.6f\n", result.perplexity());
    if (std::fflush(stdout) != 0) fail("<stdout>: write error: {}", std::strerror(errno));
}

} // namespace

void add_perplexity_command(CLI::App & app) {
    auto opt = std::make_shared<PerplexityOptions>();
    CLI::App * cmd = app.add_subcommand(
        "perplexity", "Perplexity of a GPT-2 model on a text file; the last line of stdout is the number alone");
    cmd->add_option("-m,--model", opt->model_dir,
                    "Model directory: config.json, model.safetensors, vocab.json, merges.txt")
        ->required();
    cmd->add_option("-f,--file", opt->text_path,
                    "Text file to score (a literal <|endoftext|> counts as that token)")
        ->required();
    cmd->add_option("-c,--ctx", opt->n_ctx,
                    "Window length in tokens: the text is cut into consecutive windows of this many tokens, each "
                    "evaluated from an empty context; 0: the model's context (n_positions)")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("-t,--threads", opt->threads, "Worker threads; 0: FHEGPT_THREADS or one per core")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("--logits", opt->logits_path,
                    "Also write the logits of every token of the windows to this file, in text order: float32 "
                    "little-endian, one row of vocab_size values per token (each window's last token included)");
    cmd->callback([opt] { run_perplexity(*opt); });
}

} // namespace fhegpt::cli
