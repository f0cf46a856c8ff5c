// Internal to the serialization library: the shape of a blob of fixed size (kind, dimensions
// with their names, payload size), shared by the writers, the readers and the size figures.
#pragma once

#include "common/check.h"
#include "tfhe/commons/parameters.h"
#include "tfhe/serialization/binary_io.h"
#include "tfhe/serialization/format.h"
#include "tfhe/serialization/serialization.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace fhegpt::tfhe {

inline constexpr size_t kSeedBytes = 32;

struct BlobDimension {
    const char * name;
    uint64_t value;
};

struct BlobShape {
    ObjectKind kind{};
    std::array<BlobDimension, 6> dimensions{};
    size_t dimension_count = 0;
    uint64_t payload_bytes = 0;

    std::span<const BlobDimension> dims() const { return {dimensions.data(), dimension_count}; }
};

// a * b for sizes derived from trusted parameters (overflow is a programming error).
inline uint64_t size_product(uint64_t a, uint64_t b) {
    uint64_t out = 0;
    FHEGPT_CHECK(!__builtin_mul_overflow(a, b, &out), "size overflow: %llu * %llu", (unsigned long long)a,
                 (unsigned long long)b);
    return out;
}

inline uint64_t blob_size(const BlobShape & shape, const TfheParameters & params) {
    return blob_header_size(params, shape.dimension_count) + shape.payload_bytes;
}

inline Seed read_seed(BinaryReader & reader) {
    Seed seed;
    std::span<const uint8_t> bytes = reader.read_bytes(kSeedBytes, "seed");
    std::copy(bytes.begin(), bytes.end(), seed.bytes.begin());
    return seed;
}

// A writer holding the header of `shape`, with the whole blob reserved.
BinaryWriter begin_blob(const BlobShape & shape, const TfheParameters & params);
// Checks that the writer holds exactly the blob `shape` describes.
std::vector<uint8_t> finish_blob(BinaryWriter & writer, const BlobShape & shape, const TfheParameters & params);
// Reads and validates the header of `shape`; the reader is left at the payload, of exactly
// shape.payload_bytes bytes.
BinaryReader open_blob(std::span<const uint8_t> bytes, const BlobShape & shape, const TfheParameters & params,
                       std::string_view source);

// Shapes of the fixed-size kinds.
BlobShape lwe_secret_key_shape(const TfheParameters & params, LweKeyChoice choice);
BlobShape glwe_secret_key_shape(const TfheParameters & params);
BlobShape seeded_lwe_keyswitch_key_shape(const TfheParameters & params);
BlobShape seeded_lwe_bootstrap_key_shape(const TfheParameters & params);

} // namespace fhegpt::tfhe
