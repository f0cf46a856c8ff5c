// Google Benchmarks of the TFHE engine: the parts of an external product, the external
// product, key switching (single and grouped) and programmable bootstrapping (single thread,
// grouped, batched over the thread pool) for production parameter sets. Keys are generated
// once per set. Run with --benchmark_filter=<regex> to pick.
#include "bench-main.h"
#include "tfhe/algorithms/fft_plans.h"
#include "tfhe/commons/decomposition.h"
#include "tfhe-bench-keys.h"
#include "tfhe/tfhe.h"

#include <benchmark/benchmark.h>

#include <random>
#include <string>

using namespace fhegpt::tfhe;
using namespace fhegpt::tfhe::bench;

namespace {

const char * kSets[] = {"PARAM_2BIT_2M128", "PARAM_4BIT_2M128", "PARAM_4BIT_2M128_PBS_L2", "PARAM_4BIT_2M64",
                        "PARAM_5BIT_2M128", "PARAM_6BIT_2M128"};

void BM_Decompose(benchmark::State & state, const std::string & name) {
    const TfheParameters & p = parameters_by_name(name);
    const size_t size = (p.glwe_dimension.value + 1) * p.polynomial_size.value;
    SignedDecomposer d(p.pbs_base_log, p.pbs_level_count);
    std::vector<uint64_t> in(size), st(size);
    std::vector<int64_t> out(size * p.pbs_level_count.value);
    std::mt19937_64 rng(1);
    for (auto & x : in) x = rng();
    for (auto _ : state) {
        d.decompose_slice(in.data(), out.data(), st.data(), size);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_RotateSub(benchmark::State & state, const std::string & name) {
    const TfheParameters & p = parameters_by_name(name);
    const size_t n = p.polynomial_size.value;
    std::vector<uint64_t> in(n), out(n);
    size_t power = 1;
    for (auto _ : state) {
        polynomial_monomial_mul_sub(out, in, power);
        power = (power * 31 + 7) % (2 * n);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_FftForwardInteger(benchmark::State & state, const std::string & name) {
    const size_t n = parameters_by_name(name).polynomial_size.value;
    const NegacyclicFft & fft = fft_plan(PolynomialSize{n});
    std::vector<int64_t> in(n, 3);
    aligned_vector<double> out(n);
    for (auto _ : state) {
        fft.forward_integer(in, out);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_FftBackwardAdd(benchmark::State & state, const std::string & name) {
    const size_t n = parameters_by_name(name).polynomial_size.value;
    const NegacyclicFft & fft = fft_plan(PolynomialSize{n});
    aligned_vector<double> in(n, 1.0);
    std::vector<uint64_t> out(n);
    for (auto _ : state) {
        fft.backward_add(in, out);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_ExternalProduct(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const FourierLweBootstrapKey & bsk = keys.server.bootstrap_key;
    const size_t glwe = (bsk.glwe_dimension.value + 1) * bsk.polynomial_size.value;
    ExternalProductScratch scratch(bsk.glwe_dimension, bsk.polynomial_size, bsk.level_count);
    std::vector<uint64_t> in(glwe), out(glwe);
    std::mt19937_64 rng(2);
    for (auto & x : in) x = rng();
    size_t i = 0;
    for (auto _ : state) {
        add_external_product_assign(out, fourier_ggsw_of(bsk, i), in, scratch);
        i = (i + 1) % bsk.input_lwe_dimension.value;
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_Keyswitch(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const TfheParameters & p = keys.client.parameters;
    const size_t group = static_cast<size_t>(state.range(0));
    std::vector<LweCiphertext> in, out(group, LweCiphertext(p.lwe_dimension));
    std::vector<const LweCiphertext *> in_ptr;
    std::vector<LweCiphertext *> out_ptr;
    for (size_t c = 0; c < group; ++c) in.push_back(encrypt_message(keys.client, c % 4, 4));
    for (size_t c = 0; c < group; ++c) {
        in_ptr.push_back(&in[c]);
        out_ptr.push_back(&out[c]);
    }
    std::vector<uint32_t> scratch(group * (p.lwe_dimension.value + 1));
    for (auto _ : state) keyswitch_lwe_ciphertext_group(keys.server.keyswitch_key, in_ptr, out_ptr, scratch);
    state.counters["per_ct_ms"] = benchmark::Counter(static_cast<double>(group) * 1e-3,
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

void BM_Pbs(benchmark::State & state, const std::string & name) {
    const Keys & keys = keys_for(name);
    const TfheParameters & p = keys.client.parameters;
    const size_t group = static_cast<size_t>(state.range(0));
    const uint64_t modulus = p.message_modulus();
    const LookupTable lut = generate_lookup_table(keys.server, modulus, modulus, [](uint64_t m) { return m; });
    std::vector<LweCiphertext> small(group, LweCiphertext(p.lwe_dimension));
    std::vector<LweCiphertext> out(group, allocate_lwe_ciphertext(keys.server));
    std::vector<const LweCiphertext *> in_ptr;
    std::vector<LweCiphertext *> out_ptr;
    std::vector<const LookupTable *> luts(group, &lut);
    for (size_t c = 0; c < group; ++c) {
        keyswitch_lwe_ciphertext(keys.server.keyswitch_key, encrypt_message(keys.client, c % modulus, modulus), small[c]);
        in_ptr.push_back(&small[c]);
        out_ptr.push_back(&out[c]);
    }
    ProgrammableBootstrapScratch scratch(keys.server.bootstrap_key, group);
    for (auto _ : state)
        programmable_bootstrap_lwe_ciphertext_group(in_ptr, out_ptr, luts, keys.server.bootstrap_key,
                                                    p.modulus_switch, scratch);
    state.counters["per_pbs_ms"] = benchmark::Counter(static_cast<double>(group) * 1e-3,
                                                      benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}

void register_all() {
    for (const char * set : kSets) {
        const std::string name = set;
        benchmark::RegisterBenchmark(("Decompose/" + name).c_str(), BM_Decompose, name);
        benchmark::RegisterBenchmark(("RotateSub/" + name).c_str(), BM_RotateSub, name);
        benchmark::RegisterBenchmark(("FftForwardInteger/" + name).c_str(), BM_FftForwardInteger, name);
        benchmark::RegisterBenchmark(("FftBackwardAdd/" + name).c_str(), BM_FftBackwardAdd, name);
        benchmark::RegisterBenchmark(("ExternalProduct/" + name).c_str(), BM_ExternalProduct, name)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("Keyswitch/" + name).c_str(), BM_Keyswitch, name)
            ->Arg(1)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("Pbs/" + name).c_str(), BM_Pbs, name)
            ->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("BatchKsPbs/" + name).c_str(), BM_BatchKsPbs, name)
            ->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
}

} // namespace

int main(int argc, char ** argv) {
    register_all();
    return fhegpt::bench::run_registered_benchmarks(argc, argv);
}
