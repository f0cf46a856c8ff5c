// Loading vocab.json + merges.txt files other than GPT-2's: a small project-style vocabulary
// must load and merge exactly like OpenAI's reference BPE, and every kind of malformed file must
// be refused with an error that names the file.
#include "common/error.h"
#include "model/byte_unicode.h"
#include "model/gpt2_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using fhegpt::model::bytes_to_token_text;
using fhegpt::model::Gpt2Tokenizer;

namespace {

// A byte-level BPE vocabulary built in memory: the 256 bytes, "<|endoftext|>", then one token
// per merge, in merge order (as a tokenizer trainer writes them).
struct ToyVocab {
    std::vector<std::string> tokens; // raw bytes; index = id
    std::vector<std::pair<std::string, std::string>> merges;

    ToyVocab() {
        for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
        tokens.emplace_back("<|endoftext|>");
    }
    void add_merge(const std::string & left, const std::string & right) {
        merges.emplace_back(left, right);
        tokens.push_back(left + right);
    }
    int32_t id(const std::string & bytes) const {
        auto it = std::find(tokens.begin(), tokens.end(), bytes);
        return it == tokens.end() ? -1 : int32_t(it - tokens.begin());
    }
    static std::string json_key(const std::string & bytes) {
        std::string text = bytes == "<|endoftext|>" ? bytes : bytes_to_token_text(bytes);
        std::string out = "\"";
        for (char c : text) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + "\"";
    }
    std::string vocab_json() const {
        std::string out = "{";
        for (size_t i = 0; i < tokens.size(); ++i) {
            out += (i ? ", " : "") + json_key(tokens[i]) + ": " + std::to_string(i);
        }
        return out + "}\n";
    }
    std::string merges_txt() const {
        std::string out = "#version: 0.2\n";
        for (const auto & [l, r] : merges) {
            out += bytes_to_token_text(l) + " " + bytes_to_token_text(r) + "\n";
        }
        return out;
    }
};

// OpenAI's original bpe() from GPT-2's encoder.py, restated: each round merges every occurrence
// of the lowest-ranked pair, left to right. An independent check of the tokenizer's heap.
using Ranks = std::map<std::pair<std::string, std::string>, int>;

std::vector<std::string> reference_bpe(const std::string & piece, const Ranks & ranks) {
    std::vector<std::string> word;
    for (char c : piece) word.emplace_back(1, c);
    while (word.size() > 1) {
        int best = std::numeric_limits<int>::max();
        std::pair<std::string, std::string> bigram;
        for (size_t i = 0; i + 1 < word.size(); ++i) {
            auto it = ranks.find({word[i], word[i + 1]});
            if (it != ranks.end() && it->second < best) best = it->second, bigram = it->first;
        }
        if (best == std::numeric_limits<int>::max()) break;
        std::vector<std::string> merged;
        for (size_t i = 0; i < word.size();) {
            if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
                merged.push_back(word[i] + word[i + 1]);
                i += 2;
            } else {
                merged.push_back(word[i++]);
            }
        }
        word = std::move(merged);
    }
    return word;
}

class Gpt2TokenizerLoad : public ::testing::Test {
protected:
    void SetUp() override {
        const auto * info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() /
               ("fhegpt-tokenizer-" + std::to_string(::getpid()) + "-" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string & name, const std::string & content) {
        std::ofstream(dir_ / name, std::ios::binary) << content;
    }
    void write_toy(const ToyVocab & v) {
        write("vocab.json", v.vocab_json());
        write("merges.txt", v.merges_txt());
    }
    Gpt2Tokenizer load() const { return Gpt2Tokenizer::load(dir_.string()); }

    // Loading must fail with a message naming the file and containing fragment.
    void expect_load_error(const std::string & file, const std::string & fragment) {
        try {
            load();
            ADD_FAILURE() << "loaded; expected an error mentioning '" << fragment << "'";
        } catch (const fhegpt::Error & e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find((dir_ / file).string()), std::string::npos) << msg;
            EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
        }
    }

    fs::path dir_;
};

ToyVocab hello_vocab() {
    ToyVocab v;
    v.add_merge("h", "e");
    v.add_merge("l", "l");
    v.add_merge("he", "ll");
    v.add_merge("hell", "o");
    v.add_merge(" ", "w");
    return v;
}

} // namespace

TEST_F(Gpt2TokenizerLoad, ToyVocabularyLoadsAndMerges) {
    const ToyVocab v = hello_vocab();
    write_toy(v);
    const Gpt2Tokenizer t = load();
    EXPECT_EQ(t.vocab_size(), 262);
    EXPECT_EQ(t.eot_token(), 256);
    using Ids = std::vector<int32_t>;
    EXPECT_EQ(t.encode("hello"), (Ids{v.id("hello")}));
    EXPECT_EQ(t.encode("hello world<|endoftext|>"),
              (Ids{v.id("hello"), v.id(" w"), 'o', 'r', 'l', 'd', 256}));
    EXPECT_EQ(t.encode("hhelll"), (Ids{'h', v.id("hell"), 'l'}));
    EXPECT_EQ(t.decode(t.encode("hello \xFF")), "hello \xFF");
    EXPECT_EQ(t.token_bytes(v.id("hell")), "hell");
}

TEST_F(Gpt2TokenizerLoad, AcceptsCrlfAndNoVersionLine) {
    const ToyVocab v = hello_vocab();
    write("vocab.json", v.vocab_json());
    std::string merges;
    for (const auto & [l, r] : v.merges) {
        merges += bytes_to_token_text(l) + " " + bytes_to_token_text(r) + "\r\n";
    }
    write("merges.txt", merges);
    EXPECT_EQ(load().encode("hello"), std::vector<int32_t>{v.id("hello")});
}

// Random merges over a small alphabet make long chains of competing merges; the tokenizer
// (scan for short pieces, heap for long ones) must agree with the reference on every string.
TEST_F(Gpt2TokenizerLoad, BpeMatchesReferenceAlgorithm) {
    std::mt19937 rng(7);
    ToyVocab v;
    std::vector<std::string> known = {"a", "b", "c"};
    Ranks ranks;
    while (v.merges.size() < 120) {
        const std::string l = known[rng() % known.size()];
        const std::string r = known[rng() % known.size()];
        if (l.size() + r.size() > 8 || v.id(l + r) >= 0) continue;
        ranks[{l, r}] = int(v.merges.size());
        v.add_merge(l, r);
        known.push_back(l + r);
    }
    write_toy(v);
    const Gpt2Tokenizer t = load();
    for (int i = 0; i < 3000; ++i) {
        std::string s;
        const size_t n = 1 + rng() % (i % 10 == 0 ? 400 : 40);
        for (size_t k = 0; k < n; ++k) s += char('a' + rng() % 3);
        std::vector<int32_t> expected;
        for (const std::string & token : reference_bpe(s, ranks)) expected.push_back(v.id(token));
        ASSERT_EQ(t.encode(s), expected) << s;
    }
}

TEST_F(Gpt2TokenizerLoad, MissingFiles) {
    expect_load_error("vocab.json", "cannot open");
    write_toy(hello_vocab());
    fs::remove(dir_ / "merges.txt");
    expect_load_error("merges.txt", "cannot open");
}

TEST_F(Gpt2TokenizerLoad, BadJson) {
    write_toy(hello_vocab());
    write("vocab.json", "{\"a\": 0,");
    expect_load_error("vocab.json", "invalid JSON");
    write("vocab.json", "");
    expect_load_error("vocab.json", "invalid JSON");
    write("vocab.json", "[1, 2]");
    expect_load_error("vocab.json", "expected a JSON object");
    write("vocab.json", "{}");
    expect_load_error("vocab.json", "empty vocabulary");
    write("vocab.json", "{\"a\": \"0\"}");
    expect_load_error("vocab.json", "value of token 'a' is not an integer id");
    write("vocab.json", "{\"a\": 0.5}");
    expect_load_error("vocab.json", "not an integer id");
    write("vocab.json", "{\"a\": {\"b\": 1}}");
    expect_load_error("vocab.json", "not an integer id");
    write("vocab.json", "{\"a\": -3}");
    expect_load_error("vocab.json", "id -3 out of range");
    write("vocab.json", "{\"a\": 99999999999}");
    expect_load_error("vocab.json", "out of range");
}

TEST_F(Gpt2TokenizerLoad, BadIds) {
    write_toy(hello_vocab());
    std::string json = hello_vocab().vocab_json();
    write("vocab.json", json.substr(0, json.size() - 2) + ", \"zz\": 3}");
    expect_load_error("vocab.json", "duplicate id 3 for tokens");
    write("vocab.json", json.substr(0, json.size() - 2) + ", \"zz\": 900}");
    expect_load_error("vocab.json", "has id 900 but there are only 263 tokens");
    write("vocab.json", json.substr(0, json.size() - 2) + ", \"hell\": 262}");
    expect_load_error("vocab.json", "duplicate token 'hell'");
}

TEST_F(Gpt2TokenizerLoad, NotByteLevel) {
    ToyVocab v = hello_vocab();
    v.tokens[10] = "\xC4\x80\xC4\x80"; // the newline token replaced: byte 0x0A has none
    write_toy(v);
    expect_load_error("vocab.json", "no token for byte 0x0A");
    v = hello_vocab();
    v.tokens[256] = "<|end|>";
    write_toy(v);
    expect_load_error("vocab.json", "no '<|endoftext|>' token");
}

TEST_F(Gpt2TokenizerLoad, BadMergeLines) {
    write("vocab.json", hello_vocab().vocab_json());
    write("merges.txt", "#version: 0.2\nh e\nll\n");
    expect_load_error("merges.txt",
                      "merges.txt:3: expected two tokens separated by one space, got 'll'");
    write("merges.txt", "h e l\n");
    expect_load_error("merges.txt", "merges.txt:1: expected two tokens");
    write("merges.txt", " h\n");
    expect_load_error("merges.txt", ":1: expected two tokens");
    write("merges.txt", "h \n");
    expect_load_error("merges.txt", ":1: expected two tokens");
    write("merges.txt", "h e\n#version: 0.2\n"); // only a first line may be the header
    expect_load_error("merges.txt", ":2: merge '#version: 0.2' needs token '#version:'");
}

TEST_F(Gpt2TokenizerLoad, MergesOfUnknownTokens) {
    write("vocab.json", hello_vocab().vocab_json());
    write("merges.txt", "h e\nq x\n");
    expect_load_error("merges.txt", "merges.txt:2: merge 'q x' needs token 'qx', which is not in");
    write("merges.txt", "h e\nhe xyz\n");
    expect_load_error("merges.txt", "needs token 'xyz'");
    write("merges.txt", "h e\nh e\n");
    expect_load_error("merges.txt", "merges.txt:2: merge 'h e' repeats line 1");
}
