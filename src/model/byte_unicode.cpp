#include "model/byte_unicode.h"

#include "common/check.h"

#include <array>

namespace fhegpt::model {

namespace {

// Bytes that are printable and not whitespace in Latin-1 keep their own code point.
constexpr bool is_self_mapped(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteTable {
    std::array<char32_t, 256> to_unicode{};
    std::array<int16_t, 0x144> to_byte{}; // every byte character is below U+0144
};

// The others (control bytes, space, DEL, NBSP, soft hyphen...) get U+0100, U+0101, ... in byte
// order: the order matters, it is the one OpenAI's encoder.py used to write vocab.json.
constexpr ByteTable make_byte_table() {
    ByteTable t;
    t.to_byte.fill(-1);
    char32_t next_shifted = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
        char32_t cp = is_self_mapped(b) ? char32_t(b) : next_shifted++;
        t.to_unicode[b] = cp;
        t.to_byte[cp] = int16_t(b);
    }
    return t;
}

constexpr ByteTable byte_table = make_byte_table();

} // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_table.to_unicode[b]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
    if (cp >= byte_table.to_byte.size() || byte_table.to_byte[cp] < 0) return std::nullopt;
    return uint8_t(byte_table.to_byte[cp]);
}

void append_utf8(std::string & out, char32_t cp) {
    FHEGPT_CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF), "not a scalar value: U+%X",
                 unsigned(cp));
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

std::optional<char32_t> decode_utf8(std::string_view s, size_t & pos) {
    if (pos >= s.size()) return std::nullopt;
    auto byte = [&](size_t i) { return unsigned(uint8_t(s[i])); };
    unsigned b0 = byte(pos);
    size_t len;
    char32_t cp;
    char32_t min_cp;
    if (b0 < 0x80) {
        ++pos;
        return char32_t(b0);
    } else if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1F, min_cp = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0F, min_cp = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07, min_cp = 0x10000;
    } else {
        return std::nullopt;
    }
    if (s.size() - pos < len) return std::nullopt;
    for (size_t i = 1; i < len; ++i) {
        unsigned b = byte(pos + i);
        if ((b & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    pos += len;
    return cp;
}

std::optional<std::string> token_text_to_bytes(std::string_view text) {
    std::string bytes;
    bytes.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        size_t start = pos;
        std::optional<char32_t> cp = decode_utf8(text, pos);
        if (!cp) return std::nullopt;
        if (std::optional<uint8_t> b = unicode_to_byte(*cp)) {
            bytes += char(*b);
        } else {
            bytes.append(text.substr(start, pos - start));
        }
    }
    return bytes;
}

std::string bytes_to_token_text(std::string_view bytes) {
    std::string text;
    text.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(text, byte_to_unicode(uint8_t(c)));
    return text;
}

} // namespace fhegpt::model
