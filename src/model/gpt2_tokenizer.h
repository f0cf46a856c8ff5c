// GPT-2's byte-level BPE tokenizer, token for token identical to OpenAI's (tiktoken "gpt2",
// Hugging Face GPT2Tokenizer). Loads any vocabulary in the same two-file format: vocab.json
// (byte-level token text -> id) and merges.txt (one "left right" pair per line, by rank).
//
// Encoding: the text is cut into pieces by GPT-2's pre-tokenization regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and each piece's bytes are merged by BPE, lowest merge rank first (leftmost on ties).
//
// Any bytes, not only UTF-8, round-trip: decode(encode(b)) == b. Bytes that are not valid UTF-8
// match no part of the regex; each maximal run of them between two matches becomes a piece of
// its own and is merged by BPE like any other piece (OpenAI's tokenizers take only valid text,
// so there is no reference behaviour to follow there).
//
// Immutable after load: encode/decode may be called from several threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::model {

class Gpt2Tokenizer {
public:
    // Reads dir/vocab.json and dir/merges.txt. Throws fhegpt::Error naming the file on any
    // defect: missing file, bad JSON, ids not exactly 0..N-1, duplicate ids, a byte token or
    // "<|endoftext|>" missing, a malformed or duplicate merge line, a merge of unknown tokens.
    static Gpt2Tokenizer load(const std::string & dir);
    // Same, with the two paths given separately.
    static Gpt2Tokenizer load(const std::string & vocab_path, const std::string & merges_path);

    // Text to ids; each literal "<|endoftext|>" becomes eot_token() (as Hugging Face's
    // GPT2Tokenizer and tiktoken's encode(text, allowed_special="all") do). Never fails, short of
    // a single regex piece of 2 GiB or more (fhegpt::Error).
    std::vector<int32_t> encode(std::string_view text) const;
    // Text to ids with no special tokens: "<|endoftext|>" is ordinary text (tiktoken's
    // encode_ordinary).
    std::vector<int32_t> encode_ordinary(std::string_view text) const;

    // The bytes of the ids, concatenated. Throws fhegpt::Error on an id outside [0, vocab_size).
    std::string decode(std::span<const int32_t> ids) const;
    // The raw bytes of one token (may be part of a UTF-8 character): for streaming output.
    // Throws fhegpt::Error on an id outside [0, vocab_size).
    const std::string & token_bytes(int32_t id) const;

    int32_t eot_token() const { return eot_token_; }
    int32_t vocab_size() const { return int32_t(token_bytes_.size()); }

private:
    // What merging the pair (left id, right id) gives, and when (lower rank merges first).
    struct Merge {
        int32_t rank;
        int32_t id;
    };
    // Open-addressing hash table slot: std::unordered_map's node per entry made lookups, the
    // inner loop of BPE, several times slower.
    struct MergeSlot {
        uint64_t key; // (left << 32) | right; empty_key if free
        Merge merge;
    };
    static constexpr uint64_t empty_key = ~uint64_t(0);
    static uint64_t pair_key(int32_t left, int32_t right) {
        return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    }
    static size_t slot_of(uint64_t key, uint64_t mask) {
        return size_t(((key * 0x9E3779B97F4A7C15ull) >> 32) & mask); // Fibonacci hashing
    }

    struct BpeScratch; // working memory of one encode call

    Gpt2Tokenizer() = default;
    const Merge * find_merge(int32_t left, int32_t right) const;
    void append_ordinary(std::string_view text, std::vector<int32_t> & out) const;
    void append_piece(std::string_view piece, BpeScratch & scratch,
                      std::vector<int32_t> & out) const;
    void merge_short(BpeScratch & scratch) const;
    void merge_long(BpeScratch & scratch) const;

    std::vector<std::string> token_bytes_;            // [vocab_size] raw bytes by id
    std::vector<MergeSlot> merge_slots_; // pair_key(left, right) -> merge; size a power of 2
    int32_t byte_token_[256] = {};                    // id of each single-byte token
    int32_t eot_token_ = -1;
};

} // namespace fhegpt::model
