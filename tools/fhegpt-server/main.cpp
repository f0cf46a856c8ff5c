// fhegpt-server: serves one protected part of a GPT-2 model (a quantized head, attention block
// or run of whole blocks) on ciphertexts to many clients (net/protocol.h). Its weights stay in this process;
// clients receive only the public manifest (input quantizer, encodings, parameter set).
// Prints "listening on http://HOST:PORT" on stdout once it accepts connections (--port 0 picks
// a free port), one log line per request on stderr; SIGINT / SIGTERM stop it.
#include "common/error.h"
#include "common/thread_pool.h"
#include "net/part_server.h"
#include "net/served_part.h"
#include "quantized_part.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/serialization/serialization.h"

#include <CLI/CLI.hpp>

#ifdef FHEGPT_HAVE_MPI
#include "cluster/mpi_cluster.h"
#endif

#include <csignal>
#include <cstdio>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <unistd.h>
#include <thread>

namespace {

struct ServerCommand {
    fhegpt::cli::QuantOptions quant;
    int n_bits = 4;
    std::string params;
    fhegpt::net::ServerOptions server;
    bool quiet = false;
};

int g_signal_pipe[2] = {-1, -1};

std::atomic<bool> g_serving{false};

void on_stop_signal(int signal) {
    if (!g_serving) _exit(128 + signal); // still loading: nothing to shut down
    const char stop = 's';
    [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &stop, 1);
}

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

void run_server(const ServerCommand & cmd, std::shared_ptr<fhegpt::circuit::BootstrapCluster> cluster) {
    using namespace fhegpt;
    const std::string device = tfhe::resolve_bootstrap_device(cmd.server.device); // before the model loads
    const model::Gpt2Model model = model::load_gpt2_model(cmd.quant.model_dir);
    const model::Gpt2Tokenizer tokenizer = model::Gpt2Tokenizer::load(cmd.quant.model_dir);
    const cli::PartSpec spec = cli::parse_part(cmd.quant.part, model.hparams);
    if (cmd.server.max_positions > model.hparams.n_ctx)
        fail("--max-positions {}: the model's context holds {}", cmd.server.max_positions, model.hparams.n_ctx);
    std::fprintf(stderr, "fhegpt-server: calibrating %s at %d bits on %s\n", spec.text().c_str(), cmd.n_bits,
                 cmd.quant.calibration_path.c_str());
    const cli::QuantizedPart quantized = cli::calibrate_part(model, tokenizer, spec, cmd.quant, cmd.n_bits);
    // The parameter set must keep failures negligible at the longest sequence a session holds.
    const tfhe::TfheParameters & params = quantized.parameters(cmd.server.max_positions, cmd.params);
    net::ServedPart part = quantized.blocks ? net::served_blocks(*quantized.blocks, spec.text(), cmd.n_bits, params)
                           : quantized.head ? net::served_head(*quantized.head, spec.text(), cmd.n_bits, params)
                                            : net::served_attention(*quantized.attention, spec.text(), cmd.n_bits, params);

    if (device == "cuda" && params.is_multi_bit()) {
        if (cmd.server.device == "cuda")
            fail("--device cuda: the CUDA backend runs classic bootstraps; {} is multi-bit (choose a classic set with --params)",
                 params.name);
        std::fprintf(stderr, "fhegpt-server: %s is multi-bit: bootstraps on the CPU\n", params.name.c_str());
    } else {
        std::fprintf(stderr, "fhegpt-server: bootstraps on %s\n",
                     device == "cuda" ? ("cuda: " + tfhe::cuda_device_description()).c_str() : "cpu");
    }
    net::ServerOptions options = cmd.server;
    options.log = !cmd.quiet;
    options.cluster = cluster;
    net::PartServer server(std::move(part), options, ThreadPool::global());
    const int port = server.bind();
    const tfhe::EvaluationKeySizes keys = tfhe::serialized_evaluation_key_sizes(params);
    std::fprintf(stderr,
                 "fhegpt-server: %s%s at %d bits, %s; key upload %.1f MiB; up to %d sessions of %d positions "
                 "(encrypted cache %.2f MiB per position, %.1f MiB per session), %d evaluations at once, idle timeout %.0f s, "
                 "%zu threads%s\n",
                 options.instance.empty() ? "" : ("instance " + options.instance + ": ").c_str(),
                 spec.text().c_str(), cmd.n_bits, params.name.c_str(), mib(keys.compressed_upload_bytes()),
                 options.max_sessions, options.max_positions, mib(server.cache_bytes_per_position()),
                 mib(server.cache_bytes_per_position() * uint64_t(options.max_positions)),
                 options.max_evaluations, options.idle_timeout_seconds, ThreadPool::global().size(),
                 cluster ? fmt::format(" on each of {} MPI ranks", cluster->size()).c_str() : "");
    std::fprintf(stderr,
                 "fhegpt-server: limits: bodies %.1f MiB (key upload), %.1f MiB (evaluation); %zu connections; "
                 "request head %.0f s, body %.0f s\n",
                 mib(server.manifest().server_key_bytes), mib(server.manifest().max_request_bytes),
                 options.http.max_connections, options.http.head_timeout_seconds, options.http.body_timeout_seconds);
    std::printf("listening on http://%s:%d\n", options.host.c_str(), port);
    std::fflush(stdout);

    // SIGINT / SIGTERM write a byte to a pipe; this thread reads it and stops the server
    // (httplib's stop() is not async-signal-safe). A handler rather than sigwait: libraries
    // start threads before main (OpenBLAS), which no signal mask set here would cover.
    std::thread watcher([&server] {
        char byte = 0;
        while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
        }
        if (byte == 's') server.stop();
    });
    g_serving = true;
    server.serve();
    std::fprintf(stderr, "fhegpt-server: stopped\n");
    const char quit = 'q'; // serve() ended on its own: release the watcher
    if (write(g_signal_pipe[1], &quit, 1) < 0) std::abort();
    watcher.join();
}

} // namespace

int main(int argc, char ** argv) {
    if (pipe(g_signal_pipe) != 0) return 2;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN); // a client that hangs up must not kill the server

    // Under `mpirun -np N` (N > 1) rank 0 is the server and every other rank a worker, which
    // needs none of the options: it serves rank 0 until rank 0 stops it.
    std::shared_ptr<fhegpt::circuit::BootstrapCluster> cluster;
#ifdef FHEGPT_HAVE_MPI
    std::shared_ptr<fhegpt::cluster::MpiCluster> mpi;
    if (fhegpt::cluster::MpiCluster::launched_with_several_ranks()) {
        try {
            mpi = fhegpt::cluster::MpiCluster::initialize(argc, argv);
            if (mpi->rank() != 0) {
                // Rank 0 stops the workers; mpirun's forwarded SIGINT / SIGTERM would only
                // make them vanish under an evaluation.
                std::signal(SIGINT, SIG_IGN);
                std::signal(SIGTERM, SIG_IGN);
                return mpi->serve_worker();
            }
        } catch (const std::exception & e) {
            std::fprintf(stderr, "fhegpt-server: error: %s\n", e.what());
            return 1;
        }
        cluster = mpi;
    }
#else
    if (const char * size = std::getenv("OMPI_COMM_WORLD_SIZE"); size && std::atoi(size) > 1) {
        std::fprintf(stderr, "fhegpt-server: error: started by mpirun with %s ranks, but built without MPI "
                             "(install libopenmpi-dev and configure with -DFHEGPT_MPI=ON)\n", size);
        return 1;
    }
#endif

    CLI::App app{"fhegpt-server: evaluates a protected GPT-2 part on clients' ciphertexts"};
    app.set_version_flag("--version", "fhegpt-server 0.1.0 (protocol 1)");
    ServerCommand cmd;
    cmd.quant.part = "layer0.head0";
    fhegpt::cli::add_quant_options(app, cmd.quant);
    app.add_option("--n-bits", cmd.n_bits, "bits of the quantized part")->check(CLI::Range(2, 11))->capture_default_str();
    app.add_option("--params", cmd.params, "TFHE parameter set (default: chosen by the noise analysis)");
    app.add_option("--host", cmd.server.host, "address to listen on")->capture_default_str();
    app.add_option("--port", cmd.server.port, "port; 0: any free port")->check(CLI::Range(0, 65535))->capture_default_str();
    app.add_option("--max-sessions", cmd.server.max_sessions, "sessions at once")->check(CLI::Range(1, 1024))->capture_default_str();
    app.add_option("--idle-timeout", cmd.server.idle_timeout_seconds, "seconds before an idle session is dropped")
        ->check(CLI::Range(1.0, 1e6))
        ->capture_default_str();
    app.add_option("--max-positions", cmd.server.max_positions, "positions per session (sequence length)")
        ->check(CLI::Range(1, 1 << 16))
        ->capture_default_str();
    app.add_option("--max-evaluations", cmd.server.max_evaluations, "evaluations running at once (others wait)")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    app.add_option("--max-connections", cmd.server.http.max_connections, "open connections")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--head-timeout", cmd.server.http.head_timeout_seconds, "seconds for a whole request head")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    app.add_option("--body-timeout", cmd.server.http.body_timeout_seconds, "seconds for a whole request body")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
    app.add_option("--instance", cmd.server.instance,
                   "name among replicas behind a load balancer: session tokens start with NAME. (deploy/)");
    double mpi_timeout = 30;
    app.add_option("--mpi-timeout", mpi_timeout,
                   "under mpirun: seconds a rank may take beyond rank 0's share of a batch before it is dropped")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
    app.add_flag("-q,--quiet", cmd.quiet, "no log line per request");
    cmd.server.device = "auto";
    app.add_option("--device", cmd.server.device, "where sessions' bootstraps run: cpu, cuda or auto (cuda when a CUDA "
                                                  "device is present and the parameter set is classic)")
        ->capture_default_str();
    app.callback([&] {
#ifdef FHEGPT_HAVE_MPI
        if (mpi) mpi->set_reply_timeout(mpi_timeout);
#endif
        run_server(cmd, cluster);
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    } catch (const fhegpt::Error & e) {
        std::fprintf(stderr, "fhegpt-server: error: %s\n", e.what());
        return 1;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "fhegpt-server: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
