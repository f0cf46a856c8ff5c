#include "circuit/block_calibration.h"

#include "circuit/attention_circuit.h"
#include "circuit/block_circuit.h"
#include "circuit/noise_analysis.h"
#include "common/error.h"
#include "model/gpt2_fold.h"
#include "model/gpt2_forward.h"
#include "quant/quantizer.h"
#include "quant/weight_rounding.h"
#include "tfhe/commons/noise_model.h"
#include "tfhe/commons/parameters.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fhegpt::circuit {

namespace {

using model::BlockRangeSpec;

std::vector<float> normalized(std::span<const float> x, int32_t n_embd, float eps) {
    std::vector<float> out(x.begin(), x.end());
    model::normalize_rows(out, n_embd, eps);
    return out;
}

// The smallest signed width in [lo, hi] whose range holds |v| < 2^(w - 1) for v up to `absmax`.
int width_for(double absmax, int lo, int hi) {
    int w = lo;
    while (w < hi && absmax >= std::ldexp(1.0, w - 1)) ++w;
    return w;
}

// Per-channel input scales of x ([positions, n_embd]) at `bits`: least-squared-error clips, or absmax.
std::vector<double> channel_scales(std::span<const float> x, int32_t n_embd, int bits, bool clipped) {
    const size_t positions = x.size() / size_t(n_embd);
    std::vector<double> scales(static_cast<size_t>(n_embd));
    std::vector<float> channel(positions);
    for (int32_t k = 0; k < n_embd; ++k) {
        for (size_t i = 0; i < positions; ++i) channel[i] = x[i * size_t(n_embd) + size_t(k)];
        scales[size_t(k)] = clipped ? quant::mse_scale(channel, bits) : quant::symmetric_scale(quant::absmax(channel), bits);
    }
    return scales;
}

// A linear layer [dim, cols] (real weights, already in integer units of the output) and its bias
// rounded to integers on the calibration inputs (GPTQ, no clamp), or to nearest.
quant::RoundedWeights round_into_units(const std::vector<double> & w, const std::vector<double> & bias, int32_t dim,
                                       int32_t cols, std::span<const int64_t> inputs, int64_t positions, bool gptq) {
    std::vector<double> with_bias(w);
    with_bias.insert(with_bias.end(), bias.begin(), bias.end());
    const std::vector<double> unit(size_t(cols), 1.0);
    constexpr int kUnclamped = 24; // integer weights of any size: their noise is what bounds them
    if (gptq)
        return quant::round_weights_gptq(with_bias, dim, cols, unit, kUnclamped,
                                         quant::augmented_gram(inputs, positions, dim), quant::kGptqDamping);
    quant::RoundedWeights r;
    r.values.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) r.values[i] = static_cast<int64_t>(std::nearbyint(w[i]));
    r.bias = bias;
    return r;
}

// The MLP of `layer` up to its GELU outputs (their units and c_proj are left for the stream's
// calibration): input scales, c_fc rounded on the calibration inputs, column widths. g: what the
// GELU outputs stand for on the calibration positions [positions, n_hidden]; reference: per
// column a unit of about L + 1 bits.
QuantizedMlp quantize_mlp_front(const model::Gpt2Model & folded, int32_t layer, std::span<const float> x,
                                const BlocksQuantConfig & config, int lut_bits, int bucket_bits, std::vector<double> & g,
                                std::vector<double> & reference, const std::vector<double> * x_scales = nullptr) {
    const model::Gpt2Layer & l = folded.layers[size_t(layer)];
    const int32_t n_embd = folded.hparams.n_embd, n_hidden = 4 * n_embd;
    const int64_t positions = int64_t(x.size() / size_t(n_embd));
    const quant::HeadQuantConfig & hc = config.head;
    const int weight_bits = hc.weight_bits ? hc.weight_bits : hc.n_bits;
    QuantizedMlp mlp;
    mlp.n_embd = n_embd;
    mlp.n_hidden = n_hidden;
    mlp.lut_bits = lut_bits;
    mlp.bucket_bits = bucket_bits;
    mlp.x_bits = hc.n_bits;
    mlp.gelu_tanh = folded.hparams.activation_function != "gelu";
    mlp.x_scales = x_scales ? *x_scales : channel_scales(x, n_embd, hc.n_bits, hc.calibrated_clipping);
    const std::vector<int64_t> y = mlp.quantize_inputs(x);

    std::vector<double> w(size_t(n_embd) * n_hidden);
    double absmax = 0;
    for (int32_t r = 0; r < n_embd; ++r)
        for (int32_t c = 0; c < n_hidden; ++c) {
            const double v = double(l.fc_w[size_t(r) * n_hidden + c]) * mlp.x_scales[size_t(r)];
            w[size_t(r) * n_hidden + c] = v;
            absmax = std::max(absmax, std::fabs(v));
        }
    mlp.fc_unit = quant::symmetric_scale(absmax, weight_bits);
    std::vector<double> with_bias(w.size() + size_t(n_hidden));
    for (size_t i = 0; i < w.size(); ++i) with_bias[i] = w[i] / mlp.fc_unit;
    for (int32_t c = 0; c < n_hidden; ++c) with_bias[w.size() + size_t(c)] = double(l.fc_b[size_t(c)]) / mlp.fc_unit;
    const std::vector<double> scales(size_t(n_hidden), 1.0);
    const bool gptq = quant::effective_weight_rounding(hc.weight_rounding, weight_bits) == quant::WeightRounding::gptq;
    quant::RoundedWeights rounded;
    if (gptq) {
        rounded = quant::round_weights_gptq(with_bias, n_embd, n_hidden, scales, weight_bits,
                                            quant::augmented_gram(y, positions, n_embd), quant::kGptqDamping);
    } else {
        const int64_t top = quant::max_level(weight_bits);
        rounded.values.resize(w.size());
        for (size_t i = 0; i < w.size(); ++i)
            rounded.values[i] = std::clamp<int64_t>(int64_t(std::nearbyint(with_bias[i])), -top, top);
        rounded.bias.assign(with_bias.begin() + ptrdiff_t(w.size()), with_bias.end());
    }
    mlp.fc = rounded.values;
    mlp.fc_bias.resize(size_t(n_hidden));
    for (int32_t c = 0; c < n_hidden; ++c) mlp.fc_bias[size_t(c)] = int64_t(std::nearbyint(rounded.bias[size_t(c)]));

    // Accumulators on the calibration inputs, each column's width, the GELU unit.
    std::vector<int64_t> acc(size_t(positions) * n_hidden);
    for (int64_t i = 0; i < positions; ++i) {
        int64_t * row = acc.data() + size_t(i) * n_hidden;
        std::copy(mlp.fc_bias.begin(), mlp.fc_bias.end(), row);
        for (int32_t r = 0; r < n_embd; ++r) {
            const int64_t v = y[size_t(i) * n_embd + size_t(r)];
            if (v == 0) continue;
            const int64_t * w_row = mlp.fc.data() + size_t(r) * n_hidden;
            for (int32_t c = 0; c < n_hidden; ++c) row[c] += v * w_row[c];
        }
    }
    mlp.width.assign(size_t(n_hidden), bucket_bits);
    for (int32_t c = 0; c < n_hidden; ++c) {
        int64_t top = 0;
        for (int64_t i = 0; i < positions; ++i) top = std::max(top, std::abs(acc[size_t(i) * n_hidden + c]));
        mlp.width[size_t(c)] = width_for(double(top) * config.headroom, bucket_bits, 62);
    }
    // What each GELU output stands for on the calibration positions, and per column the unit
    // that gives it about L + 1 bits (the stream's calibration scales it, quantize_blocks).
    mlp.gelu_unit.assign(size_t(n_hidden), 1.0);
    g.resize(acc.size());
    std::vector<double> top(size_t(n_hidden), 0.0);
    for (size_t i = 0; i < acc.size(); ++i) {
        const int32_t c = int32_t(i % size_t(n_hidden));
        const int64_t u = std::clamp<int64_t>(acc[i] + mlp.offset(c), 0, (int64_t{1} << mlp.width[size_t(c)]) - 1);
        g[i] = mlp.gelu_mean(c, u >> mlp.shift(c));
        top[size_t(c)] = std::max(top[size_t(c)], std::fabs(g[i]));
    }
    reference.resize(size_t(n_hidden));
    for (int32_t c = 0; c < n_hidden; ++c) reference[size_t(c)] = std::max(top[size_t(c)], 1e-6) / std::ldexp(1.0, lut_bits);
    return mlp;
}

// Does every output column of integer weights v ([dim, n_embd]) keep sigma ||v_.k|| within budget?
bool within_noise(const std::vector<int64_t> & v, int32_t dim, int32_t n_embd, double sigma, double budget) {
    for (int32_t k = 0; k < n_embd; ++k) {
        double norm = 0;
        for (int32_t r = 0; r < dim; ++r) norm += double(v[size_t(r) * n_embd + k]) * double(v[size_t(r) * n_embd + k]);
        if (sigma * std::sqrt(norm) > budget) return false;
    }
    return true;
}

// The fine bootstrapping keys' output noise (standard deviation on the 2^64 torus) of the
// production sets that read L-bit lookups: the fastest set's (`finest` false), what the stream's
// contributions carry at first, or the least of them. Lookups wider than every set (simulation
// only) take the finest fine key of all.
double fine_output_noise(int lut_bits, bool finest) {
    double least = 0, least_reading = 0;
    for (const tfhe::TfheParameters * p : tfhe::production_parameter_sets()) {
        if (!p->has_fine_bootstrap()) continue;
        const double sigma = std::sqrt(tfhe::programmable_bootstrap_variance(p->fine_bootstrap_parameters())) * 0x1p64;
        least = least == 0 ? sigma : std::min(least, sigma);
        if (int(p->message_bits) < lut_bits) continue;
        if (!finest) return sigma;
        least_reading = least_reading == 0 ? sigma : std::min(least_reading, sigma);
    }
    if (least == 0) fail("no production parameter set has a fine bootstrapping key");
    return least_reading != 0 ? least_reading : least;
}

// One contribution to the stream: a c_proj, its calibration inputs as real values, and the units
// its integer inputs take (reference units times a calibrated multiplier).
struct Contribution {
    int32_t dim = 0;
    std::vector<double> weights;   // [dim, n_embd] real
    std::vector<double> bias;      // [n_embd] real
    std::vector<double> inputs;    // [positions, dim] real, as the circuit computes them
    std::vector<double> reference; // [dim] input units at multiplier 1
    double multiplier = 1;
};

// c_proj of an attention block as a contribution to the stream, its inputs the heads' rounded
// outputs on xhat (the heads' inputs, [positions, n_embd]).
Contribution attention_contribution(const model::Gpt2Layer & fl, const QuantizedAttention & att, std::span<const float> xhat,
                                    std::span<const int32_t> lengths) {
    const int32_t n_embd = att.n_embd;
    const std::vector<int64_t> o = attention_context(att, att.quantize_inputs(xhat), lengths);
    Contribution c;
    c.dim = n_embd;
    c.weights.assign(fl.attn_proj_w.begin(), fl.attn_proj_w.end());
    c.bias.assign(fl.attn_proj_b.begin(), fl.attn_proj_b.end());
    c.reference.resize(size_t(n_embd));
    for (int32_t r = 0; r < n_embd; ++r) c.reference[size_t(r)] = att.context_unit(r / att.head_dim);
    c.inputs.resize(o.size());
    for (size_t i = 0; i < o.size(); ++i) c.inputs[i] = double(o[i]) * c.reference[i % size_t(n_embd)];
    return c;
}

// The circuit's integers at every point of the first `count` blocks of q, over the calibration
// sequences (one after the other, as cal.start).
std::vector<BlockTaps> circuit_taps(const QuantizedBlocks & q, size_t count, const BlockCalibration & cal) {
    std::vector<BlockTaps> all(count);
    const size_t n_embd = size_t(q.n_embd);
    size_t row = 0;
    for (int32_t len : cal.lengths) {
        const std::span<const float> start = std::span(cal.start).subspan(row * n_embd, size_t(len) * n_embd);
        std::vector<BlockTaps> taps = blocks_reference_taps(q, q.quantize_inputs(start), len, count);
        for (size_t l = 0; l < count; ++l)
            for (auto field : {&BlockTaps::before, &BlockTaps::attention_in, &BlockTaps::middle, &BlockTaps::mlp_in, &BlockTaps::after})
                (all[l].*field).insert((all[l].*field).end(), (taps[l].*field).begin(), (taps[l].*field).end());
        row += size_t(len);
    }
    return all;
}

// Integers in per-channel units -> reals, [positions, units.size()].
std::vector<float> to_real(std::span<const int64_t> v, std::span<const double> units) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = float(double(v[i]) * units[i % units.size()]);
    return out;
}

// The stream's width and every contribution's input multiplier. Channel k has unit u_k = R_k /
// (2^(B-1) - 1); a contribution with input units s_c has integer weights V_ck = round(W_ck s_c /
// u_k) and adds noise sigma ||V_.k|| (its inputs are bootstrap outputs) to the stream, which must
// stay kStreamNoiseMargin below one unit at its last reading, the contributions sharing that
// budget (the noise analysis then checks every reading's failure probability). Coarser
// inputs (larger s_c) make finer weights and more noise: per B, each contribution takes the
// feasible multiplier with the least squared error of its outputs on a sample of the calibration
// positions, and the run takes the B with the least total relative error.
constexpr double kStreamNoiseMargin = 16.0; // 2^4 standard deviations

struct StreamChoice {
    int width = 0;
    std::vector<double> multipliers;
};

StreamChoice choose_stream(const std::vector<Contribution> & contributions, const std::vector<double> & range, double sigma,
                           int min_width, int64_t positions) {
    const size_t n_embd = range.size();
    // A sample of the calibration positions, and the float outputs there.
    std::vector<int64_t> sample;
    for (int64_t i = 0; i < positions; i += std::max<int64_t>(1, positions / 32)) sample.push_back(i);
    std::vector<std::vector<double>> exact(contributions.size());
    std::vector<double> energy(contributions.size(), 0.0);
    for (size_t j = 0; j < contributions.size(); ++j) {
        const Contribution & c = contributions[j];
        exact[j].assign(sample.size() * n_embd, 0.0);
        for (size_t s = 0; s < sample.size(); ++s)
            for (int32_t r = 0; r < c.dim; ++r) {
                const double x = c.inputs[size_t(sample[s]) * c.dim + size_t(r)];
                if (x == 0) continue;
                for (size_t k = 0; k < n_embd; ++k) exact[j][s * n_embd + k] += x * c.weights[size_t(r) * n_embd + k];
            }
        for (double v : exact[j]) energy[j] += v * v;
        energy[j] = std::max(energy[j], 1e-30);
    }
    // Relative squared error of contribution j at width B and multiplier m; -1 when its noise
    // exceeds its share of the budget.
    std::vector<double> q, out, unit(n_embd);
    std::vector<int64_t> v;
    auto error = [&](size_t j, int B, double m, double budget) {
        const Contribution & c = contributions[j];
        const double levels = std::ldexp(1.0, B - 1) - 1;
        for (size_t k = 0; k < n_embd; ++k) unit[k] = range[k] / levels;
        v.resize(c.weights.size());
        std::vector<double> norm(n_embd, 0.0);
        for (int32_t r = 0; r < c.dim; ++r)
            for (size_t k = 0; k < n_embd; ++k) {
                const size_t i = size_t(r) * n_embd + k;
                v[i] = static_cast<int64_t>(std::nearbyint(c.weights[i] * c.reference[size_t(r)] * m / unit[k]));
                norm[k] += double(v[i]) * double(v[i]);
            }
        for (size_t k = 0; k < n_embd; ++k)
            if (sigma * std::sqrt(norm[k]) > budget) return -1.0;
        double err = 0;
        out.assign(n_embd, 0.0);
        for (size_t s = 0; s < sample.size(); ++s) {
            std::fill(out.begin(), out.end(), 0.0);
            for (int32_t r = 0; r < c.dim; ++r) {
                const double qv = std::nearbyint(c.inputs[size_t(sample[s]) * c.dim + size_t(r)] / (c.reference[size_t(r)] * m));
                if (qv == 0) continue;
                const int64_t * row = v.data() + size_t(r) * n_embd;
                for (size_t k = 0; k < n_embd; ++k) out[k] += qv * double(row[k]);
            }
            for (size_t k = 0; k < n_embd; ++k) {
                const double e = out[k] * unit[k] - exact[j][s * n_embd + k];
                err += e * e;
            }
        }
        return err / energy[j];
    };
    StreamChoice best;
    double best_total = 0;
    for (int B = min_width; B <= 30; ++B) {
        const double budget = std::ldexp(1.0, 63 - B) / kStreamNoiseMargin / std::sqrt(double(contributions.size()));
        StreamChoice choice{B, {}};
        double total = 0;
        for (size_t j = 0; j < contributions.size() && total >= 0; ++j) {
            // Multipliers 2^(t/2), from coarse to fine weights, until the noise exceeds the share.
            double best_error = -1, best_m = 0;
            for (int t = -16; t <= 12; ++t) {
                const double m = std::ldexp(1.0, 0) * std::pow(2.0, t / 2.0);
                const double e = error(j, B, m, budget);
                if (e < 0) break;
                if (best_error < 0 || e < best_error) {
                    best_error = e;
                    best_m = m;
                }
            }
            if (best_error < 0) total = -1;
            else {
                total += best_error;
                choice.multipliers.push_back(best_m);
            }
        }
        if (total < 0) break; // wider streams only leave less noise budget
        if (best.width == 0 || total < best_total) {
            best = choice;
            best_total = total;
        }
    }
    if (best.width == 0) fail("blocks: no residual stream width leaves c_proj its noise budget");
    return best;
}

// Widths, levels and the sum of squares of a LayerNorm reading the stream at x ([positions,
// n_embd], centred); outputs as given.
QuantizedLayerNorm calibrate_layer_norm(std::span<const float> x, const ResidualEncoding & residual, int lut_bits,
                                        int bucket_bits, const BlocksQuantConfig & config, float eps) {
    const int32_t n_embd = int32_t(residual.unit.size());
    const size_t positions = x.size() / size_t(n_embd);
    QuantizedLayerNorm ln;
    ln.n_embd = n_embd;
    ln.lut_bits = lut_bits;
    ln.bucket_bits = bucket_bits;
    ln.residual_width = residual.width;
    ln.eps = eps;
    ln.sum_width = std::max(config.sum_width, lut_bits);
    const std::vector<int64_t> x_int = residual.quantize(x);
    ln.width.resize(size_t(n_embd));
    ln.step.resize(size_t(n_embd));
    for (int32_t k = 0; k < n_embd; ++k) {
        int64_t top = 0;
        for (size_t i = 0; i < positions; ++i) top = std::max(top, std::abs(x_int[i * size_t(n_embd) + size_t(k)]));
        ln.width[size_t(k)] = width_for(double(top) * config.headroom, bucket_bits, residual.width);
        ln.step[size_t(k)] = std::ldexp(residual.unit[size_t(k)], ln.shift(k));
    }
    // Sums of squares of the bucket centres, and r = 1 / rms, per calibration position.
    std::vector<double> sums(positions);
    for (size_t i = 0; i < positions; ++i) {
        double s = 0;
        for (int32_t k = 0; k < n_embd; ++k) {
            const int64_t u = std::clamp<int64_t>(x_int[i * size_t(n_embd) + size_t(k)] + ln.offset(k), 0,
                                                  (int64_t{1} << ln.width[size_t(k)]) - 1);
            const double v = ln.centre(u >> ln.shift(k)) * ln.step[size_t(k)];
            s += v * v;
        }
        sums[i] = s;
    }
    const double sum_max = *std::max_element(sums.begin(), sums.end());
    ln.square_unit = sum_max * config.headroom / std::ldexp(1.0, ln.sum_width);
    double r_min = 1e300, r_max = 0;
    for (double s : sums) {
        const double r = 1.0 / std::sqrt(s / double(n_embd) + double(eps));
        r_min = std::min(r_min, r);
        r_max = std::max(r_max, r);
    }
    // Margin for positions beyond the calibration's spread.
    const double spread = std::max(r_max / r_min, 1.0) * 1.2;
    const LevelSplit split = layer_norm_levels(lut_bits, bucket_bits, spread);
    ln.x_levels = split.x_levels;
    ln.r_levels = split.r_levels;
    ln.ratio = split.ratio;
    ln.r_low = std::sqrt(r_min * r_max) / std::pow(ln.ratio, double(ln.r_levels - 1) / 2);
    ln.gain.assign(size_t(n_embd), 1.0);
    ln.out_offset.assign(size_t(n_embd), 0);
    return ln;
}

// ln_1 / ln_2 writing the next stage's input integers.
void set_layer_norm_outputs(QuantizedLayerNorm & ln, const std::vector<double> & scales, int bits, int delta) {
    ln.out_scale = scales;
    ln.out_max = quant::max_level(bits);
    ln.out_delta = delta;
}

} // namespace

BlockCalibration collect_block_calibration(const model::Gpt2Model & model, const model::Gpt2Tokenizer & tokenizer,
                                           std::span<const std::string> prompts, const BlockRangeSpec & spec) {
    std::vector<std::vector<int32_t>> sequences;
    for (const std::string & prompt : prompts) sequences.push_back(tokenizer.encode(prompt));
    return collect_block_calibration(model, sequences, spec);
}

BlockCalibration collect_block_calibration(const model::Gpt2Model & model, std::span<const std::vector<int32_t>> sequences,
                                           const BlockRangeSpec & spec) {
    const model::Gpt2HParams & hp = model.hparams;
    if (spec.first < 0 || spec.first > spec.last || spec.last >= hp.n_layer)
        fail("blocks {}..{} of a {}-layer model", spec.first, spec.last, hp.n_layer);
    const size_t blocks = size_t(spec.last - spec.first + 1);
    BlockCalibration cal;
    cal.after_attention.resize(blocks);
    cal.after_block.resize(blocks);
    model::Gpt2Context ctx(model, {.n_ctx = hp.n_ctx});
    ctx.set_tensor_callback([&](const model::Gpt2Tensor & t) {
        const std::string name = t.name;
        std::vector<float> * sink = nullptr;
        const bool starts_here = (name == "inp_embd" && spec.first == 0 && !spec.from_mlp) ||
                                 (name == "l_out" && t.layer == spec.first - 1 && !spec.from_mlp) ||
                                 (name == "ffn_inp" && t.layer == spec.first && spec.from_mlp);
        if (starts_here) sink = &cal.start;
        else if (t.layer >= spec.first && t.layer <= spec.last && name == "ffn_inp" && !(spec.from_mlp && t.layer == spec.first))
            sink = &cal.after_attention[size_t(t.layer - spec.first)];
        else if (t.layer >= spec.first && t.layer <= spec.last && name == "l_out")
            sink = &cal.after_block[size_t(t.layer - spec.first)];
        if (!sink) return;
        const size_t begin = sink->size();
        sink->insert(sink->end(), t.data.begin(), t.data.end());
        model::centre_rows(std::span(*sink).subspan(begin), hp.n_embd);
    });
    for (const std::vector<int32_t> & sequence : sequences) {
        std::vector<int32_t> tokens = sequence;
        if (tokens.empty()) continue;
        if (tokens.size() > size_t(hp.n_ctx)) tokens.resize(size_t(hp.n_ctx));
        ctx.reset();
        ctx.eval(tokens);
        cal.lengths.push_back(int32_t(tokens.size()));
    }
    if (cal.lengths.empty()) fail("calibration: no non-empty prompt");
    return cal;
}

namespace {

int lookup_bits(const quant::HeadQuantConfig & hc) { return hc.lut_bits ? hc.lut_bits : std::max(3, std::min(hc.n_bits, 12)); }

// The blocks with the stream calibrated for c_proj inputs of noise sigma.
QuantizedBlocks quantize_blocks_for_noise(const model::Gpt2Model & model, const BlockRangeSpec & spec,
                                          const BlockCalibration & cal, const BlocksQuantConfig & config, double sigma) {
    const model::Gpt2HParams & hp = model.hparams;
    const int32_t n_embd = hp.n_embd, n_hidden = 4 * hp.n_embd;
    const quant::HeadQuantConfig & hc = config.head;
    const int lut_bits = lookup_bits(hc);
    const int ln_bits = config.ln_bucket_bits ? config.ln_bucket_bits : lut_bits;
    const int gelu_bits = config.gelu_bucket_bits ? config.gelu_bucket_bits : lut_bits >= 5 ? lut_bits - 1 : lut_bits;
    for (int bits : {ln_bits, gelu_bits})
        if (bits < 2 || bits > lut_bits) fail("blocks: {}-bit buckets with {}-bit lookups", bits, lut_bits);
    if (spec.first < 0 || spec.first > spec.last || spec.last >= hp.n_layer)
        fail("blocks {}..{} of a {}-layer model", spec.first, spec.last, hp.n_layer);
    if (spec.final_norm && spec.last != hp.n_layer - 1) fail("ln_f follows only the last layer, not layer {}", spec.last);
    const size_t blocks = size_t(spec.last - spec.first + 1);
    int64_t positions = 0;
    for (int32_t len : cal.lengths) positions += len;
    if (cal.start.size() != size_t(positions) * n_embd || cal.after_block.size() != blocks || cal.after_attention.size() != blocks)
        fail("blocks calibration: inconsistent activations");
    const float eps = hp.layer_norm_epsilon;
    const model::Gpt2Model folded = model::fold_layer_norms(model);

    QuantizedBlocks q;
    q.spec = spec;
    q.n_embd = n_embd;
    q.lut_bits = lut_bits;
    q.eps = eps;
    // The stream where each block's attention and MLP read it.
    auto stream_before = [&](size_t l) -> const std::vector<float> & { return l == 0 ? cal.start : cal.after_block[l - 1]; };
    auto stream_mid = [&](size_t l) -> const std::vector<float> & {
        return l == 0 && spec.from_mlp ? cal.start : cal.after_attention[l];
    };

    // Heads and the MLPs' c_fc (independent of the stream's encoding), and c_proj of each as a
    // contribution to the stream with its calibration inputs.
    std::vector<Contribution> contributions;
    for (size_t l = 0; l < blocks; ++l) {
        QuantizedBlock block;
        block.layer = spec.first + int32_t(l);
        const model::Gpt2Layer & fl = folded.layers[size_t(block.layer)];
        if (!(l == 0 && spec.from_mlp)) {
            const std::vector<float> xhat = normalized(stream_before(l), n_embd, eps);
            block.attention = quantize_attention_heads(folded, block.layer, xhat, cal.lengths, hc);
            contributions.push_back(attention_contribution(fl, *block.attention, xhat, cal.lengths));
        }
        Contribution c;
        c.dim = n_hidden;
        block.mlp = quantize_mlp_front(folded, block.layer, normalized(stream_mid(l), n_embd, eps), config, lut_bits, gelu_bits,
                                       c.inputs, c.reference);
        c.weights.assign(fl.mlp_proj_w.begin(), fl.mlp_proj_w.end());
        c.bias.assign(fl.mlp_proj_b.begin(), fl.mlp_proj_b.end());
        contributions.push_back(std::move(c));
        q.blocks.push_back(std::move(block));
    }

    // The stream's range per channel, over every point of the run.
    std::vector<double> range(size_t(n_embd), 0.0);
    auto widen = [&](const std::vector<float> & x) {
        for (size_t i = 0; i < x.size(); ++i) range[i % size_t(n_embd)] = std::max(range[i % size_t(n_embd)], double(std::fabs(x[i])));
    };
    widen(cal.start);
    for (size_t l = 0; l < blocks; ++l) {
        widen(cal.after_attention[l]);
        widen(cal.after_block[l]);
    }
    for (double & r : range) r = std::max(r, 1e-6) * config.headroom;

    // The stream's width and the contributions' input units, then c_proj rounded into the
    // stream's units on the calibration inputs (GPTQ) where that keeps the noise budget.
    q.stream_noise_log2 = std::log2(sigma);
    StreamChoice choice;
    if (config.residual_width > 0) {
        choice.width = config.residual_width;
        choice.multipliers.assign(contributions.size(), 1.0);
    } else {
        choice = choose_stream(contributions, range, sigma, lut_bits + 2, positions);
    }
    q.residual.width = choice.width;
    q.residual.unit.resize(size_t(n_embd));
    const double levels = std::ldexp(1.0, q.residual.width - 1) - 1;
    for (int32_t k = 0; k < n_embd; ++k) q.residual.unit[size_t(k)] = range[size_t(k)] / levels;
    const double budget = std::ldexp(1.0, 63 - choice.width) / kStreamNoiseMargin / std::sqrt(double(contributions.size()));
    const bool gptq = hc.weight_rounding == quant::WeightRounding::gptq;
    // c_proj of block l's attention (part 0) or MLP (part 1), contribution c at multiplier m.
    auto write_proj = [&](size_t l, int part, const Contribution & c, double m) {
        std::vector<double> w(c.weights.size()), bias(static_cast<size_t>(n_embd));
        std::vector<int64_t> inputs(c.inputs.size());
        for (int32_t r = 0; r < c.dim; ++r)
            for (int32_t k = 0; k < n_embd; ++k)
                w[size_t(r) * n_embd + k] = c.weights[size_t(r) * n_embd + k] * c.reference[size_t(r)] * m / q.residual.unit[size_t(k)];
        for (int32_t k = 0; k < n_embd; ++k) bias[size_t(k)] = c.bias[size_t(k)] / q.residual.unit[size_t(k)];
        for (size_t i = 0; i < inputs.size(); ++i)
            inputs[i] = int64_t(std::nearbyint(c.inputs[i] / (c.reference[i % size_t(c.dim)] * m)));
        quant::RoundedWeights rounded = round_into_units(w, bias, c.dim, n_embd, inputs, positions, gptq);
        if (gptq && !within_noise(rounded.values, c.dim, n_embd, sigma, budget))
            rounded = round_into_units(w, bias, c.dim, n_embd, inputs, positions, false);
        std::vector<int64_t> rounded_bias(static_cast<size_t>(n_embd));
        for (int32_t k = 0; k < n_embd; ++k) rounded_bias[size_t(k)] = int64_t(std::nearbyint(rounded.bias[size_t(k)]));
        if (part == 0) {
            QuantizedAttention & att = *q.blocks[l].attention;
            att.proj.rows = att.proj.cols = n_embd;
            att.proj.values = rounded.values;
            att.proj.scales = q.residual.unit;
            att.proj_bias = rounded_bias;
            att.out_bits = q.residual.width;
            att.out_unit = 0; // per channel: residual.unit
            att.context_gain.assign(size_t(att.n_head), 1.0 / m);
            att.context_keeps_low_bits = true;
        } else {
            QuantizedMlp & mlp = q.blocks[l].mlp;
            mlp.proj = rounded.values;
            mlp.proj_bias = rounded_bias;
            for (int32_t r = 0; r < n_hidden; ++r) mlp.gelu_unit[size_t(r)] = c.reference[size_t(r)] * m;
        }
    };
    std::vector<std::pair<size_t, int>> stages; // contribution j: (block, part)
    for (size_t l = 0; l < blocks; ++l)
        for (int part = 0; part < 2; ++part)
            if (part == 1 || q.blocks[l].attention) stages.emplace_back(l, part);
    for (size_t j = 0; j < stages.size(); ++j) write_proj(stages[j].first, stages[j].second, contributions[j], choice.multipliers[j]);

    // The LayerNorms on the server: every ln_1 and ln_2 but the run's first (the client's), and ln_f.
    for (size_t l = 0; l < blocks; ++l) {
        QuantizedBlock & block = q.blocks[l];
        if (block.attention && l > 0) {
            block.ln_1 = calibrate_layer_norm(stream_before(l), q.residual, lut_bits, ln_bits, config, eps);
            set_layer_norm_outputs(*block.ln_1, block.attention->heads[0].x_scales, block.attention->heads[0].x_bits,
                                   attention_input_scale(*block.attention));
        }
        if (!(l == 0 && spec.from_mlp)) {
            block.ln_2 = calibrate_layer_norm(stream_mid(l), q.residual, lut_bits, ln_bits, config, eps);
            set_layer_norm_outputs(*block.ln_2, block.mlp.x_scales, block.mlp.x_bits, block.mlp.input_scale());
        }
    }
    // Sequential calibration: every stage again, in the run's order, on what the circuit's stages
    // before it give on the calibration sequences instead of the float model's activations (the
    // stream's width, units and the contributions' input units stay). GPTQ of c_fc and c_proj,
    // the heads, the MLP's accumulator widths and the LayerNorms' widths and levels then see the
    // upstream LayerNorms' and roundings' errors and the ranges the circuit gives.
    std::vector<float> circuit_end; // the circuit's stream where the run ends
    if (config.sequential) {
        for (size_t l = 0, j = 0; l < blocks; ++l) {
            QuantizedBlock & block = q.blocks[l];
            const model::Gpt2Layer & fl = folded.layers[size_t(block.layer)];
            std::vector<BlockTaps> taps = circuit_taps(q, l + 1, cal);
            if (block.attention) {
                if (block.ln_1) {
                    block.ln_1 = calibrate_layer_norm(to_real(taps[l].before, q.residual.unit), q.residual, lut_bits, ln_bits,
                                                      config, eps);
                    set_layer_norm_outputs(*block.ln_1, block.attention->heads[0].x_scales, block.attention->heads[0].x_bits,
                                           attention_input_scale(*block.attention));
                    taps = circuit_taps(q, l + 1, cal);
                    const std::vector<float> xhat = to_real(taps[l].attention_in, block.attention->heads[0].x_scales);
                    block.attention = quantize_attention_heads(folded, block.layer, xhat, cal.lengths, hc);
                    set_layer_norm_outputs(*block.ln_1, block.attention->heads[0].x_scales, block.attention->heads[0].x_bits,
                                           attention_input_scale(*block.attention));
                    write_proj(l, 0, attention_contribution(fl, *block.attention, xhat, cal.lengths), choice.multipliers[j]);
                    taps = circuit_taps(q, l + 1, cal);
                }
                ++j;
            }
            if (block.ln_2) {
                block.ln_2 = calibrate_layer_norm(to_real(taps[l].middle, q.residual.unit), q.residual, lut_bits, ln_bits, config,
                                                  eps);
                set_layer_norm_outputs(*block.ln_2, block.mlp.x_scales, block.mlp.x_bits, block.mlp.input_scale());
                taps = circuit_taps(q, l + 1, cal);
                const std::vector<double> scales = block.mlp.x_scales;
                Contribution c;
                c.dim = n_hidden;
                block.mlp = quantize_mlp_front(folded, block.layer, to_real(taps[l].mlp_in, scales), config, lut_bits, gelu_bits,
                                               c.inputs, c.reference, &scales);
                set_layer_norm_outputs(*block.ln_2, block.mlp.x_scales, block.mlp.x_bits, block.mlp.input_scale());
                c.weights.assign(fl.mlp_proj_w.begin(), fl.mlp_proj_w.end());
                c.bias.assign(fl.mlp_proj_b.begin(), fl.mlp_proj_b.end());
                write_proj(l, 1, c, choice.multipliers[j]);
            }
            ++j;
        }
        if (spec.final_norm) circuit_end = to_real(circuit_taps(q, blocks, cal).back().after, q.residual.unit);
    }
    if (spec.final_norm) {
        const std::vector<float> & last = config.sequential ? circuit_end : cal.after_block.back();
        QuantizedLayerNorm ln = calibrate_layer_norm(last, q.residual, lut_bits, ln_bits, config, eps);
        const std::vector<float> xhat = normalized(last, n_embd, eps);
        const int bits = std::max(config.output_bits, 4);
        ln.gain.assign(model.ln_f_g.begin(), model.ln_f_g.end());
        ln.out_scale.resize(size_t(n_embd));
        ln.out_offset.resize(size_t(n_embd));
        for (int32_t k = 0; k < n_embd; ++k) {
            double top = 0;
            for (size_t i = size_t(k); i < xhat.size(); i += size_t(n_embd)) top = std::max(top, std::fabs(double(xhat[i]) * ln.gain[size_t(k)]));
            ln.out_scale[size_t(k)] = quant::symmetric_scale(top * config.headroom, bits);
            ln.out_offset[size_t(k)] = int64_t(std::nearbyint(double(model.ln_f_b[size_t(k)]) / ln.out_scale[size_t(k)]));
        }
        ln.out_max = quant::max_level(bits);
        int64_t widest = 0;
        for (int64_t o : ln.out_offset) widest = std::max(widest, std::abs(o));
        ln.out_delta = 63 - (static_cast<int>(std::bit_width(static_cast<uint64_t>(ln.out_max + widest))) + 1);
        q.ln_f = std::move(ln);
    }
    return q;
}

// The circuit whose noise analysis picks the set the stream is calibrated for: one new token at
// position 7 on the key/value cache, the cost reference of docs/whole-model.md.
constexpr int32_t kParameterChoicePositions = 8;

const tfhe::TfheParameters * chosen_parameters(QuantizedBlocks & q, int32_t n_ctx) {
    const int32_t n = std::min(kParameterChoicePositions, n_ctx);
    const tfhe::TfheParameters * chosen = choose_parameters(build_blocks_row_circuit(q, n - 1, n));
    q.parameter_set = chosen ? chosen->name : std::string();
    q.parameter_positions = n;
    return chosen;
}

} // namespace

double stream_input_noise(const tfhe::TfheParameters & params) {
    return std::sqrt(tfhe::programmable_bootstrap_variance(params.has_fine_bootstrap() ? params.fine_bootstrap_parameters()
                                                                                        : params)) *
           0x1p64;
}

QuantizedBlocks quantize_blocks(const model::Gpt2Model & model, const BlockRangeSpec & spec, const BlockCalibration & cal,
                                const BlocksQuantConfig & config) {
    if (config.fine_noise_log2 != 0)
        return quantize_blocks_for_noise(model, spec, cal, config, std::exp2(config.fine_noise_log2));
    // First for the fastest set's fine key. If the noise analysis then needs a set whose outputs
    // are less noisy (a finer fine key, for roundings that the stream's width does not decide),
    // the stream can use that lower noise too: calibrated again for it, kept if a set runs it.
    // If no set runs it, the stream is calibrated for the finest fine key of the sets that read
    // its lookups: the widest stream that one of them might run, or the simulation's.
    const int lut_bits = lookup_bits(config.head);
    const double sigma = fine_output_noise(lut_bits, false);
    QuantizedBlocks q = quantize_blocks_for_noise(model, spec, cal, config, sigma);
    const tfhe::TfheParameters * chosen = chosen_parameters(q, model.hparams.n_ctx);
    const double finer_sigma = chosen ? stream_input_noise(*chosen) : fine_output_noise(lut_bits, true);
    if (finer_sigma >= sigma) return q;
    QuantizedBlocks finer = quantize_blocks_for_noise(model, spec, cal, config, finer_sigma);
    return chosen_parameters(finer, model.hparams.n_ctx) || !chosen ? finer : q;
}

} // namespace fhegpt::circuit
