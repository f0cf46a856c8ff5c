#include "circuit/quantized_head_attention.h"

#include "circuit/attention_circuit.h"
#include "circuit/head_circuit.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>

namespace fhegpt::circuit {

CircuitRunner::CircuitRunner(Executor executor, EncryptedKeys keys, int32_t n_embd, Build build, Quantize quantize)
    : executor_(executor), keys_(std::move(keys)), n_embd_(n_embd), build_(std::move(build)),
      quantize_(std::move(quantize)) {
    if (executor_ == Executor::encrypted && (!keys_.client || !keys_.server))
        fail("quantized attention: the encrypted executor needs a client and a server key");
}

const Circuit & CircuitRunner::circuit_for(int32_t n) {
    auto it = circuits_.find(n);
    if (it == circuits_.end()) it = circuits_.emplace(n, std::make_unique<Circuit>(build_(n))).first;
    return *it->second;
}

std::vector<int64_t> CircuitRunner::run(std::span<const float> x, int32_t n_new, int32_t n_past) {
    if (n_past != static_cast<int32_t>(x_int_.size() / size_t(n_embd_)))
        fail("quantized attention: called at position {} after {} positions", n_past, x_int_.size() / size_t(n_embd_));
    if (n_new <= 0 || x.size() < size_t(n_new) * n_embd_) fail("quantized attention: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> x_new = quantize_(x.first(size_t(n_new) * n_embd_));
    x_int_.insert(x_int_.end(), x_new.begin(), x_new.end());
    const int32_t n = n_past + n_new;
    const Circuit & circuit = circuit_for(n);
    std::vector<int64_t> values = simulate(circuit, x_int_);
    if (executor_ == Executor::encrypted) {
        HeadRunRecord record;
        record.n = n;
        ExecutionStats stats;
        ThreadPool & pool = keys_.pool ? *keys_.pool : ThreadPool::global();
        const auto inputs = encrypt_inputs(circuit, *keys_.client, x_int_);
        const auto outputs = run_encrypted(circuit, *keys_.server, inputs, pool, keys_.progress, &stats);
        record.encrypted = decrypt_outputs(circuit, *keys_.client, outputs);
        record.simulated = values;
        record.bootstraps = stats.bootstraps;
        record.seconds = stats.seconds;
        for (size_t i = 0; i < values.size(); ++i) record.mismatches += record.encrypted[i] != values[i];
        values = record.encrypted;
        runs_.push_back(std::move(record));
    }
    return values;
}

QuantizedHeadAttention::QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys)
    : head_(std::move(head)),
      runner_(executor, std::move(keys), head_.n_embd, [this](int32_t n) { return build_head_circuit(head_, n); },
              [this](std::span<const float> x) { return head_.quantize_inputs(x); }) {}

void QuantizedHeadAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t d = head_.head_dim;
    if (out.size() < size_t(n_new) * d) fail("quantized head: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> values = runner_.run(x, n_new, n_past);
    const double scale = head_.output_scale();
    for (int32_t i = 0; i < n_new; ++i)
        for (int32_t c = 0; c < d; ++c)
            out[size_t(i) * d + c] = static_cast<float>(double(values[size_t(n_past + i) * d + c]) * scale);
}

QuantizedLayerAttention::QuantizedLayerAttention(QuantizedAttention attention, Executor executor, EncryptedKeys keys)
    : attention_(std::move(attention)),
      runner_(executor, std::move(keys), attention_.n_embd,
              [this](int32_t n) { return build_attention_circuit(attention_, n); },
              [this](std::span<const float> x) { return attention_.quantize_inputs(x); }) {}

void QuantizedLayerAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t n_embd = attention_.n_embd;
    if (out.size() < size_t(n_new) * n_embd) fail("quantized attention: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> values = runner_.run(x, n_new, n_past);
    for (int32_t i = 0; i < n_new; ++i)
        for (int32_t j = 0; j < n_embd; ++j)
            out[size_t(i) * n_embd + j] =
                static_cast<float>(double(values[size_t(n_past + i) * n_embd + j]) * attention_.out_unit);
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
