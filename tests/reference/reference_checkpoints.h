// Test helper: runs tests/reference/gpt2_reference.py (PyTorch, independent of the engine) into
// a fresh temporary directory and reads back its token sequence and expected logits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace fhegpt::test {

inline constexpr const char * kReferencePython = "/usr/bin/python3";

class ReferenceCheckpoints {
public:
    // The script's output; nullopt with `why_not` set when Debian's python3-torch is absent.
    static std::optional<ReferenceCheckpoints> create(std::string & why_not) {
        const std::string probe = std::string(kReferencePython) + " -c 'import torch' >/dev/null 2>&1";
        if (std::system(probe.c_str()) != 0) {
            why_not = std::string(kReferencePython) + " with torch is not available";
            return std::nullopt;
        }
        std::string pattern = (std::filesystem::temp_directory_path() / "fhegpt-reference-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            why_not = "cannot create a temporary directory";
            return std::nullopt;
        }
        ReferenceCheckpoints ref;
        ref.dir_ = pattern;
        const std::string command = std::string(kReferencePython) + " " FHEGPT_SOURCE_DIR
                                    "/tests/reference/gpt2_reference.py '" + ref.dir_.string() + "' >/dev/null";
        if (std::system(command.c_str()) != 0) {
            why_not = "gpt2_reference.py failed: " + command;
            return std::nullopt;
        }
        ref.tokens_ = read_file<int32_t>(ref.dir_ / "tokens.i32");
        return ref;
    }

    ReferenceCheckpoints(ReferenceCheckpoints && other) noexcept : dir_(std::move(other.dir_)), tokens_(std::move(other.tokens_)) {
        other.dir_.clear();
    }
    ReferenceCheckpoints & operator=(ReferenceCheckpoints && other) noexcept {
        std::swap(dir_, other.dir_);
        std::swap(tokens_, other.tokens_);
        return *this;
    }
    ~ReferenceCheckpoints() {
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }

    // "f32", "f16", "bf16", "f32_untied"
    std::string model_dir(const std::string & variant) const { return (dir_ / variant).string(); }
    const std::filesystem::path & dir() const { return dir_; }
    const std::vector<int32_t> & tokens() const { return tokens_; }
    // [tokens().size(), vocab] row-major: row i = logits after tokens[0..i].
    std::vector<double> logits(const std::string & variant) const { return read_file<double>(dir_ / variant / "logits.f64"); }

private:
    ReferenceCheckpoints() = default;

    template <typename T>
    static std::vector<T> read_file(const std::filesystem::path & path) {
        std::ifstream in(path, std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::vector<T> values(bytes.size() / sizeof(T));
        std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(values.size() * sizeof(T)),
                  reinterpret_cast<char *>(values.data()));
        return values;
    }

    std::filesystem::path dir_;
    std::vector<int32_t> tokens_;
};

} // namespace fhegpt::test
