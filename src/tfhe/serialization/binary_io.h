// Little-endian byte streams for the TFHE blob format (format.h).
//
// BinaryWriter appends to a byte vector. BinaryReader reads a span of untrusted bytes: every
// read checks the remaining length first and fails with fhegpt::Error naming the source, the
// offset and what was being read, so a truncated or hostile blob never reads out of bounds.
// Arrays are copied with one memcpy on little-endian hosts and byte by byte elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::tfhe {

class BinaryWriter {
public:
    // Reserves `expected_size` bytes up front (0: none).
    explicit BinaryWriter(size_t expected_size = 0);

    void write_u8(uint8_t value);
    void write_u16(uint16_t value);
    void write_u32(uint32_t value);
    void write_u64(uint64_t value);
    void write_bytes(std::span<const uint8_t> bytes);
    void write_u32_array(std::span<const uint32_t> values);
    void write_u64_array(std::span<const uint64_t> values);

    size_t size() const { return bytes_.size(); }
    std::vector<uint8_t> take() { return std::move(bytes_); }

private:
    std::vector<uint8_t> bytes_;
};

class BinaryReader {
public:
    // `source` names the input in error messages (a path, "<memory>", "<network>").
    BinaryReader(std::span<const uint8_t> bytes, std::string_view source);

    // Each read fails if fewer bytes remain than it needs; `what` names the field.
    uint8_t read_u8(std::string_view what);
    uint16_t read_u16(std::string_view what);
    uint32_t read_u32(std::string_view what);
    uint64_t read_u64(std::string_view what);
    std::span<const uint8_t> read_bytes(size_t count, std::string_view what);
    void read_u32_array(std::span<uint32_t> out, std::string_view what);
    void read_u64_array(std::span<uint64_t> out, std::string_view what);

    // Fails unless at least `count` bytes remain (checked before allocating `count` bytes' worth).
    void require_remaining(size_t count, std::string_view what) const;
    // Fails if any byte is left.
    void expect_end(std::string_view what) const;

    size_t offset() const { return offset_; }
    size_t remaining() const { return bytes_.size() - offset_; }
    const std::string & source() const { return source_; }

private:
    std::span<const uint8_t> bytes_;
    size_t offset_ = 0;
    std::string source_;
};

} // namespace fhegpt::tfhe
