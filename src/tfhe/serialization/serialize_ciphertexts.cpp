// LWE ciphertexts (single, vectors, seeded) and GLWE ciphertexts.
#include "common/error.h"
#include "tfhe/serialization/blob_shape.h"
#include "tfhe/serialization/serialization.h"

namespace fhegpt::tfhe {

namespace {

constexpr uint64_t kSeededCiphertextBytes = kSeedBytes + 8 + 8; // seed, stream, body

// Layouts of a seeded ciphertext vector (its third dimension).
constexpr uint64_t kSeparateSeeds = 0; // count x (seed, stream, body)
constexpr uint64_t kSharedSeed = 1;    // seed, first stream, count bodies; streams consecutive

LweKeyChoice key_choice_of(LweDimension dimension, const TfheParameters & params) {
    if (dimension == params.lwe_dimension) return LweKeyChoice::Small;
    FHEGPT_CHECK(dimension == params.big_lwe_dimension(),
                 "LWE dimension %zu is neither the small (%zu) nor the big (%zu) dimension of %s", dimension.value,
                 params.lwe_dimension.value, params.big_lwe_dimension().value, params.name.c_str());
    return LweKeyChoice::Big;
}

BlobShape lwe_ciphertext_shape(const TfheParameters & params, LweKeyChoice choice) {
    uint64_t n = lwe_dimension_of(params, choice).value;
    return {ObjectKind::LweCiphertext, {{{"LWE dimension", n}}}, 1, size_product(n + 1, 8)};
}

BlobShape seeded_lwe_ciphertext_shape(const TfheParameters & params, LweKeyChoice choice) {
    uint64_t n = lwe_dimension_of(params, choice).value;
    return {ObjectKind::SeededLweCiphertext, {{{"LWE dimension", n}}}, 1, kSeededCiphertextBytes};
}

BlobShape glwe_ciphertext_shape(const TfheParameters & params) {
    uint64_t k = params.glwe_dimension.value, big_n = params.polynomial_size.value;
    return {ObjectKind::GlweCiphertext,
            {{{"GLWE dimension", k}, {"polynomial size", big_n}}},
            2,
            size_product(size_product(k + 1, big_n), 8)};
}

BlobShape lwe_ciphertext_vector_shape(const TfheParameters & params, LweKeyChoice choice, uint64_t count) {
    uint64_t n = lwe_dimension_of(params, choice).value;
    return {ObjectKind::LweCiphertextVector,
            {{{"LWE dimension", n}, {"ciphertext count", count}}},
            2,
            size_product(count, size_product(n + 1, 8))};
}

BlobShape seeded_vector_shape(const TfheParameters & params, LweKeyChoice choice, uint64_t count, uint64_t layout) {
    uint64_t n = lwe_dimension_of(params, choice).value;
    uint64_t payload = layout == kSharedSeed ? kSeedBytes + 8 + size_product(count, 8)
                                             : size_product(count, kSeededCiphertextBytes);
    return {ObjectKind::SeededLweCiphertextVector,
            {{{"LWE dimension", n}, {"ciphertext count", count}, {"layout", layout}}},
            3,
            payload};
}

// Reads a vector header up to its count (after checking the LWE dimension) and fails unless
// count elements of `element_bytes` bytes can fit in what is left of the input: the count is
// checked before any size is computed from it or anything is allocated.
uint64_t read_vector_count(BinaryReader & reader, ObjectKind kind, const TfheParameters & params, uint64_t dimension,
                           uint64_t element_bytes) {
    read_blob_header(reader, kind, params);
    read_expected_dimension(reader, kind, "LWE dimension", dimension, params);
    uint64_t count = reader.read_u64("ciphertext count");
    if (count > reader.remaining() / element_bytes)
        fail("{}: {} claims {} ciphertexts of {} bytes, but only {} bytes are left", reader.source(),
             object_kind_name(kind), count, element_bytes, reader.remaining());
    return count;
}

bool shares_one_seed(std::span<const SeededLweCiphertext> ciphertexts) {
    if (ciphertexts.empty()) return false;
    const SeededLweCiphertext & first = ciphertexts.front();
    if (ciphertexts.size() - 1 > UINT64_MAX - first.stream) return false;
    for (size_t i = 1; i < ciphertexts.size(); ++i)
        if (!(ciphertexts[i].seed == first.seed) || ciphertexts[i].stream != first.stream + i) return false;
    return true;
}

} // namespace

uint64_t serialized_lwe_ciphertext_vector_size(const TfheParameters & params, LweKeyChoice choice, uint64_t count) {
    return blob_size(lwe_ciphertext_vector_shape(params, choice, count), params);
}

uint64_t serialized_seeded_lwe_ciphertext_vector_size(const TfheParameters & params, LweKeyChoice choice,
                                                      uint64_t count) {
    return blob_size(seeded_vector_shape(params, choice, count, kSharedSeed), params);
}

// ---- LWE ciphertexts -----------------------------------------------------------------------

std::vector<uint8_t> serialize_lwe_ciphertext(const LweCiphertext & ciphertext, const TfheParameters & params) {
    BlobShape shape = lwe_ciphertext_shape(params, key_choice_of(ciphertext.lwe_dimension(), params));
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_u64_array(ciphertext.data);
    return finish_blob(writer, shape, params);
}

LweCiphertext deserialize_lwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                         LweKeyChoice choice, std::string_view source) {
    BinaryReader reader = open_blob(bytes, lwe_ciphertext_shape(params, choice), params, source);
    LweCiphertext ciphertext(lwe_dimension_of(params, choice));
    reader.read_u64_array(ciphertext.data, "LWE ciphertext");
    return ciphertext;
}

std::vector<uint8_t> serialize_lwe_ciphertext_vector(std::span<const LweCiphertext> ciphertexts,
                                                     const TfheParameters & params) {
    // An empty vector is stored with the big dimension (the one of everything between bootstraps).
    LweKeyChoice choice =
        ciphertexts.empty() ? LweKeyChoice::Big : key_choice_of(ciphertexts.front().lwe_dimension(), params);
    for (const LweCiphertext & c : ciphertexts)
        FHEGPT_CHECK_EQ(c.lwe_dimension().value, lwe_dimension_of(params, choice).value);
    BlobShape shape = lwe_ciphertext_vector_shape(params, choice, ciphertexts.size());
    BinaryWriter writer = begin_blob(shape, params);
    for (const LweCiphertext & c : ciphertexts) writer.write_u64_array(c.data);
    return finish_blob(writer, shape, params);
}

std::vector<LweCiphertext> deserialize_lwe_ciphertext_vector(std::span<const uint8_t> bytes,
                                                             const TfheParameters & params, LweKeyChoice choice,
                                                             std::string_view source) {
    const LweDimension n = lwe_dimension_of(params, choice);
    BinaryReader reader(bytes, source);
    uint64_t count = read_vector_count(reader, ObjectKind::LweCiphertextVector, params, n.value, (n.value + 1) * 8);
    read_payload_size(reader, ObjectKind::LweCiphertextVector,
                      lwe_ciphertext_vector_shape(params, choice, count).payload_bytes);
    std::vector<LweCiphertext> ciphertexts;
    ciphertexts.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
        ciphertexts.emplace_back(n);
        reader.read_u64_array(ciphertexts.back().data, "LWE ciphertext");
    }
    return ciphertexts;
}

// ---- seeded LWE ciphertexts ----------------------------------------------------------------

std::vector<uint8_t> serialize_seeded_lwe_ciphertext(const SeededLweCiphertext & ciphertext,
                                                     const TfheParameters & params) {
    BlobShape shape = seeded_lwe_ciphertext_shape(params, key_choice_of(ciphertext.lwe_dimension, params));
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_bytes(ciphertext.seed.bytes);
    writer.write_u64(ciphertext.stream);
    writer.write_u64(ciphertext.body);
    return finish_blob(writer, shape, params);
}

SeededLweCiphertext deserialize_seeded_lwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                                      LweKeyChoice choice, std::string_view source) {
    BinaryReader reader = open_blob(bytes, seeded_lwe_ciphertext_shape(params, choice), params, source);
    SeededLweCiphertext ciphertext;
    ciphertext.lwe_dimension = lwe_dimension_of(params, choice);
    ciphertext.seed = read_seed(reader);
    ciphertext.stream = reader.read_u64("stream");
    ciphertext.body = reader.read_u64("body");
    return ciphertext;
}

std::vector<uint8_t> serialize_seeded_lwe_ciphertext_vector(std::span<const SeededLweCiphertext> ciphertexts,
                                                            const TfheParameters & params) {
    LweKeyChoice choice =
        ciphertexts.empty() ? LweKeyChoice::Big : key_choice_of(ciphertexts.front().lwe_dimension, params);
    for (const SeededLweCiphertext & c : ciphertexts)
        FHEGPT_CHECK_EQ(c.lwe_dimension.value, lwe_dimension_of(params, choice).value);
    bool shared = shares_one_seed(ciphertexts);
    BlobShape shape = seeded_vector_shape(params, choice, ciphertexts.size(), shared ? kSharedSeed : kSeparateSeeds);
    BinaryWriter writer = begin_blob(shape, params);
    if (shared) {
        writer.write_bytes(ciphertexts.front().seed.bytes);
        writer.write_u64(ciphertexts.front().stream);
        for (const SeededLweCiphertext & c : ciphertexts) writer.write_u64(c.body);
    } else {
        for (const SeededLweCiphertext & c : ciphertexts) {
            writer.write_bytes(c.seed.bytes);
            writer.write_u64(c.stream);
            writer.write_u64(c.body);
        }
    }
    return finish_blob(writer, shape, params);
}

std::vector<SeededLweCiphertext> deserialize_seeded_lwe_ciphertext_vector(std::span<const uint8_t> bytes,
                                                                          const TfheParameters & params,
                                                                          LweKeyChoice choice,
                                                                          std::string_view source) {
    constexpr ObjectKind kind = ObjectKind::SeededLweCiphertextVector;
    const LweDimension n = lwe_dimension_of(params, choice);
    BinaryReader reader(bytes, source);
    uint64_t count = read_vector_count(reader, kind, params, n.value, 8); // 8: the smallest element (shared seed)
    uint64_t layout = reader.read_u64("layout");
    if (layout != kSeparateSeeds && layout != kSharedSeed)
        fail("{}: {} has layout {} (0: separate seeds, 1: shared seed)", source, object_kind_name(kind), layout);
    if (layout == kSeparateSeeds && count > reader.remaining() / kSeededCiphertextBytes)
        fail("{}: {} claims {} ciphertexts of {} bytes, but only {} bytes are left", source, object_kind_name(kind),
             count, kSeededCiphertextBytes, reader.remaining());
    read_payload_size(reader, kind, seeded_vector_shape(params, choice, count, layout).payload_bytes);
    std::vector<SeededLweCiphertext> ciphertexts(count);
    if (layout == kSharedSeed) {
        Seed seed = read_seed(reader);
        uint64_t first_stream = reader.read_u64("first stream");
        if (count > 0 && count - 1 > UINT64_MAX - first_stream)
            fail("{}: {} streams {} + {} overflow", source, object_kind_name(kind), first_stream, count);
        for (uint64_t i = 0; i < count; ++i) {
            ciphertexts[i].lwe_dimension = n;
            ciphertexts[i].seed = seed;
            ciphertexts[i].stream = first_stream + i;
            ciphertexts[i].body = reader.read_u64("body");
        }
    } else {
        for (SeededLweCiphertext & c : ciphertexts) {
            c.lwe_dimension = n;
            c.seed = read_seed(reader);
            c.stream = reader.read_u64("stream");
            c.body = reader.read_u64("body");
        }
    }
    return ciphertexts;
}

// ---- GLWE ciphertexts ----------------------------------------------------------------------

std::vector<uint8_t> serialize_glwe_ciphertext(const GlweCiphertext & ciphertext, const TfheParameters & params) {
    FHEGPT_CHECK_EQ(ciphertext.glwe_dimension.value, params.glwe_dimension.value);
    FHEGPT_CHECK_EQ(ciphertext.polynomial_size.value, params.polynomial_size.value);
    BlobShape shape = glwe_ciphertext_shape(params);
    FHEGPT_CHECK_EQ(ciphertext.data.size() * 8, shape.payload_bytes);
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_u64_array(ciphertext.data);
    return finish_blob(writer, shape, params);
}

GlweCiphertext deserialize_glwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                           std::string_view source) {
    BinaryReader reader = open_blob(bytes, glwe_ciphertext_shape(params), params, source);
    GlweCiphertext ciphertext(params.glwe_dimension, params.polynomial_size);
    reader.read_u64_array(ciphertext.data, "GLWE ciphertext");
    return ciphertext;
}

} // namespace fhegpt::tfhe
