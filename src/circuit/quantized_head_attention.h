// A quantized head behind the model's attention seam (model/attention.h), evaluated by one of
// the circuit's executors: the clear simulation, or ciphertexts (encrypt here, evaluate with
// the server key, decrypt). It keeps the quantized inputs of every position so far and
// evaluates the circuit of the whole sequence at each call (no KV cache yet), returning the
// new positions' context vectors.
#pragma once

#include "circuit/circuit.h"
#include "circuit/encrypted_executor.h"
#include "model/attention.h"
#include "model/gpt2_forward.h"
#include "model/gpt2_tokenizer.h"
#include "quant/quantized_head.h"

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

class QuantizedHeadAttention final : public model::HeadAttention {
public:
    QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys = {});

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { x_int_.clear(); }

    const quant::QuantizedHead & head() const { return head_; }
    // One record per encrypted evaluation.
    const std::vector<HeadRunRecord> & runs() const { return runs_; }
    const Circuit & circuit_for(int32_t n);

private:
    quant::QuantizedHead head_;
    Executor executor_;
    EncryptedKeys keys_;
    std::vector<int64_t> x_int_;
    std::map<int32_t, std::unique_ptr<Circuit>> circuits_;
    std::vector<HeadRunRecord> runs_;
};

// The ln_1 outputs of `layer` for each prompt, one sequence after the other, and the lengths.
struct LayerInputs {
    std::vector<float> x;
    std::vector<int32_t> lengths;
};
LayerInputs collect_layer_inputs(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                 std::span<const std::string> prompts, int32_t layer);

} // namespace fhegpt::circuit
