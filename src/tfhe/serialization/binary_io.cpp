#include "tfhe/serialization/binary_io.h"

#include "common/error.h"

#include <bit>
#include <cstring>

namespace fhegpt::tfhe {

namespace {

constexpr bool kLittleEndianHost = std::endian::native == std::endian::little;

template <typename T>
void append_le(std::vector<uint8_t> & out, T value) {
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

template <typename T>
T load_le(const uint8_t * p) {
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
    return value;
}

template <typename T>
void append_array(std::vector<uint8_t> & out, std::span<const T> values) {
    if constexpr (kLittleEndianHost) {
        size_t old_size = out.size();
        out.resize(old_size + values.size_bytes());
        if (!values.empty()) std::memcpy(out.data() + old_size, values.data(), values.size_bytes());
    } else {
        for (T v : values) append_le(out, v);
    }
}

template <typename T>
void copy_array(const uint8_t * in, std::span<T> out) {
    if constexpr (kLittleEndianHost) {
        if (!out.empty()) std::memcpy(out.data(), in, out.size_bytes());
    } else {
        for (size_t i = 0; i < out.size(); ++i) out[i] = load_le<T>(in + i * sizeof(T));
    }
}

} // namespace

BinaryWriter::BinaryWriter(size_t expected_size) { bytes_.reserve(expected_size); }

void BinaryWriter::write_u8(uint8_t value) { bytes_.push_back(value); }
void BinaryWriter::write_u16(uint16_t value) { append_le(bytes_, value); }
void BinaryWriter::write_u32(uint32_t value) { append_le(bytes_, value); }
void BinaryWriter::write_u64(uint64_t value) { append_le(bytes_, value); }
void BinaryWriter::write_bytes(std::span<const uint8_t> bytes) { bytes_.insert(bytes_.end(), bytes.begin(), bytes.end()); }
void BinaryWriter::write_u32_array(std::span<const uint32_t> values) { append_array(bytes_, values); }
void BinaryWriter::write_u64_array(std::span<const uint64_t> values) { append_array(bytes_, values); }

BinaryReader::BinaryReader(std::span<const uint8_t> bytes, std::string_view source)
    : bytes_(bytes), source_(source) {}

void BinaryReader::require_remaining(size_t count, std::string_view what) const {
    if (count > remaining())
        fail("{}: truncated at byte {}: {} needs {} bytes, {} left", source_, offset_, what, count, remaining());
}

void BinaryReader::expect_end(std::string_view what) const {
    if (remaining() != 0)
        fail("{}: {} trailing bytes after the {} (byte {} of {})", source_, remaining(), what, offset_, bytes_.size());
}

std::span<const uint8_t> BinaryReader::read_bytes(size_t count, std::string_view what) {
    require_remaining(count, what);
    std::span<const uint8_t> out = bytes_.subspan(offset_, count);
    offset_ += count;
    return out;
}

uint8_t BinaryReader::read_u8(std::string_view what) { return read_bytes(1, what)[0]; }
uint16_t BinaryReader::read_u16(std::string_view what) { return load_le<uint16_t>(read_bytes(2, what).data()); }
uint32_t BinaryReader::read_u32(std::string_view what) { return load_le<uint32_t>(read_bytes(4, what).data()); }
uint64_t BinaryReader::read_u64(std::string_view what) { return load_le<uint64_t>(read_bytes(8, what).data()); }

void BinaryReader::read_u32_array(std::span<uint32_t> out, std::string_view what) {
    // out.size() comes from the caller's validated dimensions; size_bytes() cannot overflow
    // because `out` already exists in memory.
    copy_array(read_bytes(out.size_bytes(), what).data(), out);
}

void BinaryReader::read_u64_array(std::span<uint64_t> out, std::string_view what) {
    copy_array(read_bytes(out.size_bytes(), what).data(), out);
}

} // namespace fhegpt::tfhe
