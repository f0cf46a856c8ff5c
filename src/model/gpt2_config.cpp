// Reading and writing GPT-2 config.json.
#include "model/gpt2_config.h"

#include "common/error.h"
#include "common/mapped_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace fhegpt::model {

namespace {

using nlohmann::json;

struct FileCloser {
    void operator()(std::FILE * f) const { std::fclose(f); }
};

// A value for a message: its JSON text, cut short if long.
std::string describe(const json & value) {
    std::string text = value.dump();
    if (text.size() > 64) text = text.substr(0, 60) + " ...";
    return text;
}

const json * find_key(const json & config, const char * key) {
    auto it = config.find(key);
    return it == config.end() ? nullptr : &*it;
}

// An integer dimension stored under `key` or its alias; both present must agree.
std::optional<int64_t> get_dimension(const json & config, const char * key, const char * alias,
                                     const std::string & source) {
    std::optional<int64_t> result;
    for (const char * name : {key, alias}) {
        if (name == nullptr) continue;
        const json * value = find_key(config, name);
        if (value == nullptr || value->is_null()) continue;
        if (!value->is_number_integer()) fail("{}: \"{}\" must be an integer, got {}", source, name, describe(*value));
        if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
            fail("{}: \"{}\" is {}, too large", source, name, value->get<uint64_t>());
        }
        int64_t number = value->get<int64_t>();
        if (result && *result != number) fail("{}: \"{}\" is {} but \"{}\" is {}", source, key, *result, name, number);
        result = number;
    }
    return result;
}

int32_t dimension_in_range(const std::optional<int64_t> & value, int32_t fallback, int32_t max, const char * key,
                           const std::string & source) {
    if (!value) return fallback;
    if (*value <= 0) fail("{}: \"{}\" is {}, must be positive", source, key, *value);
    if (*value > max) fail("{}: \"{}\" is {}, more than the supported maximum {}", source, key, *value, max);
    return static_cast<int32_t>(*value);
}

std::optional<bool> get_bool(const json & config, const char * key, const std::string & source) {
    const json * value = find_key(config, key);
    if (value == nullptr || value->is_null()) return std::nullopt;
    if (!value->is_boolean()) fail("{}: \"{}\" must be true or false, got {}", source, key, describe(*value));
    return value->get<bool>();
}

} // namespace

uint64_t gpt2_parameter_count(const Gpt2HParams & hp) {
    uint64_t embd = static_cast<uint64_t>(hp.n_embd);
    uint64_t per_layer = 12 * embd * embd + 13 * embd; // ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj
    return (static_cast<uint64_t>(hp.n_vocab) + static_cast<uint64_t>(hp.n_ctx)) * embd +
           static_cast<uint64_t>(hp.n_layer) * per_layer + 2 * embd;
}

void check_gpt2_hparams(const Gpt2HParams & hp, const std::string & source) {
    struct Bound {
        const char * key;
        int32_t value;
        int32_t max;
    };
    for (const Bound & b : {Bound{"n_layer", hp.n_layer, kGpt2MaxLayers}, Bound{"n_head", hp.n_head, kGpt2MaxHeads},
                            Bound{"n_embd", hp.n_embd, kGpt2MaxEmbd}, Bound{"n_positions", hp.n_ctx, kGpt2MaxCtx},
                            Bound{"vocab_size", hp.n_vocab, kGpt2MaxVocab}}) {
        if (b.value <= 0) fail("{}: \"{}\" is {}, must be positive", source, b.key, b.value);
        if (b.value > b.max) {
            fail("{}: \"{}\" is {}, more than the supported maximum {}", source, b.key, b.value, b.max);
        }
    }
    if (hp.n_embd % hp.n_head != 0) {
        fail("{}: n_embd {} is not a multiple of n_head {}", source, hp.n_embd, hp.n_head);
    }
    if (uint64_t count = gpt2_parameter_count(hp); count > kGpt2MaxParameters) {
        fail("{}: these dimensions make {} parameters, more than the supported maximum {}", source, count,
             kGpt2MaxParameters);
    }
    if (!(hp.layer_norm_epsilon > 0.0f && hp.layer_norm_epsilon < 1.0f)) {
        fail("{}: layer_norm_epsilon {} must be in (0, 1)", source, hp.layer_norm_epsilon);
    }
    if (hp.activation_function != "gelu_new") {
        fail("{}: activation_function '{}' unsupported (gelu_new or gelu_pytorch_tanh)", source,
             hp.activation_function);
    }
}

Gpt2HParams parse_gpt2_config(std::string_view json_text, const std::string & source) {
    json config;
    try {
        config = json::parse(json_text.begin(), json_text.end());
    } catch (const json::exception & e) {
        std::string_view what = e.what();
        if (size_t close = what.find("] "); what.starts_with("[json.") && close != std::string_view::npos) {
            what.remove_prefix(close + 2);
        }
        fail("{}: bad JSON: {}", source, what);
    }
    if (!config.is_object()) fail("{}: not a JSON object but {}", source, config.type_name());

    if (const json * model_type = find_key(config, "model_type"); model_type != nullptr && !model_type->is_null()) {
        if (!model_type->is_string()) {
            fail("{}: \"model_type\" must be a string, got {}", source, describe(*model_type));
        }
        if (*model_type != "gpt2") fail("{}: model_type '{}' is not gpt2", source, model_type->get<std::string>());
    }

    Gpt2HParams defaults;
    Gpt2HParams hp;
    hp.n_vocab = dimension_in_range(get_dimension(config, "vocab_size", nullptr, source), defaults.n_vocab,
                                    kGpt2MaxVocab, "vocab_size", source);
    hp.n_embd = dimension_in_range(get_dimension(config, "n_embd", "hidden_size", source), defaults.n_embd,
                                   kGpt2MaxEmbd, "n_embd", source);
    hp.n_head = dimension_in_range(get_dimension(config, "n_head", "num_attention_heads", source), defaults.n_head,
                                   kGpt2MaxHeads, "n_head", source);
    hp.n_layer = dimension_in_range(get_dimension(config, "n_layer", "num_hidden_layers", source), defaults.n_layer,
                                    kGpt2MaxLayers, "n_layer", source);
    std::optional<int64_t> n_positions = get_dimension(config, "n_positions", "max_position_embeddings", source);
    if (!n_positions) n_positions = get_dimension(config, "n_ctx", nullptr, source); // configs older than n_positions
    hp.n_ctx = dimension_in_range(n_positions, defaults.n_ctx, kGpt2MaxCtx, "n_positions", source);

    if (const json * eps = find_key(config, "layer_norm_epsilon"); eps != nullptr && !eps->is_null()) {
        if (!eps->is_number()) fail("{}: \"layer_norm_epsilon\" must be a number, got {}", source, describe(*eps));
        double value = eps->get<double>();
        if (!(value > 0.0 && value < 1.0)) fail("{}: layer_norm_epsilon {} must be in (0, 1)", source, value);
        hp.layer_norm_epsilon = static_cast<float>(value);
    }

    if (const json * act = find_key(config, "activation_function"); act != nullptr && !act->is_null()) {
        if (!act->is_string()) fail("{}: \"activation_function\" must be a string, got {}", source, describe(*act));
        const std::string & name = act->get_ref<const std::string &>();
        if (name != "gelu_new" && name != "gelu_pytorch_tanh") {
            fail("{}: activation_function '{}' unsupported (gelu_new or gelu_pytorch_tanh)", source, name);
        }
        hp.activation_function = "gelu_new";
    }

    if (std::optional<int64_t> n_inner = get_dimension(config, "n_inner", nullptr, source);
        n_inner && *n_inner != 4 * static_cast<int64_t>(hp.n_embd)) {
        fail("{}: n_inner {} unsupported: the MLP width must be 4 * n_embd = {}", source, *n_inner,
             4 * int64_t{hp.n_embd});
    }
    hp.tie_word_embeddings = get_bool(config, "tie_word_embeddings", source).value_or(true);
    if (get_bool(config, "scale_attn_weights", source).value_or(true) == false) {
        fail("{}: scale_attn_weights false unsupported (attention scores are always scaled by 1/sqrt(head_dim))",
             source);
    }
    if (get_bool(config, "scale_attn_by_inverse_layer_idx", source).value_or(false)) {
        fail("{}: scale_attn_by_inverse_layer_idx true unsupported", source);
    }
    if (get_bool(config, "add_cross_attention", source).value_or(false)) {
        fail("{}: add_cross_attention true unsupported (decoder-only GPT-2 here)", source);
    }
    check_gpt2_hparams(hp, source);
    return hp;
}

Gpt2HParams read_gpt2_config(const std::string & path) {
    MappedFile file(path);
    if (file.size() > kGpt2MaxConfigBytes) {
        fail("{}: {} bytes, more than {} for a config.json", path, file.size(), kGpt2MaxConfigBytes);
    }
    std::string_view text(reinterpret_cast<const char *>(file.bytes().data()), file.size());
    return parse_gpt2_config(text, path);
}

std::string gpt2_config_json(const Gpt2HParams & hp) {
    // The shortest decimal that reads back as the same float (1e-05, not 9.99999974e-06).
    double epsilon = std::strtod(fmt::format("{}", hp.layer_norm_epsilon).c_str(), nullptr);
    if (static_cast<float>(epsilon) != hp.layer_norm_epsilon) epsilon = hp.layer_norm_epsilon; // exact, if longer
    int32_t special_token = std::min(hp.n_vocab - 1, 50256); // <|endoftext|> in GPT-2's vocabulary
    json config = {
        {"activation_function", hp.activation_function},
        {"architectures", {"GPT2LMHeadModel"}},
        {"attn_pdrop", 0.1},
        {"bos_token_id", special_token},
        {"embd_pdrop", 0.1},
        {"eos_token_id", special_token},
        {"initializer_range", 0.02},
        {"layer_norm_epsilon", epsilon},
        {"model_type", "gpt2"},
        {"n_ctx", hp.n_ctx},
        {"n_embd", hp.n_embd},
        {"n_head", hp.n_head},
        {"n_inner", nullptr},
        {"n_layer", hp.n_layer},
        {"n_positions", hp.n_ctx},
        {"reorder_and_upcast_attn", false},
        {"resid_pdrop", 0.1},
        {"scale_attn_by_inverse_layer_idx", false},
        {"scale_attn_weights", true},
        {"summary_activation", nullptr},
        {"summary_first_dropout", 0.1},
        {"summary_proj_to_labels", true},
        {"summary_type", "cls_index"},
        {"summary_use_proj", true},
        {"tie_word_embeddings", hp.tie_word_embeddings},
        {"torch_dtype", "float32"},
        {"use_cache", true},
        {"vocab_size", hp.n_vocab},
    };
    return config.dump(2) + "\n";
}

void write_gpt2_config(const std::string & path, const Gpt2HParams & hparams) {
    check_gpt2_hparams(hparams, path);
    std::string text = gpt2_config_json(hparams);
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
    if (!file) fail("{}: cannot create: {}", path, std::strerror(errno));
    if (std::fwrite(text.data(), 1, text.size(), file.get()) != text.size()) {
        fail("{}: write failed: {}", path, std::strerror(errno));
    }
    if (std::fclose(file.release()) != 0) fail("{}: write failed: {}", path, std::strerror(errno));
}

} // namespace fhegpt::model
