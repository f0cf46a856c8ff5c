// fhegpt bench pbs: speed of the TFHE engine in the spirit of `openssl speed`. For each
// parameter set: key generation time, key sizes (plain and compressed), key-switch latency,
// PBS latency on one thread, KS + PBS throughput on all threads, the number of failed
// bootstraps (every result is decrypted and checked against its lookup table) and the
// failure probability of the noise model. --json prints one JSON object per set and line.
#include "commands.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/speed_calibration.h"
#include "tfhe/tfhe.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace fhegpt::cli {

namespace {

using namespace fhegpt::tfhe;
using Clock = std::chrono::steady_clock;

struct BenchPbsOptions {
    std::string params;
    int threads = 0;
    int count = 0;
    bool json = false;
    std::string device = "auto";
    std::vector<size_t> batches = {1, 16, 256, 1024, 4096, 8192};
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the calling thread / of the whole process, in seconds: on a shared machine the
// wall-clock figures include the time other processes held the cores; these do not.
double thread_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

std::string human_bytes(double bytes) {
    const char * units[] = {"B", "kB", "MB", "GB"};
    int u = 0;
    while (bytes >= 1000 && u < 3) {
        bytes /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
}

int default_count(const TfheParameters & p) {
    const size_t work = p.lwe_dimension.value * p.polynomial_size.value * (p.glwe_dimension.value + 1) *
                        p.pbs_level_count.value;
    if (work <= 5'000'000) return 32;
    if (work <= 20'000'000) return 16;
    return 8;
}

nlohmann::json bench_one(const TfheParameters & params, ThreadPool & pool, int count_option) {
    const int count = count_option > 0 ? count_option : default_count(params);
    const uint64_t p = params.message_modulus();
    std::mt19937_64 rng(std::random_device{}());

    // Keys: fresh client key, seeded (compressed) server key, decompression + FFT.
    auto start = Clock::now();
    const ClientKey client = generate_client_key(params);
    const double client_s = seconds_since(start);
    start = Clock::now();
    const CompressedServerKey compressed = generate_compressed_server_key(client);
    const double compressed_s = seconds_since(start);
    start = Clock::now();
    const ServerKey server = decompress_server_key(compressed);
    const double decompress_s = seconds_since(start);
    const size_t bsk_bytes = server.bootstrap_key.size_bytes(); // = standard-domain size (doubles vs u64)
    const size_t ksk_bytes = server.keyswitch_key.size_bytes();

    std::vector<uint64_t> table(p);
    for (auto & t : table) t = rng() % p;
    const LookupTable lut = generate_lookup_table_from_table(params.polynomial_size, p, p, table);
    const LookupTable * luts[1] = {&lut};

    size_t pbs_run = 0, failures = 0;
    auto check = [&](const LweCiphertext & out, uint64_t m) {
        ++pbs_run;
        if (decrypt_message(client, out, p) != table[m]) ++failures;
    };

    // Latencies on the calling thread: KS alone, PBS alone, KS + PBS.
    BootstrapWorkspace single = allocate_bootstrap_workspace(server.bootstrap_key, 1, 1);
    BootstrapThreadScratch & scratch = single.threads[0];
    std::vector<double> ks_ms, pbs_ms, ks_pbs_ms, ks_cpu_ms, pbs_cpu_ms;
    LweCiphertext small(params.lwe_dimension), out = allocate_lwe_ciphertext(server);
    for (int i = 0; i < count; ++i) {
        const uint64_t m = rng() % p;
        const LweCiphertext input = encrypt_message(client, m, p);
        double cpu = thread_cpu_seconds();
        start = Clock::now();
        keyswitch_lwe_ciphertext(server.keyswitch_key, input, small, scratch.keyswitch);
        ks_ms.push_back(seconds_since(start) * 1e3);
        ks_cpu_ms.push_back((thread_cpu_seconds() - cpu) * 1e3);
        cpu = thread_cpu_seconds();
        start = Clock::now();
        programmable_bootstrap_lwe_ciphertext(small, out, lut, server.bootstrap_key, params.modulus_switch,
                                              scratch.pbs);
        pbs_ms.push_back(seconds_since(start) * 1e3);
        pbs_cpu_ms.push_back((thread_cpu_seconds() - cpu) * 1e3);
        check(out, m);
        start = Clock::now();
        keyswitch_bootstrap(server, input, out, lut, single);
        ks_pbs_ms.push_back(seconds_since(start) * 1e3);
        check(out, m);
    }

    // Throughput: one batch of KS + PBS over the pool.
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(server.bootstrap_key, pool.size());
    const size_t batch = std::max<size_t>(count, 2 * pool.size() * workspace.group_size);
    std::vector<uint64_t> messages(batch);
    std::vector<LweCiphertext> inputs, outputs(batch, allocate_lwe_ciphertext(server));
    for (auto & m : messages) {
        m = rng() % p;
        inputs.push_back(encrypt_message(client, m, p));
    }
    const double batch_cpu = process_cpu_seconds();
    start = Clock::now();
    batch_keyswitch_bootstrap(server, inputs, outputs, luts, workspace, pool);
    const double batch_s = seconds_since(start);
    const double batch_cpu_s = process_cpu_seconds() - batch_cpu;
    for (size_t i = 0; i < batch; ++i) check(outputs[i], messages[i]);

    const NoiseBudget budget = bootstrap_noise_budget(params);
    nlohmann::json j;
    j["params"] = params.name;
    j["source"] = params.source;
    j["message_bits"] = params.message_bits;
    j["n"] = params.lwe_dimension.value;
    j["k"] = params.glwe_dimension.value;
    j["N"] = params.polynomial_size.value;
    j["grouping_factor"] = params.grouping_factor.value;
    j["pbs_base_log"] = params.pbs_base_log.value;
    j["pbs_levels"] = params.pbs_level_count.value;
    j["ks_base_log"] = params.ks_base_log.value;
    j["ks_levels"] = params.ks_level_count.value;
    j["threads"] = pool.size();
    j["fft_kernel"] = NegacyclicFft::kernel_name();
    j["cpu"] = cpu_model_name();
    j["keygen_s"] = client_s + compressed_s + decompress_s;
    j["keygen_compressed_s"] = client_s + compressed_s;
    j["decompress_s"] = decompress_s;
    j["bsk_bytes"] = bsk_bytes;
    j["ksk_bytes"] = ksk_bytes;
    j["bsk_compressed_bytes"] = compressed.bootstrap_key.size_bytes();
    j["ksk_compressed_bytes"] = compressed.keyswitch_key.size_bytes();
    j["ks_ms"] = median(ks_ms);
    j["pbs_ms"] = median(pbs_ms);
    j["ks_pbs_ms"] = median(ks_pbs_ms);
    j["ks_cpu_ms"] = median(ks_cpu_ms);
    j["pbs_cpu_ms"] = median(pbs_cpu_ms);
    j["batch_cpu_ms_per_pbs"] = batch_cpu_s * 1e3 / static_cast<double>(batch);
    j["pbs_per_s"] = static_cast<double>(batch) / batch_s;
    j["batch"] = batch;
    j["group"] = workspace.group_size;
    j["latency_samples"] = count;
    j["pbs_run"] = pbs_run;
    j["failures"] = failures;
    j["log2_p_fail_model"] = budget.log2_p_fail;
    j["log2_p_fail_source"] = params.source_log2_p_fail;
    j["max_norm2"] = params.max_norm2;
    return j;
}

void print_text(const nlohmann::json & j, const TfheParameters & params) {
    std::printf("%s  (%s)\n", params.name.c_str(), params.source.c_str());
    std::printf("  n=%zu k=%zu N=%zu, PBS %zux%zu%s, KS %zux%zu, %u-bit messages, max 2-norm %u%s\n",
                params.lwe_dimension.value, params.glwe_dimension.value, params.polynomial_size.value,
                params.pbs_base_log.value, params.pbs_level_count.value,
                params.is_multi_bit() ? (" multi-bit g=" + std::to_string(params.grouping_factor.value)).c_str() : "",
                params.ks_base_log.value, params.ks_level_count.value, params.message_bits, params.max_norm2,
                params.insecure ? "  ** INSECURE TEST SET **" : "");
    std::printf("  keygen             %8.2f s   (seeded keys %.2f s, decompress + FFT %.2f s)\n",
                j["keygen_s"].get<double>(), j["keygen_compressed_s"].get<double>(), j["decompress_s"].get<double>());
    std::printf("  bootstrapping key  %10s  (compressed %s)\n", human_bytes(j["bsk_bytes"].get<double>()).c_str(),
                human_bytes(j["bsk_compressed_bytes"].get<double>()).c_str());
    std::printf("  key-switching key  %10s  (compressed %s)\n", human_bytes(j["ksk_bytes"].get<double>()).c_str(),
                human_bytes(j["ksk_compressed_bytes"].get<double>()).c_str());
    std::printf("  key switch         %8.3f ms  (median of %d; CPU time %.3f ms)\n", j["ks_ms"].get<double>(),
                j["latency_samples"].get<int>(), j["ks_cpu_ms"].get<double>());
    std::printf("  PBS, 1 thread      %8.3f ms  (median of %d; CPU time %.3f ms; KS + PBS %.3f ms)\n",
                j["pbs_ms"].get<double>(), j["latency_samples"].get<int>(), j["pbs_cpu_ms"].get<double>(),
                j["ks_pbs_ms"].get<double>());
    const double per_s = j["pbs_per_s"].get<double>();
    std::printf("  KS + PBS, %zu thr   %8.1f /s   (%.3f ms per PBS, batch of %zu, groups of %zu; CPU %.3f ms per PBS)\n",
                j["threads"].get<size_t>(), per_s, 1e3 / per_s, j["batch"].get<size_t>(), j["group"].get<size_t>(),
                j["batch_cpu_ms_per_pbs"].get<double>());
    std::printf("  failures           %8zu     of %zu PBS checked\n", j["failures"].get<size_t>(),
                j["pbs_run"].get<size_t>());
    std::printf("  log2 p_fail        %8.1f     noise model of this engine at 2-norm %u (source: %.1f)\n\n",
                j["log2_p_fail_model"].get<double>(), params.max_norm2, j["log2_p_fail_source"].get<double>());
}

void run_bench_pbs(const BenchPbsOptions & opt) {
    std::vector<const TfheParameters *> sets;
    if (opt.params.empty() || opt.params == "all" || opt.params == "ALL") sets = production_parameter_sets();
    else sets.push_back(&parameters_by_name(opt.params));
    if (opt.threads < 0) fail("--threads must be >= 0, not {}", opt.threads);
    if (opt.count < 0) fail("--count must be >= 0, not {}", opt.count);
    if (resolve_bootstrap_device(opt.device) == "cuda")
        return run_bench_pbs_device(sets, opt.batches, opt.count > 0 ? opt.count : 5, opt.json);
    std::optional<ThreadPool> own_pool;
    if (opt.threads > 0) own_pool.emplace(static_cast<size_t>(opt.threads));
    ThreadPool & pool = own_pool ? *own_pool : ThreadPool::global();
    if (!opt.json)
        std::printf("fhegpt bench pbs: %s, FFT kernel %s, %zu threads (not audited; figures depend on the machine)\n\n",
                    cpu_model_name().c_str(), NegacyclicFft::kernel_name(), pool.size());
    size_t total_failures = 0;
    for (const TfheParameters * params : sets) {
        const nlohmann::json j = bench_one(*params, pool, opt.count);
        total_failures += j["failures"].get<size_t>();
        if (opt.json) std::printf("%s\n", j.dump().c_str());
        else print_text(j, *params);
        std::fflush(stdout);
    }
    if (total_failures > 0) fail("{} bootstraps failed", total_failures);
}

} // namespace

void add_bench_command(CLI::App & app) {
    CLI::App * bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    auto opt = std::make_shared<BenchPbsOptions>();
    CLI::App * pbs = bench->add_subcommand("pbs", "TFHE key switch and programmable bootstrapping speed");
    pbs->add_option("--params", opt->params,
                    "parameter set name (docs/tfhe-engine.md), or 'all' for every production set (default)");
    pbs->add_option("--threads", opt->threads, "threads for the throughput run (default: all hardware threads)");
    pbs->add_option("--count", opt->count, "bootstraps per measurement (default: 8 to 32 depending on the set)");
    pbs->add_flag("--json", opt->json, "one JSON object per parameter set");
    pbs->add_option("--device", opt->device, "cpu, cuda (batched bootstraps on the GPU, by batch size) or auto (cuda "
                                             "when a CUDA device is present)")
        ->capture_default_str();
    pbs->add_option("--batches", opt->batches, "batch sizes of --device cuda")->delimiter(',')->capture_default_str();
    pbs->callback([opt] { run_bench_pbs(*opt); });
    add_bench_server_command(*bench);
}

} // namespace fhegpt::cli
