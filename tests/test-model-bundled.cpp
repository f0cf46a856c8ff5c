// The bundled model models/fhegpt-tiny against the training code's PyTorch model class
// (tools/train/model.py, run by tests/reference/bundled_model_logits.py in float32), on a fixed
// English sentence tokenized with the model's own vocabulary: every position of one prefill,
// and a prefill followed by token-by-token decode from the KV cache.
//
// No logits are stored here: both sides read the same copy of the model directory at test time,
// so a re-exported model (same format, new weights) is checked as it is.
//
// Relative error of a row of logits a against the reference b: max_j |a_j - b_j| / max_j |b_j|.
#include "model/gpt2_forward.h"
#include "model/gpt2_model.h"
#include "model/gpt2_tokenizer.h"
#include "reference/reference_checkpoints.h" // kReferencePython

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace fhegpt::model;
using fhegpt::test::kReferencePython;

constexpr double kTolerance = 1e-4;
constexpr const char * kSentence =
    "In the beginning the quick brown fox jumped over the lazy dog, and then it ran back into the quiet "
    "forest where the old trees grow tall and the river flows slowly down to the sea.";

double relative_error(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    double diff = 0, scale = 0;
    for (size_t j = 0; j < std::min(a.size(), b.size()); ++j) {
        diff = std::max(diff, std::abs(static_cast<double>(a[j]) - static_cast<double>(b[j])));
        scale = std::max(scale, std::abs(static_cast<double>(b[j])));
    }
    return diff / scale;
}

// Everything the tests share: a private copy of the model directory (so that a re-export while
// the test runs cannot give the two sides different weights), the tokens and PyTorch's logits.
struct BundledReference {
    fs::path dir;
    std::vector<int32_t> tokens;
    std::vector<float> logits; // [tokens.size(), n_vocab]

    ~BundledReference() {
        std::error_code ignored;
        if (!dir.empty()) fs::remove_all(dir, ignored);
    }
    std::string model_dir() const { return (dir / "model").string(); }

    static std::unique_ptr<BundledReference> create(std::string & why_not, bool & skip) {
        skip = false;
        const std::string probe = std::string(kReferencePython) + " -c 'import torch' >/dev/null 2>&1";
        if (std::system(probe.c_str()) != 0) {
            skip = true;
            why_not = std::string(kReferencePython) + " with torch is not available";
            return nullptr;
        }
        std::string pattern = (fs::temp_directory_path() / "fhegpt-bundled-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            why_not = "cannot create a temporary directory";
            return nullptr;
        }
        auto ref = std::make_unique<BundledReference>();
        ref->dir = pattern;
        const fs::path source = fs::path(FHEGPT_SOURCE_DIR) / "models" / "fhegpt-tiny";
        fs::create_directory(ref->dir / "model");
        for (const char * name : {"config.json", "model.safetensors", "vocab.json", "merges.txt"}) {
            std::error_code ec;
            fs::copy_file(source / name, ref->dir / "model" / name, ec);
            if (ec) {
                why_not = "cannot copy " + (source / name).string() + ": " + ec.message();
                return nullptr;
            }
        }

        const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(ref->model_dir());
        ref->tokens = tokenizer.encode(kSentence);
        {
            std::ofstream out(ref->dir / "tokens.i32", std::ios::binary);
            out.write(reinterpret_cast<const char *>(ref->tokens.data()),
                      static_cast<std::streamsize>(ref->tokens.size() * sizeof(int32_t)));
        }

        const std::string command = std::string(kReferencePython) + " " FHEGPT_SOURCE_DIR
                                    "/tests/reference/bundled_model_logits.py '" + ref->model_dir() + "' '" +
                                    (ref->dir / "tokens.i32").string() + "' '" + (ref->dir / "logits.f32").string() +
                                    "' >/dev/null";
        if (std::system(command.c_str()) != 0) {
            why_not = "bundled_model_logits.py failed: " + command;
            return nullptr;
        }
        std::ifstream in(ref->dir / "logits.f32", std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        ref->logits.resize(bytes.size() / sizeof(float));
        std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(ref->logits.size() * sizeof(float)),
                  reinterpret_cast<char *>(ref->logits.data()));
        return ref;
    }
};

class BundledModel : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        try {
            ref_ = BundledReference::create(why_not_, skip_);
            if (ref_) model_.emplace(load_gpt2_model(ref_->model_dir()));
        } catch (const std::exception & e) {
            why_not_ = std::string("cannot load the bundled model: ") + e.what();
            ref_.reset();
        }
    }
    static void TearDownTestSuite() {
        model_.reset();
        ref_.reset();
    }

    void SetUp() override {
        if (skip_) GTEST_SKIP() << why_not_;
        ASSERT_TRUE(ref_) << why_not_; // torch is there but the reference could not be computed: a failure
        n_vocab_ = static_cast<size_t>(model_->hparams.n_vocab);
        ASSERT_EQ(ref_->logits.size(), ref_->tokens.size() * n_vocab_);
    }

    std::span<const float> expected_row(size_t i) const {
        return std::span<const float>(ref_->logits).subspan(i * n_vocab_, n_vocab_);
    }

    static inline std::unique_ptr<BundledReference> ref_;
    static inline std::optional<Gpt2Model> model_;
    static inline std::string why_not_;
    static inline bool skip_ = false;
    size_t n_vocab_ = 0;
};

TEST_F(BundledModel, PromptIsAFixedEnglishSentence) {
    const std::vector<int32_t> & tokens = ref_->tokens;
    EXPECT_GE(tokens.size(), 30u);
    EXPECT_LE(tokens.size(), 64u);
    const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(ref_->model_dir());
    EXPECT_EQ(tokenizer.decode(tokens), kSentence);
    EXPECT_EQ(tokenizer.vocab_size(), model_->hparams.n_vocab);
    // Real BPE merges, not one token per byte.
    EXPECT_LT(tokens.size(), std::string(kSentence).size() / 2);
}

TEST_F(BundledModel, AllPositionsMatchPyTorch) {
    const std::vector<int32_t> & tokens = ref_->tokens;
    const size_t n = tokens.size();
    Gpt2Context ctx(*model_);
    const std::span<const float> all = ctx.eval(tokens, Logits::all);
    ASSERT_EQ(all.size(), n * n_vocab_);
    double worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < n; ++i) {
        const double e = relative_error(all.subspan(i * n_vocab_, n_vocab_), expected_row(i));
        EXPECT_LE(e, kTolerance) << "position " << i;
        if (e >= worst) worst = e, worst_at = i;
    }
    std::printf("all-position prefill of %zu tokens: max relative error %.3g (position %zu)\n", n, worst, worst_at);
    RecordProperty("prefill_max_relative_error", std::to_string(worst));
}

TEST_F(BundledModel, PrefillThenDecodeMatchesPyTorch) {
    const std::vector<int32_t> & tokens = ref_->tokens;
    const size_t n = tokens.size();
    Gpt2Context ctx(*model_);
    for (size_t prefix : {size_t{1}, size_t{16}}) {
        ctx.reset();
        std::span<const float> logits = ctx.eval(std::span(tokens).first(prefix));
        double worst = relative_error(logits, expected_row(prefix - 1));
        EXPECT_LE(worst, kTolerance) << "prefill of " << prefix;
        for (size_t i = prefix; i < n; ++i) {
            logits = ctx.eval(std::span(tokens).subspan(i, 1));
            const double e = relative_error(logits, expected_row(i));
            EXPECT_LE(e, kTolerance) << "prefill of " << prefix << ", decode of position " << i;
            worst = std::max(worst, e);
        }
        EXPECT_EQ(ctx.n_past(), static_cast<int32_t>(n));
        std::printf("prefill of %zu then decode to %zu: max relative error %.3g\n", prefix, n, worst);
        RecordProperty("decode_after_" + std::to_string(prefix) + "_max_relative_error", std::to_string(worst));
    }
}

// The comparison can fail: the engine's own logits, with one value moved by twice the
// tolerance, are caught; and the reference rows are not interchangeable (they depend on the
// prompt, so a wrong position or token would be caught too).
TEST_F(BundledModel, ComparisonDetectsAPerturbation) {
    Gpt2Context ctx(*model_);
    const std::span<const float> all = ctx.eval(ref_->tokens, Logits::all);
    const size_t i = ref_->tokens.size() / 2;
    std::vector<float> row(all.begin() + static_cast<std::ptrdiff_t>(i * n_vocab_),
                           all.begin() + static_cast<std::ptrdiff_t>((i + 1) * n_vocab_));
    ASSERT_LE(relative_error(row, expected_row(i)), kTolerance);
    double scale = 0;
    for (float v : expected_row(i)) scale = std::max(scale, std::abs(static_cast<double>(v)));
    row[123] += static_cast<float>(2 * kTolerance * scale);
    EXPECT_GT(relative_error(row, expected_row(i)), kTolerance);
    EXPECT_GT(relative_error(expected_row(i), expected_row(i + 1)), 100 * kTolerance);
}

} // namespace
