// A quantized head or a whole quantized attention block behind the model's attention seam
// (model/attention.h), evaluated by one of the circuit's executors: the clear simulation, or
// ciphertexts (encrypt here, evaluate with the server key, decrypt). Each keeps the quantized
// inputs of every position so far and evaluates the circuit of the whole sequence at each call
// (no KV cache yet), returning the new positions' outputs.
#pragma once

#include "circuit/circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/quantized_attention.h"
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_tokenizer.h"
#include "quant/quantized_head.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fhegpt::circuit {

enum class Executor { simulate, encrypted };

struct EncryptedKeys {
    const tfhe::ClientKey * client = nullptr;
    const tfhe::ServerKey * server = nullptr;
    ThreadPool * pool = nullptr;
    ProgressCallback progress;
};

struct HeadRunRecord {
    int32_t n = 0;
    int64_t bootstraps = 0;
    double seconds = 0;
    int64_t mismatches = 0; // encrypted outputs that differ from the simulation
    std::vector<int64_t> encrypted, simulated;
};

// What both seams share: the quantized inputs so far, one circuit per sequence length, and
// one evaluation of the whole sequence (with an encrypted run, a record).
class CircuitRunner {
public:
    using Build = std::function<Circuit(int32_t n)>;
    using Quantize = std::function<std::vector<int64_t>(std::span<const float> x)>;
    CircuitRunner(Executor executor, EncryptedKeys keys, int32_t n_embd, Build build, Quantize quantize);

    // Appends positions n_past.. (x: [n_new, n_embd]) and returns the circuit's outputs for
    // the whole sequence.
    std::vector<int64_t> run(std::span<const float> x, int32_t n_new, int32_t n_past);
    void reset() { x_int_.clear(); }
    const std::vector<HeadRunRecord> & runs() const { return runs_; }
    const Circuit & circuit_for(int32_t n);

private:
    Executor executor_;
    EncryptedKeys keys_;
    int32_t n_embd_;
    Build build_;
    Quantize quantize_;
    std::vector<int64_t> x_int_;
    std::map<int32_t, std::unique_ptr<Circuit>> circuits_;
    std::vector<HeadRunRecord> runs_;
};

class QuantizedHeadAttention final : public model::HeadAttention {
public:
    QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys = {});
    QuantizedHeadAttention(const QuantizedHeadAttention &) = delete; // the runner points back here
    QuantizedHeadAttention & operator=(const QuantizedHeadAttention &) = delete;

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { runner_.reset(); }

    const quant::QuantizedHead & head() const { return head_; }
    // One record per encrypted evaluation.
    const std::vector<HeadRunRecord> & runs() const { return runner_.runs(); }
    const Circuit & circuit_for(int32_t n) { return runner_.circuit_for(n); }

private:
    quant::QuantizedHead head_;
    CircuitRunner runner_;
};

class QuantizedLayerAttention final : public model::LayerAttention {
public:
    QuantizedLayerAttention(QuantizedAttention attention, Executor executor, EncryptedKeys keys = {});
    QuantizedLayerAttention(const QuantizedLayerAttention &) = delete; // the runner points back here
    QuantizedLayerAttention & operator=(const QuantizedLayerAttention &) = delete;

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { runner_.reset(); }

    const QuantizedAttention & attention() const { return attention_; }
    const std::vector<HeadRunRecord> & runs() const { return runner_.runs(); }
    const Circuit & circuit_for(int32_t n) { return runner_.circuit_for(n); }

private:
    QuantizedAttention attention_;
    CircuitRunner runner_;
};

// The ln_1 outputs of `layer` for each prompt, one sequence after the other, and the lengths.
struct LayerInputs {
    std::vector<float> x;
    std::vector<int32_t> lengths;
};
LayerInputs collect_layer_inputs(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                 std::span<const std::string> prompts, int32_t layer);

} // namespace fhegpt::circuit
