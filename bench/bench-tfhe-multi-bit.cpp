// Google Benchmarks of multi-bit bootstrapping against the classic 4-bit set: the bootstrap of
// a group of ciphertexts on one thread (the key streamed once per group; per-PBS time as a
// counter) for each grouping factor and group size, and the batch over the thread pool with
// the workspace's default group size. Keys are generated once per set (the multi-bit ones take
// 240-320 MB each). --benchmark_filter=<regex> picks.
#include "bench-main.h"
#include "tfhe/algorithms/multi_bit_external_product.h"
#include "tfhe-bench-keys.h"
#include "tfhe/tfhe.h"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

using namespace fhegpt::tfhe;
using namespace fhegpt::tfhe::bench;

namespace {

const char * kSets[] = {"PARAM_4BIT_2M128", "PARAM_4BIT_2M128_MULTI_BIT_G2", "PARAM_4BIT_2M128_MULTI_BIT_G3",
                        "PARAM_4BIT_2M128_MULTI_BIT_G4"};

// PBS (no key switch) of `group` ciphertexts at once on the calling thread.
void BM_PbsGroup(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const TfheParameters & p = keys.client.parameters;
    const size_t group = static_cast<size_t>(state.range(0));
    const uint64_t modulus = p.message_modulus();
    const LookupTable lut = generate_lookup_table(keys.server, modulus, modulus, [](uint64_t m) { return m; });
    std::vector<LweCiphertext> in, out(group, allocate_lwe_ciphertext(keys.server));
    std::vector<const LweCiphertext *> in_ptr;
    std::vector<LweCiphertext *> out_ptr;
    std::vector<const LookupTable *> luts(group, &lut);
    for (size_t c = 0; c < group; ++c) {
        in.push_back(LweCiphertext(p.lwe_dimension));
        keyswitch_lwe_ciphertext(keys.server.keyswitch_key, encrypt_message(keys.client, c % modulus, modulus), in.back());
    }
    for (size_t c = 0; c < group; ++c) {
        in_ptr.push_back(&in[c]);
        out_ptr.push_back(&out[c]);
    }
    ProgrammableBootstrapScratch scratch(keys.server.bootstrap_key, group);
    for (auto _ : state)
        programmable_bootstrap_lwe_ciphertext_group(in_ptr, out_ptr, luts, keys.server.bootstrap_key, p.modulus_switch,
                                                    scratch);
    state.counters["per_pbs_ms"] = benchmark::Counter(static_cast<double>(group) * 1e-3,
                                                      benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}

// The Fourier-domain part of the external products of a multi-bit blind rotation (GGSW sums
// built in registers, times the digits) over every group of the key for `count` ciphertexts
// (random exponents and digits): what replaces the classic CMux's pointwise products; per-PBS
// time as a counter.
void BM_FourierProducts(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const FourierLweBootstrapKey & bsk = keys.server.bootstrap_key;
    const size_t count = static_cast<size_t>(state.range(0)), n = bsk.polynomial_size.value;
    const size_t groups = bsk.input_lwe_dimension.value / bsk.grouping_factor.value;
    const size_t subsets = bsk.grouping_factor.ggsw_per_group();
    std::vector<std::vector<uint32_t>> exponents(count, std::vector<uint32_t>(subsets - 1));
    uint32_t x = 12345;
    for (auto & e : exponents)
        for (auto & v : e) v = (x = x * 1103515245u + 12345u) % (2 * n);
    std::vector<const uint32_t *> rows;
    for (const auto & e : exponents) rows.push_back(e.data());
    aligned_vector<double> digits(count * multi_bit_fourier_stride(bsk.polynomial_size, bsk.row_count()), 1.0);
    aligned_vector<double> output(count * multi_bit_fourier_stride(bsk.polynomial_size, bsk.glwe_dimension.value + 1));
    const FourierMonomialTable & table = fourier_monomial_table(bsk.polynomial_size);
    for (auto _ : state)
        for (size_t g = 0; g < groups; ++g) multiply_multi_bit_ggsw_sums(bsk, g, rows, table, digits, output);
    state.counters["per_pbs_ms"] = benchmark::Counter(static_cast<double>(count) * 1e-3,
                                                      benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}

void register_all() {
    for (const char * set : kSets) {
        const std::string name = set;
        benchmark::RegisterBenchmark(("PbsGroup/" + name).c_str(), BM_PbsGroup, name)
            ->Arg(1)->Arg(4)->Arg(8)->Arg(16)->Unit(benchmark::kMillisecond);
        if (parameters_by_name(name).is_multi_bit())
            benchmark::RegisterBenchmark(("FourierProducts/" + name).c_str(), BM_FourierProducts, name)
                ->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("BatchKsPbs/" + name).c_str(), BM_BatchKsPbs, name)
            ->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
}

} // namespace

int main(int argc, char ** argv) {
    register_all();
    return fhegpt::bench::run_registered_benchmarks(argc, argv);
}
