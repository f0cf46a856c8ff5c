// fhegpt run-encrypted: the protected part on real ciphertexts, on this machine. Generates
// keys, runs the model on the prompt with the part's circuit evaluated on encrypted inputs
// (progress on stderr), decrypts, and compares every value with the clear simulation.
#include "circuit/quantized_part_seams.h"
#include "commands.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "quantized_part.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/tfhe.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace fhegpt::cli {

namespace {

struct RunOptions {
    QuantOptions quant;
    int n_bits = 4;
    std::string prompt = "The king said unto";
    std::string params;
    bool json = false;
    std::string device = "auto";
};

void run_encrypted(const RunOptions & opt) {
    tfhe::resolve_bootstrap_device(opt.device); // a missing device fails before the model loads
    const model::Gpt2Model model = model::load_gpt2_model(opt.quant.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.quant.model_dir);
    const PartSpec part = parse_part(opt.quant.part, model.hparams);
    std::vector<int32_t> tokens = tokenizer.encode(opt.prompt);
    if (tokens.empty()) fail("-p: the prompt is empty");
    if (tokens.size() > size_t(model.hparams.n_ctx)) fail("-p: {} tokens, the context holds {}", tokens.size(), model.hparams.n_ctx);
    const QuantizedPart quantized = calibrate_part(model, tokenizer, part, opt.quant, opt.n_bits);
    const tfhe::TfheParameters & params = quantized.parameters(int32_t(tokens.size()), opt.params);

    const auto key_start = std::chrono::steady_clock::now();
    const tfhe::ClientKey client = tfhe::generate_client_key(params);
    tfhe::ServerKey server = tfhe::decompress_server_key(tfhe::generate_compressed_server_key(client));
    server.accelerator = tfhe::make_bootstrap_accelerator(server, opt.device);
    const double key_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - key_start).count();
    const std::string device_name = server.accelerator ? server.accelerator->description() : "cpu";
    std::fprintf(stderr, "%s: %zu tokens, %s, keys in %.1f s, bootstraps on %s\n", part.text().c_str(), tokens.size(),
                 params.name.c_str(), key_seconds, device_name.c_str());

    circuit::EncryptedKeys keys{&client, &server, &ThreadPool::global(), [](int64_t done, int64_t total) {
                                    const int width = 40;
                                    const int filled = int(width * done / std::max<int64_t>(total, 1));
                                    std::fprintf(stderr, "\r  [%s%s] %lld/%lld bootstraps", std::string(size_t(filled), '#').c_str(),
                                                 std::string(size_t(width - filled), '.').c_str(), (long long)done, (long long)total);
                                    if (done == total) std::fprintf(stderr, "\n");
                                }};
    model::Gpt2Context ctx(model);
    const std::vector<circuit::HeadRunRecord> & runs = quantized.install(ctx, circuit::Executor::encrypted, keys);
    const auto logits = ctx.eval(tokens);
    int32_t next = 0;
    for (int32_t t = 1; t < model.hparams.n_vocab; ++t)
        if (logits[t] > logits[next]) next = t;
    const circuit::HeadRunRecord & run = runs.back();

    nlohmann::json j;
    j["part"] = part.text();
    j["n_bits"] = opt.n_bits;
    j["parameter_set"] = params.name;
    j["tokens"] = tokens.size();
    j["pbs_total"] = run.bootstraps;
    j["seconds"] = run.seconds;
    j["pbs_per_second"] = run.seconds > 0 ? double(run.bootstraps) / run.seconds : 0;
    j["values"] = run.encrypted.size();
    j["mismatches"] = run.mismatches;
    j["key_seconds"] = key_seconds;
    j["device"] = device_name;
    j["next_token"] = tokenizer.decode(std::vector<int32_t>{next});
    if (opt.json) {
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("%s on %zu tokens with %s: %lld bootstraps in %.1f s (%.0f PBS/s), %zu values, %lld differ from the simulation\n",
                    part.text().c_str(), tokens.size(), params.name.c_str(), (long long)run.bootstraps, run.seconds,
                    run.seconds > 0 ? double(run.bootstraps) / run.seconds : 0.0, run.encrypted.size(), (long long)run.mismatches);
        std::printf("next token: %s\n", j["next_token"].get<std::string>().c_str());
    }
    if (run.mismatches != 0) fail("{} encrypted values differ from the simulation", run.mismatches);
}

} // namespace

void add_run_encrypted_command(CLI::App & app) {
    auto opt = std::make_shared<RunOptions>();
    CLI::App * cmd = app.add_subcommand("run-encrypted", "Evaluate a quantized part on ciphertexts, locally");
    add_quant_options(*cmd, opt->quant);
    cmd->add_option("--n-bits", opt->n_bits, "activation and weight bits")->check(CLI::Range(2, 11))->capture_default_str();
    cmd->add_option("-p,--prompt", opt->prompt, "prompt")->capture_default_str();
    cmd->add_option("--params", opt->params, "TFHE parameter set (default: the fastest production set whose noise analysis keeps failures negligible)");
    cmd->add_flag("--json", opt->json, "print one JSON object");
    cmd->add_option("--device", opt->device, "where the bootstraps run: cpu, cuda or auto (cuda when a CUDA device is "
                                             "present and the parameter set is classic)")
        ->capture_default_str();
    cmd->callback([opt] { run_encrypted(*opt); });
}

} // namespace fhegpt::cli
