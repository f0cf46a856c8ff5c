// fhegpt bench pbs --device cuda: KS-PBS latency and throughput of the CUDA backend by batch
// size. Per classic parameter set: key generation on the CPU, key upload to the device, then
// for each batch size one batch of fresh ciphertexts through the backend (several for small
// batches, the median kept), every output decrypted and checked against its lookup table.
#include "commands.h"
#include "common/error.h"
#include "tfhe/cuda/bootstrap_device.h"
#include "tfhe/tfhe.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

namespace fhegpt::cli {

namespace {

using namespace fhegpt::tfhe;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

nlohmann::json bench_device_one(const TfheParameters & params, std::span<const size_t> batches, int repeats) {
    const uint64_t p = params.message_modulus();
    std::mt19937_64 rng(std::random_device{}());
    auto start = Clock::now();
    const ClientKey client = generate_client_key(params);
    const ServerKey server = decompress_server_key(generate_compressed_server_key(client));
    const double keygen_s = seconds_since(start);
    start = Clock::now();
    const std::shared_ptr<BootstrapAccelerator> device = make_bootstrap_accelerator(server, "cuda");
    const double upload_s = seconds_since(start);

    std::vector<uint64_t> table(p);
    for (auto & t : table) t = rng() % p;
    const LookupTable lut = generate_lookup_table_from_table(params.polynomial_size, p, p, table);
    const LookupTable * luts[1] = {&lut};

    nlohmann::json rows = nlohmann::json::array();
    size_t failures = 0, checked = 0;
    for (size_t batch : batches) {
        std::vector<uint64_t> messages(batch);
        std::vector<LweCiphertext> inputs, outputs(batch, allocate_lwe_ciphertext(server));
        inputs.reserve(batch);
        for (auto & m : messages) {
            m = rng() % p;
            inputs.push_back(encrypt_message(client, m, p));
        }
        std::vector<const LweCiphertext *> in(batch);
        std::vector<LweCiphertext *> out(batch);
        for (size_t i = 0; i < batch; ++i) {
            in[i] = &inputs[i];
            out[i] = &outputs[i];
        }
        device->batch_keyswitch_bootstrap(BootstrapKeyKind::standard, in, out, luts); // warm-up: plans, buffers
        const int runs = batch <= 64 ? repeats : 1;
        std::vector<double> seconds;
        for (int r = 0; r < runs; ++r) {
            start = Clock::now();
            device->batch_keyswitch_bootstrap(BootstrapKeyKind::standard, in, out, luts);
            seconds.push_back(seconds_since(start));
        }
        std::sort(seconds.begin(), seconds.end());
        const double s = seconds[seconds.size() / 2];
        size_t batch_failures = 0;
        for (size_t i = 0; i < batch; ++i) batch_failures += decrypt_message(client, outputs[i], p) != table[messages[i]];
        failures += batch_failures;
        checked += batch;
        rows.push_back({{"batch", batch}, {"seconds", s}, {"ms_per_batch", s * 1e3}, {"pbs_per_s", double(batch) / s},
                        {"runs", runs}, {"failures", batch_failures}});
    }
    nlohmann::json j;
    j["params"] = params.name;
    j["device"] = device->description();
    j["n"] = params.lwe_dimension.value;
    j["k"] = params.glwe_dimension.value;
    j["N"] = params.polynomial_size.value;
    j["pbs_base_log"] = params.pbs_base_log.value;
    j["pbs_levels"] = params.pbs_level_count.value;
    j["keygen_s"] = keygen_s;
    j["key_upload_s"] = upload_s;
    j["batches"] = rows;
    j["pbs_checked"] = checked;
    j["failures"] = failures;
    return j;
}

} // namespace

void run_bench_pbs_device(const std::vector<const TfheParameters *> & sets, const std::vector<size_t> & batches,
                          int repeats, bool json) {
    resolve_bootstrap_device("cuda"); // "no CUDA device" before any key generation
    if (batches.empty()) fail("--batches: no batch size");
    for (size_t b : batches)
        if (b == 0 || b > (size_t{1} << 20)) fail("--batches: batch size {} outside [1, 2^20]", b);
    if (!json) std::printf("fhegpt bench pbs --device cuda: %s\n\n", cuda_device_description().c_str());
    size_t total_failures = 0;
    for (const TfheParameters * params : sets) {
        if (params->is_multi_bit()) {
            if (!json) std::printf("%s: skipped (multi-bit; the CUDA backend runs classic bootstraps)\n\n", params->name.c_str());
            continue;
        }
        const nlohmann::json j = bench_device_one(*params, batches, std::max(repeats, 1));
        total_failures += j["failures"].get<size_t>();
        if (json) {
            std::printf("%s\n", j.dump().c_str());
        } else {
            std::printf("%s  (N=%zu, PBS %zux%zu) on %s, keys uploaded in %.2f s\n", params->name.c_str(),
                        params->polynomial_size.value, params->pbs_base_log.value, params->pbs_level_count.value,
                        j["device"].get<std::string>().c_str(), j["key_upload_s"].get<double>());
            for (const auto & row : j["batches"])
                std::printf("  batch %7zu  %10.3f ms  %10.0f PBS/s  %zu failures\n", row["batch"].get<size_t>(),
                            row["ms_per_batch"].get<double>(), row["pbs_per_s"].get<double>(),
                            row["failures"].get<size_t>());
            std::printf("\n");
        }
        std::fflush(stdout);
    }
    if (total_failures > 0) fail("{} bootstraps failed", total_failures);
}

} // namespace fhegpt::cli
