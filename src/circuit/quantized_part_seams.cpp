#include "circuit/quantized_part_seams.h"

#include "circuit/attention_circuit.h"
#include "circuit/block_circuit.h"
#include "circuit/head_circuit.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>

namespace fhegpt::circuit {

CircuitRunner::CircuitRunner(Executor executor, EncryptedKeys keys, Shape shape, Build build, Quantize quantize,
                             Evaluate evaluate)
    : executor_(executor), keys_(std::move(keys)), shape_(shape), build_(std::move(build)), quantize_(std::move(quantize)),
      evaluate_(std::move(evaluate)), cache_(size_t(shape.cache_parts)), encrypted_cache_(size_t(shape.cache_parts)) {
    if (executor_ == Executor::encrypted && (!keys_.client || !keys_.server))
        fail("quantized attention: the encrypted executor needs a client and a server key");
}

void CircuitRunner::reset() {
    n_past_ = 0;
    x_int_.clear();
    for (auto & part : cache_) part.clear();
    for (auto & part : encrypted_cache_) part.clear();
}

const Circuit & CircuitRunner::circuit_for(int32_t first, int32_t n) {
    auto it = circuits_.find({first, n});
    if (it == circuits_.end()) it = circuits_.emplace(std::make_pair(first, n), std::make_unique<Circuit>(build_(first, n))).first;
    return *it->second;
}

std::vector<int64_t> CircuitRunner::run(std::span<const float> x, int32_t n_new, int32_t n_past) {
    if (n_past != n_past_) fail("quantized attention: called at position {} after {} positions", n_past, n_past_);
    if (n_new <= 0 || x.size() < size_t(n_new) * shape_.n_embd)
        fail("quantized attention: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> x_new = quantize_(x.first(size_t(n_new) * shape_.n_embd));
    const bool cached = shape_.cache_parts > 0;
    const int32_t n = n_past + n_new, first = cached ? n_past : 0;
    const bool graph = executor_ == Executor::encrypted || !evaluate_;
    const Circuit * circuit = graph ? &circuit_for(first, n) : nullptr;

    // Inputs: the new positions (all positions without a cache), then the cache.
    if (!cached) x_int_.insert(x_int_.end(), x_new.begin(), x_new.end());
    std::vector<int64_t> inputs = cached ? x_new : x_int_;
    for (const auto & part : cache_) inputs.insert(inputs.end(), part.begin(), part.end());
    const std::vector<int64_t> simulated = graph ? simulate(*circuit, inputs) : evaluate_(first, n, inputs);
    const size_t row_begin = size_t(n_past - first) * shape_.output_cols, rows = size_t(n_new) * shape_.output_cols;
    std::vector<int64_t> values(simulated.begin() + ptrdiff_t(row_begin), simulated.begin() + ptrdiff_t(row_begin + rows));
    const size_t state = size_t(n_new) * shape_.cache_cols; // new cache values per part
    auto keep_cache = [&](auto & parts, const auto & outputs) {
        for (size_t part = 0; part < parts.size(); ++part) {
            const auto begin = outputs.begin() + ptrdiff_t(row_begin + rows + part * state);
            parts[part].insert(parts[part].end(), begin, begin + ptrdiff_t(state));
        }
    };

    if (executor_ == Executor::encrypted) {
        HeadRunRecord record;
        record.first = n_past;
        record.n = n;
        ExecutionStats stats;
        ThreadPool & pool = keys_.pool ? *keys_.pool : ThreadPool::global();
        // The client encrypts only the new positions' inputs (all positions without a cache);
        // the cache is already ciphertexts.
        std::vector<tfhe::LweCiphertext> encrypted_inputs =
            encrypt_leading_inputs(*circuit, *keys_.client, std::span(inputs).first(cached ? x_new.size() : x_int_.size()));
        for (const auto & part : encrypted_cache_) encrypted_inputs.insert(encrypted_inputs.end(), part.begin(), part.end());
        const auto outputs = run_encrypted(*circuit, *keys_.server, encrypted_inputs, pool, keys_.progress, &stats);
        record.encrypted =
            decrypt_output_range(*circuit, *keys_.client, std::span(outputs).subspan(row_begin, rows), row_begin);
        record.simulated = values;
        record.bootstraps = stats.bootstraps;
        record.seconds = stats.seconds;
        for (size_t k = 0; k < rows; ++k) record.mismatches += record.encrypted[k] != values[k];
        values = record.encrypted;
        runs_.push_back(std::move(record));
        keep_cache(encrypted_cache_, outputs);
    }
    keep_cache(cache_, simulated);
    n_past_ = n;
    return values;
}

QuantizedHeadAttention::QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys,
                                               bool kv_cache)
    : head_(std::move(head)), kv_cache_(kv_cache),
      runner_(executor, std::move(keys),
              {head_.n_embd, head_.head_dim, kv_cache ? kHeadCacheParts : 0, kv_cache ? head_.head_dim : 0},
              [this](int32_t first, int32_t n) {
                  return kv_cache_ ? build_head_row_circuit(head_, first, n, head_.output_width)
                                   : build_head_circuit(head_, n);
              },
              [this](std::span<const float> x) { return head_.quantize_inputs(x); }) {
    if (kv_cache && head_.output_width <= 0)
        fail("quantized head: a KV cache needs a calibrated output width (circuit::quantize_head_for_circuit)");
}

void QuantizedHeadAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t d = head_.head_dim;
    if (out.size() < size_t(n_new) * d) fail("quantized head: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> values = runner_.run(x, n_new, n_past);
    const double scale = head_.output_scale();
    for (size_t k = 0; k < size_t(n_new) * d; ++k) out[k] = static_cast<float>(double(values[k]) * scale);
}

QuantizedLayerAttention::QuantizedLayerAttention(QuantizedAttention attention, Executor executor, EncryptedKeys keys,
                                                 bool kv_cache)
    : attention_(std::move(attention)), kv_cache_(kv_cache),
      runner_(executor, std::move(keys),
              {attention_.n_embd, attention_.n_embd, kv_cache ? kHeadCacheParts * attention_.n_head : 0, kv_cache ? attention_.head_dim : 0},
              [this](int32_t first, int32_t n) {
                  return kv_cache_ ? build_attention_row_circuit(attention_, first, n) : build_attention_circuit(attention_, n);
              },
              [this](std::span<const float> x) { return attention_.quantize_inputs(x); }) {}

void QuantizedLayerAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t n_embd = attention_.n_embd;
    if (out.size() < size_t(n_new) * n_embd) fail("quantized attention: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> values = runner_.run(x, n_new, n_past);
    for (size_t k = 0; k < size_t(n_new) * n_embd; ++k) out[k] = static_cast<float>(double(values[k]) * attention_.out_unit);
}

QuantizedBlockRange::QuantizedBlockRange(QuantizedBlocks blocks, Executor executor, EncryptedKeys keys, bool kv_cache)
    : blocks_(std::move(blocks)), kv_cache_(kv_cache),
      runner_(executor, std::move(keys),
              {blocks_.n_embd, blocks_.n_embd, kv_cache ? blocks_.cache_parts() : 0, kv_cache ? blocks_.head_dim() : 0},
              [this](int32_t first, int32_t n) {
                  return kv_cache_ ? build_blocks_row_circuit(blocks_, first, n) : build_blocks_circuit(blocks_, n);
              },
              [this](std::span<const float> x) { return blocks_.quantize_inputs(x); },
              [this](int32_t first, int32_t n, std::span<const int64_t> inputs) {
                  return kv_cache_ ? blocks_reference_rows(blocks_, inputs, first, n)
                                   : blocks_reference_forward(blocks_, inputs, n);
              }) {}

void QuantizedBlockRange::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t n_embd = blocks_.n_embd;
    if (out.size() < size_t(n_new) * n_embd) fail("quantized blocks: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> values = runner_.run(x, n_new, n_past);
    for (size_t k = 0; k < size_t(n_new) * n_embd; ++k)
        out[k] = static_cast<float>(double(values[k]) * blocks_.output_unit(int32_t(k % size_t(n_embd))));
}

namespace {

// Records the head inputs (ln_1 outputs) of one layer and computes nothing of its own: it
// wraps the float head so that the model's output is unchanged.
class RecordingHead final : public model::HeadAttention {
public:
    RecordingHead(const model::Gpt2Model & model, int32_t layer, std::vector<float> & sink)
        : inner_(model, layer, 0, 0), sink_(sink) {}
    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override {
        sink_.insert(sink_.end(), x.begin(), x.begin() + ptrdiff_t(n_new) * (x.size() / size_t(n_new)));
        inner_.forward(x, n_new, n_past, out);
    }
    void reset() override { inner_.reset(); }

private:
    model::FloatHeadAttention inner_;
    std::vector<float> & sink_;
};

} // namespace

LayerInputs collect_layer_inputs(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                 std::span<const std::string> prompts, int32_t layer) {
    if (layer < 0 || layer >= model.hparams.n_layer) fail("layer {} of a {}-layer model", layer, model.hparams.n_layer);
    LayerInputs result;
    model::Gpt2Context ctx(model, {.n_ctx = model.hparams.n_ctx});
    ctx.set_head_attention(layer, 0, std::make_unique<RecordingHead>(model, layer, result.x));
    for (const std::string & prompt : prompts) {
        std::vector<int32_t> tokens = tokenizer.encode(prompt);
        if (tokens.empty()) continue;
        if (tokens.size() > size_t(model.hparams.n_ctx)) tokens.resize(size_t(model.hparams.n_ctx));
        ctx.reset();
        ctx.eval(tokens);
        result.lengths.push_back(static_cast<int32_t>(tokens.size()));
    }
    if (result.lengths.empty()) fail("calibration: no non-empty prompt");
    return result;
}

} // namespace fhegpt::circuit
