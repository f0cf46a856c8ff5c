// fhegpt: GPT-2 with chosen parts evaluated on TFHE ciphertexts. One binary, one subcommand
// per job; see `fhegpt --help`.
#include "commands.h"
#include "common/error.h"

#include <csignal>
#include <cstdio>
#include <exception>

int main(int argc, char ** argv) {
    // A server that closes a connection while this client still writes (a refused upload) must
    // give an error, not kill the client.
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"fhegpt: GPT-2 inference with parts of the model on encrypted data (TFHE)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "fhegpt 0.1.0");

    fhegpt::cli::add_generate_command(app);
    fhegpt::cli::add_tokenize_command(app);
    fhegpt::cli::add_perplexity_command(app);
    fhegpt::cli::add_bench_command(app);
    fhegpt::cli::add_eval_command(app);
    fhegpt::cli::add_compile_command(app);
    fhegpt::cli::add_run_encrypted_command(app);
    fhegpt::cli::add_demo_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    } catch (const fhegpt::Error & e) {
        std::fprintf(stderr, "fhegpt: error: %s\n", e.what());
        return 1;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "fhegpt: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
