// Helpers shared by test-model-safetensors and test-model-load: a scratch directory, raw
// file writing (to build malformed files byte by byte), and a tiny GPT-2 checkpoint written
// with the project's own writers.
#pragma once

#include "common/error.h"
#include "model/gpt2_config.h"
#include "model/gpt2_model.h"
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>
#include <string>
#include <vector>

namespace fhegpt::model::test {

// A fresh directory under the test temp dir, removed with everything in it at scope exit.
class ScratchDir {
public:
    ScratchDir() {
        const testing::TestInfo * info = testing::UnitTest::GetInstance()->current_test_info();
        std::string name = info == nullptr ? "scratch" : std::string(info->test_suite_name()) + "." + info->name();
        path_ = std::filesystem::path(testing::TempDir()) / ("fhegpt-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir &) = delete;
    ScratchDir & operator=(const ScratchDir &) = delete;

    std::string path() const { return path_.string(); }
    std::string file(const std::string & name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_file(const std::string & path, const std::string & bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

inline std::string u64_le(uint64_t value) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * i));
    return bytes;
}

// A safetensors file made by hand: length field, header text, data bytes.
inline std::string raw_safetensors(const std::string & header, const std::string & data) {
    return u64_le(header.size()) + header + data;
}

// Runs `f`, which must throw fhegpt::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F && f, std::initializer_list<std::string> parts) {
    try {
        f();
        ADD_FAILURE() << "no fhegpt::Error thrown";
    } catch (const fhegpt::Error & e) {
        std::string message = e.what();
        for (const std::string & part : parts) {
            EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nlacks: " << part;
        }
    }
}

inline std::vector<uint8_t> as_bytes(const std::string & s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// How test_checkpoint() lays out a checkpoint.
struct CheckpointOptions {
    SafetensorsDtype dtype = SafetensorsDtype::F32;
    bool prefix = true;         // "transformer.h.0..." (GPT2LMHeadModel) or "h.0..." (GPT2Model)
    bool store_lm_head = false; // write lm_head.weight
    bool tie = true;            // config.json tie_word_embeddings
    bool mask_buffers = false;  // write h.<i>.attn.bias / attn.masked_bias as old checkpoints do
};

inline Gpt2HParams tiny_hparams() {
    Gpt2HParams hp;
    hp.n_vocab = 11;
    hp.n_ctx = 7;
    hp.n_embd = 8;
    hp.n_head = 2;
    hp.n_layer = 2;
    hp.layer_norm_epsilon = 1e-5f;
    return hp;
}

// The tensors of a GPT-2 checkpoint, by their GPT2Model name (no prefix), with values that
// differ between tensors and elements and are exact in F16 and BF16 (multiples of 1/64 below 2).
struct CheckpointTensors {
    std::vector<std::string> names;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::vector<float>> values;

    void add(const std::string & name, std::vector<int64_t> shape) {
        size_t numel = 1;
        for (int64_t d : shape) numel *= static_cast<size_t>(d);
        std::vector<float> v(numel);
        size_t salt = names.size() * 37 + 11;
        for (size_t i = 0; i < numel; ++i) {
            v[i] = static_cast<float>(static_cast<int>((i * 13 + salt) % 127) - 63) / 64.0f;
        }
        names.push_back(name);
        shapes.push_back(std::move(shape));
        values.push_back(std::move(v));
    }

    const std::vector<float> & at(const std::string & name) const {
        for (size_t i = 0; i < names.size(); ++i) {
            if (names[i] == name) return values[i];
        }
        ADD_FAILURE() << "no tensor " << name;
        static const std::vector<float> empty;
        return empty;
    }
};

inline CheckpointTensors checkpoint_tensors(const Gpt2HParams & hp, const CheckpointOptions & opt) {
    CheckpointTensors t;
    const int64_t e = hp.n_embd;
    t.add("wte.weight", {hp.n_vocab, e});
    t.add("wpe.weight", {hp.n_ctx, e});
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        std::string h = "h." + std::to_string(i) + ".";
        t.add(h + "ln_1.weight", {e});
        t.add(h + "ln_1.bias", {e});
        t.add(h + "attn.c_attn.weight", {e, 3 * e});
        t.add(h + "attn.c_attn.bias", {3 * e});
        t.add(h + "attn.c_proj.weight", {e, e});
        t.add(h + "attn.c_proj.bias", {e});
        t.add(h + "ln_2.weight", {e});
        t.add(h + "ln_2.bias", {e});
        t.add(h + "mlp.c_fc.weight", {e, 4 * e});
        t.add(h + "mlp.c_fc.bias", {4 * e});
        t.add(h + "mlp.c_proj.weight", {4 * e, e});
        t.add(h + "mlp.c_proj.bias", {e});
        if (opt.mask_buffers) {
            t.add(h + "attn.bias", {1, 1, hp.n_ctx, hp.n_ctx});
            t.add(h + "attn.masked_bias", {});
        }
    }
    t.add("ln_f.weight", {e});
    t.add("ln_f.bias", {e});
    if (opt.store_lm_head) t.add("lm_head.weight", {hp.n_vocab, e});
    return t;
}

// The safetensors entries for `t`, named as the options say (lm_head never prefixed).
inline std::vector<SafetensorsTensorToWrite> to_write(const CheckpointTensors & t, const CheckpointOptions & opt) {
    std::vector<SafetensorsTensorToWrite> out;
    for (size_t i = 0; i < t.names.size(); ++i) {
        bool prefixed = opt.prefix && t.names[i] != "lm_head.weight";
        out.push_back({(prefixed ? "transformer." : "") + t.names[i], opt.dtype, t.shapes[i], t.values[i]});
    }
    return out;
}

// Writes config.json and model.safetensors into `dir`; returns the tensors written.
inline CheckpointTensors write_test_checkpoint(const std::string & dir, const Gpt2HParams & hp_in,
                                               const CheckpointOptions & opt) {
    Gpt2HParams hp = hp_in;
    hp.tie_word_embeddings = opt.tie;
    write_gpt2_config(dir + "/config.json", hp);
    CheckpointTensors t = checkpoint_tensors(hp, opt);
    std::vector<SafetensorsTensorToWrite> entries = to_write(t, opt);
    write_safetensors(dir + "/model.safetensors", entries, {{"format", "pt"}});
    return t;
}

} // namespace fhegpt::model::test
