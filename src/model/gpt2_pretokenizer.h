// GPT-2's pre-tokenization: cuts text into the pieces that BPE merges within, with the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// run by PCRE2 (UTF mode, JIT-compiled once per process), as tiktoken runs it in Rust.
//
// Classes are made to agree with tiktoken's on every code point (checked for all of them by
// tools/tokenizer-reference/check_unicode_classes.js): \s is spelled out as Unicode's
// White_Space property, since PCRE2's own \s also takes U+180E, and \p{L} / \p{N} are extended
// with the letters and numbers of Unicode 15-16, which PCRE2 10.42 (Unicode 14) lacks.
//
// Bytes that are not valid UTF-8 are never matched (PCRE2_MATCH_INVALID_UTF): each maximal run
// of them is returned as one piece.
#pragma once

#include <cstddef>
#include <string_view>

namespace fhegpt::model {

// Iterates over the pieces of a text; the pieces, in order, concatenate to the text.
// One splitter per thread (it owns its match buffer); the compiled regex is shared.
class Gpt2PieceSplitter {
public:
    explicit Gpt2PieceSplitter(std::string_view text);
    ~Gpt2PieceSplitter();
    Gpt2PieceSplitter(const Gpt2PieceSplitter &) = delete;
    Gpt2PieceSplitter & operator=(const Gpt2PieceSplitter &) = delete;

    // The next piece (never empty), or false at the end of the text.
    bool next(std::string_view & piece);

private:
    std::string_view text_;
    size_t pos_ = 0;         // everything before pos_ has been returned
    size_t match_begin_ = 0; // a match found past pos_, returned after the gap before it
    size_t match_end_ = 0;
    void * match_data_;      // pcre2_match_data_8 *
};

} // namespace fhegpt::model
