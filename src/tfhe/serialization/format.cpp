#include "tfhe/serialization/format.h"

#include "common/check.h"
#include "common/error.h"

#include <algorithm>
#include <array>
#include <bit>

namespace fhegpt::tfhe {

namespace {

constexpr std::array<uint8_t, 6> kMagic = {'F', 'H', 'E', 'G', 'P', 'T'};
constexpr size_t kFixedPrefixSize = 12; // magic, kind, version, name length

bool is_name_char(uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxParameterNameLength) return false;
    for (char c : name)
        if (!is_name_char(static_cast<uint8_t>(c))) return false;
    return true;
}

class Fnv1a {
public:
    void add_u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) {
            hash_ ^= (v >> (8 * i)) & 0xff;
            hash_ *= 0x100000001b3ULL;
        }
    }
    void add_noise(const NoiseDistribution & d) {
        add_u64(static_cast<uint64_t>(d.kind));
        add_u64(d.tuniform_bound_log2);
        add_u64(std::bit_cast<uint64_t>(d.gaussian_std_dev));
    }
    uint64_t value() const { return hash_; }

private:
    uint64_t hash_ = 0xcbf29ce484222325ULL;
};

std::string kind_letters(uint16_t value) {
    std::string out;
    for (int i = 0; i < 2; ++i) {
        uint8_t c = static_cast<uint8_t>(value >> (8 * i));
        out += (c >= 0x20 && c < 0x7f) ? fmt::format("{}", static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
    }
    return out;
}

// Magic, version, kind and name; leaves the reader just after the parameter hash.
BlobInfo read_info(BinaryReader & reader) {
    const std::string & source = reader.source();
    const size_t available = std::min(reader.remaining(), kMagic.size());
    std::span<const uint8_t> magic = reader.read_bytes(available, "magic");
    if (!std::equal(magic.begin(), magic.end(), kMagic.begin()))
        fail("{}: not an fhegpt TFHE blob (bad magic; expected \"FHEGPT\")", source);
    if (available < kMagic.size()) fail("{}: truncated: {} bytes, too short for a TFHE blob header", source, available);
    uint16_t kind = reader.read_u16("object kind");
    BlobInfo info;
    info.version = reader.read_u16("format version");
    if (info.version != kFormatVersion)
        fail("{}: format version {} is not supported (this build reads version {})", source, info.version,
             kFormatVersion);
    if (!is_known_object_kind(kind)) fail("{}: unknown object kind '{}'", source, kind_letters(kind));
    info.kind = static_cast<ObjectKind>(kind);
    uint16_t name_length = reader.read_u16("parameter name length");
    if (name_length == 0 || name_length > kMaxParameterNameLength)
        fail("{}: parameter set name length {} (1..{} allowed)", source, name_length, kMaxParameterNameLength);
    std::span<const uint8_t> name = reader.read_bytes(name_length, "parameter set name");
    for (uint8_t c : name)
        if (!is_name_char(c)) fail("{}: parameter set name has an invalid byte 0x{:02x}", source, c);
    info.parameter_name.assign(name.begin(), name.end());
    info.parameter_hash = reader.read_u64("parameter set hash");
    return info;
}

} // namespace

const char * object_kind_name(ObjectKind kind) {
    switch (kind) {
    case ObjectKind::LweSecretKey: return "LWE secret key";
    case ObjectKind::GlweSecretKey: return "GLWE secret key";
    case ObjectKind::LweCiphertext: return "LWE ciphertext";
    case ObjectKind::LweCiphertextVector: return "LWE ciphertext vector";
    case ObjectKind::SeededLweCiphertext: return "seeded LWE ciphertext";
    case ObjectKind::SeededLweCiphertextVector: return "seeded LWE ciphertext vector";
    case ObjectKind::GlweCiphertext: return "GLWE ciphertext";
    case ObjectKind::LweKeyswitchKey: return "LWE key-switching key";
    case ObjectKind::SeededLweKeyswitchKey: return "seeded LWE key-switching key";
    case ObjectKind::LweBootstrapKey: return "LWE bootstrap key";
    case ObjectKind::SeededLweBootstrapKey: return "seeded LWE bootstrap key";
    case ObjectKind::LweMultiBitBootstrapKey: return "LWE multi-bit bootstrap key";
    case ObjectKind::SeededLweMultiBitBootstrapKey: return "seeded LWE multi-bit bootstrap key";
    case ObjectKind::ClientKey: return "client key";
    case ObjectKind::CompressedServerKey: return "compressed server key";
    }
    return "unknown";
}

bool is_known_object_kind(uint16_t value) {
    return std::string_view(object_kind_name(static_cast<ObjectKind>(value))) != "unknown";
}

uint64_t parameter_set_hash(const TfheParameters & p) {
    Fnv1a h;
    h.add_u64(p.message_bits);
    h.add_u64(p.lwe_dimension.value);
    h.add_u64(p.glwe_dimension.value);
    h.add_u64(p.polynomial_size.value);
    h.add_noise(p.lwe_noise);
    h.add_noise(p.glwe_noise);
    h.add_u64(p.pbs_base_log.value);
    h.add_u64(p.pbs_level_count.value);
    h.add_u64(p.ks_base_log.value);
    h.add_u64(p.ks_level_count.value);
    h.add_u64(static_cast<uint64_t>(p.modulus_switch));
    h.add_u64(p.max_norm2);
    if (p.has_fine_bootstrap()) { // only then, so that the hashes of single-key sets stay as they were
        h.add_u64(p.fine_pbs_base_log.value);
        h.add_u64(p.fine_pbs_level_count.value);
    }
    if (p.is_multi_bit()) h.add_u64(p.grouping_factor.value); // likewise
    return h.value();
}

BlobInfo read_blob_info(std::span<const uint8_t> bytes, std::string_view source) {
    BinaryReader reader(bytes, source);
    return read_info(reader);
}

const TfheParameters & parameters_of_blob(std::span<const uint8_t> bytes, std::string_view source) {
    BlobInfo info = read_blob_info(bytes, source);
    for (const TfheParameters & p : all_parameter_sets()) {
        if (p.name != info.parameter_name) continue;
        if (parameter_set_hash(p) != info.parameter_hash)
            fail("{}: parameter set '{}' of this blob (hash {:016x}) differs from this build's (hash {:016x})", source,
                 info.parameter_name, info.parameter_hash, parameter_set_hash(p));
        return p;
    }
    fail("{}: made for parameter set '{}', which this build does not know", source, info.parameter_name);
}

size_t blob_header_size(const TfheParameters & params, size_t dimension_count) {
    return kFixedPrefixSize + params.name.size() + 8 + 8 * dimension_count + 8;
}

void write_blob_header(BinaryWriter & writer, ObjectKind kind, const TfheParameters & params,
                       std::span<const uint64_t> dimensions, uint64_t payload_bytes) {
    FHEGPT_CHECK(is_valid_name(params.name), "parameter set name '%s' cannot be stored (1..64 of [A-Za-z0-9_])",
                 params.name.c_str());
    writer.write_bytes(kMagic);
    writer.write_u16(static_cast<uint16_t>(kind));
    writer.write_u16(kFormatVersion);
    writer.write_u16(static_cast<uint16_t>(params.name.size()));
    writer.write_bytes({reinterpret_cast<const uint8_t *>(params.name.data()), params.name.size()});
    writer.write_u64(parameter_set_hash(params));
    for (uint64_t d : dimensions) writer.write_u64(d);
    writer.write_u64(payload_bytes);
}

void read_blob_header(BinaryReader & reader, ObjectKind expected, const TfheParameters & params) {
    const std::string & source = reader.source();
    BlobInfo info = read_info(reader);
    if (info.kind != expected)
        fail("{}: is a {} blob, expected a {}", source, object_kind_name(info.kind), object_kind_name(expected));
    if (info.parameter_name != params.name)
        fail("{}: {} made for parameter set '{}', expected '{}'", source, object_kind_name(expected),
             info.parameter_name, params.name);
    uint64_t hash = parameter_set_hash(params);
    if (info.parameter_hash != hash)
        fail("{}: {} made for a parameter set '{}' with other values (hash {:016x}, expected {:016x})", source,
             object_kind_name(expected), info.parameter_name, info.parameter_hash, hash);
}

void read_expected_dimension(BinaryReader & reader, ObjectKind kind, std::string_view what, uint64_t expected,
                             const TfheParameters & params) {
    uint64_t value = reader.read_u64(what);
    if (value != expected)
        fail("{}: {} has {} {}, expected {} for parameter set '{}'", reader.source(), object_kind_name(kind), what,
             value, expected, params.name);
}

void read_payload_size(BinaryReader & reader, ObjectKind kind, uint64_t expected_bytes) {
    uint64_t declared = reader.read_u64("payload size");
    if (declared != expected_bytes)
        fail("{}: {} declares a payload of {} bytes, its dimensions imply {}", reader.source(), object_kind_name(kind),
             declared, expected_bytes);
    if (reader.remaining() < expected_bytes)
        fail("{}: {} truncated: payload of {} bytes, only {} left", reader.source(), object_kind_name(kind),
             expected_bytes, reader.remaining());
    if (reader.remaining() > expected_bytes)
        fail("{}: {} has {} trailing bytes after its payload of {} bytes", reader.source(), object_kind_name(kind),
             reader.remaining() - expected_bytes, expected_bytes);
}

} // namespace fhegpt::tfhe
