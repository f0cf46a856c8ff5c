#include "tfhe/algorithms/lwe_batch_bootstrap.h"

#include "common/check.h"
#include "tfhe/algorithms/lwe_keyswitch.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace fhegpt::tfhe {

size_t BootstrapWorkspace::size_bytes() const {
    size_t bytes = 0;
    for (const BootstrapThreadScratch & t : threads) {
        bytes += t.pbs.accumulators.size() * 8 + t.pbs.switched.size() * 4 + t.keyswitch.size() * 4;
        bytes += t.pbs.external_product.rotated.size() * 8 + t.pbs.external_product.state.size() * 8 +
                 t.pbs.external_product.digits.size() * 8 + t.pbs.external_product.digits_fourier.size() * 8 +
                 t.pbs.external_product.output_fourier.size() * 8;
        bytes += t.pbs.multi_bit.switched.size() * 4 + t.pbs.multi_bit.digits_fourier.size() * 8 +
                 t.pbs.multi_bit.output_fourier.size() * 8 + t.pbs.multi_bit.products.size() * 8;
        for (const LweCiphertext & c : t.switched) bytes += c.data.size() * 8;
    }
    return bytes;
}

size_t default_bootstrap_group_size(const FourierLweBootstrapKey & bsk) {
    // A multi-bit key is 2^g / g times larger and each group of it does more arithmetic per
    // load: 16 ciphertexts per pass over it (measured, bench-tfhe-multi-bit PbsGroup: 4 -> 16
    // cuts the time per bootstrap by a quarter on a 2-core Zen 3).
    if (bsk.grouping_factor.is_multi_bit()) return kMaxKeyswitchGroup;
    // Four accumulators per GGSW load: the GGSW (64 kB to 512 kB) is reused from L2 or L3 while
    // the key stream per bootstrap drops fourfold; more brings little (measured, bench-tfhe-pbs).
    return 4;
}

BootstrapWorkspace allocate_bootstrap_workspace(const FourierLweBootstrapKey & bsk, size_t thread_count,
                                                size_t group_size) {
    FHEGPT_CHECK(thread_count >= 1, "bootstrap workspace for %zu threads", thread_count);
    BootstrapWorkspace workspace;
    workspace.group_size = group_size == 0 ? default_bootstrap_group_size(bsk) : group_size;
    FHEGPT_CHECK(workspace.group_size <= kMaxKeyswitchGroup, "bootstrap group size %zu > %zu", workspace.group_size,
                 kMaxKeyswitchGroup);
    const size_t n = bsk.input_lwe_dimension.value;
    for (size_t t = 0; t < thread_count; ++t) {
        BootstrapThreadScratch scratch{ProgrammableBootstrapScratch(bsk, workspace.group_size),
                                       std::vector<uint32_t>(workspace.group_size * (n + 1)),
                                       std::vector<LweCiphertext>(workspace.group_size, LweCiphertext(LweDimension{n}))};
        workspace.threads.push_back(std::move(scratch));
    }
    return workspace;
}

void batch_keyswitch_programmable_bootstrap(std::span<const LweCiphertext * const> inputs,
                                            std::span<LweCiphertext * const> outputs,
                                            std::span<const LookupTable * const> luts, const LweKeyswitchKey * ksk,
                                            const FourierLweBootstrapKey & bsk, ModulusSwitchType modulus_switch,
                                            BootstrapWorkspace & workspace, ThreadPool & pool) {
    const size_t count = inputs.size();
    if (count == 0) return;
    FHEGPT_CHECK(luts.size() == 1 || luts.size() == count, "%zu lookup tables for %zu inputs", luts.size(), count);
    const size_t functions = luts[0]->function_count;
    FHEGPT_CHECK_EQ(outputs.size(), count * functions);
    FHEGPT_CHECK(workspace.threads.size() >= pool.size(), "workspace for %zu threads, pool of %zu",
                 workspace.threads.size(), pool.size());
    const size_t n = bsk.input_lwe_dimension.value;
    const size_t expected_input = ksk != nullptr ? ksk->input_lwe_dimension.value : n;
    if (ksk != nullptr) FHEGPT_CHECK_EQ(ksk->output_lwe_dimension.value, n);
    for (const LweCiphertext * input : inputs) FHEGPT_CHECK_EQ(input->lwe_dimension().value, expected_input);
    for (const LookupTable * lut : luts) FHEGPT_CHECK_EQ(lut->function_count, functions);
    FHEGPT_CHECK_EQ(workspace.threads[0].switched[0].lwe_dimension().value, n);

    // Groups are handed out one at a time: a thread that the OS delays (a shared machine) takes
    // fewer, instead of the whole batch waiting for its fixed share.
    const size_t group = workspace.group_size;
    const size_t groups = (count + group - 1) / group;
    std::atomic<size_t> next_group{0};
    pool.parallel_for(std::min(pool.size(), groups), [&](size_t, size_t, size_t thread) {
        BootstrapThreadScratch & scratch = workspace.threads[thread];
        std::array<const LweCiphertext *, kMaxKeyswitchGroup> group_inputs{};
        std::array<LweCiphertext *, kMaxKeyswitchGroup> small{};
        std::array<const LookupTable *, kMaxKeyswitchGroup> group_luts{};
        for (size_t g = next_group.fetch_add(1); g < groups; g = next_group.fetch_add(1)) {
            const size_t first = g * group, size = std::min(group, count - first);
            for (size_t c = 0; c < size; ++c) {
                group_inputs[c] = inputs[first + c];
                small[c] = &scratch.switched[c];
                group_luts[c] = luts.size() == 1 ? luts[0] : luts[first + c];
            }
            std::span<const LweCiphertext * const> pbs_inputs(group_inputs.data(), size);
            if (ksk != nullptr) {
                keyswitch_lwe_ciphertext_group(*ksk, pbs_inputs, std::span<LweCiphertext * const>(small.data(), size),
                                               scratch.keyswitch);
                for (size_t c = 0; c < size; ++c) group_inputs[c] = small[c];
            }
            programmable_bootstrap_lwe_ciphertext_group(
                pbs_inputs, outputs.subspan(first * functions, size * functions),
                std::span<const LookupTable * const>(group_luts.data(), size), bsk, modulus_switch, scratch.pbs);
        }
    });
}

void batch_keyswitch_programmable_bootstrap(std::span<const LweCiphertext> inputs, std::span<LweCiphertext> outputs,
                                            std::span<const LookupTable * const> luts, const LweKeyswitchKey * ksk,
                                            const FourierLweBootstrapKey & bsk, ModulusSwitchType modulus_switch,
                                            BootstrapWorkspace & workspace, ThreadPool & pool) {
    std::vector<const LweCiphertext *> in(inputs.size());
    std::vector<LweCiphertext *> out(outputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) in[i] = &inputs[i];
    for (size_t i = 0; i < outputs.size(); ++i) out[i] = &outputs[i];
    batch_keyswitch_programmable_bootstrap(in, out, luts, ksk, bsk, modulus_switch, workspace, pool);
}

} // namespace fhegpt::tfhe
