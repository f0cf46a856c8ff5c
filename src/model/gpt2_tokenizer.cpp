#include "model/gpt2_tokenizer.h"

#include "common/check.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "model/byte_unicode.h"
#include "model/gpt2_pretokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <utility>

namespace fhegpt::model {

namespace {

constexpr std::string_view eot_text = "<|endoftext|>";

// Pieces up to this many bytes are merged by rescanning all pairs (fast for words); longer
// ones (a run of spaces, a line of CJK) by a heap, so that no input costs quadratic time.
constexpr size_t short_piece_bytes = 32;

constexpr int32_t no_rank = INT32_MAX;

// At most this much of a bad line is quoted in an error message.
constexpr size_t quoted_line_bytes = 80;

std::string_view as_text(const MappedFile & file) {
    return {reinterpret_cast<const char *>(file.bytes().data()), file.size()};
}

// Reads vocab.json, an object {"token text": id, ...}, keeping each key with its id. A SAX
// handler rather than a DOM so that duplicate keys and non-integer ids are reported, not
// silently resolved.
class VocabReader : public nlohmann::json_sax<nlohmann::json> {
public:
    explicit VocabReader(const std::string & path) : path_(path) {}

    std::vector<std::pair<std::string, int64_t>> entries;

    bool start_object(std::size_t) override {
        if (depth_ != 0) not_an_id();
        depth_ = 1;
        return true;
    }
    bool end_object() override {
        depth_ = 0;
        return true;
    }
    bool key(string_t & k) override {
        key_ = k;
        return true;
    }
    bool number_integer(number_integer_t v) override { return add(v); }
    bool number_unsigned(number_unsigned_t v) override {
        return add(v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v));
    }
    bool number_float(number_float_t, const string_t &) override { return not_an_id(); }
    bool null() override { return not_an_id(); }
    bool boolean(bool) override { return not_an_id(); }
    bool string(string_t &) override { return not_an_id(); }
    bool binary(binary_t &) override { return not_an_id(); }
    bool start_array(std::size_t) override { return not_an_id(); }
    bool end_array() override { return not_an_id(); }
    bool parse_error(std::size_t, const std::string &,
                     const nlohmann::detail::exception & ex) override {
        fail("{}: invalid JSON: {}", path_, ex.what());
    }

private:
    bool add(int64_t id) {
        if (depth_ != 1) not_an_id();
        if (id < 0 || id >= INT32_MAX) {
            fail("{}: token '{}' has id {} out of range", path_, key_, id);
        }
        entries.emplace_back(std::move(key_), id);
        return true;
    }
    [[noreturn]] bool not_an_id() {
        if (depth_ == 0) fail("{}: expected a JSON object mapping token text to integer id", path_);
        fail("{}: value of token '{}' is not an integer id", path_, key_);
    }

    const std::string & path_;
    int depth_ = 0;
    std::string key_;
};

std::string quote_line(std::string_view line) {
    if (line.size() <= quoted_line_bytes) return std::string(line);
    return std::string(line.substr(0, quoted_line_bytes)) + "...";
}

// Reads vocab.json: returns each token's raw bytes by id and fills id_of_text (the token's
// text as written in the file -> id). Ids must be exactly 0..N-1, each once: N is the model's
// vocabulary size, and a gap would leave an id that decodes to nothing.
std::vector<std::string> read_vocab(const std::string & path,
                                    std::unordered_map<std::string, int32_t> & id_of_text) {
    const MappedFile file(path);
    VocabReader reader(path);
    nlohmann::json::sax_parse(as_text(file), &reader);
    if (reader.entries.empty()) fail("{}: empty vocabulary", path);
    const size_t n = reader.entries.size();
    std::vector<const std::string *> text_of_id(n, nullptr);
    id_of_text.reserve(n);
    for (const auto & [text, id] : reader.entries) {
        if (size_t(id) >= n) {
            fail("{}: token '{}' has id {} but there are only {} tokens (ids must be 0..{})",
                 path, text, id, n, n - 1);
        }
        if (!id_of_text.emplace(text, int32_t(id)).second) {
            fail("{}: duplicate token '{}'", path, text);
        }
        if (text_of_id[id] != nullptr) {
            fail("{}: duplicate id {} for tokens '{}' and '{}'", path, id, *text_of_id[id], text);
        }
        text_of_id[id] = &text;
    }
    std::vector<std::string> token_bytes(n);
    for (size_t id = 0; id < n; ++id) {
        std::optional<std::string> bytes = token_text_to_bytes(*text_of_id[id]);
        if (!bytes) fail("{}: token {} is not valid UTF-8", path, id);
        if (bytes->empty()) fail("{}: token {} is empty", path, id);
        token_bytes[id] = std::move(*bytes);
    }
    return token_bytes;
}

struct MergeLine {
    int32_t left;
    int32_t right;
    int32_t merged; // id of the concatenation
    int line;       // 1-based, for messages
    std::string text;
};

// Reads merges.txt: "left right" per line, in rank order, after an optional "#version" first
// line. Both tokens and their concatenation must be in the vocabulary.
std::vector<MergeLine> read_merges(const std::string & path, const std::string & vocab_path,
                                   const std::unordered_map<std::string, int32_t> & id_of_text) {
    const MappedFile file(path);
    const std::string_view content = as_text(file);
    std::vector<MergeLine> merges;
    size_t begin = 0;
    for (int line_no = 1; begin < content.size(); ++line_no) {
        size_t end = content.find('\n', begin);
        if (end == std::string_view::npos) end = content.size();
        std::string_view line = content.substr(begin, end - begin);
        begin = end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;

        const size_t space = line.find(' ');
        if (space == 0 || space == std::string_view::npos || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string_view::npos) {
            fail("{}:{}: expected two tokens separated by one space, got '{}'", path, line_no,
                 quote_line(line));
        }
        const std::string left(line.substr(0, space));
        const std::string right(line.substr(space + 1));
        int32_t ids[3];
        int k = 0;
        for (const std::string & token : {left, right, left + right}) {
            auto it = id_of_text.find(token);
            if (it == id_of_text.end()) {
                fail("{}:{}: merge '{}' needs token '{}', which is not in {}", path, line_no,
                     line, token, vocab_path);
            }
            ids[k++] = it->second;
        }
        merges.push_back({ids[0], ids[1], ids[2], line_no, std::string(line)});
    }
    return merges;
}

} // namespace

struct Gpt2Tokenizer::BpeScratch {
    std::vector<int32_t> ids;     // the piece's symbols; in merge_long indexed by start byte
    std::vector<Merge> pairs;     // merge_short: what (ids[i], ids[i+1]) merges into
    std::vector<int32_t> next;    // merge_long: links between live symbols
    std::vector<int32_t> prev;
    struct Candidate {
        int32_t rank;
        int32_t pos; // start byte of the left symbol
        int32_t left;
        int32_t right;
        int32_t id;
        // Lowest rank first, then leftmost: the order of OpenAI's and Hugging Face's BPE.
        bool operator>(const Candidate & o) const {
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };
    std::vector<Candidate> heap;
};

Gpt2Tokenizer Gpt2Tokenizer::load(const std::string & dir) {
    const std::filesystem::path d(dir);
    return load((d / "vocab.json").string(), (d / "merges.txt").string());
}

Gpt2Tokenizer Gpt2Tokenizer::load(const std::string & vocab_path,
                                  const std::string & merges_path) {
    Gpt2Tokenizer tok;
    std::unordered_map<std::string, int32_t> id_of_text;
    tok.token_bytes_ = read_vocab(vocab_path, id_of_text);
    for (unsigned b = 0; b < 256; ++b) {
        std::string text;
        append_utf8(text, byte_to_unicode(uint8_t(b)));
        auto it = id_of_text.find(text);
        if (it == id_of_text.end()) {
            fail("{}: no token for byte 0x{:02X} ('{}'): not a byte-level BPE vocabulary",
                 vocab_path, b, text);
        }
        tok.byte_token_[b] = it->second;
    }
    auto eot = id_of_text.find(std::string(eot_text));
    if (eot == id_of_text.end()) fail("{}: no '{}' token", vocab_path, eot_text);
    tok.eot_token_ = eot->second;

    const std::vector<MergeLine> merges = read_merges(merges_path, vocab_path, id_of_text);
    // At most half full, so that probe sequences stay short. Rank = line order.
    size_t capacity = 16;
    while (capacity < 2 * merges.size()) capacity *= 2;
    tok.merge_slots_.assign(capacity, MergeSlot{empty_key, Merge{no_rank, -1}});
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const MergeLine & m = merges[rank];
        const uint64_t key = pair_key(m.left, m.right);
        size_t i = slot_of(key, capacity - 1);
        while (tok.merge_slots_[i].key != empty_key) {
            if (tok.merge_slots_[i].key == key) {
                fail("{}:{}: merge '{}' repeats line {}", merges_path, m.line, m.text,
                     merges[size_t(tok.merge_slots_[i].merge.rank)].line);
            }
            i = (i + 1) & (capacity - 1);
        }
        tok.merge_slots_[i] = MergeSlot{key, Merge{int32_t(rank), m.merged}};
    }
    return tok;
}

const Gpt2Tokenizer::Merge * Gpt2Tokenizer::find_merge(int32_t left, int32_t right) const {
    const uint64_t key = pair_key(left, right);
    const uint64_t mask = merge_slots_.size() - 1;
    for (size_t i = slot_of(key, mask);; i = (i + 1) & mask) {
        const MergeSlot & slot = merge_slots_[i];
        if (slot.key == key) return &slot.merge;
        if (slot.key == empty_key) return nullptr;
    }
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 1);
    size_t begin = 0;
    for (size_t at; (at = text.find(eot_text, begin)) != std::string_view::npos;
         begin = at + eot_text.size()) {
        append_ordinary(text.substr(begin, at - begin), out);
        out.push_back(eot_token_);
    }
    append_ordinary(text.substr(begin), out);
    return out;
}

std::vector<int32_t> Gpt2Tokenizer::encode_ordinary(std::string_view text) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 1);
    append_ordinary(text, out);
    return out;
}

void Gpt2Tokenizer::append_ordinary(std::string_view text, std::vector<int32_t> & out) const {
    BpeScratch scratch;
    Gpt2PieceSplitter splitter(text);
    std::string_view piece;
    while (splitter.next(piece)) append_piece(piece, scratch, out);
}

void Gpt2Tokenizer::append_piece(std::string_view piece, BpeScratch & scratch,
                                 std::vector<int32_t> & out) const {
    if (piece.size() == 1) {
        out.push_back(byte_token_[uint8_t(piece[0])]);
        return;
    }
    if (piece.size() >= size_t(INT32_MAX)) { // merge_long numbers bytes with int32_t
        fail("GPT-2 tokenizer: a single piece of {} bytes (2 GiB or more) is not supported",
             piece.size());
    }
    scratch.ids.clear();
    for (char c : piece) scratch.ids.push_back(byte_token_[uint8_t(c)]);
    if (piece.size() <= short_piece_bytes) {
        merge_short(scratch);
    } else {
        merge_long(scratch);
    }
    out.insert(out.end(), scratch.ids.begin(), scratch.ids.end());
}

// Merges the lowest-ranked adjacent pair (leftmost on ties) until no pair has a merge,
// rescanning the pairs each time: O(n^2), fine for n <= short_piece_bytes.
void Gpt2Tokenizer::merge_short(BpeScratch & scratch) const {
    std::vector<int32_t> & ids = scratch.ids;
    std::vector<Merge> & pairs = scratch.pairs;
    auto merge_of = [&](size_t i) {
        const Merge * m = find_merge(ids[i], ids[i + 1]);
        return m ? *m : Merge{no_rank, -1};
    };
    pairs.resize(ids.size() - 1);
    for (size_t i = 0; i < pairs.size(); ++i) pairs[i] = merge_of(i);
    while (!pairs.empty()) {
        size_t best = 0;
        for (size_t i = 1; i < pairs.size(); ++i) {
            if (pairs[i].rank < pairs[best].rank) best = i;
        }
        if (pairs[best].rank == no_rank) break;
        ids[best] = pairs[best].id;
        ids.erase(ids.begin() + ptrdiff_t(best) + 1);
        pairs.erase(pairs.begin() + ptrdiff_t(best));
        if (best > 0) pairs[best - 1] = merge_of(best - 1);
        if (best < pairs.size()) pairs[best] = merge_of(best);
    }
}

// The same merge order with a min-heap of candidate pairs over a linked list of symbols:
// O(n log n). A candidate is stale once either of its symbols has changed; since merging only
// lengthens a symbol, equal ids at the same start byte mean the very same symbol.
void Gpt2Tokenizer::merge_long(BpeScratch & scratch) const {
    using Candidate = BpeScratch::Candidate;
    std::vector<int32_t> & ids = scratch.ids;
    const int32_t n = int32_t(ids.size());
    scratch.next.resize(size_t(n));
    scratch.prev.resize(size_t(n));
    for (int32_t i = 0; i < n; ++i) {
        scratch.next[i] = i + 1; // n: no next symbol
        scratch.prev[i] = i - 1; // -1: no previous symbol
    }
    std::vector<Candidate> & heap = scratch.heap;
    heap.clear();
    auto push = [&](int32_t pos) {
        const int32_t right = scratch.next[pos];
        if (const Merge * m = find_merge(ids[pos], ids[right])) {
            heap.push_back({m->rank, pos, ids[pos], ids[right], m->id});
            std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
    };
    for (int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        const Candidate c = heap.back();
        heap.pop_back();
        const int32_t right = scratch.next[c.pos];
        if (ids[c.pos] != c.left || right == n || ids[right] != c.right) continue;
        ids[c.pos] = c.id;
        ids[right] = -1;
        scratch.next[c.pos] = scratch.next[right];
        if (scratch.next[right] != n) scratch.prev[scratch.next[right]] = c.pos;
        if (scratch.prev[c.pos] >= 0) push(scratch.prev[c.pos]);
        if (scratch.next[c.pos] != n) push(c.pos);
    }
    // The first symbol always survives (merges remove the right one); compact the rest.
    size_t kept = 0;
    for (int32_t i = 0; i != n; i = scratch.next[i]) ids[kept++] = ids[i];
    ids.resize(kept);
}

std::string Gpt2Tokenizer::decode(std::span<const int32_t> ids) const {
    size_t size = 0;
    for (int32_t id : ids) size += token_bytes(id).size();
    std::string out;
    out.reserve(size);
    for (int32_t id : ids) out += token_bytes_[size_t(id)];
    return out;
}

const std::string & Gpt2Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= vocab_size()) {
        fail("token id {} out of range: the vocabulary has ids 0..{}", id, vocab_size() - 1);
    }
    return token_bytes_[size_t(id)];
}

} // namespace fhegpt::model
