// libFuzzer target: every TFHE blob loader (tfhe/serialization) on arbitrary bytes.
//
// Input: a selector byte, then the blob. Selector bits 0-3 pick the loader (13 kinds, then
// read_blob_info / parameters_of_blob), bits 4-5 the expected parameter set, bit 6 the LWE key
// (small or big), bit 7 a multi-bit set instead (grouping factor 2 or 3: its bootstrapping keys
// have their own kinds). Besides an insecure test set, tiny sets defined here keep valid key
// blobs under libFuzzer's length limit, so the fuzzer reaches the payload parsers too.
// Only fhegpt::Error may leave a loader; any other exception, a crash or a sanitizer report is
// a bug. An accepted blob must serialize back to the same bytes (the format is canonical;
// seeded ciphertext vectors may change layout, so for them the objects are compared).
//
// Seeds: fuzz/corpus/fuzz-tfhe-deserialize/, written by this file built with
// -DFHEGPT_FUZZ_WRITE_SEEDS as a program taking the output directory.
#include "common/error.h"
#include "tfhe/serialization/serialization.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace {

using namespace fhegpt::tfhe;
using Bytes = std::vector<uint8_t>;

void require(bool condition) {
    if (!condition) __builtin_trap();
}

TfheParameters tiny_parameters(const char * name, size_t n, size_t k, size_t big_n, size_t pbs_levels,
                               size_t ks_levels, size_t grouping_factor = 1) {
    TfheParameters p;
    p.name = name;
    p.source = "fuzz target (insecure)";
    p.message_bits = 2;
    p.lwe_dimension = LweDimension{n};
    p.glwe_dimension = GlweDimension{k};
    p.polynomial_size = PolynomialSize{big_n};
    p.lwe_noise = NoiseDistribution::t_uniform(40);
    p.glwe_noise = NoiseDistribution::t_uniform(20);
    p.pbs_base_log = DecompositionBaseLog{10};
    p.pbs_level_count = DecompositionLevelCount{pbs_levels};
    p.ks_base_log = DecompositionBaseLog{4};
    p.ks_level_count = DecompositionLevelCount{ks_levels};
    p.grouping_factor = LweBskGroupingFactor{grouping_factor};
    p.insecure = true;
    return p;
}

const TfheParameters & parameters_for(uint8_t selector) {
    static const TfheParameters sets[] = {
        tiny_parameters("FUZZ_TINY_K1", 4, 1, 8, 1, 2),
        tiny_parameters("FUZZ_TINY_K2", 3, 2, 4, 2, 1),
        parameters_by_name("INSECURE_TEST_2BIT"),
        tiny_parameters("INSECURE_TEST_2BIT", 4, 1, 8, 1, 2), // known name, other values
        tiny_parameters("FUZZ_TINY_K1_G2", 4, 1, 8, 1, 2, 2),
        tiny_parameters("FUZZ_TINY_K2_G3", 3, 2, 4, 2, 1, 3),
        parameters_by_name("INSECURE_TEST_4BIT_MULTI_BIT_G2"),
        tiny_parameters("INSECURE_TEST_4BIT_MULTI_BIT_G2", 4, 1, 8, 1, 2, 2), // known name, other values
    };
    return sets[((selector >> 4) & 3) + ((selector & 0x80) ? 4 : 0)];
}

template <typename T>
void require_same_bytes(std::span<const uint8_t> input, const T & serialized) {
    require(serialized.size() == input.size() && std::memcmp(serialized.data(), input.data(), input.size()) == 0);
}

void load(uint8_t selector, std::span<const uint8_t> blob) {
    const TfheParameters & p = parameters_for(selector);
    const LweKeyChoice choice = (selector & 0x40) ? LweKeyChoice::Big : LweKeyChoice::Small;
    switch (selector & 0x0f) {
    case 0: require_same_bytes(blob, serialize_lwe_secret_key(deserialize_lwe_secret_key(blob, p, choice), p)); break;
    case 1: require_same_bytes(blob, serialize_glwe_secret_key(deserialize_glwe_secret_key(blob, p), p)); break;
    case 2: require_same_bytes(blob, serialize_lwe_ciphertext(deserialize_lwe_ciphertext(blob, p, choice), p)); break;
    case 3: {
        std::vector<LweCiphertext> cts = deserialize_lwe_ciphertext_vector(blob, p, choice);
        for (const LweCiphertext & c : cts) require(c.lwe_dimension() == lwe_dimension_of(p, choice));
        // An empty vector is always written with the big dimension.
        if (!cts.empty() || choice == LweKeyChoice::Big) require_same_bytes(blob, serialize_lwe_ciphertext_vector(cts, p));
        break;
    }
    case 4:
        require_same_bytes(blob,
                           serialize_seeded_lwe_ciphertext(deserialize_seeded_lwe_ciphertext(blob, p, choice), p));
        break;
    case 5: {
        std::vector<SeededLweCiphertext> cts = deserialize_seeded_lwe_ciphertext_vector(blob, p, choice);
        if (!cts.empty()) {
            Bytes again = serialize_seeded_lwe_ciphertext_vector(cts, p);
            require(again.size() <= blob.size());
            require(deserialize_seeded_lwe_ciphertext_vector(again, p, choice) == cts);
        }
        break;
    }
    case 6: require_same_bytes(blob, serialize_glwe_ciphertext(deserialize_glwe_ciphertext(blob, p), p)); break;
    case 7: require_same_bytes(blob, serialize_lwe_keyswitch_key(deserialize_lwe_keyswitch_key(blob, p), p)); break;
    case 8:
        require_same_bytes(blob,
                           serialize_seeded_lwe_keyswitch_key(deserialize_seeded_lwe_keyswitch_key(blob, p), p));
        break;
    case 9: require_same_bytes(blob, serialize_lwe_bootstrap_key(deserialize_lwe_bootstrap_key(blob, p), p)); break;
    case 10:
        require_same_bytes(blob,
                           serialize_seeded_lwe_bootstrap_key(deserialize_seeded_lwe_bootstrap_key(blob, p), p));
        break;
    case 11: {
        ClientKey key = deserialize_client_key(blob, p);
        require(key.big_lwe_secret_key.lwe_dimension() == p.big_lwe_dimension());
        require_same_bytes(blob, serialize_client_key(key));
        break;
    }
    case 12: require_same_bytes(blob, serialize_compressed_server_key(deserialize_compressed_server_key(blob, p))); break;
    default: {
        BlobInfo info = read_blob_info(blob);
        require(is_known_object_kind(static_cast<uint16_t>(info.kind)));
        require(!info.parameter_name.empty() && info.parameter_name.size() <= kMaxParameterNameLength);
        const TfheParameters & known = parameters_of_blob(blob);
        require(known.name == info.parameter_name && parameter_set_hash(known) == info.parameter_hash);
        break;
    }
    }
}

} // namespace

#ifndef FHEGPT_FUZZ_WRITE_SEEDS

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size == 0) return 0;
    try {
        load(data[0], std::span<const uint8_t>(data + 1, size - 1));
    } catch (const fhegpt::Error &) {
        // Rejected input: the expected outcome for most of it.
    }
    return 0;
}

#else

#include "tfhe/tfhe.h"

#include <cstdio>
#include <string>

// Writes one valid blob per loader (selector byte first) for the tiny sets.
int main(int argc, char ** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIRECTORY\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    RandomGenerator rng(Seed{}, 7);
    int count = 0;
    auto write = [&](uint8_t selector, const Bytes & blob) {
        Bytes file{selector};
        file.insert(file.end(), blob.begin(), blob.end());
        char name[64];
        std::snprintf(name, sizeof name, "/seed-%02d-%02x", count++, selector);
        write_blob_file(dir + name, file);
        load(selector, std::span<const uint8_t>(file).subspan(1)); // must be accepted
    };
    // The classic tiny sets first, then their multi-bit counterparts (bit 7).
    for (uint8_t set : {0x00, 0x10, 0x80, 0x90}) {
        const uint8_t s = set;
        const TfheParameters & p = parameters_for(s);
        ClientKey client;
        client.parameters = p;
        RandomGenerator secret = RandomGenerator::from_os();
        client.lwe_secret_key = generate_binary_lwe_secret_key(p.lwe_dimension, secret);
        client.glwe_secret_key = generate_binary_glwe_secret_key(p.glwe_dimension, p.polynomial_size, secret);
        client.big_lwe_secret_key = client.glwe_secret_key.as_lwe_secret_key();
        CompressedServerKey server = generate_compressed_server_key(client);
        LweCiphertext big = encrypt_message(client, 1, 4);
        std::vector<LweCiphertext> bigs = {big, encrypt_message(client, 2, 4)};
        Seed seed = Seed::from_os();
        std::vector<SeededLweCiphertext> seeded = {encrypt_message_seeded(client, 1, 4, seed, 5),
                                                   encrypt_message_seeded(client, 3, 4, seed, 6)};
        std::vector<SeededLweCiphertext> separate = {seeded[0], encrypt_message_seeded(client, 0, 4, Seed::from_os(), 9)};
        GlweCiphertext glwe(p.glwe_dimension, p.polynomial_size);
        rng.fill_uniform(glwe.data);
        write(s | 0x00, serialize_lwe_secret_key(client.lwe_secret_key, p));
        write(s | 0x01, serialize_glwe_secret_key(client.glwe_secret_key, p));
        write(s | 0x42, serialize_lwe_ciphertext(big, p));
        write(s | 0x43, serialize_lwe_ciphertext_vector(bigs, p));
        write(s | 0x44, serialize_seeded_lwe_ciphertext(seeded[0], p));
        write(s | 0x45, serialize_seeded_lwe_ciphertext_vector(seeded, p));
        write(s | 0x45, serialize_seeded_lwe_ciphertext_vector(separate, p));
        write(s | 0x06, serialize_glwe_ciphertext(glwe, p));
        write(s | 0x07, serialize_lwe_keyswitch_key(decompress_seeded_lwe_keyswitch_key(server.keyswitch_key), p));
        write(s | 0x08, serialize_seeded_lwe_keyswitch_key(server.keyswitch_key, p));
        write(s | 0x09, serialize_lwe_bootstrap_key(decompress_seeded_lwe_bootstrap_key(server.bootstrap_key), p));
        write(s | 0x0a, serialize_seeded_lwe_bootstrap_key(server.bootstrap_key, p));
        write(s | 0x0b, serialize_client_key(client));
        write(s | 0x0c, serialize_compressed_server_key(server));
    }
    return 0;
}

#endif
