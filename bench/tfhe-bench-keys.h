// What the TFHE benchmarks share: keys generated once per parameter set, and the batched
// KS + PBS over the thread pool (the rate circuits see).
#pragma once

#include "tfhe/tfhe.h"

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fhegpt::tfhe::bench {

struct Keys {
    ClientKey client;
    ServerKey server;
};

inline const Keys & keys_for(const std::string & name) {
    static std::map<std::string, std::unique_ptr<Keys>> cache;
    auto & slot = cache[name];
    if (!slot) {
        slot = std::make_unique<Keys>();
        slot->client = generate_client_key(parameters_by_name(name));
        slot->server = generate_server_key(slot->client);
    }
    return *slot;
}

// KS + PBS of a batch of state.range(0) ciphertexts over the global pool, default workspace.
inline void BM_BatchKsPbs(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const TfheParameters & p = keys.client.parameters;
    const size_t batch = static_cast<size_t>(state.range(0));
    const uint64_t modulus = p.message_modulus();
    const LookupTable lut = generate_lookup_table(keys.server, modulus, modulus, [](uint64_t m) { return m; });
    const LookupTable * luts[1] = {&lut};
    std::vector<LweCiphertext> in, out(batch, allocate_lwe_ciphertext(keys.server));
    for (size_t c = 0; c < batch; ++c) in.push_back(encrypt_message(keys.client, c % modulus, modulus));
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(keys.server);
    for (auto _ : state) batch_keyswitch_bootstrap(keys.server, in, out, luts, workspace);
    state.counters["pbs_per_s"] =
        benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

} // namespace fhegpt::tfhe::bench
