// Key bundles (client key, compressed server key) and files.
#include "common/check.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "tfhe/serialization/blob_shape.h"
#include "tfhe/serialization/serialization.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace fhegpt::tfhe {

namespace {

// Payload: u64 length, first blob, u64 length, second blob.
BlobShape bundle_shape(ObjectKind kind, uint64_t first_bytes, uint64_t second_bytes) {
    return {kind, {}, 0, 16 + first_bytes + second_bytes};
}

BlobShape client_key_shape(const TfheParameters & params) {
    return bundle_shape(ObjectKind::ClientKey, blob_size(lwe_secret_key_shape(params, LweKeyChoice::Small), params),
                        blob_size(glwe_secret_key_shape(params), params));
}

// The fine bootstrapping key of a set that has one is stored as a blob of
// params.fine_bootstrap_parameters() (same name, its own decomposition and hash).
uint64_t fine_bootstrap_key_bytes(const TfheParameters & params) {
    if (!params.has_fine_bootstrap()) return 0;
    const TfheParameters fine = params.fine_bootstrap_parameters();
    return 8 + blob_size(seeded_lwe_bootstrap_key_shape(fine), fine);
}

BlobShape compressed_server_key_shape(const TfheParameters & params) {
    return bundle_shape(ObjectKind::CompressedServerKey, blob_size(seeded_lwe_keyswitch_key_shape(params), params),
                        blob_size(seeded_lwe_bootstrap_key_shape(params), params) + fine_bootstrap_key_bytes(params));
}

void write_part(BinaryWriter & writer, const std::vector<uint8_t> & part) {
    writer.write_u64(part.size());
    writer.write_bytes(part);
}

// The next part of a bundle, whose length must be exactly `expected` bytes.
std::span<const uint8_t> read_part(BinaryReader & reader, ObjectKind bundle, const char * part, uint64_t expected) {
    uint64_t length = reader.read_u64("part length");
    if (length != expected)
        fail("{}: {}: its {} is declared as {} bytes, expected {}", reader.source(), object_kind_name(bundle), part,
             length, expected);
    return reader.read_bytes(length, part);
}

} // namespace

std::vector<uint8_t> serialize_client_key(const ClientKey & key) {
    const TfheParameters & params = key.parameters;
    FHEGPT_CHECK_EQ(key.lwe_secret_key.lwe_dimension().value, params.lwe_dimension.value);
    BlobShape shape = client_key_shape(params);
    BinaryWriter writer = begin_blob(shape, params);
    write_part(writer, serialize_lwe_secret_key(key.lwe_secret_key, params));
    write_part(writer, serialize_glwe_secret_key(key.glwe_secret_key, params));
    return finish_blob(writer, shape, params);
}

ClientKey deserialize_client_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                 std::string_view source) {
    constexpr ObjectKind kind = ObjectKind::ClientKey;
    BinaryReader reader = open_blob(bytes, client_key_shape(params), params, source);
    std::span<const uint8_t> lwe = read_part(reader, kind, "LWE secret key",
                                             blob_size(lwe_secret_key_shape(params, LweKeyChoice::Small), params));
    std::span<const uint8_t> glwe =
        read_part(reader, kind, "GLWE secret key", blob_size(glwe_secret_key_shape(params), params));
    reader.expect_end(object_kind_name(kind));
    ClientKey key;
    key.parameters = params;
    key.lwe_secret_key = deserialize_lwe_secret_key(lwe, params, LweKeyChoice::Small, fmt::format("{} (client key)", source));
    key.glwe_secret_key = deserialize_glwe_secret_key(glwe, params, fmt::format("{} (client key)", source));
    key.big_lwe_secret_key = key.glwe_secret_key.as_lwe_secret_key();
    return key;
}

std::vector<uint8_t> serialize_compressed_server_key(const CompressedServerKey & key) {
    const TfheParameters & params = key.parameters;
    BlobShape shape = compressed_server_key_shape(params);
    BinaryWriter writer = begin_blob(shape, params);
    write_part(writer, serialize_seeded_lwe_keyswitch_key(key.keyswitch_key, params));
    write_part(writer, serialize_seeded_lwe_bootstrap_key(key.bootstrap_key, params));
    FHEGPT_CHECK(params.has_fine_bootstrap() == key.fine_bootstrap_key.has_value(),
                 "server key for %s with%s a fine bootstrapping key", params.name.c_str(),
                 key.fine_bootstrap_key ? "" : "out");
    if (key.fine_bootstrap_key)
        write_part(writer, serialize_seeded_lwe_bootstrap_key(*key.fine_bootstrap_key, params.fine_bootstrap_parameters()));
    return finish_blob(writer, shape, params);
}

CompressedServerKey deserialize_compressed_server_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                                      std::string_view source) {
    constexpr ObjectKind kind = ObjectKind::CompressedServerKey;
    BinaryReader reader = open_blob(bytes, compressed_server_key_shape(params), params, source);
    std::span<const uint8_t> ksk = read_part(reader, kind, "seeded key-switching key",
                                             blob_size(seeded_lwe_keyswitch_key_shape(params), params));
    std::span<const uint8_t> bsk = read_part(reader, kind, "seeded bootstrap key",
                                             blob_size(seeded_lwe_bootstrap_key_shape(params), params));
    std::span<const uint8_t> fine_bsk;
    if (params.has_fine_bootstrap())
        fine_bsk = read_part(reader, kind, "seeded fine bootstrap key", fine_bootstrap_key_bytes(params) - 8);
    reader.expect_end(object_kind_name(kind));
    CompressedServerKey key;
    key.parameters = params;
    key.keyswitch_key = deserialize_seeded_lwe_keyswitch_key(ksk, params, fmt::format("{} (server key)", source));
    key.bootstrap_key = deserialize_seeded_lwe_bootstrap_key(bsk, params, fmt::format("{} (server key)", source));
    if (params.has_fine_bootstrap())
        key.fine_bootstrap_key = deserialize_seeded_lwe_bootstrap_key(
            fine_bsk, params.fine_bootstrap_parameters(), fmt::format("{} (server key, fine)", source));
    return key;
}

// ---- files ---------------------------------------------------------------------------------

void write_blob_file(const std::string & path, std::span<const uint8_t> bytes, FileAccess access) {
    const std::string tmp = path + ".tmp";
    mode_t mode = access == FileAccess::OwnerOnly ? 0600 : 0644;
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) fail("{}: cannot create: {}", tmp, std::strerror(errno));
    if (access == FileAccess::OwnerOnly && ::fchmod(fd, 0600) != 0) { // an old file keeps its mode
        int err = errno;
        ::close(fd);
        fail("{}: cannot restrict access: {}", tmp, std::strerror(err));
    }
    size_t written = 0;
    while (written < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            fail("{}: write failed after {} of {} bytes: {}", tmp, written, bytes.size(), std::strerror(err));
        }
        written += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fail("{}: cannot flush: {}", tmp, std::strerror(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fail("{}: cannot rename to {}: {}", tmp, path, std::strerror(err));
    }
}

void save_client_key(const std::string & path, const ClientKey & key) {
    write_blob_file(path, serialize_client_key(key), FileAccess::OwnerOnly);
}

ClientKey load_client_key(const std::string & path, const TfheParameters & params) {
    MappedFile file(path);
    return deserialize_client_key(file.bytes(), params, path);
}

ClientKey load_client_key(const std::string & path) {
    MappedFile file(path);
    return deserialize_client_key(file.bytes(), parameters_of_blob(file.bytes(), path), path);
}

void save_compressed_server_key(const std::string & path, const CompressedServerKey & key) {
    write_blob_file(path, serialize_compressed_server_key(key));
}

CompressedServerKey load_compressed_server_key(const std::string & path, const TfheParameters & params) {
    MappedFile file(path);
    return deserialize_compressed_server_key(file.bytes(), params, path);
}

CompressedServerKey load_compressed_server_key(const std::string & path) {
    MappedFile file(path);
    return deserialize_compressed_server_key(file.bytes(), parameters_of_blob(file.bytes(), path), path);
}

} // namespace fhegpt::tfhe
