// Sequential calibration of whole blocks (block_calibration.h): each server-side LayerNorm is
// calibrated on the circuit's own stream at its input (what the stages before it give on the
// calibration sequences), not on the float model's. On a small 2-layer model with ln_f: every
// LayerNorm's channel widths are exactly those that the circuit's stream there needs, and the
// float calibration's widths differ from them (so the check can tell the two apart).
#include "circuit-test-util.h"
#include "circuit/block_calibration.h"
#include "circuit/block_circuit.h"
#include "model/block_range.h"
#include "model/gpt2_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <span>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;

// n_embd 64, 2 heads of 32, 2 layers.
const model::Gpt2Model & small_model() {
    static const model::Gpt2Model m = model::make_random_gpt2_model(test::small_attention_hparams(2), 17, 0.12f);
    return m;
}

// Per server-side LayerNorm (ln_1 and ln_2 of each block, then ln_f) the widths w_k that the
// circuit's stream at its input needs on the calibration sequences: the smallest in [b, B] with
// max |x_k| headroom < 2^(w_k - 1).
std::vector<std::vector<int>> needed_widths(const QuantizedBlocks & q, const BlockCalibration & cal, double headroom) {
    const size_t n_embd = size_t(q.n_embd);
    std::vector<std::vector<int64_t>> top(2 * q.blocks.size() + 1, std::vector<int64_t>(n_embd, 0));
    size_t row = 0;
    for (int32_t len : cal.lengths) {
        const std::span<const float> start = std::span(cal.start).subspan(row * n_embd, size_t(len) * n_embd);
        const std::vector<BlockTaps> taps = blocks_reference_taps(q, q.quantize_inputs(start), len, q.blocks.size());
        for (size_t l = 0; l < taps.size(); ++l)
            for (size_t p = 0; p < 3; ++p) {
                const std::vector<int64_t> & x = p == 0 ? taps[l].before : p == 1 ? taps[l].middle : taps[l].after;
                std::vector<int64_t> & t = top[std::min(2 * l + p, top.size() - 1)];
                if (p == 2 && l + 1 < taps.size()) continue; // the next block's `before`
                for (size_t i = 0; i < x.size(); ++i) t[i % n_embd] = std::max(t[i % n_embd], std::abs(x[i]));
            }
        row += size_t(len);
    }
    std::vector<std::vector<int>> widths;
    auto add = [&](const std::optional<QuantizedLayerNorm> & ln, size_t point) {
        if (!ln) return;
        std::vector<int> w(n_embd);
        for (size_t k = 0; k < n_embd; ++k) {
            int width = ln->bucket_bits;
            while (width < q.residual.width && double(top[point][k]) * headroom >= std::ldexp(1.0, width - 1)) ++width;
            w[k] = width;
        }
        widths.push_back(w);
    };
    for (size_t l = 0; l < q.blocks.size(); ++l) {
        add(q.blocks[l].ln_1, 2 * l);
        add(q.blocks[l].ln_2, 2 * l + 1);
    }
    add(q.ln_f, top.size() - 1);
    return widths;
}

std::vector<std::vector<int>> layer_norm_widths(const QuantizedBlocks & q) {
    std::vector<std::vector<int>> widths;
    for (const QuantizedBlock & b : q.blocks)
        for (const auto * ln : {&b.ln_1, &b.ln_2})
            if (*ln) widths.push_back((*ln)->width);
    if (q.ln_f) widths.push_back(q.ln_f->width);
    return widths;
}

TEST(BlocksSequentialCalibration, LayerNormsFitTheCircuitsOwnStream) {
    const model::BlockRangeSpec all{0, 1, false, true};
    const BlockCalibration cal = collect_block_calibration(small_model(), test::token_sequences(9, 8, 8), all);
    BlocksQuantConfig config;
    config.head.n_bits = 4;
    config.head.lut_bits = 4;
    config.fine_noise_log2 = 36; // fixed: no parameter choice
    config.sequential = true;
    const QuantizedBlocks sequential = quantize_blocks(small_model(), all, cal, config);
    const std::vector<std::vector<int>> widths = layer_norm_widths(sequential);
    ASSERT_EQ(widths.size(), 4u); // layer 1's ln_1, both ln_2, ln_f
    EXPECT_EQ(widths, needed_widths(sequential, cal, config.headroom));

    config.sequential = false;
    const QuantizedBlocks from_float = quantize_blocks(small_model(), all, cal, config);
    EXPECT_EQ(from_float.residual.width, sequential.residual.width);
    EXPECT_EQ(from_float.residual.unit, sequential.residual.unit);
    EXPECT_NE(layer_norm_widths(from_float), needed_widths(from_float, cal, config.headroom));
}

} // namespace
