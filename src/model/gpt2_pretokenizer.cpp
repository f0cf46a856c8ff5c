#include "model/gpt2_pretokenizer.h"

#include "common/check.h"
#include "common/error.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

namespace fhegpt::model {

namespace {

// Unicode's White_Space property, the \s of tiktoken (Rust regex). PCRE2's \s in UCP mode also
// takes U+180E MONGOLIAN VOWEL SEPARATOR, which Unicode stopped counting as a space in 6.3.
constexpr std::string_view white_space =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Letters and numbers new in Unicode 15.0 and 16.0. tiktoken 1.0.22 classifies by Unicode 16,
// Debian's PCRE2 10.42 by Unicode 14, to which these are unassigned (so "other"). Adding them
// to \p{L} and \p{N} changes nothing with a newer PCRE2. Found, and to be re-checked after
// an upgrade of either library, by tools/tokenizer-reference/check_unicode_classes.js.
constexpr std::string_view new_letters =
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}"
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}"
    "\\x{1123F}-\\x{11240}\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}"
    "\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}\\x{113D3}\\x{11BC0}-\\x{11BE0}"
    "\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}\\x{1342F}"
    "\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}"
    "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}"
    "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}"
    "\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}";
constexpr std::string_view new_numbers =
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}"
    "\\x{11F50}-\\x{11F59}\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}"
    "\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}"
    "\\x{1E5F1}-\\x{1E5FA}";

std::string make_pattern() {
    const std::string ws(white_space);
    const std::string letter = "\\p{L}" + std::string(new_letters);
    const std::string number = "\\p{N}" + std::string(new_numbers);
    std::string p;
    p += "'s|'t|'re|'ve|'m|'ll|'d";
    p += "| ?[" + letter + "]+";
    p += "| ?[" + number + "]+";
    p += "| ?[^" + ws + letter + number + "]+";
    p += "|[" + ws + "]+(?![^" + ws + "])";  // \s+(?!\S): a space run leaves its last
    p += "|[" + ws + "]+";                     // space to the word that follows
    return p;
}

// The regex, compiled (and JIT-compiled where the library supports it) on first use. A
// pcre2_code is read-only during matching, so all threads share this one.
class CompiledPattern {
public:
    CompiledPattern() {
        const std::string pattern = make_pattern();
        int error = 0;
        PCRE2_SIZE offset = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error,
                              &offset, nullptr);
        FHEGPT_CHECK(code_ != nullptr, "pcre2_compile error %d at offset %zu", error,
                     size_t(offset));
        // Without JIT (a library built without it) pcre2_match interprets: slower, same result.
        pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
    }
    ~CompiledPattern() { pcre2_code_free(code_); }
    CompiledPattern(const CompiledPattern &) = delete;
    CompiledPattern & operator=(const CompiledPattern &) = delete;

    const pcre2_code * get() const { return code_; }

private:
    pcre2_code * code_;
};

const pcre2_code * gpt2_pattern() {
    static const CompiledPattern pattern;
    return pattern.get();
}

std::string pcre2_message(int code) {
    PCRE2_UCHAR buffer[256];
    if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return "unknown error";
    return std::string(reinterpret_cast<const char *>(buffer));
}

} // namespace

Gpt2PieceSplitter::Gpt2PieceSplitter(std::string_view text)
    : text_(text), match_data_(pcre2_match_data_create_from_pattern(gpt2_pattern(), nullptr)) {
    FHEGPT_CHECK(match_data_ != nullptr, "out of memory for a pcre2 match block");
}

Gpt2PieceSplitter::~Gpt2PieceSplitter() {
    pcre2_match_data_free(static_cast<pcre2_match_data *>(match_data_));
}

bool Gpt2PieceSplitter::next(std::string_view & piece) {
    if (pos_ >= text_.size()) return false;
    if (match_end_ <= pos_) {
        auto * md = static_cast<pcre2_match_data *>(match_data_);
        auto subject = reinterpret_cast<PCRE2_SPTR>(text_.data());
        int rc = pcre2_match(gpt2_pattern(), subject, text_.size(), pos_, 0, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            // The interpreter keeps its backtracking state on the heap, not on a fixed stack.
            rc = pcre2_match(gpt2_pattern(), subject, text_.size(), pos_, PCRE2_NO_JIT, md,
                             nullptr);
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
            match_begin_ = match_end_ = text_.size(); // the rest is invalid UTF-8
        } else if (rc < 0) {
            fail("GPT-2 pre-tokenizer: matching failed at byte {}: {}", pos_, pcre2_message(rc));
        } else {
            const PCRE2_SIZE * ovector = pcre2_get_ovector_pointer(md);
            match_begin_ = ovector[0];
            match_end_ = ovector[1];
            // Every alternative consumes at least one character, and matching starts at pos_.
            FHEGPT_CHECK(pos_ <= match_begin_ && match_begin_ < match_end_ &&
                             match_end_ <= text_.size(),
                         "bad match [%zu, %zu) from %zu", match_begin_, match_end_, pos_);
        }
    }
    // Bytes no match covers (invalid UTF-8) come out as one piece before the match.
    size_t end = pos_ < match_begin_ ? match_begin_ : match_end_;
    piece = text_.substr(pos_, end - pos_);
    pos_ = end;
    return true;
}

} // namespace fhegpt::model
