// GPT-2's byte-level alphabet. vocab.json and merges.txt do not store raw bytes: every byte is
// written as one printable Unicode character (printable Latin-1 bytes stand for themselves, the
// other 68 bytes are shifted to U+0100..U+0143, so a space is "Ġ" and a newline "Ċ"). These
// functions convert between that text form and the raw bytes the model sees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fhegpt::model {

// The character that stands for byte b in vocab.json / merges.txt.
char32_t byte_to_unicode(uint8_t b);

// The byte a character stands for, or nullopt if cp is not one of the 256 byte characters.
std::optional<uint8_t> unicode_to_byte(char32_t cp);

// Appends the UTF-8 encoding of cp (cp must be a Unicode scalar value).
void append_utf8(std::string & out, char32_t cp);

// Decodes one strict UTF-8 sequence at s[pos] (no overlongs, surrogates or values past
// U+10FFFF) and advances pos past it; returns nullopt and leaves pos unchanged if invalid.
std::optional<char32_t> decode_utf8(std::string_view s, size_t & pos);

// The raw bytes of a token written in byte-level form. A character outside the byte alphabet
// (a special token such as "<|fim▁hole|>" in another vocabulary) stands for its own UTF-8
// bytes, as Hugging Face's ByteLevel decoder does. Returns nullopt if text is not valid UTF-8.
std::optional<std::string> token_text_to_bytes(std::string_view text);

// The byte-level form of raw bytes: one byte character per byte (used for merges and messages).
std::string bytes_to_token_text(std::string_view bytes);

} // namespace fhegpt::model
