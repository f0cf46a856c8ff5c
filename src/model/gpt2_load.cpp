// load_gpt2_model: a Hugging Face checkpoint directory (config.json + model.safetensors) to a
// Gpt2Model whose F32 tensors view the memory-mapped file and whose F16/BF16 tensors are
// converted into buffers the model owns.
#include "common/error.h"
#include "model/gpt2_config.h"
#include "model/gpt2_model.h"
#include "model/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <filesystem>
#include <set>
#include <string_view>

namespace fhegpt::model {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "transformer.";

std::string shape_string(const std::vector<int64_t> & shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// "h.<i>.attn.bias" / "h.<i>.attn.masked_bias" with i < n_layer: the causal-mask buffers older
// checkpoints store next to the weights. They hold no parameters.
bool is_mask_buffer(std::string_view name, int32_t n_layer) {
    if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
    if (!name.starts_with("h.")) return false;
    name.remove_prefix(2);
    int64_t layer = -1;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), layer);
    if (ec != std::errc() || end == name.data() || (name[0] == '0' && end - name.data() > 1)) return false;
    name.remove_prefix(static_cast<size_t>(end - name.data()));
    return layer < n_layer && (name == ".attn.bias" || name == ".attn.masked_bias");
}

// Finds checkpoint tensors by their GPT2Model name, with or without "transformer.", checks
// their shapes against config.json, and records what is missing and what was used.
class TensorBinder {
public:
    TensorBinder(const Safetensors & file, const std::string & config_path, Gpt2Model & model)
        : file_(file), config_path_(config_path), model_(model) {}

    // The tensor `name` as f32, or an empty span (and `name` recorded as missing) if absent.
    std::span<const float> bind(const std::string & name, const std::vector<int64_t> & expected_shape,
                                std::string_view dims) {
        const SafetensorsTensor * tensor = find_checked(name, expected_shape, dims);
        if (tensor == nullptr) {
            missing_.push_back(name);
            return {};
        }
        std::vector<float> storage;
        std::span<const float> values = tensor_as_f32(*tensor, file_.source, storage);
        if (!storage.empty()) values = model_.own(std::move(storage));
        return values;
    }

    // Checks the shape of `name` if present and marks it used, without reading its values.
    void check_if_present(const std::string & name, const std::vector<int64_t> & expected_shape,
                          std::string_view dims) {
        find_checked(name, expected_shape, dims);
    }

    void throw_if_incomplete() const {
        if (!missing_.empty()) fail("{}: missing tensors: {}", file_.source, name_list(missing_));
        std::vector<std::string> unexpected;
        for (const auto & [name, tensor] : file_.tensors) {
            if (!used_.contains(name) && !is_mask_buffer(name, model_.hparams.n_layer)) unexpected.push_back(name);
        }
        if (!unexpected.empty()) {
            fail("{}: unexpected tensors: {} (is config.json's n_layer {} right? is this GPT-2?)", file_.source,
                 name_list(unexpected), model_.hparams.n_layer);
        }
    }

private:
    const SafetensorsTensor * find_checked(const std::string & name, const std::vector<int64_t> & expected_shape,
                                           std::string_view dims) {
        const SafetensorsTensor * bare = file_.find(name);
        const SafetensorsTensor * prefixed = file_.find(std::string(kPrefix) + name);
        if (bare != nullptr && prefixed != nullptr) {
            fail("{}: holds both '{}' and '{}{}'", file_.source, name, kPrefix, name);
        }
        const SafetensorsTensor * tensor = bare != nullptr ? bare : prefixed;
        if (tensor == nullptr) return nullptr;
        if (tensor->shape != expected_shape) {
            fail("{}: tensor '{}' has shape {}, but {} ({}) gives {}", file_.source, tensor->name,
                 shape_string(tensor->shape), config_path_, dims, shape_string(expected_shape));
        }
        used_.insert(tensor->name);
        return tensor;
    }

    static std::string name_list(const std::vector<std::string> & names) {
        constexpr size_t kShown = 8;
        std::vector<std::string> shown(names.begin(), names.begin() + std::min(names.size(), kShown));
        std::string list = fmt::format("'{}'", fmt::join(shown, "', '"));
        if (names.size() > kShown) list += fmt::format(" and {} more", names.size() - kShown);
        return list;
    }

    const Safetensors & file_;
    const std::string & config_path_;
    Gpt2Model & model_;
    std::vector<std::string> missing_;
    std::set<std::string> used_;
};

std::string weights_path(const fs::path & dir) {
    fs::path path = dir / "model.safetensors";
    std::error_code ec;
    if (fs::exists(path, ec)) return path.string();
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
        fail("{}: missing; this checkpoint is sharded (model.safetensors.index.json), which is unsupported: "
             "save it as one file",
             path.string());
    }
    if (fs::exists(dir / "pytorch_model.bin", ec)) {
        fail("{}: missing; only pytorch_model.bin is there: convert it to safetensors", path.string());
    }
    fail("{}: missing (a GPT-2 checkpoint directory holds config.json and model.safetensors)", path.string());
}

} // namespace

Gpt2Model load_gpt2_model(const std::string & dir) {
    std::error_code ec;
    fs::file_status status = fs::status(dir, ec);
    if (!fs::exists(status)) fail("{}: no such checkpoint directory", dir);
    if (!fs::is_directory(status)) fail("{}: not a directory (expected a checkpoint directory)", dir);

    std::string config_path = (fs::path(dir) / "config.json").string();
    if (!fs::exists(config_path, ec)) {
        fail("{}: missing (a GPT-2 checkpoint directory holds config.json and model.safetensors)", config_path);
    }
    Gpt2Model model;
    model.hparams = read_gpt2_config(config_path);
    const Gpt2HParams & hp = model.hparams;

    SafetensorsFile file = open_safetensors(weights_path(dir));
    TensorBinder binder(file.contents, config_path, model);
    const int64_t embd = hp.n_embd;
    const std::string embd_dims = fmt::format("n_embd {}", embd);

    model.wte =
        binder.bind("wte.weight", {hp.n_vocab, embd}, fmt::format("vocab_size {}, n_embd {}", hp.n_vocab, embd));
    model.wpe = binder.bind("wpe.weight", {hp.n_ctx, embd}, fmt::format("n_positions {}, n_embd {}", hp.n_ctx, embd));
    model.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        Gpt2Layer & layer = model.layers[static_cast<size_t>(i)];
        std::string h = fmt::format("h.{}.", i);
        layer.ln_1_g = binder.bind(h + "ln_1.weight", {embd}, embd_dims);
        layer.ln_1_b = binder.bind(h + "ln_1.bias", {embd}, embd_dims);
        layer.attn_w = binder.bind(h + "attn.c_attn.weight", {embd, 3 * embd}, embd_dims);
        layer.attn_b = binder.bind(h + "attn.c_attn.bias", {3 * embd}, embd_dims);
        layer.attn_proj_w = binder.bind(h + "attn.c_proj.weight", {embd, embd}, embd_dims);
        layer.attn_proj_b = binder.bind(h + "attn.c_proj.bias", {embd}, embd_dims);
        layer.ln_2_g = binder.bind(h + "ln_2.weight", {embd}, embd_dims);
        layer.ln_2_b = binder.bind(h + "ln_2.bias", {embd}, embd_dims);
        layer.fc_w = binder.bind(h + "mlp.c_fc.weight", {embd, 4 * embd}, embd_dims);
        layer.fc_b = binder.bind(h + "mlp.c_fc.bias", {4 * embd}, embd_dims);
        layer.mlp_proj_w = binder.bind(h + "mlp.c_proj.weight", {4 * embd, embd}, embd_dims);
        layer.mlp_proj_b = binder.bind(h + "mlp.c_proj.bias", {embd}, embd_dims);
    }
    model.ln_f_g = binder.bind("ln_f.weight", {embd}, embd_dims);
    model.ln_f_b = binder.bind("ln_f.bias", {embd}, embd_dims);

    // As transformers does: with tie_word_embeddings (the default) the output projection is
    // wte, and a stored lm_head.weight (older checkpoints keep a copy) is checked but unused.
    // The lm_head name never carries the "transformer." prefix; bind() accepts it anyway.
    const std::string lm_head_dims = fmt::format("vocab_size {}, n_embd {}", hp.n_vocab, embd);
    if (hp.tie_word_embeddings) {
        binder.check_if_present("lm_head.weight", {hp.n_vocab, embd}, lm_head_dims);
        model.lm_head = model.wte;
    } else {
        model.lm_head = binder.bind("lm_head.weight", {hp.n_vocab, embd}, lm_head_dims);
    }
    binder.throw_if_incomplete();
    model.weights_file = std::move(file.mapping);
    return model;
}

} // namespace fhegpt::model
