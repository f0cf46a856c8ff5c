// A quantized head or a whole quantized attention block behind the model's attention seam
// (model/attention.h), or a run of whole blocks behind its block seam (model/block_range.h),
// evaluated by one of the circuit's executors: the clear simulation, or ciphertexts (encrypt
// here, evaluate with the server key, decrypt). Without a KV cache each keeps the quantized
// inputs of every position so far and evaluates the whole sequence at each call; with one it
// evaluates only the new rows on the (encrypted) cache. Each call returns the new positions'
// outputs.
#pragma once

#include "circuit/circuit.h"
#include "circuit/encrypted_executor.h"
#include "circuit/quantized_attention.h"
#include "circuit/quantized_blocks.h"
#include "model/attention.h"
#include "model/block_range.h"
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
    int32_t first = 0, n = 0;   // the rows evaluated: first..n-1
    int64_t bootstraps = 0;
    double seconds = 0;
    int64_t mismatches = 0;     // encrypted outputs that differ from the simulation
    std::vector<int64_t> encrypted, simulated; // the outputs of rows first..n-1
};

// What both seams share: the quantized inputs so far, one circuit per (first row, length),
// and one evaluation per call (with an encrypted run, a record). Without a cache, every call
// evaluates the whole sequence and keeps the new rows. With one (cache_parts > 0), a call
// evaluates only the new rows: the circuit's inputs are the new positions' x and then the
// cache, its outputs the new rows and then their cache entries (build_head_row_circuit); the
// runner keeps the cache, as ciphertexts for the encrypted executor (next to the simulated
// integers it checks them against).
class CircuitRunner {
public:
    using Build = std::function<Circuit(int32_t first, int32_t n)>;
    // The circuit's outputs evaluated without a graph (its stages on CircuitBuilder::evaluator).
    using Evaluate = std::function<std::vector<int64_t>(int32_t first, int32_t n, std::span<const int64_t> inputs)>;
    using Quantize = std::function<std::vector<int64_t>(std::span<const float> x)>;
    struct Shape {
        int32_t n_embd = 0;        // reals per position (the quantizer's input)
        int32_t output_cols = 0;   // outputs per row
        int32_t cache_parts = 0;   // 0: no cache
        int32_t cache_cols = 0;    // values per position in each part
    };
    // evaluate (optional): the simulated executor uses it instead of simulating the graph, and
    // never builds one.
    CircuitRunner(Executor executor, EncryptedKeys keys, Shape shape, Build build, Quantize quantize,
                  Evaluate evaluate = {});

    // Appends positions n_past.. (x: [n_new, n_embd]) and returns their rows' outputs
    // [n_new, output_cols].
    std::vector<int64_t> run(std::span<const float> x, int32_t n_new, int32_t n_past);
    void reset();
    const std::vector<HeadRunRecord> & runs() const { return runs_; }
    const Circuit & circuit_for(int32_t first, int32_t n);

private:
    Executor executor_;
    EncryptedKeys keys_;
    Shape shape_;
    Build build_;
    Quantize quantize_;
    Evaluate evaluate_;
    int32_t n_past_ = 0;
    std::vector<int64_t> x_int_;                          // without a cache: every position so far
    std::vector<std::vector<int64_t>> cache_;             // [part][position * cols], simulated
    std::vector<std::vector<tfhe::LweCiphertext>> encrypted_cache_; // the same, encrypted
    std::map<std::pair<int32_t, int32_t>, std::unique_ptr<Circuit>> circuits_;
    std::vector<HeadRunRecord> runs_;
};

class QuantizedHeadAttention final : public model::HeadAttention {
public:
    // kv_cache: evaluate only the new rows on a cache of earlier keys and values (needs a
    // calibrated head.output_width, see head_calibration.h); otherwise recompute the sequence.
    QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys = {}, bool kv_cache = false);
    QuantizedHeadAttention(const QuantizedHeadAttention &) = delete; // the runner points back here
    QuantizedHeadAttention & operator=(const QuantizedHeadAttention &) = delete;

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { runner_.reset(); }

    const quant::QuantizedHead & head() const { return head_; }
    // One record per encrypted evaluation.
    const std::vector<HeadRunRecord> & runs() const { return runner_.runs(); }
    const Circuit & circuit_for(int32_t first, int32_t n) { return runner_.circuit_for(first, n); }

private:
    quant::QuantizedHead head_;
    bool kv_cache_;
    CircuitRunner runner_;
};

class QuantizedLayerAttention final : public model::LayerAttention {
public:
    // kv_cache: evaluate only the new rows on every head's key/value cache.
    QuantizedLayerAttention(QuantizedAttention attention, Executor executor, EncryptedKeys keys = {}, bool kv_cache = false);
    QuantizedLayerAttention(const QuantizedLayerAttention &) = delete; // the runner points back here
    QuantizedLayerAttention & operator=(const QuantizedLayerAttention &) = delete;

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { runner_.reset(); }

    const QuantizedAttention & attention() const { return attention_; }
    const std::vector<HeadRunRecord> & runs() const { return runner_.runs(); }
    const Circuit & circuit_for(int32_t first, int32_t n) { return runner_.circuit_for(first, n); }

private:
    QuantizedAttention attention_;
    bool kv_cache_;
    CircuitRunner runner_;
};

// A run of whole blocks (quantized_blocks.h) behind the model's block seam: the client's share
// (centring, the first normalization, quantization, decryption) and the blocks' circuit.
class QuantizedBlockRange final : public model::BlockRange {
public:
    // kv_cache: evaluate only the new rows on every head's key/value cache.
    QuantizedBlockRange(QuantizedBlocks blocks, Executor executor, EncryptedKeys keys = {}, bool kv_cache = false);
    QuantizedBlockRange(const QuantizedBlockRange &) = delete; // the runner points back here
    QuantizedBlockRange & operator=(const QuantizedBlockRange &) = delete;

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override { runner_.reset(); }

    const QuantizedBlocks & blocks() const { return blocks_; }
    const std::vector<HeadRunRecord> & runs() const { return runner_.runs(); }
    const Circuit & circuit_for(int32_t first, int32_t n) { return runner_.circuit_for(first, n); }

private:
    QuantizedBlocks blocks_;
    bool kv_cache_;
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
