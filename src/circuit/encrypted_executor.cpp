#include "circuit/encrypted_executor.h"

#include "circuit/noise_analysis.h"
#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace fhegpt::circuit {

std::vector<tfhe::LweCiphertext> run_encrypted(const Circuit & circuit, const tfhe::ServerKey & key,
                                               std::span<const tfhe::LweCiphertext> inputs, ThreadPool & pool,
                                               const ProgressCallback & progress, ExecutionStats * stats,
                                               const CancellationToken * cancel) {
    std::vector<const tfhe::LweCiphertext *> pointers;
    pointers.reserve(inputs.size());
    for (const auto & ct : inputs) pointers.push_back(&ct);
    return run_encrypted(circuit, key, pointers, pool, progress, stats, cancel);
}

namespace {

// What the run needs to know before its first bootstrap: the lookup tables as accumulators, and
// per depth level the lookups on each bootstrapping key, the linear nodes, and the values read
// for the last time (released afterwards, so memory follows the widest level).
struct ExecutionPlan {
    std::vector<tfhe::LookupTable> luts;
    struct Level {
        std::vector<size_t> standard_lookups, fine_lookups, linears, last_reads;
    };
    std::vector<Level> levels;
    int64_t bootstraps = 0;
};

ExecutionPlan plan_execution(const Circuit & circuit, const tfhe::TfheParameters & params) {
    ExecutionPlan plan;
    plan.luts.reserve(circuit.tables().size());
    for (const Table & t : circuit.tables()) {
        if (t.bits > static_cast<int>(params.message_bits))
            fail("run_encrypted: a {}-bit lookup needs a parameter set of at least {} message bits, {} has {}", t.bits,
                 t.bits, params.name, params.message_bits);
        plan.luts.push_back(tfhe::generate_torus_lookup_table(params.polynomial_size, uint64_t{1} << t.bits,
                                                              [&](uint64_t j) { return t.outputs[j]; }));
    }
    const auto & nodes = circuit.nodes();
    const std::vector<int32_t> depth = circuit.depths();
    const int32_t max_depth = nodes.empty() ? 0 : *std::max_element(depth.begin(), depth.end());
    plan.levels.resize(size_t(max_depth) + 1);
    // A set with a second, finer bootstrapping key: the lookups of the kinds the analysis puts
    // there use it (the same deterministic choice as analyze_noise's).
    const std::vector<bool> fine_kinds = fine_bootstrap_kinds(circuit, params);
    std::vector<int32_t> last_read(nodes.size(), -1);
    for (size_t id = 0; id < nodes.size(); ++id) {
        const Node & n = nodes[id];
        ExecutionPlan::Level & level = plan.levels[size_t(depth[id])];
        if (n.kind == NodeKind::lookup) {
            (fine_kinds[circuit.tables()[n.table].kind] ? level.fine_lookups : level.standard_lookups).push_back(id);
            ++plan.bootstraps;
            last_read[n.input] = std::max(last_read[n.input], depth[id]);
        } else if (n.kind == NodeKind::linear) {
            level.linears.push_back(id);
            for (const LinearTerm & t : circuit.terms_of(n)) last_read[t.value] = std::max(last_read[t.value], depth[id]);
        }
    }
    for (const Port & port : circuit.outputs()) last_read[port.value] = max_depth + 1; // never released
    for (size_t id = 0; id < nodes.size(); ++id)
        if (last_read[id] >= 0 && last_read[id] <= max_depth) plan.levels[size_t(last_read[id])].last_reads.push_back(id);
    return plan;
}

} // namespace

std::vector<tfhe::LweCiphertext> run_encrypted(const Circuit & circuit, const tfhe::ServerKey & key,
                                               std::span<const tfhe::LweCiphertext * const> inputs, ThreadPool & pool,
                                               const ProgressCallback & progress, ExecutionStats * stats,
                                               const CancellationToken * cancel, BootstrapBatchRunner * runner) {
    const auto start = std::chrono::steady_clock::now();
    const tfhe::TfheParameters & params = key.parameters;
    if (inputs.size() != circuit.inputs().size())
        fail("run_encrypted: {} ciphertexts for {} circuit inputs", inputs.size(), circuit.inputs().size());
    for (const tfhe::LweCiphertext * ct : inputs)
        if (ct->data.size() != params.big_lwe_dimension().value + 1)
            fail("run_encrypted: an input ciphertext has dimension {}, the key expects {}", ct->data.size() - 1,
                 params.big_lwe_dimension().value);
    const ExecutionPlan plan = plan_execution(circuit, params);

    const auto & nodes = circuit.nodes();
    std::vector<tfhe::LweCiphertext> value(nodes.size());
    for (size_t i = 0; i < inputs.size(); ++i) value[circuit.inputs()[i].value] = *inputs[i];
    std::unique_ptr<LocalBootstrapBatchRunner> local;
    if (!runner) {
        local = std::make_unique<LocalBootstrapBatchRunner>(key, pool);
        runner = local.get();
    }
    int64_t done = 0;
    std::vector<const tfhe::LweCiphertext *> in_ptrs;
    std::vector<tfhe::LweCiphertext *> out_ptrs;
    std::vector<const tfhe::LookupTable *> lut_ptrs;
    std::vector<const tfhe::LweCiphertext *> term_ptrs;
    std::vector<int64_t> term_weights;
    const auto bootstrap = [&](tfhe::BootstrapKeyKind bsk, const std::vector<size_t> & lookups) {
        if (lookups.empty()) return;
        in_ptrs.clear();
        out_ptrs.clear();
        lut_ptrs.clear();
        for (size_t id : lookups) {
            value[id] = tfhe::allocate_lwe_ciphertext(key);
            in_ptrs.push_back(&value[nodes[id].input]);
            out_ptrs.push_back(&value[id]);
            lut_ptrs.push_back(&plan.luts[nodes[id].table]);
        }
        if (cancel) cancel->throw_if_cancelled();
        runner->run(bsk, in_ptrs, out_ptrs, lut_ptrs);
        done += int64_t(lookups.size());
    };
    for (const ExecutionPlan::Level & level : plan.levels) {
        bootstrap(tfhe::BootstrapKeyKind::standard, level.standard_lookups);
        bootstrap(tfhe::BootstrapKeyKind::fine, level.fine_lookups);
        if (progress && !(level.standard_lookups.empty() && level.fine_lookups.empty())) progress(done, plan.bootstraps);
        // Linear nodes of one level may read each other, always earlier ones: run them in order.
        for (size_t id : level.linears) {
            const Node & n = nodes[id];
            term_ptrs.clear();
            term_weights.clear();
            for (const LinearTerm & t : circuit.terms_of(n)) {
                term_ptrs.push_back(&value[t.value]);
                term_weights.push_back(t.weight);
            }
            tfhe::LweCiphertext out = tfhe::allocate_lwe_ciphertext(key);
            tfhe::lwe_ciphertext_dot_product(out, term_ptrs, term_weights);
            tfhe::lwe_ciphertext_plaintext_add_assign(out, n.constant);
            value[id] = std::move(out);
        }
        for (size_t id : level.last_reads) value[id] = tfhe::LweCiphertext{};
    }

    std::vector<tfhe::LweCiphertext> outputs;
    outputs.reserve(circuit.outputs().size());
    for (const Port & port : circuit.outputs()) outputs.push_back(value[port.value]);
    if (stats) {
        stats->bootstraps = plan.bootstraps;
        stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return outputs;
}

std::vector<tfhe::LweCiphertext> encrypt_inputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                                std::span<const int64_t> inputs) {
    if (inputs.size() != circuit.inputs().size())
        fail("encrypt_inputs: {} values for {} circuit inputs", inputs.size(), circuit.inputs().size());
    return encrypt_leading_inputs(circuit, key, inputs);
}

std::vector<tfhe::LweCiphertext> encrypt_leading_inputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                                        std::span<const int64_t> inputs) {
    if (inputs.size() > circuit.inputs().size())
        fail("encrypt_inputs: {} values for {} circuit inputs", inputs.size(), circuit.inputs().size());
    tfhe::RandomGenerator secret = tfhe::RandomGenerator::from_os();
    std::vector<tfhe::LweCiphertext> out;
    out.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
        out.push_back(tfhe::allocate_and_encrypt_new_lwe_ciphertext(
            key.big_lwe_secret_key, encode_integer(inputs[i], circuit.inputs()[i].delta_log2),
            key.parameters.glwe_noise, secret));
    return out;
}

std::vector<int64_t> decrypt_outputs(const Circuit & circuit, const tfhe::ClientKey & key,
                                     std::span<const tfhe::LweCiphertext> outputs) {
    if (outputs.size() != circuit.outputs().size())
        fail("decrypt_outputs: {} ciphertexts for {} circuit outputs", outputs.size(), circuit.outputs().size());
    return decrypt_output_range(circuit, key, outputs, 0);
}

std::vector<int64_t> decrypt_output_range(const Circuit & circuit, const tfhe::ClientKey & key,
                                          std::span<const tfhe::LweCiphertext> outputs, size_t first) {
    if (first > circuit.outputs().size() || outputs.size() > circuit.outputs().size() - first)
        fail("decrypt_outputs: outputs {}..{} of a circuit of {}", first, first + outputs.size(), circuit.outputs().size());
    std::vector<int64_t> out;
    out.reserve(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i)
        out.push_back(decode_integer(tfhe::decrypt_phase(key, outputs[i]), circuit.outputs()[first + i].delta_log2));
    return out;
}

} // namespace fhegpt::circuit
