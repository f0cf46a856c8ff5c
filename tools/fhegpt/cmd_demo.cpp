// fhegpt demo: private text generation end to end on this machine. Starts fhegpt-server (the
// binary next to this one) on loopback with the bundled model's protected part, then
// continues a prompt three ways: the clear float model, the quantized part simulated in the
// clear, and the quantized part on ciphertexts on the server (keys generated here, the server
// sees only ciphertexts). Prints the three continuations and the cost figures; fails unless the
// encrypted continuation equals the simulated one.
#include "circuit/noise_analysis.h"
#include "circuit/attention_circuit.h"
#include "circuit/head_circuit.h"
#include "commands.h"
#include "common/error.h"
#include "model/generate.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "quantized_part.h"
#include "remote_generation.h"
#include "tfhe/speed_calibration.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char ** environ;

namespace fhegpt::cli {

namespace {

struct DemoOptions {
    std::string model_dir = "models/fhegpt-tiny";
    std::string part = "layer0.head0";
    int n_bits = 4;
    std::string prompt = "And God said";
    int32_t n_predict = 8;
    std::string server_bin;
    std::string params; // empty: the server's noise analysis chooses
    std::string calibration_path = "data/calibration_prompts.txt";
    double start_timeout = 600;
};

// A child fhegpt-server on loopback, stopped (SIGTERM) when this object goes.
class ServerProcess {
public:
    ServerProcess(const std::string & binary, const std::vector<std::string> & args, double timeout_seconds) {
        int fds[2];
        if (pipe(fds) != 0) fail("pipe: {}", std::strerror(errno));
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        std::vector<char *> argv;
        argv.push_back(const_cast<char *>(binary.c_str()));
        for (const std::string & a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        if (rc != 0) {
            close(fds[0]);
            fail("{}: cannot start: {}", binary, std::strerror(rc));
        }
        out_ = fds[0];
        url_ = read_url(timeout_seconds);
    }
    ~ServerProcess() {
        if (out_ >= 0) close(out_);
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status = 0;
            waitpid(pid_, &status, 0);
        }
    }
    ServerProcess(const ServerProcess &) = delete;
    ServerProcess & operator=(const ServerProcess &) = delete;
    const std::string & url() const { return url_; }

private:
    // Waits for "listening on URL" on the server's stdout.
    std::string read_url(double timeout_seconds) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
        std::string line;
        for (;;) {
            if (std::chrono::steady_clock::now() > deadline) fail("fhegpt-server did not start within {} s", timeout_seconds);
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, 200) <= 0) continue;
            char c = 0;
            const ssize_t got = read(out_, &c, 1);
            if (got <= 0) {
                int status = 0;
                waitpid(pid_, &status, 0);
                pid_ = -1;
                fail("fhegpt-server exited before listening (status {})", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            }
            if (c != '\n') {
                line.push_back(c);
                continue;
            }
            constexpr std::string_view prefix = "listening on ";
            if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
            line.clear();
        }
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string url_;
};

std::string server_binary(const DemoOptions & opt) {
    if (!opt.server_bin.empty()) return opt.server_bin;
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) fail("cannot find this program's directory; pass --server-bin");
    return (self.parent_path() / "fhegpt-server").string();
}

struct Continuation {
    std::vector<int32_t> tokens;
    double seconds = 0;
};

Continuation continue_prompt(model::Gpt2Context & ctx, const std::vector<int32_t> & prompt, int32_t n_predict,
                             int32_t stop_token) {
    model::GenerateParams gen;
    gen.n_predict = n_predict;
    gen.stop_token = stop_token;
    gen.sampling.temperature = 0; // greedy: the three runs are comparable token by token
    const auto start = std::chrono::steady_clock::now();
    const model::GenerateResult result = model::generate(ctx, prompt, gen, [](int32_t) { return true; });
    return {result.tokens, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

std::string text_of(const model::Gpt2Tokenizer & tokenizer, const std::vector<int32_t> & tokens) {
    std::string text;
    for (int32_t t : tokens) text += tokenizer.token_bytes(t);
    for (char & c : text)
        if (c == '\n') c = ' ';
    return text;
}

// The full-size figures: the whole attention block of the layer at the same positions, from
// its row circuits' bootstrap counts and this run's bootstrap rate.
void print_block_estimate(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer, const PartSpec & head,
                          const QuantOptions & quant, int n_bits, const std::vector<net::RemoteRunRecord> & runs,
                          double bootstraps_per_second) {
    const PartSpec block{head.layer, -1};
    const QuantizedPart quantized = calibrate_part(model, tokenizer, block, quant, n_bits);
    std::printf("\nfull size: the whole attention block %s (%d heads + c_proj) at the same positions, at this run's "
                "%.0f PBS/s:\n",
                block.text().c_str(), model.hparams.n_head, bootstraps_per_second);
    for (const net::RemoteRunRecord & r : runs) {
        const int64_t bootstraps =
            circuit::analyze(circuit::build_attention_row_circuit(*quantized.attention, r.first, r.n)).bootstraps;
        std::printf("  %-7s rows %3d..%-3d  %7lld PBS  about %5.0f s\n", r.first == 0 ? "prompt" : "token", r.first,
                    r.n - 1, (long long)bootstraps, double(bootstraps) / bootstraps_per_second);
    }
    std::printf("  (fhegpt demo --part %s runs it)\n", block.text().c_str());
}

// Before the encrypted run: its bootstraps (the prompt's rows, then one row per generated token
// but the last, as the simulation generated them) at the bootstrap speed measured on this
// machine (a short calibration the first time, then its cache).
void print_encrypted_estimate(const QuantizedPart & quantized, const std::string & params_name, int32_t positions,
                              int32_t prompt_tokens, size_t generated_tokens) {
    const tfhe::TfheParameters & params = quantized.parameters(positions, params_name);
    std::fprintf(stderr, "demo: bootstrap speed of %s on this machine...\n", params.name.c_str());
    const tfhe::SpeedCalibration speed = tfhe::calibrate_bootstrap_speed(params);
    int64_t standard = 0, fine = 0;
    for (int32_t first = 0, n = prompt_tokens; n <= prompt_tokens + int32_t(generated_tokens) - 1; first = n, ++n) {
        const circuit::Circuit c = quantized.build_row_circuit(first, n);
        const int64_t on_fine = circuit::analyze_noise(c, params).fine_bootstraps;
        standard += circuit::analyze(c).bootstraps - on_fine;
        fine += on_fine;
    }
    std::printf("estimate: %lld bootstraps, about %.0f s at the speed measured on %s%s\n",
                static_cast<long long>(standard + fine), speed.estimate_seconds(standard, fine),
                speed.machine_description().c_str(), speed.from_cache ? " (cached)" : "");
    std::fflush(stdout);
}

void run_demo(const DemoOptions & opt) {
    const model::Gpt2Model model = model::load_gpt2_model(opt.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(opt.model_dir);
    const PartSpec part = parse_part(opt.part, model.hparams);
    std::vector<int32_t> prompt = tokenizer.encode(opt.prompt);
    if (prompt.empty()) prompt.push_back(tokenizer.eot_token());
    const int32_t positions = int32_t(prompt.size()) + opt.n_predict;
    if (positions > model.hparams.n_ctx) fail("the prompt and continuation need {} positions, the model holds {}", positions, model.hparams.n_ctx);
    const int32_t stop = tokenizer.eot_token();

    std::fprintf(stderr, "demo: starting fhegpt-server for %s at %d bits on loopback\n", part.text().c_str(), opt.n_bits);
    std::vector<std::string> server_args = {"-m", opt.model_dir, "--part", part.text(), "--n-bits", std::to_string(opt.n_bits),
                                            "--calibration", opt.calibration_path, "--host", "127.0.0.1", "--port", "0",
                                            "--max-positions", std::to_string(positions), "--max-sessions", "2"};
    if (!opt.params.empty()) server_args.insert(server_args.end(), {"--params", opt.params});
    ServerProcess server(server_binary(opt), server_args, opt.start_timeout);

    // 1. The clear float model.
    model::Gpt2Context clear_ctx(model, {});
    const Continuation clear = continue_prompt(clear_ctx, prompt, opt.n_predict, stop);
    // 2. The quantized part simulated here, for comparison only (it reads the part's weights,
    //    which the encrypted client below never does).
    QuantOptions quant;
    quant.model_dir = opt.model_dir;
    quant.part = part.text();
    quant.calibration_path = opt.calibration_path;
    const QuantizedPart quantized = calibrate_part(model, tokenizer, part, quant, opt.n_bits);
    model::Gpt2Context simulated_ctx(model, {});
    quantized.install(simulated_ctx, circuit::Executor::simulate, {}, true);
    const Continuation simulated = continue_prompt(simulated_ctx, prompt, opt.n_predict, stop);
    print_encrypted_estimate(quantized, opt.params, positions, int32_t(prompt.size()), simulated.tokens.size());
    // 3. The quantized part on ciphertexts, on the server.
    model::Gpt2Context encrypted_ctx(model, {});
    std::unique_ptr<net::RemotePart> remote = install_remote_part(encrypted_ctx, model, server.url(), part.text(), opt.n_bits, true);
    const Continuation encrypted = continue_prompt(encrypted_ctx, prompt, opt.n_predict, stop);

    const net::PartManifest & m = remote->manifest();
    const std::string quantized_label = fmt::format("{} at {} bits", part.text(), opt.n_bits);
    std::printf("\nprompt: %s\n\n", opt.prompt.c_str());
    const int width = int(quantized_label.size()) + 12;
    std::printf("  %-*s | %s\n", width, "clear float model", text_of(tokenizer, clear.tokens).c_str());
    std::printf("  %-*s | %s\n", width, (quantized_label + ", simulated").c_str(), text_of(tokenizer, simulated.tokens).c_str());
    std::printf("  %-*s | %s\n", width, (quantized_label + ", encrypted").c_str(), text_of(tokenizer, encrypted.tokens).c_str());
    const bool same = encrypted.tokens == simulated.tokens;
    std::printf("\nencrypted == simulated: %s (%zu tokens); encrypted == clear: %s\n", same ? "yes" : "NO",
                encrypted.tokens.size(), encrypted.tokens == clear.tokens ? "yes" : "no");

    const auto & runs = remote->runs();
    std::printf("\ncost (%s on %s, this machine):\n", m.parameter_set.c_str(), server.url().c_str());
    std::printf("  key upload (once): %s, keys generated in %.1f s, uploaded in %.1f s\n",
                net::format_bytes(remote->key_upload_bytes()).c_str(), remote->keygen_seconds(), remote->upload_seconds());
    for (const net::RemoteRunRecord & r : runs)
        std::printf("  %-7s rows %3d..%-3d  %7llu PBS  %6.1f s  sent %9s  received %9s\n", r.first == 0 ? "prompt" : "token",
                    r.first, r.n - 1, (unsigned long long)r.bootstraps, r.seconds, net::format_bytes(r.bytes_sent).c_str(),
                    net::format_bytes(r.bytes_received).c_str());
    const RemoteTotals t = remote_totals(*remote);
    std::printf("  total: %llu PBS, %.1f s encrypted (%.1f s on the server); clear model %.2f s\n",
                (unsigned long long)t.bootstraps, t.seconds, t.server_seconds, clear.seconds);
    if (part.head >= 0 && t.server_seconds > 0) print_block_estimate(model, tokenizer, part, quant, opt.n_bits, runs,
                                                                     double(t.bootstraps) / t.server_seconds);
    std::fflush(stdout);
    if (!same) fail("the encrypted continuation differs from the simulated one");
}

} // namespace

void add_demo_command(CLI::App & app) {
    auto opt = std::make_shared<DemoOptions>();
    CLI::App * cmd = app.add_subcommand(
        "demo", "Private generation end to end: starts fhegpt-server on loopback, continues a prompt with the protected "
                "part on ciphertexts, and compares with the clear and simulated models");
    cmd->add_option("-m,--model", opt->model_dir, "Model directory")->capture_default_str();
    cmd->add_option("--part", opt->part,
                    "Protected part: layerL.headH, layerL.attn, layerL.mlp, layerL, layersA-B or all (every block and "
                    "ln_f: the client keeps only the embeddings and the LM head)")
        ->capture_default_str();
    cmd->add_option("--n-bits", opt->n_bits, "Bits of the quantized part")->check(CLI::Range(2, 11))->capture_default_str();
    cmd->add_option("-p,--prompt", opt->prompt, "Text to continue")->capture_default_str();
    cmd->add_option("-n,--n-predict", opt->n_predict, "Tokens to generate")->check(CLI::Range(1, 256))->capture_default_str();
    cmd->add_option("--calibration", opt->calibration_path, "Calibration prompts of the quantized part")->capture_default_str();
    cmd->add_option("--server-bin", opt->server_bin, "The fhegpt-server binary (default: next to this one)");
    cmd->add_option("--params", opt->params, "TFHE parameter set of the server (default: chosen by the noise analysis)");
    cmd->callback([opt] { run_demo(*opt); });
}

} // namespace fhegpt::cli
