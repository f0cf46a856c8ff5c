// fhegpt generate: continues a prompt with a GPT-2 checkpoint directory (config.json,
// model.safetensors, vocab.json, merges.txt). The continuation streams to stdout token by
// token; the prompt size and the prefill / decode speeds go to stderr. With --simulate PART or
// --encrypt PART, that part (a head, an attention block or a run of whole blocks) runs quantized through the
// circuit's clear simulation, or on ciphertexts under fresh local keys; the part keeps its
// heads' (encrypted) keys and values, so that each token evaluates only its own row. With
// --server URL, --encrypt PART runs on a part server (fhegpt-server) instead: the keys are
// generated here, the evaluation keys uploaded, and each token sends only its own encrypted
// hidden state (the server keeps the encrypted key/value cache).
#include "commands.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "quantized_part.h"
#include "remote_generation.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/tfhe.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fhegpt::cli {

namespace {

struct GenerateOptions {
    std::string model_dir;
    std::string prompt;
    int32_t n_predict = 32;
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    uint64_t seed = 0;
    int32_t threads = 0;
    int32_t n_ctx = 0;
    bool ignore_eot = false;
    // A quantized part: at most one of the two.
    std::string simulate_part, encrypt_part;
    int n_bits = 4;
    bool n_bits_given = false;
    std::string params;
    std::string server_url;
    std::string calibration_path = "data/calibration_prompts.txt";
    bool no_kv_cache = false;
    std::string device = "auto";
};

// "must be >= 0" without CLI11's NonNegativeNumber message, which prints DBL_MAX in full.
const CLI::Validator kNonNegative(
    [](std::string & text) {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "'" + text + "' is not a number";
        return value >= 0 ? std::string() : "must be >= 0, not " + text;
    },
    ">= 0");

const CLI::Validator kProbability(
    [](std::string & text) {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "'" + text + "' is not a number";
        return value > 0 && value <= 1 ? std::string() : "must be in (0, 1], not " + text;
    },
    "in (0, 1]");

void write_bytes(const std::string & bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
        fail("<stdout>: write error: {}", std::strerror(errno));
}

void run_generate(const GenerateOptions & opt) {
    tfhe::resolve_bootstrap_device(opt.device); // a missing device fails before the model loads
    const model::Gpt2Model model = model::load_gpt2_model(opt.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.model_dir);
    if (tokenizer.vocab_size() > model.hparams.n_vocab)
        fail("{}: the tokenizer has {} tokens, the model only {}", opt.model_dir, tokenizer.vocab_size(),
             model.hparams.n_vocab);

    // GPT-2 has no BOS token: an empty prompt starts from <|endoftext|>, as in training.
    std::vector<int32_t> prompt = tokenizer.encode(opt.prompt);
    if (prompt.empty()) prompt.push_back(tokenizer.eot_token());

    model::Gpt2ContextParams params;
    params.n_ctx = opt.n_ctx;
    params.n_threads = opt.threads;
    model::Gpt2Context ctx(model, params);
    if (prompt.size() > static_cast<size_t>(ctx.n_ctx()))
        fail("the prompt has {} tokens, longer than the context of {} tokens", prompt.size(), ctx.n_ctx());

    // The quantized part, its keys (they must outlive ctx's use of them) and its records.
    const bool encrypted = !opt.encrypt_part.empty();
    std::optional<tfhe::ClientKey> client;
    std::optional<tfhe::ServerKey> server;
    const std::vector<circuit::HeadRunRecord> * runs = nullptr;
    std::unique_ptr<net::RemotePart> remote;
    if (!opt.server_url.empty()) {
        if (!encrypted) fail("--server: name the part it serves with --encrypt PART");
        if (!opt.simulate_part.empty()) fail("--simulate and --encrypt: choose one");
        if (!opt.params.empty()) fail("--params: the server chooses the parameter set");
        remote = install_remote_part(ctx, model, opt.server_url, opt.encrypt_part, opt.n_bits_given ? opt.n_bits : 0, true,
                                     opt.no_kv_cache);
    } else if (encrypted || !opt.simulate_part.empty()) {
        if (encrypted && !opt.simulate_part.empty()) fail("--simulate and --encrypt: choose one");
        QuantOptions quant;
        quant.model_dir = opt.model_dir;
        quant.part = encrypted ? opt.encrypt_part : opt.simulate_part;
        quant.calibration_path = opt.calibration_path;
        const PartSpec part = parse_part(quant.part, model.hparams);
        const QuantizedPart quantized = calibrate_part(model, tokenizer, part, quant, opt.n_bits);
        circuit::EncryptedKeys keys;
        if (encrypted) {
            const int32_t longest = std::min<int32_t>(ctx.n_ctx(), int32_t(prompt.size()) + opt.n_predict);
            const tfhe::TfheParameters & params = quantized.parameters(longest, opt.params);
            client = tfhe::generate_client_key(params);
            server = tfhe::decompress_server_key(tfhe::generate_compressed_server_key(*client));
            server->accelerator = tfhe::make_bootstrap_accelerator(*server, opt.device);
            keys = {&*client, &*server, &ThreadPool::global(), {}};
            std::fprintf(stderr, "%s at %d bits on ciphertexts (%s, keys generated here, bootstraps on %s)\n",
                         quant.part.c_str(), opt.n_bits, params.name.c_str(),
                         server->accelerator ? server->accelerator->description().c_str() : "cpu");
        } else {
            std::fprintf(stderr, "%s at %d bits, clear simulation of its circuit\n", quant.part.c_str(), opt.n_bits);
        }
        runs = &quantized.install(ctx, encrypted ? circuit::Executor::encrypted : circuit::Executor::simulate, keys,
                                  !opt.no_kv_cache);
    }

    model::GenerateParams gen;
    gen.n_predict = opt.n_predict;
    gen.stop_token = opt.ignore_eot ? -1 : tokenizer.eot_token();
    gen.sampling.temperature = opt.temperature;
    gen.sampling.top_k = opt.top_k;
    gen.sampling.top_p = opt.top_p;
    gen.sampling.seed = opt.seed;

    const model::GenerateResult result = model::generate(ctx, prompt, gen, [&](int32_t token) {
        if (token >= tokenizer.vocab_size())
            fail("the model chose token {}, which the tokenizer ({} tokens) cannot write", token, tokenizer.vocab_size());
        write_bytes(tokenizer.token_bytes(token));
        if (runs && !runs->empty()) {
            const circuit::HeadRunRecord & run = runs->back();
            std::fprintf(stderr, "  [rows %d..%d: %lld bootstraps in %.1f s, %lld differ from the simulation]\n", run.first,
                         run.n - 1, (long long)run.bootstraps, run.seconds, (long long)run.mismatches);
        }
        return true;
    });
    write_bytes("\n");

    std::fprintf(stderr, "prompt: %d tokens, prefill %.1f tokens/s (%.1f ms)\n", result.n_prompt,
                 result.prefill_tokens_per_second(), result.prefill_seconds * 1e3);
    std::fprintf(stderr, "generated: %zu tokens, decode %.1f tokens/s (%d steps, %.1f ms), stop: %s\n",
                 result.tokens.size(), result.decode_tokens_per_second(), result.n_decode, result.decode_seconds * 1e3,
                 model::stop_reason_name(result.stop));
    if (runs && encrypted) {
        int64_t bootstraps = 0, mismatches = 0;
        double seconds = 0;
        for (const circuit::HeadRunRecord & run : *runs) {
            bootstraps += run.bootstraps;
            mismatches += run.mismatches;
            seconds += run.seconds;
        }
        std::fprintf(stderr, "encrypted part: %zu evaluations, %lld bootstraps in %.1f s, %lld values differ from the simulation\n",
                     runs->size(), (long long)bootstraps, seconds, (long long)mismatches);
        if (mismatches != 0) fail("{} encrypted values differ from the simulation", mismatches);
    }
    if (remote) print_remote_summary(*remote);
}

} // namespace

void add_generate_command(CLI::App & app) {
    auto opt = std::make_shared<GenerateOptions>();
    CLI::App * cmd = app.add_subcommand(
        "generate", "Continue a prompt with a GPT-2 model; the text streams to stdout, speeds to stderr");
    cmd->add_option("-m,--model", opt->model_dir,
                    "Model directory: config.json, model.safetensors, vocab.json, merges.txt")
        ->required();
    cmd->add_option("-p,--prompt", opt->prompt, "Text to continue (empty: start from <|endoftext|>)");
    cmd->add_option("-n,--n-predict", opt->n_predict, "Most tokens to generate")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("--temperature", opt->temperature, "Sampling temperature; 0 picks the most likely token (greedy)")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("--top-k", opt->top_k, "Sample among the K most likely tokens only; 0: no limit")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("--top-p", opt->top_p,
                    "Sample among the most likely tokens whose probabilities sum to P (nucleus); 1: no limit")
        ->capture_default_str()
        ->check(kProbability);
    cmd->add_option("--seed", opt->seed, "Random seed of the sampler: the same seed gives the same text")
        ->capture_default_str();
    cmd->add_option("-t,--threads", opt->threads, "Worker threads; 0: FHEGPT_THREADS or one per core")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("-c,--ctx", opt->n_ctx, "Context length in tokens; 0: the model's (n_positions)")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_flag("--ignore-eot", opt->ignore_eot, "Keep generating after <|endoftext|> instead of stopping");
    cmd->add_option("--simulate", opt->simulate_part,
                    "Run this part quantized, through its circuit's clear simulation: layerL.headH, layerL.attn, layerL.mlp, "
                    "layerL, layersA-B or all");
    cmd->add_option("--encrypt", opt->encrypt_part,
                    "Run this part quantized on ciphertexts, with keys generated here: layerL.headH, layerL.attn, layerL.mlp, "
                    "layerL, layersA-B or all");
    cmd->add_option("--n-bits", opt->n_bits, "Bits of the quantized part (with --server: checked against the server's)")
        ->check(CLI::Range(2, 11))
        ->capture_default_str()
        ->each([opt](const std::string &) { opt->n_bits_given = true; });
    cmd->add_option("--server", opt->server_url,
                    "Run the --encrypt part on this part server (http://HOST:PORT, see fhegpt-server); keys stay here");
    cmd->add_option("--params", opt->params, "TFHE parameter set for --encrypt (default: chosen by the noise analysis)");
    cmd->add_option("--calibration", opt->calibration_path, "Calibration prompts of the quantized part")->capture_default_str();
    cmd->add_flag("--no-kv-cache", opt->no_kv_cache,
                  "Recompute the quantized part over the whole sequence at each token instead of keeping its keys and values "
                  "(with --server: send every position each time, the server keeps no cache)");
    cmd->add_option("--device", opt->device, "Where --encrypt's bootstraps run: cpu, cuda or auto (cuda when a CUDA "
                                             "device is present and the parameter set is classic)")
        ->capture_default_str();
    cmd->callback([opt] { run_generate(*opt); });
}

} // namespace fhegpt::cli
