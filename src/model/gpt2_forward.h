// The clear GPT-2 forward pass: a Gpt2Context owns the KV cache and every scratch buffer
// (allocated once), evaluates a batch of new tokens at a time (prefill: matrix products;
// decode, one token: matrix-vector products) and returns the logits of the last position or of
// every position. Parts of the attention can be replaced through the seam in attention.h.
//
// Graph of one batch of n tokens at positions n_past..n_past+n-1 (names as reported to the
// tensor callback, shapes as [rows, cols]):
//   inp_embd    = wte[tokens] + wpe[positions]                        [n, n_embd]
//   per layer:
//     attn_norm = LayerNorm(x; ln_1)                                  [n, n_embd]
//     kqv_out   = causal attention of each head, heads side by side   [n, n_embd]
//     attn_out  = kqv_out c_proj + bias                               [n, n_embd]
//     ffn_inp   = x + attn_out                                        [n, n_embd]
//     ffn_norm  = LayerNorm(ffn_inp; ln_2)                            [n, n_embd]
//     ffn_act   = gelu(ffn_norm c_fc + bias)                          [n, 4*n_embd]
//     ffn_out   = ffn_act c_proj + bias                               [n, n_embd]
//     l_out     = ffn_inp + ffn_out  (the next layer's x)             [n, n_embd]
//   result_norm   = LayerNorm(x; ln_f)                                [rows, n_embd]
//   result_output = result_norm lm_head^T                             [rows, n_vocab]
// where rows is n for Logits::all and the last position for Logits::last.
#pragma once

#include "model/attention.h"
#include "model/block_range.h"
#include "model/gpt2_model.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace fhegpt {
class ThreadPool;
}

namespace fhegpt::model {

struct Gpt2ContextParams {
    int32_t n_ctx = 0;     // positions in the KV cache; 0: the model's n_ctx
    int32_t n_batch = 512; // most tokens per pass (scratch size); longer inputs are split
    int32_t n_threads = 0; // 0: the process-wide pool (FHEGPT_THREADS or one per core)
};

enum class Logits {
    last, // [n_vocab] for the last token given
    all,  // [n_tokens, n_vocab], row i predicts the token after tokens[i]
};

// An intermediate value of the forward pass, for diffing runs layer by layer.
struct Gpt2Tensor {
    const char * name; // as in the graph above
    int32_t layer;     // -1 outside the layers
    int32_t n_past;    // position of row 0
    int32_t rows;
    int32_t cols;
    std::span<const float> data; // [rows, cols]
};
using Gpt2TensorCallback = std::function<void(const Gpt2Tensor &)>;

class Gpt2Context {
public:
    // Throws fhegpt::Error for parameters the model cannot serve (n_ctx beyond the model's,
    // an unknown activation function). The model must outlive the context. Allocates the KV
    // cache and every buffer now; sets OpenBLAS to one thread (process-wide): the products are
    // split over the thread pool instead.
    explicit Gpt2Context(const Gpt2Model & model, const Gpt2ContextParams & params = {});
    ~Gpt2Context();
    Gpt2Context(const Gpt2Context &) = delete;
    Gpt2Context & operator=(const Gpt2Context &) = delete;

    // Appends `tokens` at positions n_past().. and returns their logits (see Logits), a view
    // valid until the next eval. Throws fhegpt::Error for an empty batch, a token outside the
    // vocabulary, or a context that would overflow n_ctx().
    std::span<const float> eval(std::span<const int32_t> tokens, Logits which = Logits::last);

    // Starts a new sequence: forgets the KV cache and resets every installed replacement.
    void reset();

    int32_t n_past() const { return n_past_; }
    int32_t n_ctx() const { return n_ctx_; }
    int32_t n_batch() const { return n_batch_; }
    int32_t n_vocab() const { return model_.hparams.n_vocab; }
    const Gpt2Model & model() const { return model_; }

    // Installs a replacement for the attention of `layer` (null: back to the default). Only
    // at n_past() == 0, and not on a layer with replaced heads.
    void set_layer_attention(int32_t layer, std::unique_ptr<LayerAttention> attention);
    // Installs a replacement for one head (null: back to the default); same conditions.
    void set_head_attention(int32_t layer, int32_t head, std::unique_ptr<HeadAttention> attention);
    LayerAttention * layer_attention(int32_t layer) const;
    HeadAttention * head_attention(int32_t layer, int32_t head) const;
    // Installs a replacement for the blocks of `spec` (block_range.h; null: back to the
    // default). Only at n_past() == 0, on layers without other replacements, one range at a time.
    void set_block_range(const BlockRangeSpec & spec, std::unique_ptr<BlockRange> blocks);
    BlockRange * block_range() const { return block_range_.get(); }

    // Called with every intermediate value of the following evals (null: none).
    void set_tensor_callback(Gpt2TensorCallback callback) { callback_ = std::move(callback); }

private:
    void eval_batch(const int32_t * tokens, int32_t n, bool all_logits, float * logits);
    void build_attention(int32_t il, int32_t n);
    void build_ffn(int32_t il, int32_t n);
    bool in_block_range(int32_t layer) const; // its attention or MLP is replaced by the block range
    void report(const char * name, int32_t layer, const float * data, int32_t rows, int32_t cols,
                int32_t first_row = 0) const;

    const Gpt2Model & model_;
    int32_t n_ctx_;
    int32_t n_batch_;
    int32_t n_past_ = 0;
    bool activation_tanh_ = true;
    std::unique_ptr<ThreadPool> own_pool_;
    ThreadPool * pool_;

    // KV cache of every layer: [n_layer, n_head, head_dim, n_ctx] keys (transposed) and
    // [n_layer, n_head, n_ctx, head_dim] values.
    std::vector<float> k_t_, v_;

    // Scratch, sized for n_batch tokens.
    std::vector<float> x_;        // [n_batch, n_embd] residual stream
    std::vector<float> cur_;      // [n_batch, n_embd] LayerNorm outputs
    std::vector<float> qkv_;      // [n_batch, 3*n_embd]
    std::vector<float> kqv_;      // [n_batch, n_embd]
    std::vector<float> out_;      // [n_batch, n_embd] attn_out, then ffn_out
    std::vector<float> ffn_;      // [n_batch, 4*n_embd]
    std::vector<float> head_out_; // [n_batch, head_dim]
    std::vector<float> scores_;   // [threads, n_ctx]
    std::vector<float> logits_;   // [n_vocab], or [n_tokens, n_vocab] after Logits::all

    std::vector<std::unique_ptr<LayerAttention>> layer_attention_; // [n_layer]
    std::vector<std::unique_ptr<HeadAttention>> head_attention_;   // [n_layer * n_head]
    std::vector<uint8_t> head_computed_;                           // [n_layer * n_head]: 1 = default path
    std::vector<uint8_t> layer_has_head_replacements_;             // [n_layer]
    BlockRangeSpec block_range_spec_;
    std::unique_ptr<BlockRange> block_range_;

    Gpt2TensorCallback callback_;
};

} // namespace fhegpt::model
