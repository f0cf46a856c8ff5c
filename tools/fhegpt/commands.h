// Each subcommand of `fhegpt` lives in its own cmd_<name>.cpp and registers itself here.
// A command's callback throws fhegpt::Error for bad input; main() reports it and exits 1.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <vector>

namespace fhegpt::tfhe {
struct TfheParameters;
}

namespace fhegpt::cli {

void add_generate_command(CLI::App & app);
void add_tokenize_command(CLI::App & app);
void add_perplexity_command(CLI::App & app);
void add_bench_command(CLI::App & app);
void add_bench_server_command(CLI::App & bench); // under `bench`
void add_eval_command(CLI::App & app);
void add_compile_command(CLI::App & app);
void add_run_encrypted_command(CLI::App & app);
void add_demo_command(CLI::App & app);

// `bench pbs --device cuda` (cmd_bench_pbs_device.cpp): latency and throughput by batch size.
void run_bench_pbs_device(const std::vector<const tfhe::TfheParameters *> & sets, const std::vector<size_t> & batches,
                          int repeats, bool json);

} // namespace fhegpt::cli
