// The block seam: a replacement for a run of whole transformer blocks, where the residual stream
// itself is handed over. A Gpt2Context (gpt2_forward.h) can install one BlockRange for layers
// first..last:
//   - from_mlp: the run starts at the feed-forward half of `first` (ln_2, c_fc, GELU, c_proj and
//     the residual addition); otherwise at its ln_1;
//   - final_norm: the run ends with ln_f (last must be the model's last layer), and its output
//     is the final hidden state that the LM head reads.
// The replacement gets the residual stream where the run starts (after the embeddings, or after
// layer first - 1, or after the attention half of `first`) and returns it where the run ends:
// the residual after layer `last`, or after ln_f. A residual it returns may differ from the
// default path's by a constant per position (a mean over the channels): every reader of the
// residual stream is a LayerNorm, which removes it. Driven position by position like the
// attention seam (attention.h). The default path never reads the replaced blocks' weights
// (nor ln_f's with final_norm).
#pragma once

#include "model/attention.h"
#include "model/gpt2_model.h"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace fhegpt::model {

struct BlockRangeSpec {
    int32_t first = 0, last = 0;
    bool from_mlp = false;
    bool final_norm = false;
};

class BlockRange {
public:
    virtual ~BlockRange() = default;

    // x:   [n_new, n_embd] the residual stream of positions n_past..n_past+n_new-1 where the run
    //      starts.
    // out: [n_new, n_embd] where it ends (the final hidden state with final_norm).
    virtual void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) = 0;

    // Forgets every position (a new sequence starts at position 0).
    virtual void reset() = 0;
};

// The float reference: the blocks as the default path computes them, from the same blocks
// (gpt2_blocks.h), with their own KV caches. On a folded model (gpt2_fold.h) it computes the
// folded blocks, which return the centred residual.
class FloatBlockRange final : public BlockRange {
public:
    // The model must outlive this object. pool: threads for the products (null: caller's).
    FloatBlockRange(const Gpt2Model & model, const BlockRangeSpec & spec, ThreadPool * pool = nullptr);

    void forward(std::span<const float> x, int32_t n_new, int32_t n_past, std::span<float> out) override;
    void reset() override;

private:
    const Gpt2Model & model_;
    BlockRangeSpec spec_;
    ThreadPool * pool_;
    std::vector<std::unique_ptr<FloatLayerAttention>> attention_; // per layer of the run (null: not replaced)
    std::vector<float> norm_, delta_, hidden_;                   // scratch
};

} // namespace fhegpt::model
