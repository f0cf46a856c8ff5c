// Serialization of TFHE keys and ciphertexts in the blob format of format.h.
//
// serialize_X(object, params) writes a blob tagged with the parameter set the object was made
// for; the object's dimensions must be those of `params` (FHEGPT_CHECK: a programming error).
// deserialize_X(bytes, params, source) reads one, and throws fhegpt::Error naming `source` for
// anything that is not a well-formed blob of kind X made for `params` (see format.h for the
// checks): hostile input never allocates more than the parameters imply, nor reads out of
// bounds. LWE objects exist under the small key (dimension n) or the big key (k N): the
// caller says which one it expects.
//
// Payloads, in the order of the entity types' own `data`: secret keys one byte per
// coefficient (0 or 1, checked); ciphertexts and bootstrap keys u64 torus elements; key-switching
// keys u32 (the stored top halves); seeded objects their 32-byte seed then their bodies.
#pragma once

#include "tfhe/commons/parameters.h"
#include "tfhe/entities/glwe_ciphertext.h"
#include "tfhe/entities/glwe_secret_key.h"
#include "tfhe/entities/lwe_bootstrap_key.h"
#include "tfhe/entities/lwe_ciphertext.h"
#include "tfhe/entities/lwe_keyswitch_key.h"
#include "tfhe/entities/lwe_secret_key.h"
#include "tfhe/entities/seeded_lwe_bootstrap_key.h"
#include "tfhe/entities/seeded_lwe_ciphertext.h"
#include "tfhe/entities/seeded_lwe_keyswitch_key.h"
#include "tfhe/keyset.h"
#include "tfhe/serialization/format.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fhegpt::tfhe {

inline constexpr std::string_view kMemorySource = "<memory>";

// Which LWE key an LWE object belongs to.
enum class LweKeyChoice {
    Small, // dimension n: key switch outputs, bootstrap inputs
    Big,   // dimension k N: fresh encryptions, bootstrap outputs, everything between bootstraps
};
LweDimension lwe_dimension_of(const TfheParameters & params, LweKeyChoice choice);

// Secret keys.
std::vector<uint8_t> serialize_lwe_secret_key(const LweSecretKey & key, const TfheParameters & params);
LweSecretKey deserialize_lwe_secret_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                        LweKeyChoice choice, std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_glwe_secret_key(const GlweSecretKey & key, const TfheParameters & params);
GlweSecretKey deserialize_glwe_secret_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                          std::string_view source = kMemorySource);

// Ciphertexts. A vector holds any number of ciphertexts of one dimension (count <= input size).
std::vector<uint8_t> serialize_lwe_ciphertext(const LweCiphertext & ciphertext, const TfheParameters & params);
LweCiphertext deserialize_lwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                         LweKeyChoice choice, std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_lwe_ciphertext_vector(std::span<const LweCiphertext> ciphertexts,
                                                     const TfheParameters & params);
std::vector<LweCiphertext> deserialize_lwe_ciphertext_vector(std::span<const uint8_t> bytes,
                                                             const TfheParameters & params, LweKeyChoice choice,
                                                             std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_seeded_lwe_ciphertext(const SeededLweCiphertext & ciphertext,
                                                     const TfheParameters & params);
SeededLweCiphertext deserialize_seeded_lwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                                      LweKeyChoice choice, std::string_view source = kMemorySource);
// When all ciphertexts share one seed with consecutive streams (a client encrypting a request
// with stream = 0, 1, 2, ...), the vector stores the seed and first stream once and then 8
// bytes per ciphertext; otherwise 48 bytes per ciphertext (seed, stream, body).
std::vector<uint8_t> serialize_seeded_lwe_ciphertext_vector(std::span<const SeededLweCiphertext> ciphertexts,
                                                            const TfheParameters & params);
std::vector<SeededLweCiphertext> deserialize_seeded_lwe_ciphertext_vector(std::span<const uint8_t> bytes,
                                                                          const TfheParameters & params,
                                                                          LweKeyChoice choice,
                                                                          std::string_view source = kMemorySource);
// A GLWE ciphertext of dimension (k, N).
std::vector<uint8_t> serialize_glwe_ciphertext(const GlweCiphertext & ciphertext, const TfheParameters & params);
GlweCiphertext deserialize_glwe_ciphertext(std::span<const uint8_t> bytes, const TfheParameters & params,
                                           std::string_view source = kMemorySource);

// Evaluation keys: key switching from the big key to the small key (KS base log and levels of
// the set), bootstrapping from the small key to the GLWE key (PBS base log and levels), in
// the standard domain (convert_to_fourier_lwe_bootstrap_key after loading) or seeded. The
// bootstrapping key of a multi-bit set has its own object kinds ("BM", "ZM"), with the grouping
// factor among its dimensions.
std::vector<uint8_t> serialize_lwe_keyswitch_key(const LweKeyswitchKey & key, const TfheParameters & params);
LweKeyswitchKey deserialize_lwe_keyswitch_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                              std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_seeded_lwe_keyswitch_key(const SeededLweKeyswitchKey & key,
                                                        const TfheParameters & params);
SeededLweKeyswitchKey deserialize_seeded_lwe_keyswitch_key(std::span<const uint8_t> bytes,
                                                           const TfheParameters & params,
                                                           std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_lwe_bootstrap_key(const LweBootstrapKey & key, const TfheParameters & params);
LweBootstrapKey deserialize_lwe_bootstrap_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                              std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_seeded_lwe_bootstrap_key(const SeededLweBootstrapKey & key,
                                                        const TfheParameters & params);
SeededLweBootstrapKey deserialize_seeded_lwe_bootstrap_key(std::span<const uint8_t> bytes,
                                                           const TfheParameters & params,
                                                           std::string_view source = kMemorySource);

// Key bundles of keyset.h: a blob whose payload is the blobs of its parts, each preceded by
// its u64 length (client key: LWE then GLWE secret key; compressed server key: seeded
// key-switching key then seeded bootstrap key). `parameters` of the result is `params`.
std::vector<uint8_t> serialize_client_key(const ClientKey & key);
ClientKey deserialize_client_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                 std::string_view source = kMemorySource);
std::vector<uint8_t> serialize_compressed_server_key(const CompressedServerKey & key);
CompressedServerKey deserialize_compressed_server_key(std::span<const uint8_t> bytes, const TfheParameters & params,
                                                      std::string_view source = kMemorySource);

// Files: written to `path`.tmp, synced, then renamed (a reader never sees half a blob); read by
// mapping the file (MappedFile: no copy, no allocation of its size). Errors name the path.
// Secret key files are created readable by their owner only.
enum class FileAccess { Public, OwnerOnly };
void write_blob_file(const std::string & path, std::span<const uint8_t> bytes, FileAccess access = FileAccess::Public);
void save_client_key(const std::string & path, const ClientKey & key);
ClientKey load_client_key(const std::string & path, const TfheParameters & params);
// The parameter set is the one the file names (parameters_of_blob).
ClientKey load_client_key(const std::string & path);
void save_compressed_server_key(const std::string & path, const CompressedServerKey & key);
CompressedServerKey load_compressed_server_key(const std::string & path, const TfheParameters & params);
CompressedServerKey load_compressed_server_key(const std::string & path);

// Exact blob sizes in bytes, computed from the parameters alone (no key generated).
struct EvaluationKeySizes {
    uint64_t bootstrap_key_bytes = 0;            // LweBootstrapKey, standard domain
    uint64_t bootstrap_key_compressed_bytes = 0; // SeededLweBootstrapKey
    uint64_t keyswitch_key_bytes = 0;            // LweKeyswitchKey
    uint64_t keyswitch_key_compressed_bytes = 0; // SeededLweKeyswitchKey
    uint64_t fine_bootstrap_key_bytes = 0;       // the second bootstrapping key of a set with one (else 0)
    uint64_t fine_bootstrap_key_compressed_bytes = 0;

    // What a client uploads: the compressed keys of the set (the bundle adds a few header bytes).
    uint64_t compressed_upload_bytes() const {
        return bootstrap_key_compressed_bytes + keyswitch_key_compressed_bytes + fine_bootstrap_key_compressed_bytes;
    }
};
EvaluationKeySizes serialized_evaluation_key_sizes(const TfheParameters & params);
uint64_t serialized_lwe_ciphertext_vector_size(const TfheParameters & params, LweKeyChoice choice, uint64_t count);
// Shared-seed layout (one seed, consecutive streams).
uint64_t serialized_seeded_lwe_ciphertext_vector_size(const TfheParameters & params, LweKeyChoice choice,
                                                      uint64_t count);

} // namespace fhegpt::tfhe
