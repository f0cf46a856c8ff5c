// Blob shapes, secret keys, evaluation keys and their size figures.
#include "common/error.h"
#include "tfhe/serialization/blob_shape.h"
#include "tfhe/serialization/serialization.h"

namespace fhegpt::tfhe {

// ---- blob framing ------------------------------------------------------------------------

BinaryWriter begin_blob(const BlobShape & shape, const TfheParameters & params) {
    BinaryWriter writer(blob_size(shape, params));
    std::array<uint64_t, 6> values{};
    for (size_t i = 0; i < shape.dimension_count; ++i) values[i] = shape.dimensions[i].value;
    write_blob_header(writer, shape.kind, params, {values.data(), shape.dimension_count}, shape.payload_bytes);
    return writer;
}

std::vector<uint8_t> finish_blob(BinaryWriter & writer, const BlobShape & shape, const TfheParameters & params) {
    FHEGPT_CHECK(writer.size() == blob_size(shape, params), "%s blob of %zu bytes, expected %llu",
                 object_kind_name(shape.kind), writer.size(), (unsigned long long)blob_size(shape, params));
    return writer.take();
}

BinaryReader open_blob(std::span<const uint8_t> bytes, const BlobShape & shape, const TfheParameters & params,
                       std::string_view source) {
    BinaryReader reader(bytes, source);
    read_blob_header(reader, shape.kind, params);
    for (const BlobDimension & d : shape.dims()) read_expected_dimension(reader, shape.kind, d.name, d.value, params);
    read_payload_size(reader, shape.kind, shape.payload_bytes);
    return reader;
}

// ---- shapes --------------------------------------------------------------------------------

LweDimension lwe_dimension_of(const TfheParameters & params, LweKeyChoice choice) {
    return choice == LweKeyChoice::Small ? params.lwe_dimension : params.big_lwe_dimension();
}

BlobShape lwe_secret_key_shape(const TfheParameters & params, LweKeyChoice choice) {
    uint64_t n = lwe_dimension_of(params, choice).value;
    return {ObjectKind::LweSecretKey, {{{"LWE dimension", n}}}, 1, n};
}

BlobShape glwe_secret_key_shape(const TfheParameters & params) {
    uint64_t k = params.glwe_dimension.value, big_n = params.polynomial_size.value;
    return {ObjectKind::GlweSecretKey, {{{"GLWE dimension", k}, {"polynomial size", big_n}}}, 2, size_product(k, big_n)};
}

namespace {

// Input dimension k N, output dimension n, base log, levels.
BlobShape keyswitch_shape(ObjectKind kind, const TfheParameters & params, bool seeded) {
    uint64_t in = params.big_lwe_dimension().value, out = params.lwe_dimension.value;
    uint64_t levels = params.ks_level_count.value;
    uint64_t entries = size_product(in, levels);
    uint64_t payload = seeded ? kSeedBytes + size_product(entries, 4) : size_product(size_product(entries, out + 1), 4);
    return {kind,
            {{{"input LWE dimension", in},
              {"output LWE dimension", out},
              {"decomposition base log", params.ks_base_log.value},
              {"decomposition level count", levels}}},
            4,
            payload};
}

// n, k, N, base log, levels; a multi-bit key (its own kinds) has the grouping factor after n.
BlobShape bootstrap_shape(const TfheParameters & params, bool seeded) {
    uint64_t n = params.lwe_dimension.value, k = params.glwe_dimension.value, big_n = params.polynomial_size.value;
    uint64_t levels = params.pbs_level_count.value;
    uint64_t ggsws = params.grouping_factor.ggsw_count(params.lwe_dimension);
    uint64_t rows = size_product(size_product(ggsws, levels), k + 1); // GLWE rows of all GGSW
    uint64_t payload = seeded ? kSeedBytes + size_product(size_product(rows, big_n), 8)
                              : size_product(size_product(size_product(rows, k + 1), big_n), 8);
    const BlobDimension tail[] = {{"GLWE dimension", k},
                                  {"polynomial size", big_n},
                                  {"decomposition base log", params.pbs_base_log.value},
                                  {"decomposition level count", levels}};
    BlobShape shape;
    shape.payload_bytes = payload;
    shape.dimensions[shape.dimension_count++] = {"input LWE dimension", n};
    if (params.is_multi_bit()) {
        shape.kind = seeded ? ObjectKind::SeededLweMultiBitBootstrapKey : ObjectKind::LweMultiBitBootstrapKey;
        shape.dimensions[shape.dimension_count++] = {"grouping factor", params.grouping_factor.value};
    } else {
        shape.kind = seeded ? ObjectKind::SeededLweBootstrapKey : ObjectKind::LweBootstrapKey;
    }
    for (const BlobDimension & d : tail) shape.dimensions[shape.dimension_count++] = d;
    return shape;
}

void write_binary_coefficients(BinaryWriter & writer, std::span<const uint64_t> values) {
    for (uint64_t v : values) {
        FHEGPT_CHECK(v <= 1, "secret key coefficient %llu is not binary", (unsigned long long)v);
        writer.write_u8(static_cast<uint8_t>(v));
    }
}

void read_binary_coefficients(BinaryReader & reader, std::span<uint64_t> out, ObjectKind kind) {
    std::span<const uint8_t> bytes = reader.read_bytes(out.size(), "secret key coefficients");
    for (size_t i = 0; i < out.size(); ++i) {
        if (bytes[i] > 1)
            fail("{}: {} coefficient {} is {}, not 0 or 1", reader.source(), object_kind_name(kind), i, bytes[i]);
        out[i] = bytes[i];
    }
}

} // namespace

BlobShape seeded_lwe_keyswitch_key_shape(const TfheParameters & params) {
    return keyswitch_shape(ObjectKind::SeededLweKeyswitchKey, params, true);
}

BlobShape seeded_lwe_bootstrap_key_shape(const TfheParameters & params) {
    return bootstrap_shape(params, true);
}

// ---- secret keys ---------------------------------------------------------------------------

std::vector<uint8_t> serialize_lwe_secret_key(const LweSecretKey & key, const TfheParameters & params) {
    LweKeyChoice choice = key.lwe_dimension() == params.lwe_dimension ? LweKeyChoice::Small : LweKeyChoice::Big;
    FHEGPT_CHECK(key.lwe_dimension() == lwe_dimension_of(params, choice),
                 "LWE secret key of dimension %zu is neither the small (%zu) nor the big (%zu) key of %s",
                 key.lwe_dimension().value, params.lwe_dimension.value, params.big_lwe_dimension().value,
                 params.name.c_str());
    BlobShape shape = lwe_secret_key_shape(params, choice);
    BinaryWriter writer = begin_blob(shape, params);
    write_binary_coefficients(writer, key.data);
    return finish_blob(writer, shape, params);
}

LweSecretKey deserialize_lwe_secret_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                        LweKeyChoice choice, std::string_view source) {
    BlobShape shape = lwe_secret_key_shape(params, choice);
    BinaryReader reader = open_blob(bytes, shape, params, source);
    LweSecretKey key(lwe_dimension_of(params, choice));
    read_binary_coefficients(reader, key.data, shape.kind);
    return key;
}

std::vector<uint8_t> serialize_glwe_secret_key(const GlweSecretKey & key, const TfheParameters & params) {
    FHEGPT_CHECK_EQ(key.glwe_dimension.value, params.glwe_dimension.value);
    FHEGPT_CHECK_EQ(key.polynomial_size.value, params.polynomial_size.value);
    FHEGPT_CHECK_EQ(key.data.size(), key.glwe_dimension.value * key.polynomial_size.value);
    BlobShape shape = glwe_secret_key_shape(params);
    BinaryWriter writer = begin_blob(shape, params);
    write_binary_coefficients(writer, key.data);
    return finish_blob(writer, shape, params);
}

GlweSecretKey deserialize_glwe_secret_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                          std::string_view source) {
    BlobShape shape = glwe_secret_key_shape(params);
    BinaryReader reader = open_blob(bytes, shape, params, source);
    GlweSecretKey key(params.glwe_dimension, params.polynomial_size);
    read_binary_coefficients(reader, key.data, shape.kind);
    return key;
}

// ---- key-switching keys --------------------------------------------------------------------

namespace {

void check_keyswitch_dimensions(LweDimension in, LweDimension out, DecompositionBaseLog base_log,
                                DecompositionLevelCount levels, const TfheParameters & params) {
    FHEGPT_CHECK_EQ(in.value, params.big_lwe_dimension().value);
    FHEGPT_CHECK_EQ(out.value, params.lwe_dimension.value);
    FHEGPT_CHECK_EQ(base_log.value, params.ks_base_log.value);
    FHEGPT_CHECK_EQ(levels.value, params.ks_level_count.value);
}

void check_bootstrap_dimensions(LweDimension n, LweBskGroupingFactor grouping, GlweDimension k, PolynomialSize big_n,
                                DecompositionBaseLog base_log, DecompositionLevelCount levels,
                                const TfheParameters & params) {
    FHEGPT_CHECK_EQ(n.value, params.lwe_dimension.value);
    FHEGPT_CHECK_EQ(grouping.value, params.grouping_factor.value);
    FHEGPT_CHECK_EQ(k.value, params.glwe_dimension.value);
    FHEGPT_CHECK_EQ(big_n.value, params.polynomial_size.value);
    FHEGPT_CHECK_EQ(base_log.value, params.pbs_base_log.value);
    FHEGPT_CHECK_EQ(levels.value, params.pbs_level_count.value);
}

} // namespace

std::vector<uint8_t> serialize_lwe_keyswitch_key(const LweKeyswitchKey & key, const TfheParameters & params) {
    check_keyswitch_dimensions(key.input_lwe_dimension, key.output_lwe_dimension, key.base_log, key.level_count,
                               params);
    BlobShape shape = keyswitch_shape(ObjectKind::LweKeyswitchKey, params, false);
    FHEGPT_CHECK_EQ(key.data.size() * 4, shape.payload_bytes);
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_u32_array(key.data);
    return finish_blob(writer, shape, params);
}

LweKeyswitchKey deserialize_lwe_keyswitch_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                              std::string_view source) {
    BinaryReader reader = open_blob(bytes, keyswitch_shape(ObjectKind::LweKeyswitchKey, params, false), params, source);
    LweKeyswitchKey key(params.big_lwe_dimension(), params.lwe_dimension, params.ks_base_log, params.ks_level_count);
    reader.read_u32_array(key.data, "key-switching key entries");
    return key;
}

std::vector<uint8_t> serialize_seeded_lwe_keyswitch_key(const SeededLweKeyswitchKey & key,
                                                        const TfheParameters & params) {
    check_keyswitch_dimensions(key.input_lwe_dimension, key.output_lwe_dimension, key.base_log, key.level_count,
                               params);
    BlobShape shape = seeded_lwe_keyswitch_key_shape(params);
    FHEGPT_CHECK_EQ(kSeedBytes + key.bodies.size() * 4, shape.payload_bytes);
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_bytes(key.seed.bytes);
    writer.write_u32_array(key.bodies);
    return finish_blob(writer, shape, params);
}

SeededLweKeyswitchKey deserialize_seeded_lwe_keyswitch_key(std::span<const uint8_t> bytes,
                                                           const TfheParameters & params, std::string_view source) {
    BlobShape shape = seeded_lwe_keyswitch_key_shape(params);
    BinaryReader reader = open_blob(bytes, shape, params, source);
    SeededLweKeyswitchKey key;
    key.input_lwe_dimension = params.big_lwe_dimension();
    key.output_lwe_dimension = params.lwe_dimension;
    key.base_log = params.ks_base_log;
    key.level_count = params.ks_level_count;
    key.seed = read_seed(reader);
    key.bodies.resize((shape.payload_bytes - kSeedBytes) / 4);
    reader.read_u32_array(key.bodies, "key-switching key bodies");
    return key;
}

// ---- bootstrap keys ------------------------------------------------------------------------

std::vector<uint8_t> serialize_lwe_bootstrap_key(const LweBootstrapKey & key, const TfheParameters & params) {
    check_bootstrap_dimensions(key.input_lwe_dimension, key.grouping_factor, key.glwe_dimension, key.polynomial_size,
                               key.base_log, key.level_count, params);
    BlobShape shape = bootstrap_shape(params, false);
    FHEGPT_CHECK_EQ(key.data.size() * 8, shape.payload_bytes);
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_u64_array(key.data);
    return finish_blob(writer, shape, params);
}

LweBootstrapKey deserialize_lwe_bootstrap_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                              std::string_view source) {
    BinaryReader reader = open_blob(bytes, bootstrap_shape(params, false), params, source);
    LweBootstrapKey key(params.lwe_dimension, params.glwe_dimension, params.polynomial_size, params.pbs_base_log,
                        params.pbs_level_count, params.grouping_factor);
    reader.read_u64_array(key.data, "bootstrap key GGSW ciphertexts");
    return key;
}

std::vector<uint8_t> serialize_seeded_lwe_bootstrap_key(const SeededLweBootstrapKey & key,
                                                        const TfheParameters & params) {
    check_bootstrap_dimensions(key.input_lwe_dimension, key.grouping_factor, key.glwe_dimension, key.polynomial_size,
                               key.base_log, key.level_count, params);
    BlobShape shape = seeded_lwe_bootstrap_key_shape(params);
    FHEGPT_CHECK_EQ(kSeedBytes + key.bodies.size() * 8, shape.payload_bytes);
    BinaryWriter writer = begin_blob(shape, params);
    writer.write_bytes(key.seed.bytes);
    writer.write_u64_array(key.bodies);
    return finish_blob(writer, shape, params);
}

SeededLweBootstrapKey deserialize_seeded_lwe_bootstrap_key(std::span<const uint8_t> bytes,
                                                           const TfheParameters & params, std::string_view source) {
    BlobShape shape = seeded_lwe_bootstrap_key_shape(params);
    BinaryReader reader = open_blob(bytes, shape, params, source);
    SeededLweBootstrapKey key;
    key.input_lwe_dimension = params.lwe_dimension;
    key.glwe_dimension = params.glwe_dimension;
    key.polynomial_size = params.polynomial_size;
    key.base_log = params.pbs_base_log;
    key.level_count = params.pbs_level_count;
    key.grouping_factor = params.grouping_factor;
    key.seed = read_seed(reader);
    key.bodies.resize((shape.payload_bytes - kSeedBytes) / 8);
    reader.read_u64_array(key.bodies, "bootstrap key bodies");
    return key;
}

// ---- size figures --------------------------------------------------------------------------

EvaluationKeySizes serialized_evaluation_key_sizes(const TfheParameters & params) {
    EvaluationKeySizes sizes;
    sizes.bootstrap_key_bytes = blob_size(bootstrap_shape(params, false), params);
    sizes.bootstrap_key_compressed_bytes = blob_size(seeded_lwe_bootstrap_key_shape(params), params);
    sizes.keyswitch_key_bytes = blob_size(keyswitch_shape(ObjectKind::LweKeyswitchKey, params, false), params);
    sizes.keyswitch_key_compressed_bytes = blob_size(seeded_lwe_keyswitch_key_shape(params), params);
    if (params.has_fine_bootstrap()) {
        const TfheParameters fine = params.fine_bootstrap_parameters();
        sizes.fine_bootstrap_key_bytes = blob_size(bootstrap_shape(fine, false), fine);
        sizes.fine_bootstrap_key_compressed_bytes = blob_size(seeded_lwe_bootstrap_key_shape(fine), fine);
    }
    return sizes;
}

} // namespace fhegpt::tfhe
