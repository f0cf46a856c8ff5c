// config.json parsing and writing, and load_gpt2_model on tiny checkpoints written with the
// project's writers: every layout it must accept and one test per way a checkpoint can be bad.
#include "model-loader-test-util.h"

#include "common/error.h"
#include "model/gpt2_config.h"
#include "model/gpt2_model.h"
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace fhegpt::model {
namespace {

using test::CheckpointOptions;
using test::CheckpointTensors;
using test::expect_error;
using test::ScratchDir;
using test::tiny_hparams;
using test::write_file;
using test::write_test_checkpoint;

void expect_values(std::span<const float> got, const std::vector<float> & want, const std::string & name) {
    ASSERT_EQ(got.size(), want.size()) << name;
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << name << "[" << i << "]";
}

bool inside_mapping(const Gpt2Model & model, std::span<const float> s) {
    if (!model.weights_file) return false;
    const uint8_t * begin = model.weights_file->bytes().data();
    const uint8_t * p = reinterpret_cast<const uint8_t *>(s.data());
    return p >= begin && p + s.size_bytes() <= begin + model.weights_file->size();
}

// Every tensor of `model` holds the values written (they are exact in F16 and BF16).
void expect_model_matches(const Gpt2Model & model, const CheckpointTensors & t, const Gpt2HParams & hp) {
    EXPECT_EQ(model.hparams.n_vocab, hp.n_vocab);
    EXPECT_EQ(model.hparams.n_ctx, hp.n_ctx);
    EXPECT_EQ(model.hparams.n_embd, hp.n_embd);
    EXPECT_EQ(model.hparams.n_head, hp.n_head);
    EXPECT_EQ(model.hparams.n_layer, hp.n_layer);
    EXPECT_EQ(model.hparams.layer_norm_epsilon, hp.layer_norm_epsilon);
    EXPECT_EQ(model.hparams.activation_function, "gelu_new");
    expect_values(model.wte, t.at("wte.weight"), "wte");
    expect_values(model.wpe, t.at("wpe.weight"), "wpe");
    expect_values(model.ln_f_g, t.at("ln_f.weight"), "ln_f.weight");
    expect_values(model.ln_f_b, t.at("ln_f.bias"), "ln_f.bias");
    ASSERT_EQ(model.layers.size(), static_cast<size_t>(hp.n_layer));
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        const Gpt2Layer & l = model.layers[static_cast<size_t>(i)];
        std::string h = "h." + std::to_string(i) + ".";
        expect_values(l.ln_1_g, t.at(h + "ln_1.weight"), h + "ln_1.weight");
        expect_values(l.ln_1_b, t.at(h + "ln_1.bias"), h + "ln_1.bias");
        expect_values(l.attn_w, t.at(h + "attn.c_attn.weight"), h + "attn.c_attn.weight");
        expect_values(l.attn_b, t.at(h + "attn.c_attn.bias"), h + "attn.c_attn.bias");
        expect_values(l.attn_proj_w, t.at(h + "attn.c_proj.weight"), h + "attn.c_proj.weight");
        expect_values(l.attn_proj_b, t.at(h + "attn.c_proj.bias"), h + "attn.c_proj.bias");
        expect_values(l.ln_2_g, t.at(h + "ln_2.weight"), h + "ln_2.weight");
        expect_values(l.ln_2_b, t.at(h + "ln_2.bias"), h + "ln_2.bias");
        expect_values(l.fc_w, t.at(h + "mlp.c_fc.weight"), h + "mlp.c_fc.weight");
        expect_values(l.fc_b, t.at(h + "mlp.c_fc.bias"), h + "mlp.c_fc.bias");
        expect_values(l.mlp_proj_w, t.at(h + "mlp.c_proj.weight"), h + "mlp.c_proj.weight");
        expect_values(l.mlp_proj_b, t.at(h + "mlp.c_proj.bias"), h + "mlp.c_proj.bias");
    }
}

// A valid checkpoint, then `edit` rewrites model.safetensors from the tensor list.
void write_edited_checkpoint(const ScratchDir & dir,
                             const std::function<void(std::vector<SafetensorsTensorToWrite> &)> & edit,
                             CheckpointOptions opt = {}) {
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    std::vector<SafetensorsTensorToWrite> entries = test::to_write(t, opt);
    edit(entries);
    write_safetensors(dir.file("model.safetensors"), entries);
}

// ---- valid checkpoints -------------------------------------------------------------------------

TEST(Gpt2Load, F32WithPrefixIsZeroCopyAndTied) {
    ScratchDir dir;
    CheckpointOptions opt;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
    EXPECT_TRUE(model.hparams.tie_word_embeddings);
    EXPECT_EQ(model.lm_head.data(), model.wte.data());
    EXPECT_EQ(model.lm_head.size(), model.wte.size());
    EXPECT_TRUE(model.owned_tensors.empty());
    EXPECT_TRUE(inside_mapping(model, model.wte));
    EXPECT_TRUE(inside_mapping(model, model.layers[1].mlp_proj_w));
}

TEST(Gpt2Load, F32WithoutPrefix) {
    ScratchDir dir;
    CheckpointOptions opt;
    opt.prefix = false;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
    EXPECT_EQ(model.lm_head.data(), model.wte.data());
}

TEST(Gpt2Load, F16IsConvertedIntoOwnedBuffers) {
    ScratchDir dir;
    CheckpointOptions opt;
    opt.dtype = SafetensorsDtype::F16;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
    EXPECT_FALSE(inside_mapping(model, model.wte));
    EXPECT_EQ(model.owned_tensors.size(), 2u + 12u * 2u + 2u); // wte, wpe, 12 per layer, ln_f
    EXPECT_EQ(model.lm_head.data(), model.wte.data());
}

TEST(Gpt2Load, BF16WithoutPrefix) {
    ScratchDir dir;
    CheckpointOptions opt;
    opt.dtype = SafetensorsDtype::BF16;
    opt.prefix = false;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
}

TEST(Gpt2Load, UntiedLmHeadIsLoaded) {
    for (SafetensorsDtype dtype : {SafetensorsDtype::F32, SafetensorsDtype::F16, SafetensorsDtype::BF16}) {
        ScratchDir dir;
        CheckpointOptions opt;
        opt.dtype = dtype;
        opt.store_lm_head = true;
        opt.tie = false;
        CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
        Gpt2Model model = load_gpt2_model(dir.path());
        expect_model_matches(model, t, tiny_hparams());
        EXPECT_FALSE(model.hparams.tie_word_embeddings);
        EXPECT_NE(model.lm_head.data(), model.wte.data());
        expect_values(model.lm_head, t.at("lm_head.weight"), "lm_head");
        EXPECT_NE(t.at("lm_head.weight"), t.at("wte.weight"));
    }
}

TEST(Gpt2Load, TiedCheckpointWithStoredLmHeadUsesWte) {
    ScratchDir dir;
    CheckpointOptions opt;
    opt.store_lm_head = true; // an older checkpoint that kept a copy; config ties
    opt.dtype = SafetensorsDtype::BF16;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
    EXPECT_EQ(model.lm_head.data(), model.wte.data());
    EXPECT_EQ(model.owned_tensors.size(), 2u + 12u * 2u + 2u); // no converted copy of lm_head kept
}

TEST(Gpt2Load, IgnoresAttentionMaskBuffers) {
    for (bool prefix : {true, false}) {
        ScratchDir dir;
        CheckpointOptions opt;
        opt.mask_buffers = true;
        opt.prefix = prefix;
        CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), opt);
        Gpt2Model model = load_gpt2_model(dir.path());
        expect_model_matches(model, t, tiny_hparams());
    }
}

TEST(Gpt2Load, MixedDtypes) {
    ScratchDir dir;
    CheckpointTensors t;
    write_edited_checkpoint(dir, [](std::vector<SafetensorsTensorToWrite> & entries) {
        for (size_t i = 0; i < entries.size(); ++i) {
            entries[i].dtype = std::array{SafetensorsDtype::F32, SafetensorsDtype::F16, SafetensorsDtype::BF16}[i % 3];
        }
    });
    t = test::checkpoint_tensors(tiny_hparams(), {});
    Gpt2Model model = load_gpt2_model(dir.path());
    expect_model_matches(model, t, tiny_hparams());
}

TEST(Gpt2Load, ModelOutlivesMoves) {
    ScratchDir dir;
    CheckpointTensors t = write_test_checkpoint(dir.path(), tiny_hparams(), {});
    Gpt2Model moved;
    {
        Gpt2Model model = load_gpt2_model(dir.path());
        moved = std::move(model);
    }
    expect_model_matches(moved, t, tiny_hparams());
}

// ---- config.json -------------------------------------------------------------------------------

TEST(Gpt2Config, WriteThenReadRoundTrips) {
    ScratchDir dir;
    Gpt2HParams hp = tiny_hparams();
    hp.layer_norm_epsilon = 1e-6f;
    hp.tie_word_embeddings = false;
    write_gpt2_config(dir.file("config.json"), hp);
    Gpt2HParams back = read_gpt2_config(dir.file("config.json"));
    EXPECT_EQ(back.n_vocab, hp.n_vocab);
    EXPECT_EQ(back.n_ctx, hp.n_ctx);
    EXPECT_EQ(back.n_embd, hp.n_embd);
    EXPECT_EQ(back.n_head, hp.n_head);
    EXPECT_EQ(back.n_layer, hp.n_layer);
    EXPECT_EQ(back.layer_norm_epsilon, hp.layer_norm_epsilon);
    EXPECT_EQ(back.activation_function, "gelu_new");
    EXPECT_FALSE(back.tie_word_embeddings);
}

TEST(Gpt2Config, WrittenJsonIsTransformersShaped) {
    Gpt2HParams hp; // GPT-2 small
    nlohmann::json j = nlohmann::json::parse(gpt2_config_json(hp));
    EXPECT_EQ(j["model_type"], "gpt2");
    EXPECT_EQ(j["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
    EXPECT_EQ(j["vocab_size"], 50257);
    EXPECT_EQ(j["n_positions"], 1024);
    EXPECT_EQ(j["n_ctx"], 1024);
    EXPECT_EQ(j["n_embd"], 768);
    EXPECT_EQ(j["n_head"], 12);
    EXPECT_EQ(j["n_layer"], 12);
    EXPECT_EQ(j["activation_function"], "gelu_new");
    EXPECT_EQ(j["bos_token_id"], 50256);
    EXPECT_EQ(j["eos_token_id"], 50256);
    EXPECT_TRUE(j["n_inner"].is_null());
    EXPECT_NE(gpt2_config_json(hp).find("\"layer_norm_epsilon\": 1e-05"), std::string::npos) << gpt2_config_json(hp);
}

TEST(Gpt2Config, AbsentKeysTakeGpt2ConfigDefaults) {
    Gpt2HParams hp = parse_gpt2_config("{}", "c.json");
    EXPECT_EQ(hp.n_vocab, 50257);
    EXPECT_EQ(hp.n_ctx, 1024);
    EXPECT_EQ(hp.n_embd, 768);
    EXPECT_EQ(hp.n_head, 12);
    EXPECT_EQ(hp.n_layer, 12);
    EXPECT_EQ(hp.layer_norm_epsilon, 1e-5f);
    EXPECT_EQ(hp.activation_function, "gelu_new");
    EXPECT_TRUE(hp.tie_word_embeddings);
}

TEST(Gpt2Config, OriginalGpt2ConfigParses) {
    // The keys of openai-community/gpt2's config.json that matter, with its task_specific_params.
    std::string text = R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024,
        "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
        "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
        "summary_type": "cls_index", "summary_use_proj": true,
        "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
        "vocab_size": 50257})";
    Gpt2HParams hp = parse_gpt2_config(text, "gpt2/config.json");
    EXPECT_EQ(hp.n_vocab, 50257);
    EXPECT_EQ(hp.n_ctx, 1024);
    EXPECT_EQ(hp.n_layer, 12);
}

TEST(Gpt2Config, AliasesOldKeysAndGeluPytorchTanh) {
    Gpt2HParams hp = parse_gpt2_config(R"({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 3,
        "n_ctx": 128, "activation_function": "gelu_pytorch_tanh", "n_inner": 256})",
                                       "c.json");
    EXPECT_EQ(hp.n_embd, 64);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_layer, 3);
    EXPECT_EQ(hp.n_ctx, 128);
    EXPECT_EQ(hp.activation_function, "gelu_new");
    expect_error([] { parse_gpt2_config(R"({"n_embd": 64, "hidden_size": 32})", "c.json"); },
                 {"c.json", "\"n_embd\" is 64 but \"hidden_size\" is 32"});
}

TEST(Gpt2ConfigMalformed, BadJson) {
    ScratchDir dir;
    write_file(dir.file("config.json"), "{\"n_embd\": 768,");
    expect_error([&] { read_gpt2_config(dir.file("config.json")); },
                 {dir.file("config.json"), "bad JSON", "parse error"});
}

TEST(Gpt2ConfigMalformed, NotAnObject) {
    expect_error([] { parse_gpt2_config("[768]", "c.json"); }, {"c.json: not a JSON object but array"});
}

TEST(Gpt2ConfigMalformed, WrongTypes) {
    expect_error([] { parse_gpt2_config(R"({"n_embd": "768"})", "c.json"); },
                 {"c.json", "\"n_embd\" must be an integer, got \"768\""});
    expect_error([] { parse_gpt2_config(R"({"n_layer": 12.5})", "c.json"); },
                 {"c.json", "\"n_layer\" must be an integer"});
    expect_error([] { parse_gpt2_config(R"({"layer_norm_epsilon": "1e-5"})", "c.json"); },
                 {"c.json", "\"layer_norm_epsilon\" must be a number"});
    expect_error([] { parse_gpt2_config(R"({"tie_word_embeddings": 1})", "c.json"); },
                 {"c.json", "\"tie_word_embeddings\" must be true or false"});
    expect_error([] { parse_gpt2_config(R"({"activation_function": ["gelu_new"]})", "c.json"); },
                 {"c.json", "\"activation_function\" must be a string"});
}

TEST(Gpt2ConfigMalformed, NonPositiveSizes) {
    expect_error([] { parse_gpt2_config(R"({"n_layer": 0})", "c.json"); },
                 {"c.json", "\"n_layer\" is 0, must be positive"});
    expect_error([] { parse_gpt2_config(R"({"vocab_size": -5})", "c.json"); },
                 {"c.json", "\"vocab_size\" is -5, must be positive"});
}

TEST(Gpt2ConfigMalformed, HostileSizes) {
    expect_error([] { parse_gpt2_config(R"({"n_embd": 1073741824, "n_head": 1})", "c.json"); },
                 {"c.json", "\"n_embd\" is 1073741824, more than the supported maximum 65536"});
    expect_error([] { parse_gpt2_config(R"({"vocab_size": 1099511627776})", "c.json"); },
                 {"c.json", "\"vocab_size\" is 1099511627776, more than the supported maximum"});
    expect_error([] { parse_gpt2_config(R"({"n_positions": 18446744073709551615})", "c.json"); },
                 {"c.json", "\"n_positions\" is 18446744073709551615, too large"});
    expect_error([] { parse_gpt2_config(R"({"n_layer": 1e30})", "c.json"); },
                 {"c.json", "\"n_layer\" must be an integer"});
    // Each dimension within its bound, the product not.
    expect_error([] { parse_gpt2_config(R"({"n_embd": 65536, "n_head": 1024, "n_layer": 1024})", "c.json"); },
                 {"c.json", "parameters, more than the supported maximum"});
}

TEST(Gpt2ConfigMalformed, EmbdNotMultipleOfHeads) {
    expect_error([] { parse_gpt2_config(R"({"n_embd": 100, "n_head": 12})", "c.json"); },
                 {"c.json", "n_embd 100 is not a multiple of n_head 12"});
}

TEST(Gpt2ConfigMalformed, UnsupportedActivation) {
    expect_error([] { parse_gpt2_config(R"({"activation_function": "relu"})", "c.json"); },
                 {"c.json", "activation_function 'relu' unsupported"});
}

TEST(Gpt2ConfigMalformed, BadEpsilon) {
    expect_error([] { parse_gpt2_config(R"({"layer_norm_epsilon": 0})", "c.json"); },
                 {"c.json", "layer_norm_epsilon 0 must be in (0, 1)"});
    expect_error([] { parse_gpt2_config(R"({"layer_norm_epsilon": -1e-5})", "c.json"); },
                 {"c.json", "must be in (0, 1)"});
}

TEST(Gpt2ConfigMalformed, OtherArchitectureOrOptions) {
    expect_error([] { parse_gpt2_config(R"({"model_type": "llama"})", "c.json"); },
                 {"c.json", "model_type 'llama' is not gpt2"});
    expect_error([] { parse_gpt2_config(R"({"n_embd": 64, "n_head": 4, "n_inner": 100})", "c.json"); },
                 {"c.json", "n_inner 100 unsupported", "4 * n_embd = 256"});
    expect_error([] { parse_gpt2_config(R"({"scale_attn_by_inverse_layer_idx": true})", "c.json"); },
                 {"c.json", "scale_attn_by_inverse_layer_idx"});
    expect_error([] { parse_gpt2_config(R"({"scale_attn_weights": false})", "c.json"); },
                 {"c.json", "scale_attn_weights false"});
    expect_error([] { parse_gpt2_config(R"({"add_cross_attention": true})", "c.json"); },
                 {"c.json", "add_cross_attention"});
}

TEST(Gpt2ConfigMalformed, WriterRejectsBadHParams) {
    ScratchDir dir;
    Gpt2HParams hp = tiny_hparams();
    hp.n_head = 3;
    expect_error([&] { write_gpt2_config(dir.file("config.json"), hp); },
                 {dir.file("config.json"), "not a multiple of n_head 3"});
    EXPECT_FALSE(std::filesystem::exists(dir.file("config.json")));
}

// ---- bad checkpoints -----------------------------------------------------------------------------

TEST(Gpt2LoadMalformed, MissingDirectory) {
    ScratchDir dir;
    expect_error([&] { load_gpt2_model(dir.file("absent")); }, {dir.file("absent"), "no such checkpoint directory"});
}

TEST(Gpt2LoadMalformed, NotADirectory) {
    ScratchDir dir;
    write_file(dir.file("plain"), "x");
    expect_error([&] { load_gpt2_model(dir.file("plain")); }, {dir.file("plain"), "not a directory"});
}

TEST(Gpt2LoadMalformed, MissingConfig) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    std::filesystem::remove(dir.file("config.json"));
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("config.json"), "missing"});
}

TEST(Gpt2LoadMalformed, MissingSafetensors) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    std::filesystem::remove(dir.file("model.safetensors"));
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("model.safetensors"), "missing"});
}

TEST(Gpt2LoadMalformed, OnlyPytorchBin) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    std::filesystem::rename(dir.file("model.safetensors"), dir.file("pytorch_model.bin"));
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("model.safetensors"), "only pytorch_model.bin"});
}

TEST(Gpt2LoadMalformed, ShardedCheckpoint) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    std::filesystem::rename(dir.file("model.safetensors"), dir.file("model-00001-of-00001.safetensors"));
    write_file(dir.file("model.safetensors.index.json"), "{}");
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("model.safetensors"), "sharded"});
}

TEST(Gpt2LoadMalformed, BadJsonInConfig) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    write_file(dir.file("config.json"), "{\"n_layer\": 2 \"n_embd\": 8}");
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("config.json"), "bad JSON"});
}

TEST(Gpt2LoadMalformed, HostileConfig) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    write_file(dir.file("config.json"), R"({"n_layer": 2, "n_embd": 8, "n_head": 2, "vocab_size": 2147483647})");
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("config.json"), "\"vocab_size\" is 2147483647"});
}

TEST(Gpt2LoadMalformed, HeaderLengthPastEndOfFile) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    write_file(dir.file("model.safetensors"), test::u64_le(1000) + "{}");
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "header length 1000 past end of file"});
}

TEST(Gpt2LoadMalformed, TruncatedSafetensors) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    std::filesystem::resize_file(dir.file("model.safetensors"),
                                 std::filesystem::file_size(dir.file("model.safetensors")) - 4);
    expect_error([&] { load_gpt2_model(dir.path()); }, {dir.file("model.safetensors"), "out of range", "truncated"});
}

TEST(Gpt2LoadMalformed, WrongShapeVsConfig) {
    ScratchDir dir;
    // c_attn stored as nn.Linear would store it, [3*n_embd, n_embd]: not GPT-2's Conv1D layout.
    write_edited_checkpoint(dir, [](std::vector<SafetensorsTensorToWrite> & entries) {
        for (auto & e : entries) {
            if (e.name == "transformer.h.1.attn.c_attn.weight") e.shape = {24, 8};
        }
    });
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "'transformer.h.1.attn.c_attn.weight' has shape [24, 8]",
                  dir.file("config.json"), "n_embd 8", "gives [8, 24]"});
}

TEST(Gpt2LoadMalformed, VocabSizeDisagreesWithWte) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    Gpt2HParams hp = tiny_hparams();
    hp.n_vocab = 12;
    write_gpt2_config(dir.file("config.json"), hp);
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "'transformer.wte.weight' has shape [11, 8]",
                  "vocab_size 12, n_embd 8", "gives [12, 8]"});
}

TEST(Gpt2LoadMalformed, MissingTensor) {
    ScratchDir dir;
    write_edited_checkpoint(dir, [](std::vector<SafetensorsTensorToWrite> & entries) {
        std::erase_if(entries, [](const SafetensorsTensorToWrite & e) {
            return e.name == "transformer.h.1.mlp.c_fc.bias" || e.name == "transformer.ln_f.weight";
        });
    });
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "missing tensors: 'h.1.mlp.c_fc.bias', 'ln_f.weight'"});
}

TEST(Gpt2LoadMalformed, MissingUntiedLmHead) {
    ScratchDir dir;
    CheckpointOptions opt;
    opt.tie = false; // config unties, file has no lm_head.weight
    write_test_checkpoint(dir.path(), tiny_hparams(), opt);
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "missing tensors: 'lm_head.weight'"});
}

TEST(Gpt2LoadMalformed, MoreLayersThanConfig) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    Gpt2HParams hp = tiny_hparams();
    hp.n_layer = 1;
    write_gpt2_config(dir.file("config.json"), hp);
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "unexpected tensors: 'transformer.h.1.", "n_layer 1"});
}

TEST(Gpt2LoadMalformed, UnknownTensor) {
    ScratchDir dir;
    std::vector<float> extra(3, 0.0f);
    write_edited_checkpoint(dir, [&](std::vector<SafetensorsTensorToWrite> & entries) {
        entries.push_back({"score.weight", SafetensorsDtype::F32, {3}, extra});
    });
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "unexpected tensors: 'score.weight'"});
}

TEST(Gpt2LoadMalformed, BothPrefixedAndBareName) {
    ScratchDir dir;
    std::vector<float> ln(8, 1.0f);
    write_edited_checkpoint(dir, [&](std::vector<SafetensorsTensorToWrite> & entries) {
        entries.push_back({"ln_f.weight", SafetensorsDtype::F32, {8}, ln});
    });
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "holds both 'ln_f.weight' and 'transformer.ln_f.weight'"});
}

TEST(Gpt2LoadMalformed, UnsupportedDtype) {
    ScratchDir dir;
    write_test_checkpoint(dir.path(), tiny_hparams(), {});
    // A hand-made file: every tensor present, ln_f.bias stored as I32.
    CheckpointTensors t = test::checkpoint_tensors(tiny_hparams(), {});
    nlohmann::ordered_json header;
    std::string data;
    for (size_t i = 0; i < t.names.size(); ++i) {
        bool as_int = t.names[i] == "ln_f.bias";
        std::string bytes(reinterpret_cast<const char *>(t.values[i].data()), t.values[i].size() * 4);
        header[t.names[i]] = {{"dtype", as_int ? "I32" : "F32"},
                              {"shape", t.shapes[i]},
                              {"data_offsets", {data.size(), data.size() + bytes.size()}}};
        data += bytes;
    }
    write_file(dir.file("model.safetensors"), test::raw_safetensors(header.dump(), data));
    expect_error([&] { load_gpt2_model(dir.path()); },
                 {dir.file("model.safetensors"), "'ln_f.bias' has dtype I32, unsupported"});
}

TEST(Gpt2LoadMalformed, MaskBufferPastLastLayerIsUnexpected) {
    ScratchDir dir;
    std::vector<float> mask(1, 0.0f);
    write_edited_checkpoint(dir, [&](std::vector<SafetensorsTensorToWrite> & entries) {
        entries.push_back({"h.7.attn.bias", SafetensorsDtype::F32, {1}, mask});
    });
    expect_error([&] { load_gpt2_model(dir.path()); }, {"unexpected tensors: 'h.7.attn.bias'"});
}

} // namespace
} // namespace fhegpt::model
