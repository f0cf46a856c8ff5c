#include "circuit/quantized_head_attention.h"

#include "circuit/head_circuit.h"
#include "circuit/simulate.h"
#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>

namespace fhegpt::circuit {

QuantizedHeadAttention::QuantizedHeadAttention(quant::QuantizedHead head, Executor executor, EncryptedKeys keys)
    : head_(std::move(head)), executor_(executor), keys_(std::move(keys)) {
    if (executor_ == Executor::encrypted && (!keys_.client || !keys_.server))
        fail("quantized head: the encrypted executor needs a client and a server key");
}

const Circuit & QuantizedHeadAttention::circuit_for(int32_t n) {
    auto it = circuits_.find(n);
    if (it == circuits_.end()) it = circuits_.emplace(n, std::make_unique<Circuit>(build_head_circuit(head_, n))).first;
    return *it->second;
}

void QuantizedHeadAttention::forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) {
    const int32_t n_embd = head_.n_embd, d = head_.head_dim;
    if (n_past != static_cast<int32_t>(x_int_.size() / size_t(n_embd)))
        fail("quantized head: called at position {} after {} positions", n_past, x_int_.size() / size_t(n_embd));
    if (n_new <= 0 || x.size() < size_t(n_new) * n_embd || out.size() < size_t(n_new) * d)
        fail("quantized head: bad shapes for {} new positions", n_new);
    const std::vector<int64_t> x_new = head_.quantize_inputs(x.first(size_t(n_new) * n_embd));
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
    const double scale = head_.output_scale();
    for (int32_t i = 0; i < n_new; ++i)
        for (int32_t c = 0; c < d; ++c)
            out[size_t(i) * d + c] = static_cast<float>(double(values[size_t(n_past + i) * d + c]) * scale);
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
