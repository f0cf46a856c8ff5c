// Projection and clip calibration (quantized_head.h: quantize_head): the client's input scales,
// the q, k and v weights' clips and rounding, the product scale, then the softmax
// (softmax_calibration.h).
#include "quant/quantized_head.h"

#include "common/error.h"
#include "quant/head_stages.h"
#include "quant/softmax_calibration.h"
#include "quant/weight_rounding.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace fhegpt::quant {

namespace {

// Does every accumulator of column c fit its encoding (u = acc + 2^(width-1) in [0, 2^width))?
bool fits(std::span<const int64_t> accs, int width) {
    const int64_t offset = int64_t{1} << (width - 1);
    for (int64_t a : accs)
        if (a + offset < 0 || a + offset >= (int64_t{1} << width)) return false;
    return true;
}

void set_score_unit(QuantizedHead & head) {
    head.score_unit = head.out_scale[kQuery] * head.out_scale[kKey] / double(head.product_scale()) /
                      std::sqrt(double(head.head_dim));
}

// The client's input scales, per channel or one for the tensor: clipped to the least squared
// error, or absmax.
std::vector<double> input_scales(std::span<const float> x, int32_t n_embd, int bits, bool per_channel, bool clipped) {
    const size_t positions = x.size() / size_t(n_embd);
    auto scale_of = [&](std::span<const float> values) {
        return clipped ? mse_scale(values, bits) : symmetric_scale(absmax(values), bits);
    };
    if (!per_channel) return std::vector<double>(size_t(n_embd), scale_of(x));
    std::vector<double> scales(static_cast<size_t>(n_embd));
    std::vector<float> channel(positions);
    for (int32_t r = 0; r < n_embd; ++r) {
        for (size_t i = 0; i < positions; ++i) channel[i] = x[i * size_t(n_embd) + size_t(r)];
        scales[size_t(r)] = scale_of(channel);
    }
    return scales;
}

// Weight clips tried, as fractions of the absmax of W'. With GPTQ rounding the others absorb
// a clipped weight's error, and a tighter scale fills the L-bit buckets better: on fhegpt-tiny
// a 4-bit head keeps clips of 0.4 to 0.95.
std::vector<double> clip_candidates() {
    std::vector<double> clips;
    for (int percent = 100; percent >= 30; percent -= 5) clips.push_back(percent / 100.0);
    return clips;
}

// The coarsest product scale K tried, 2^-6: a product of two top levels still spans many units.
constexpr int kMinProductScaleLog2 = -6;

// A clip candidate: the bootstraps its roundings cost (per q/k/v value, and per score), and its
// error on the calibration inputs.
struct Cost {
    int value_rounding = 0, score_rounding = 0;
    int extra_score_bits = 0; // beyond those of absmax scales
    double error = 0;
};

// The candidate with the least error among those with the fewest bootstraps.
size_t cheapest(const std::vector<Cost> & costs) {
    size_t best = 0;
    for (size_t i = 1; i < costs.size(); ++i) {
        const Cost & a = costs[i], & b = costs[best];
        if (std::tie(a.value_rounding, a.score_rounding, a.extra_score_bits, a.error) <
            std::tie(b.value_rounding, b.score_rounding, b.extra_score_bits, b.error))
            best = i;
    }
    return best;
}

// Rounding bootstraps of one score: to its coarse bucket, and relative to the row's top to its
// fine bucket.
int score_rounding_cost(const QuantizedHead & head) {
    return rounding_bootstraps(head.score_shift(), head.chunk_bits()) + rounding_bootstraps(head.fine_shift(), head.chunk_bits());
}

// Rounding bootstraps of all of projection p's columns.
int rounding_cost(const QuantizedHead & head, int p) {
    int total = 0;
    for (int32_t c = 0; c < head.head_dim; ++c) total += head.rounding_bootstraps(p, c);
    return total;
}

// One projection's quantized weights and what follows from them.
struct ProjectionQuant {
    int projection = 0;
    double tensor_scale = 0;
    bool centred = false; // keys: the calibration mean taken off the bias
    QuantizedMatrix weights;
    std::vector<int64_t> bias;
    std::vector<int> exponent;
    int acc_bits = 0;
    double out_scale = 0;
};

// Quantizes the q, k and v projections of a head at chosen clips.
class ProjectionQuantizer {
public:
    ProjectionQuantizer(QuantizedHead & head, const model::HeadQkvWeights & w, std::span<const float> x,
                        std::span<const int64_t> x_int, int64_t total, int weight_bits)
        : head_(head), x_int_(x_int), total_(total), weight_bits_(weight_bits), gptq_(false) {
        const int32_t d = w.head_dim, n_embd = w.n_embd;
        gptq_ = effective_weight_rounding(head.config.weight_rounding, weight_bits) == WeightRounding::gptq;
        if (gptq_) factor_ = gptq_factor(augmented_gram(x_int, total, n_embd), n_embd, kGptqDamping);
        const float * w_p[3] = {w.w_q, w.w_k, w.w_v};
        const float * b_p[3] = {w.b_q, w.b_k, w.b_v};
        for (int p = 0; p < 3; ++p) {
            folded_[p].resize(size_t(n_embd) * d);
            column_absmax_[p].assign(size_t(d), 0.0);
            for (int32_t r = 0; r < n_embd; ++r)
                for (int32_t c = 0; c < d; ++c) {
                    const double v = double(w_p[p][size_t(r) * w.ldw + c]) * head.x_scales[size_t(r)];
                    folded_[p][size_t(r) * d + c] = v;
                    column_absmax_[p][size_t(c)] = std::max(column_absmax_[p][size_t(c)], std::fabs(v));
                }
            bias_[p].assign(b_p[p], b_p[p] + d);
            reference_[p].resize(size_t(total) * d);
            for (int64_t i = 0; i < total; ++i)
                for (int32_t c = 0; c < d; ++c) {
                    double acc = bias_[p][size_t(c)];
                    for (int32_t r = 0; r < n_embd; ++r)
                        acc += double(x[size_t(i) * n_embd + r]) * w_p[p][size_t(r) * w.ldw + c];
                    reference_[p][size_t(i) * d + c] = acc;
                }
        }
        // A constant added to every key adds a constant to each row of scores, which softmax
        // ignores: k's bias minus its calibration mean centres the keys, so that their buckets
        // can span a narrower range.
        key_mean_.assign(size_t(d), 0.0);
        for (int64_t i = 0; i < total; ++i)
            for (int32_t c = 0; c < d; ++c) key_mean_[size_t(c)] += reference_[kKey][size_t(i) * d + c] / double(total);
    }

    // The float projection of the calibration inputs, [total, d].
    const std::vector<double> & reference(int p) const { return reference_[p]; }

    // Per-tensor scale clip * absmax(W') / max_level; the keys centred or not.
    ProjectionQuant quantize(int p, double clip, bool centre_keys = false) {
        const double absmax = *std::max_element(column_absmax_[p].begin(), column_absmax_[p].end());
        centred_[p] = p == kKey && centre_keys;
        round(p, symmetric_scale(absmax * clip, weight_bits_), std::vector<int>(size_t(head_.head_dim), 0));
        return snapshot(p);
    }

    // The applied tensor scale with power-of-two column scales: extra column bits, at most the
    // spare bits of the lut_bits chunks the widest column's rounding spans. Each costs one more
    // sign bootstrap per value of the column.
    ProjectionQuant per_channel(int p) {
        const double tensor_scale = tensor_scale_[p];
        const int removed = head_.acc_bits[p] - head_.lut_bits, chunk = head_.chunk_bits();
        const int free_bits = (removed + chunk - 1) / chunk * chunk - removed;
        std::vector<int> e(static_cast<size_t>(head_.head_dim));
        for (size_t c = 0; c < e.size(); ++c) {
            const double ideal = symmetric_scale(column_absmax_[p][c], weight_bits_);
            const int natural = column_absmax_[p][c] > 0 ? static_cast<int>(std::floor(std::log2(tensor_scale / ideal))) : free_bits;
            e[c] = std::clamp(natural, 0, free_bits);
        }
        round(p, tensor_scale, e);
        return snapshot(p);
    }

    ProjectionQuant snapshot(int p) const {
        return {p, tensor_scale_[p], centred_[p], head_.weights[p], head_.bias[p], head_.column_exponent[p],
                head_.acc_bits[p], head_.out_scale[p]};
    }

    void apply(const ProjectionQuant & q) {
        const int p = q.projection;
        tensor_scale_[p] = q.tensor_scale;
        centred_[p] = q.centred;
        head_.weights[p] = q.weights;
        head_.bias[p] = q.bias;
        head_.column_exponent[p] = q.exponent;
        head_.acc_bits[p] = q.acc_bits;
        head_.out_scale[p] = q.out_scale;
    }

private:
    // Rounds W' with column exponents e into the head; B the smallest width that fits every
    // calibration accumulator.
    void round(int p, double tensor_scale, const std::vector<int> & e) {
        const int32_t d = head_.head_dim, n_embd = head_.n_embd;
        tensor_scale_[p] = tensor_scale;
        head_.column_exponent[p] = e;
        QuantizedMatrix & m = head_.weights[p];
        m.rows = n_embd;
        m.cols = d;
        m.values.resize(size_t(n_embd) * d);
        m.scales.resize(static_cast<size_t>(d));
        for (int32_t c = 0; c < d; ++c) m.scales[c] = std::ldexp(tensor_scale, -e[c]);
        head_.bias[p].resize(static_cast<size_t>(d));
        std::vector<double> bias = bias_[p];
        if (centred_[p])
            for (int32_t c = 0; c < d; ++c) bias[size_t(c)] -= key_mean_[size_t(c)];
        if (gptq_) {
            std::vector<double> with_bias(folded_[p]);
            with_bias.insert(with_bias.end(), bias.begin(), bias.end());
            const RoundedWeights rounded = round_weights_gptq(with_bias, n_embd, d, m.scales, weight_bits_, factor_);
            m.values = rounded.values;
            for (int32_t c = 0; c < d; ++c) head_.bias[p][c] = static_cast<int64_t>(std::nearbyint(rounded.bias[c]));
        } else {
            for (int32_t r = 0; r < n_embd; ++r)
                for (int32_t c = 0; c < d; ++c)
                    m.values[size_t(r) * d + c] = quantize_value(folded_[p][size_t(r) * d + c], m.scales[c], weight_bits_);
            for (int32_t c = 0; c < d; ++c)
                head_.bias[p][c] = static_cast<int64_t>(std::nearbyint(bias[size_t(c)] / m.scales[c]));
        }
        const std::vector<int64_t> accs = projection_accumulators(head_, p, x_int_, static_cast<int32_t>(total_));
        int B = head_.lut_bits;
        for (int32_t c = 0; c < d; ++c) {
            int64_t lo = 0, hi = 0;
            for (int64_t i = 0; i < total_; ++i) {
                lo = std::min(lo, accs[size_t(i) * d + c]);
                hi = std::max(hi, accs[size_t(i) * d + c]);
            }
            const int64_t range[] = {lo, hi};
            while (!fits(range, B + e[c])) ++B;
        }
        head_.acc_bits[p] = B;
        head_.out_scale[p] = tensor_scale * std::ldexp(1.0, B - head_.lut_bits);
    }

    QuantizedHead & head_;
    std::span<const int64_t> x_int_;
    int64_t total_;
    int weight_bits_;
    bool gptq_;
    GptqFactor factor_;
    std::vector<double> folded_[3], column_absmax_[3], bias_[3], reference_[3], key_mean_;
    double tensor_scale_[3] = {0, 0, 0};
    bool centred_[3] = {false, false, false};
};

// Mean squared error of projection p's codes (the levels they stand for) against the float
// values, over the calibration positions.
double code_error(const QuantizedHead & head, int p, std::span<const int64_t> x_int, const std::vector<double> & reference) {
    const auto positions = static_cast<int32_t>(x_int.size() / size_t(head.n_embd));
    const std::vector<int64_t> codes = calibration_codes(head, p, x_int, positions);
    double error = 0;
    for (size_t k = 0; k < codes.size(); ++k) {
        const double e = head.code_value(codes[k]) * head.out_scale[p] - reference[k];
        error += e * e;
    }
    return error / double(codes.size());
}

// Quantizes the q, k and v projections of `head` (its input scales set) on the calibration
// inputs. Each projection's weight clip is chosen among the clips that cost the fewest
// bootstraps (a tighter scale widens the accumulators and the scores, and so their roundings).
// v's: the least squared error of its codes against the float values. q's and k's act together:
// the pair whose scores, under a float softmax, come nearest to the float attention of the
// calibration rows. Returns the bootstraps the roundings cost.
Cost quantize_projections(QuantizedHead & head, const model::HeadQkvWeights & w, std::span<const float> x,
                          std::span<const int32_t> lengths, int64_t total, int weight_bits, int & absmax_score_bits) {
    const int32_t d = head.head_dim;
    const int lut_bits = head.lut_bits;
    const std::vector<int64_t> x_int = head.quantize_inputs(x);
    ProjectionQuantizer quantizer(head, w, x, x_int, total, weight_bits);

    const std::vector<std::vector<double>> float_attention =
        reference_attention(quantizer.reference(kQuery), quantizer.reference(kKey), lengths, d);
    const std::vector<double> clips = head.config.calibrated_clipping ? clip_candidates() : std::vector<double>{1.0};
    {
        std::vector<ProjectionQuant> options;
        std::vector<Cost> costs;
        for (double clip : clips) {
            options.push_back(quantizer.quantize(kValue, clip));
            costs.push_back({rounding_cost(head, kValue), 0, 0, code_error(head, kValue, x_int, quantizer.reference(kValue))});
        }
        quantizer.apply(options[cheapest(costs)]);
    }
    {
        std::vector<ProjectionQuant> q_options, k_options;
        std::vector<std::vector<int64_t>> q_codes, k_codes;
        const auto positions = static_cast<int32_t>(total);
        for (double clip : clips) {
            q_options.push_back(quantizer.quantize(kQuery, clip));
            q_codes.push_back(calibration_codes(head, kQuery, x_int, positions));
        }
        for (bool centred : {false, true})
            for (double clip : clips) {
                k_options.push_back(quantizer.quantize(kKey, clip, centred));
                k_codes.push_back(calibration_codes(head, kKey, x_int, positions));
            }
        // Wider scores leave the score's roundings less margin over the noise of the products
        // summed into it (at 5 bits, one more bit pushed fhegpt-tiny's head from the 5-bit to the
        // 6-bit parameter set): no pair may widen them beyond absmax scales (the first call's
        // clips[0] = 1).
        const int default_product_scale = QuantizedHead::default_product_scale_log2(lut_bits);
        // The cost of q option a with k option b; sets the head's product scale.
        auto evaluate = [&](size_t a, size_t b) {
            quantizer.apply(q_options[a]);
            quantizer.apply(k_options[b]);
            // Finer q and k steps make finer score units: a coarser product scale K keeps the
            // scores within the absmax width. The products' rounding errors that K adds stay far
            // below a fine bucket (2^(fine_shift) units).
            head.product_scale_log2 = default_product_scale;
            std::vector<std::vector<int64_t>> scores;
            for (;;) {
                set_score_unit(head);
                scores = scores_of_codes(head, q_codes[a], k_codes[b], lengths);
                head.score_bits = score_bits_of(scores, lut_bits);
                if (absmax_score_bits == 0) absmax_score_bits = head.score_bits;
                if (head.score_bits <= absmax_score_bits || head.product_scale_log2 <= kMinProductScaleLog2) break;
                --head.product_scale_log2;
            }
            const double error = calibrate_window(head, scores, &float_attention);
            return Cost{rounding_cost(head, kQuery) + rounding_cost(head, kKey), score_rounding_cost(head),
                        std::max(head.score_bits - absmax_score_bits, 0), error};
        };
        // Coordinate descent from absmax scales (option 0 of each): k's clip, q's, then k's again.
        size_t best_q = 0, best_k = 0;
        std::vector<Cost> best{evaluate(0, 0)};
        int best_scale = head.product_scale_log2;
        for (int pass = 0; pass < 3; ++pass) {
            const bool keys = pass % 2 == 0;
            for (size_t option = 0; option < (keys ? k_options.size() : q_options.size()); ++option) {
                const size_t a = keys ? best_q : option, b = keys ? option : best_k;
                best.push_back(evaluate(a, b));
                if (cheapest(best) == 1) {
                    best_q = a;
                    best_k = b;
                    best_scale = head.product_scale_log2;
                    best.erase(best.begin());
                } else {
                    best.pop_back();
                }
            }
        }
        quantizer.apply(q_options[best_q]);
        quantizer.apply(k_options[best_k]);
        head.product_scale_log2 = best_scale;
    }
    if (head.config.per_channel)
        for (int p = 0; p < 3; ++p) quantizer.apply(quantizer.per_channel(p));
    set_score_unit(head);

    // Only differences within a row matter (S is read modulo its encoding, quantized_head.h), and
    // the row maximum works while a row spans fewer than 2^V coarse buckets, 2^B_S units: B_S
    // leaves twice the widest calibrated row. Sized by the absolute range instead, the coarse
    // and fine buckets were twice as wide (4-bit head: mean KL 0.016 against 0.026).
    const std::vector<std::vector<int64_t>> scores = calibration_scores(head, x_int, lengths);
    head.score_bits = score_bits_of(scores, lut_bits);
    const double error = calibrate_window(head, scores, &float_attention);
    return {rounding_cost(head, kQuery) + rounding_cost(head, kKey) + rounding_cost(head, kValue),
            score_rounding_cost(head), std::max(head.score_bits - absmax_score_bits, 0), error};
}

} // namespace

QuantizedHead quantize_head(const model::HeadQkvWeights & w, std::span<const float> x, std::span<const int32_t> lengths,
                            const HeadQuantConfig & config) {
    if (config.n_bits < 2 || config.n_bits > 16) fail("quantize: n_bits {} outside 2..16", config.n_bits);
    const int weight_bits = config.weight_bits ? config.weight_bits : config.n_bits;
    if (weight_bits < 2 || weight_bits > 16) fail("quantize: weight bits {} outside 2..16", weight_bits);
    const int lut_bits = config.lut_bits ? config.lut_bits : std::max(3, std::min(config.n_bits, 12));
    if (lut_bits < 3 || lut_bits > 12) fail("quantize: lookup width {} outside 3..12", lut_bits);
    if (config.rounding_chunk_bits < 0 || config.rounding_chunk_bits > lut_bits)
        fail("quantize: rounding chunks of {} bits with {}-bit lookups", config.rounding_chunk_bits, lut_bits);
    int64_t total = 0;
    for (int32_t len : lengths) {
        if (len <= 0) fail("quantize: empty calibration sequence");
        total += len;
    }
    if (total == 0 || x.size() != size_t(total) * w.n_embd)
        fail("quantize: {} calibration values for {} positions of {}", x.size(), total, w.n_embd);

    QuantizedHead head;
    head.config = config;
    head.n_embd = w.n_embd;
    head.head_dim = w.head_dim;
    head.x_bits = config.n_bits;
    head.lut_bits = lut_bits;
    head.value_bits = lut_bits - 1;
    head.product_scale_log2 = QuantizedHead::default_product_scale_log2(lut_bits);
    const int32_t n_embd = w.n_embd;
    // Input scales clipped to the least squared error of each channel, unless that costs
    // bootstraps: it widens the accumulators (at 4 bits, fhegpt-tiny's q past what two sign
    // bootstraps round), and then absmax scales are kept.
    head.x_scales = input_scales(x, n_embd, head.x_bits, config.input_per_channel, false);
    int absmax_score_bits = 0;
    const Cost cost = quantize_projections(head, w, x, lengths, total, weight_bits, absmax_score_bits);
    if (config.calibrated_clipping) {
        QuantizedHead clipped = head;
        clipped.x_scales = input_scales(x, n_embd, head.x_bits, config.input_per_channel, true);
        const Cost clipped_cost = quantize_projections(clipped, w, x, lengths, total, weight_bits, absmax_score_bits);
        if (std::tie(clipped_cost.value_rounding, clipped_cost.score_rounding, clipped_cost.extra_score_bits) <=
            std::tie(cost.value_rounding, cost.score_rounding, cost.extra_score_bits))
            head = std::move(clipped);
    }
    return head;
}

} // namespace fhegpt::quant
