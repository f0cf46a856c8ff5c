#include "model/gpt2_fold.h"

#include "common/error.h"

#include <cmath>

namespace fhegpt::model {

namespace {

// w' = diag(g) w ([n_in, n_out]) and b' = beta w + b.
void fold_norm(std::span<const float> g, std::span<const float> beta, std::span<const float> w,
               std::span<const float> b, int32_t n_in, int32_t n_out, std::vector<float> & w_out,
               std::vector<float> & b_out) {
    w_out.resize(size_t(n_in) * n_out);
    b_out.assign(b.begin(), b.end());
    std::vector<double> bias(b.begin(), b.end());
    for (int32_t r = 0; r < n_in; ++r)
        for (int32_t c = 0; c < n_out; ++c) {
            const float v = w[size_t(r) * n_out + c];
            w_out[size_t(r) * n_out + c] = g[size_t(r)] * v;
            bias[size_t(c)] += double(beta[size_t(r)]) * v;
        }
    for (int32_t c = 0; c < n_out; ++c) b_out[size_t(c)] = static_cast<float>(bias[size_t(c)]);
}

// Each row of w ([n_in, n_out]) and the bias minus their means over the outputs.
void centre_outputs(std::span<const float> w, std::span<const float> b, int32_t n_out, std::vector<float> & w_out,
                    std::vector<float> & b_out) {
    w_out.assign(w.begin(), w.end());
    b_out.assign(b.begin(), b.end());
    centre_rows(w_out, n_out);
    centre_rows(b_out, n_out);
}

} // namespace

void centre_rows(std::span<float> x, int32_t n_embd) {
    if (n_embd <= 0 || x.size() % size_t(n_embd) != 0) fail("centre_rows: {} values in rows of {}", x.size(), n_embd);
    for (size_t row = 0; row < x.size(); row += size_t(n_embd)) {
        double mean = 0;
        for (int32_t k = 0; k < n_embd; ++k) mean += x[row + size_t(k)];
        mean /= n_embd;
        for (int32_t k = 0; k < n_embd; ++k) x[row + size_t(k)] = static_cast<float>(x[row + size_t(k)] - mean);
    }
}

void normalize_rows(std::span<float> x, int32_t n_embd, float eps) {
    centre_rows(x, n_embd);
    for (size_t row = 0; row < x.size(); row += size_t(n_embd)) {
        double sum = 0;
        for (int32_t k = 0; k < n_embd; ++k) sum += double(x[row + size_t(k)]) * x[row + size_t(k)];
        const double r = 1.0 / std::sqrt(sum / n_embd + double(eps));
        for (int32_t k = 0; k < n_embd; ++k) x[row + size_t(k)] = static_cast<float>(x[row + size_t(k)] * r);
    }
}

Gpt2Model fold_layer_norms(const Gpt2Model & model) {
    const Gpt2HParams & hp = model.hparams;
    const int32_t n_embd = hp.n_embd, n_ff = 4 * hp.n_embd;
    Gpt2Model out;
    out.hparams = hp;
    out.wte = model.wte;
    out.wpe = model.wpe;
    out.ln_f_g = model.ln_f_g;
    out.ln_f_b = model.ln_f_b;
    out.lm_head = model.lm_head;
    const std::vector<float> ones(size_t(n_embd), 1.0f), zeros(size_t(n_embd), 0.0f);
    const std::span<const float> one = out.own(ones), zero = out.own(zeros);
    out.layers.resize(model.layers.size());
    for (size_t il = 0; il < model.layers.size(); ++il) {
        const Gpt2Layer & l = model.layers[il];
        Gpt2Layer & f = out.layers[il];
        std::vector<float> w, b;
        fold_norm(l.ln_1_g, l.ln_1_b, l.attn_w, l.attn_b, n_embd, 3 * n_embd, w, b);
        f.attn_w = out.own(std::move(w));
        f.attn_b = out.own(std::move(b));
        centre_outputs(l.attn_proj_w, l.attn_proj_b, n_embd, w, b);
        f.attn_proj_w = out.own(std::move(w));
        f.attn_proj_b = out.own(std::move(b));
        fold_norm(l.ln_2_g, l.ln_2_b, l.fc_w, l.fc_b, n_embd, n_ff, w, b);
        f.fc_w = out.own(std::move(w));
        f.fc_b = out.own(std::move(b));
        centre_outputs(l.mlp_proj_w, l.mlp_proj_b, n_embd, w, b);
        f.mlp_proj_w = out.own(std::move(w));
        f.mlp_proj_b = out.own(std::move(b));
        f.ln_1_g = f.ln_2_g = one;
        f.ln_1_b = f.ln_2_b = zero;
    }
    return out;
}

} // namespace fhegpt::model
