// GPT-2's tokenizer against OpenAI's: the corpus in tests/data/tokenizer/corpus must encode to
// exactly the ids tiktoken wrote (tools/tokenizer-reference/make_expected.js), and any bytes,
// valid UTF-8 or not, must round-trip.
#include "common/error.h"
#include "model/gpt2_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using fhegpt::model::Gpt2Tokenizer;

namespace {

const fs::path source_dir = FHEGPT_SOURCE_DIR;
const fs::path corpus_dir = source_dir / "tests/data/tokenizer/corpus";

const Gpt2Tokenizer & gpt2() {
    static const Gpt2Tokenizer tok =
        Gpt2Tokenizer::load((source_dir / "models/gpt2-tokenizer").string());
    return tok;
}

std::string read_file(const fs::path & path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in) << path;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<int32_t> read_ids(const fs::path & path) {
    std::istringstream in(read_file(path));
    std::vector<int32_t> ids;
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

struct CorpusFile {
    std::string name;
    std::string text;
    std::vector<int32_t> ordinary_ids; // tiktoken encode_ordinary
    std::vector<int32_t> special_ids;  // tiktoken encode(text, "all")
};

const std::vector<CorpusFile> & corpus() {
    static const std::vector<CorpusFile> files = [] {
        std::vector<CorpusFile> out;
        for (const auto & entry : fs::directory_iterator(corpus_dir)) {
            const fs::path & p = entry.path();
            if (p.extension() != ".txt") continue;
            fs::path base = p;
            base.replace_extension();
            CorpusFile f;
            f.name = p.filename().string();
            f.text = read_file(p);
            f.ordinary_ids = read_ids(base.string() + ".ids");
            const fs::path special = base.string() + ".special.ids";
            f.special_ids = fs::exists(special) ? read_ids(special) : f.ordinary_ids;
            out.push_back(std::move(f));
        }
        std::sort(out.begin(), out.end(),
                  [](const CorpusFile & a, const CorpusFile & b) { return a.name < b.name; });
        return out;
    }();
    return files;
}

// Index of the first difference, for a readable failure instead of two 10k-element dumps.
size_t first_difference(const std::vector<int32_t> & a, const std::vector<int32_t> & b) {
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return i;
}

void expect_error(const std::function<void()> & f, const std::string & fragment) {
    try {
        f();
        ADD_FAILURE() << "no fhegpt::Error thrown; expected one mentioning '" << fragment << "'";
    } catch (const fhegpt::Error & e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

} // namespace

TEST(Gpt2Tokenizer, Gpt2VocabularyShape) {
    EXPECT_EQ(gpt2().vocab_size(), 50257);
    EXPECT_EQ(gpt2().eot_token(), 50256);
    EXPECT_EQ(gpt2().token_bytes(50256), "<|endoftext|>");
    EXPECT_EQ(gpt2().token_bytes(220), " ");
    EXPECT_EQ(gpt2().token_bytes(198), "\n");
    EXPECT_EQ(gpt2().token_bytes(15496), "Hello");
}

// Checked by hand against tiktoken's gpt2 encoding.
TEST(Gpt2Tokenizer, HandCheckedExamples) {
    using Ids = std::vector<int32_t>;
    const Gpt2Tokenizer & t = gpt2();
    EXPECT_EQ(t.encode("Hello world"), (Ids{15496, 995}));
    EXPECT_EQ(t.encode("Hello, world!"), (Ids{15496, 11, 995, 0}));
    EXPECT_EQ(t.encode(" Hello"), (Ids{18435}));
    EXPECT_EQ(t.encode("don't stop"), (Ids{9099, 470, 2245}));
    EXPECT_EQ(t.encode("I'm HERE'S"), (Ids{40, 1101, 15698, 6, 50})); // 'S is no contraction
    EXPECT_EQ(t.encode("  a"), (Ids{220, 257}));   // the last space joins the word
    EXPECT_EQ(t.encode("\n\n"), (Ids{628}));
    EXPECT_EQ(t.encode("\xF0\x9F\x98\x80"), (Ids{47249, 222})); // U+1F600 grinning face
    EXPECT_EQ(t.encode("12345678"), (Ids{10163, 2231, 30924}));
    EXPECT_EQ(t.encode("na\xC3\xAFve caf\xC3\xA9"), (Ids{2616, 38776, 40304}));
    EXPECT_EQ(t.encode(""), Ids{});
    EXPECT_EQ(t.decode(Ids{}), "");
}

TEST(Gpt2Tokenizer, SpecialToken) {
    using Ids = std::vector<int32_t>;
    const Gpt2Tokenizer & t = gpt2();
    EXPECT_EQ(t.encode("<|endoftext|>"), (Ids{50256}));
    EXPECT_EQ(t.encode_ordinary("<|endoftext|>"), (Ids{27, 91, 437, 1659, 5239, 91, 29}));
    EXPECT_EQ(t.encode("<|endoftext|>x <|endoftext|>"), (Ids{50256, 87, 220, 50256}));
    EXPECT_EQ(t.encode("a<|endoftext|><|endoftext|>b"), (Ids{64, 50256, 50256, 65}));
    EXPECT_EQ(t.encode("<|endoftext|"), t.encode_ordinary("<|endoftext|"));
    EXPECT_EQ(t.decode(Ids{64, 50256, 65}), "a<|endoftext|>b");
}

TEST(Gpt2Tokenizer, CorpusMatchesTiktoken) {
    size_t total_bytes = 0;
    for (const CorpusFile & f : corpus()) {
        SCOPED_TRACE(f.name);
        total_bytes += f.text.size();
        const std::vector<int32_t> ordinary = gpt2().encode_ordinary(f.text);
        const size_t at = first_difference(ordinary, f.ordinary_ids);
        EXPECT_TRUE(ordinary == f.ordinary_ids)
            << "encode_ordinary differs from tiktoken at token " << at << " of "
            << f.ordinary_ids.size() << " (got " << ordinary.size() << " tokens)";
        const std::vector<int32_t> with_special = gpt2().encode(f.text);
        EXPECT_TRUE(with_special == f.special_ids)
            << "encode differs from tiktoken at token "
            << first_difference(with_special, f.special_ids);
        EXPECT_TRUE(gpt2().decode(ordinary) == f.text);
        EXPECT_TRUE(gpt2().decode(with_special) == f.text);
    }
    // The corpus must really be there: a missing folder would otherwise pass silently.
    EXPECT_GE(corpus().size(), 12u);
    EXPECT_GE(total_bytes, 100u * 1000u);
}

TEST(Gpt2Tokenizer, TokenBytesStreamBackToText) {
    for (const CorpusFile & f : corpus()) {
        std::string streamed;
        for (int32_t id : f.special_ids) streamed += gpt2().token_bytes(id);
        EXPECT_TRUE(streamed == f.text) << f.name;
    }
}

// Invalid UTF-8 matches no part of the regex; each run of it is a piece of its own.
TEST(Gpt2Tokenizer, InvalidUtf8IsItsOwnPiece) {
    const Gpt2Tokenizer & t = gpt2();
    auto concat = [](std::initializer_list<std::vector<int32_t>> parts) {
        std::vector<int32_t> out;
        for (const auto & p : parts) out.insert(out.end(), p.begin(), p.end());
        return out;
    };
    EXPECT_EQ(t.encode("abc\xFF" "def"),
              concat({t.encode("abc"), t.encode("\xFF"), t.encode("def")}));
    EXPECT_EQ(t.encode("\xE4\xBD" " x"), concat({t.encode("\xE4\xBD"), t.encode(" x")}));
    EXPECT_EQ(t.encode("\xC0\x80\xED\xA0\x80"), t.encode_ordinary("\xC0\x80\xED\xA0\x80"));
    for (std::string s : {"\xFF", "\x80", "\xC3", "\xE4\xBD", "\xF0\x9F\x98", "\xC0\xAF",
                          "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80"}) {
        EXPECT_EQ(t.decode(t.encode(s)), s);
        EXPECT_EQ(t.decode(t.encode(" " + s + "a")), " " + s + "a");
    }
}

// Random byte strings, most of them invalid UTF-8, must come back unchanged.
TEST(Gpt2Tokenizer, RandomBytesRoundTrip) {
    const Gpt2Tokenizer & t = gpt2();
    std::mt19937_64 rng(20240229);
    const std::vector<std::string> fragments = {
        "<|endoftext|>", "<|endof", "text|>", " ", "  ", "\n", "\r\n", "\t", "'s", "'", "a",
        "Hello", "123", "!", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xE2\x80\x8D",
        "\xC2\xA0", "\xE3\x80\x80", "\xCC\x81", "\xE1\xA0\x8E", "\xF0\xB1\x8D\x90"};
    auto random_string = [&](int mode) {
        std::string s;
        const size_t n = rng() % 200;
        for (size_t i = 0; i < n; ++i) {
            if (mode == 0) {
                s += char(rng() & 0xFF); // uniform bytes
            } else if (mode == 1) {
                s += char(0x80 + rng() % 0x80); // only non-ASCII bytes
            } else {
                s += fragments[rng() % fragments.size()]; // valid pieces with stray bytes
                if (rng() % 8 == 0) s += char(0x80 + rng() % 0x80);
            }
        }
        return s;
    };
    for (int i = 0; i < 6000; ++i) {
        const std::string s = random_string(i % 3);
        const std::vector<int32_t> ids = t.encode(s);
        for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size());
        ASSERT_EQ(t.decode(ids), s) << "case " << i;
        ASSERT_EQ(t.decode(t.encode_ordinary(s)), s) << "case " << i;
    }
}

// Long pieces take the heap path of BPE; none may be slow or blow a stack.
TEST(Gpt2Tokenizer, HugePiecesRoundTrip) {
    const Gpt2Tokenizer & t = gpt2();
    for (const std::string unit :
         {" ", "a", "ab", "\n", "\xFF", "\xE4\xB8\xAD", "=", "7", "\xCC\x81"}) {
        std::string s;
        while (s.size() < (1u << 20)) s += unit;
        const auto start = std::chrono::steady_clock::now();
        const std::vector<int32_t> ids = t.encode(s);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        EXPECT_TRUE(t.decode(ids) == s) << "unit '" << unit << "'";
        EXPECT_LT(seconds, 60.0) << "unit '" << unit << "'";
    }
}

TEST(Gpt2Tokenizer, OutOfRangeIdsThrow) {
    const Gpt2Tokenizer & t = gpt2();
    expect_error([&] { t.decode(std::vector<int32_t>{15496, 50257}); },
                 "token id 50257 out of range");
    expect_error([&] { t.decode(std::vector<int32_t>{-1}); }, "token id -1 out of range");
    expect_error([&] { t.token_bytes(1 << 30); }, "out of range");
}

TEST(Gpt2Tokenizer, ConcurrentEncodeAgrees) {
    std::vector<std::thread> threads;
    std::vector<int> mismatches(8, 0);
    for (size_t k = 0; k < mismatches.size(); ++k) {
        threads.emplace_back([k, &mismatches] {
            for (const CorpusFile & f : corpus()) {
                if (gpt2().encode(f.text) != f.special_ids) ++mismatches[k];
            }
        });
    }
    for (auto & th : threads) th.join();
    for (int m : mismatches) EXPECT_EQ(m, 0);
}

// Prints the encoding speed; the bound is loose so that slow CI machines pass.
TEST(Gpt2Tokenizer, EncodeSpeed) {
    size_t bytes = 0;
    size_t tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < 5; ++round) {
        for (const CorpusFile & f : corpus()) {
            bytes += f.text.size();
            tokens += gpt2().encode(f.text).size();
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double mb_per_s = double(bytes) / 1e6 / seconds;
    std::printf("encode: %.1f MB/s, %.2f M tokens/s (%zu bytes in %.3f s)\n", mb_per_s,
                double(tokens) / 1e6 / seconds, bytes, seconds);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
    EXPECT_GE(mb_per_s, 1.0);
#endif
}
