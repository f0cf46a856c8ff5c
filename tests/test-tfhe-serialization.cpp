// Serialization of TFHE keys and ciphertexts: round trips (reloaded keys decrypt and bootstrap),
// compressed forms, size figures, and every way a blob can be rejected.
#include "common/error.h"
#include "tfhe/serialization/serialization.h"
#include "tfhe/tfhe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <new>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

// ---- largest single allocation, to check that hostile sizes allocate nothing big, and the ----
// ---- number of allocations, to check that they cause no work proportional to the claim -----

namespace {
std::atomic<size_t> g_largest_allocation{0};
std::atomic<size_t> g_allocations{0};
void note_allocation(size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
    while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {}
}
void * counted_malloc(size_t size) {
    note_allocation(size);
    if (void * p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
} // namespace

void * operator new(size_t size) { return counted_malloc(size); }
void * operator new[](size_t size) { return counted_malloc(size); }
void operator delete(void * p) noexcept { std::free(p); }
void operator delete[](void * p) noexcept { std::free(p); }
void operator delete(void * p, size_t) noexcept { std::free(p); }
void operator delete[](void * p, size_t) noexcept { std::free(p); }

namespace fhegpt::tfhe {
namespace {

using Bytes = std::vector<uint8_t>;

// Runs `f`, which must throw fhegpt::Error whose message contains `needle`.
void expect_error(const std::function<void()> & f, const std::string & needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const Error & e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
            << "message '" << e.what() << "' lacks '" << needle << "'";
    }
}

// Offsets inside a blob (format.h).
size_t dimension_offset(const TfheParameters & params, size_t i) { return 12 + params.name.size() + 8 + 8 * i; }

void put_u64(Bytes & blob, size_t offset, uint64_t value) {
    for (size_t i = 0; i < 8; ++i) blob.at(offset + i) = static_cast<uint8_t>(value >> (8 * i));
}
uint64_t get_u64(const Bytes & blob, size_t offset) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v |= uint64_t{blob.at(offset + i)} << (8 * i);
    return v;
}

// One client key and its server keys for a parameter set, generated once per test binary.
struct TestKeys {
    const TfheParameters * params;
    ClientKey client;
    CompressedServerKey compressed;
    LweKeyswitchKey keyswitch_key;
    LweBootstrapKey bootstrap_key;
};

const TestKeys & keys_for(const char * name) {
    static std::map<std::string, TestKeys> cache;
    auto it = cache.find(name);
    if (it != cache.end()) return it->second;
    TestKeys keys;
    keys.params = &parameters_by_name(name);
    keys.client = generate_client_key(*keys.params);
    keys.compressed = generate_compressed_server_key(keys.client);
    keys.keyswitch_key = decompress_seeded_lwe_keyswitch_key(keys.compressed.keyswitch_key);
    keys.bootstrap_key = decompress_seeded_lwe_bootstrap_key(keys.compressed.bootstrap_key);
    return cache.emplace(name, std::move(keys)).first->second;
}

constexpr const char * kSet = "INSECURE_TEST_2BIT";
constexpr const char * kOtherSet = "INSECURE_TEST_4BIT";
// A multi-bit set: its bootstrapping keys have their own kinds and a grouping factor dimension.
constexpr const char * kMultiBitSet = "INSECURE_TEST_4BIT_MULTI_BIT_G2";

ObjectKind bootstrap_key_kind(const TfheParameters & p, bool seeded) {
    if (p.is_multi_bit()) return seeded ? ObjectKind::SeededLweMultiBitBootstrapKey : ObjectKind::LweMultiBitBootstrapKey;
    return seeded ? ObjectKind::SeededLweBootstrapKey : ObjectKind::LweBootstrapKey;
}

// Every loader, by the kind it expects with parameters `params`; LWE objects under the big key.
struct Loader {
    ObjectKind kind;
    std::function<void(std::span<const uint8_t>, const TfheParameters &)> load;
};

std::vector<Loader> all_loaders(const TfheParameters & params) {
    using S = std::span<const uint8_t>;
    using P = const TfheParameters &;
    const auto big = LweKeyChoice::Big;
    return {
        {ObjectKind::LweSecretKey, [](S b, P p) { deserialize_lwe_secret_key(b, p, LweKeyChoice::Small); }},
        {ObjectKind::GlweSecretKey, [](S b, P p) { deserialize_glwe_secret_key(b, p); }},
        {ObjectKind::LweCiphertext, [=](S b, P p) { deserialize_lwe_ciphertext(b, p, big); }},
        {ObjectKind::LweCiphertextVector, [=](S b, P p) { deserialize_lwe_ciphertext_vector(b, p, big); }},
        {ObjectKind::SeededLweCiphertext, [=](S b, P p) { deserialize_seeded_lwe_ciphertext(b, p, big); }},
        {ObjectKind::SeededLweCiphertextVector, [=](S b, P p) { deserialize_seeded_lwe_ciphertext_vector(b, p, big); }},
        {ObjectKind::GlweCiphertext, [](S b, P p) { deserialize_glwe_ciphertext(b, p); }},
        {ObjectKind::LweKeyswitchKey, [](S b, P p) { deserialize_lwe_keyswitch_key(b, p); }},
        {ObjectKind::SeededLweKeyswitchKey, [](S b, P p) { deserialize_seeded_lwe_keyswitch_key(b, p); }},
        {bootstrap_key_kind(params, false), [](S b, P p) { deserialize_lwe_bootstrap_key(b, p); }},
        {bootstrap_key_kind(params, true), [](S b, P p) { deserialize_seeded_lwe_bootstrap_key(b, p); }},
        {ObjectKind::ClientKey, [](S b, P p) { deserialize_client_key(b, p); }},
        {ObjectKind::CompressedServerKey, [](S b, P p) { deserialize_compressed_server_key(b, p); }},
    };
}

struct SampleBlob {
    ObjectKind kind;
    Bytes bytes;
    size_t dimension_count;
};

// One valid blob of every kind for `keys`, LWE objects under the big key.
std::vector<SampleBlob> sample_blobs(const TestKeys & keys) {
    const TfheParameters & p = *keys.params;
    const uint64_t modulus = p.message_modulus();
    std::vector<LweCiphertext> cts;
    std::vector<SeededLweCiphertext> seeded;
    const Seed seed = Seed::from_os();
    for (uint64_t m = 0; m < 3; ++m) {
        cts.push_back(encrypt_message(keys.client, m, modulus));
        seeded.push_back(encrypt_message_seeded(keys.client, m, modulus, seed, 10 + m));
    }
    GlweCiphertext glwe(p.glwe_dimension, p.polynomial_size);
    for (size_t i = 0; i < glwe.data.size(); ++i) glwe.data[i] = i * 0x9e3779b97f4a7c15ULL;
    return {
        {ObjectKind::LweSecretKey, serialize_lwe_secret_key(keys.client.lwe_secret_key, p), 1},
        {ObjectKind::GlweSecretKey, serialize_glwe_secret_key(keys.client.glwe_secret_key, p), 2},
        {ObjectKind::LweCiphertext, serialize_lwe_ciphertext(cts[0], p), 1},
        {ObjectKind::LweCiphertextVector, serialize_lwe_ciphertext_vector(cts, p), 2},
        {ObjectKind::SeededLweCiphertext, serialize_seeded_lwe_ciphertext(seeded[0], p), 1},
        {ObjectKind::SeededLweCiphertextVector, serialize_seeded_lwe_ciphertext_vector(seeded, p), 3},
        {ObjectKind::GlweCiphertext, serialize_glwe_ciphertext(glwe, p), 2},
        {ObjectKind::LweKeyswitchKey, serialize_lwe_keyswitch_key(keys.keyswitch_key, p), 4},
        {ObjectKind::SeededLweKeyswitchKey, serialize_seeded_lwe_keyswitch_key(keys.compressed.keyswitch_key, p), 4},
        {bootstrap_key_kind(p, false), serialize_lwe_bootstrap_key(keys.bootstrap_key, p), p.is_multi_bit() ? 6u : 5u},
        {bootstrap_key_kind(p, true), serialize_seeded_lwe_bootstrap_key(keys.compressed.bootstrap_key, p),
         p.is_multi_bit() ? 6u : 5u},
        {ObjectKind::ClientKey, serialize_client_key(keys.client), 0},
        {ObjectKind::CompressedServerKey, serialize_compressed_server_key(keys.compressed), 0},
    };
}

const Loader & loader_for(const std::vector<Loader> & loaders, ObjectKind kind) {
    for (const Loader & l : loaders)
        if (l.kind == kind) return l;
    std::abort();
}

// Bootstraps every message through x -> (x + 1) mod p with `server` and checks the result
// decrypts right under `client`.
void expect_bootstraps(const ClientKey & client, const ServerKey & server) {
    const uint64_t p = client.parameters.message_modulus();
    const LookupTable lut = generate_lookup_table(server, p, p, [&](uint64_t m) { return (m + 1) % p; });
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(server);
    for (uint64_t m = 0; m < p; ++m) {
        LweCiphertext out = allocate_lwe_ciphertext(server);
        keyswitch_bootstrap(server, encrypt_message(client, m, p), out, lut, workspace);
        EXPECT_EQ(decrypt_message(client, out, p), (m + 1) % p) << "message " << m;
    }
}

// ---- round trips ---------------------------------------------------------------------------

TEST(TfheSerialization, SecretKeysRoundTrip) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    EXPECT_EQ(deserialize_lwe_secret_key(serialize_lwe_secret_key(keys.client.lwe_secret_key, p), p,
                                         LweKeyChoice::Small),
              keys.client.lwe_secret_key);
    EXPECT_EQ(deserialize_lwe_secret_key(serialize_lwe_secret_key(keys.client.big_lwe_secret_key, p), p,
                                         LweKeyChoice::Big),
              keys.client.big_lwe_secret_key);
    EXPECT_EQ(deserialize_glwe_secret_key(serialize_glwe_secret_key(keys.client.glwe_secret_key, p), p),
              keys.client.glwe_secret_key);
    const ClientKey reloaded = deserialize_client_key(serialize_client_key(keys.client), p);
    EXPECT_EQ(reloaded.parameters.name, p.name);
    EXPECT_EQ(reloaded.lwe_secret_key, keys.client.lwe_secret_key);
    EXPECT_EQ(reloaded.glwe_secret_key, keys.client.glwe_secret_key);
    EXPECT_EQ(reloaded.big_lwe_secret_key, keys.client.big_lwe_secret_key);
    for (uint64_t m = 0; m < p.message_modulus(); ++m)
        EXPECT_EQ(decrypt_message(reloaded, encrypt_message(keys.client, m, p.message_modulus()), p.message_modulus()),
                  m);
}

TEST(TfheSerialization, LweCiphertextsRoundTrip) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    const uint64_t modulus = p.message_modulus();
    std::vector<LweCiphertext> cts;
    for (uint64_t m = 0; m < 2 * modulus; ++m) cts.push_back(encrypt_message(keys.client, m % modulus, modulus));
    const LweCiphertext one = deserialize_lwe_ciphertext(serialize_lwe_ciphertext(cts[1], p), p, LweKeyChoice::Big);
    EXPECT_EQ(one, cts[1]);
    EXPECT_EQ(decrypt_message(keys.client, one, modulus), 1u);

    const Bytes vector_blob = serialize_lwe_ciphertext_vector(cts, p);
    EXPECT_EQ(vector_blob.size(), serialized_lwe_ciphertext_vector_size(p, LweKeyChoice::Big, cts.size()));
    const std::vector<LweCiphertext> reloaded = deserialize_lwe_ciphertext_vector(vector_blob, p, LweKeyChoice::Big);
    ASSERT_EQ(reloaded.size(), cts.size());
    for (size_t i = 0; i < cts.size(); ++i) {
        EXPECT_EQ(reloaded[i], cts[i]);
        EXPECT_EQ(decrypt_message(keys.client, reloaded[i], modulus), i % modulus);
    }
    EXPECT_TRUE(deserialize_lwe_ciphertext_vector(serialize_lwe_ciphertext_vector({}, p), p, LweKeyChoice::Big).empty());

    // Under the small key: a key-switched ciphertext.
    LweCiphertext small(p.lwe_dimension);
    keyswitch_lwe_ciphertext(keys.keyswitch_key, cts[1], small);
    const LweCiphertext small_reloaded =
        deserialize_lwe_ciphertext(serialize_lwe_ciphertext(small, p), p, LweKeyChoice::Small);
    EXPECT_EQ(small_reloaded, small);
    EXPECT_EQ(decode_message(decrypt_lwe_ciphertext(keys.client.lwe_secret_key, small_reloaded), modulus), 1u);
    expect_error([&] { deserialize_lwe_ciphertext(serialize_lwe_ciphertext(small, p), p, LweKeyChoice::Big); },
                 "LWE dimension 64, expected 512");
}

TEST(TfheSerialization, SeededLweCiphertextsRoundTripAndShrink) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    const uint64_t modulus = p.message_modulus();
    const Seed seed = Seed::from_os();
    std::vector<SeededLweCiphertext> shared, separate;
    std::vector<LweCiphertext> plain;
    for (uint64_t i = 0; i < 16; ++i) {
        shared.push_back(encrypt_message_seeded(keys.client, i % modulus, modulus, seed, 100 + i));
        separate.push_back(encrypt_message_seeded(keys.client, i % modulus, modulus, Seed::from_os(), i));
        plain.push_back(decompress_seeded_lwe_ciphertext(shared.back()));
    }
    const SeededLweCiphertext one =
        deserialize_seeded_lwe_ciphertext(serialize_seeded_lwe_ciphertext(shared[3], p), p, LweKeyChoice::Big);
    EXPECT_EQ(one, shared[3]);
    EXPECT_EQ(decompress_seeded_lwe_ciphertext(one), plain[3]);

    const Bytes shared_blob = serialize_seeded_lwe_ciphertext_vector(shared, p);
    const Bytes separate_blob = serialize_seeded_lwe_ciphertext_vector(separate, p);
    EXPECT_EQ(shared_blob.size(), serialized_seeded_lwe_ciphertext_vector_size(p, LweKeyChoice::Big, shared.size()));
    EXPECT_EQ(deserialize_seeded_lwe_ciphertext_vector(shared_blob, p, LweKeyChoice::Big), shared);
    EXPECT_EQ(deserialize_seeded_lwe_ciphertext_vector(separate_blob, p, LweKeyChoice::Big), separate);
    for (size_t i = 0; i < shared.size(); ++i)
        EXPECT_EQ(decrypt_message(keys.client,
                                  decompress_seeded_lwe_ciphertext(
                                      deserialize_seeded_lwe_ciphertext_vector(separate_blob, p, LweKeyChoice::Big)[i]),
                                  modulus),
                  i % modulus);
    EXPECT_TRUE(
        deserialize_seeded_lwe_ciphertext_vector(serialize_seeded_lwe_ciphertext_vector({}, p), p, LweKeyChoice::Big)
            .empty());

    const double ratio = double(serialize_lwe_ciphertext_vector(plain, p).size()) / double(shared_blob.size());
    std::printf("16 LWE ciphertexts (n = %zu): %zu bytes plain, %zu seeded (shared seed, ratio %.1f), %zu seeded "
                "(separate seeds)\n",
                p.big_lwe_dimension().value, serialize_lwe_ciphertext_vector(plain, p).size(), shared_blob.size(),
                ratio, separate_blob.size());
    EXPECT_GT(ratio, 50.0);
}

TEST(TfheSerialization, GlweCiphertextRoundTrip) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    GlweCiphertext glwe(p.glwe_dimension, p.polynomial_size);
    for (size_t i = 0; i < glwe.data.size(); ++i) glwe.data[i] = ~uint64_t{0} - 3 * i;
    EXPECT_EQ(deserialize_glwe_ciphertext(serialize_glwe_ciphertext(glwe, p), p), glwe);
}

TEST(TfheSerialization, EvaluationKeysRoundTripAndBootstrap) {
    for (const char * name : {kSet, "INSECURE_TEST_4BIT_K2_L2", kMultiBitSet, "INSECURE_TEST_4BIT_MULTI_BIT_G3"}) {
        SCOPED_TRACE(name);
        const TestKeys & keys = keys_for(name);
        const TfheParameters & p = *keys.params;
        const EvaluationKeySizes sizes = serialized_evaluation_key_sizes(p);

        const Bytes ksk_blob = serialize_lwe_keyswitch_key(keys.keyswitch_key, p);
        const Bytes seeded_ksk_blob = serialize_seeded_lwe_keyswitch_key(keys.compressed.keyswitch_key, p);
        const Bytes bsk_blob = serialize_lwe_bootstrap_key(keys.bootstrap_key, p);
        const Bytes seeded_bsk_blob = serialize_seeded_lwe_bootstrap_key(keys.compressed.bootstrap_key, p);
        EXPECT_EQ(ksk_blob.size(), sizes.keyswitch_key_bytes);
        EXPECT_EQ(seeded_ksk_blob.size(), sizes.keyswitch_key_compressed_bytes);
        EXPECT_EQ(bsk_blob.size(), sizes.bootstrap_key_bytes);
        EXPECT_EQ(seeded_bsk_blob.size(), sizes.bootstrap_key_compressed_bytes);

        const LweKeyswitchKey ksk = deserialize_lwe_keyswitch_key(ksk_blob, p);
        const LweBootstrapKey bsk = deserialize_lwe_bootstrap_key(bsk_blob, p);
        const SeededLweKeyswitchKey seeded_ksk = deserialize_seeded_lwe_keyswitch_key(seeded_ksk_blob, p);
        const SeededLweBootstrapKey seeded_bsk = deserialize_seeded_lwe_bootstrap_key(seeded_bsk_blob, p);
        EXPECT_EQ(ksk, keys.keyswitch_key);
        EXPECT_EQ(bsk, keys.bootstrap_key);
        EXPECT_EQ(seeded_ksk, keys.compressed.keyswitch_key);
        EXPECT_EQ(seeded_bsk, keys.compressed.bootstrap_key);
        // The compressed forms decompress to what the plain ones are.
        EXPECT_EQ(decompress_seeded_lwe_keyswitch_key(seeded_ksk), ksk);
        EXPECT_EQ(decompress_seeded_lwe_bootstrap_key(seeded_bsk), bsk);
        std::printf("%s: bootstrap key %zu bytes, compressed %zu (ratio %.2f); key-switching key %zu bytes, "
                    "compressed %zu (ratio %.1f)\n",
                    name, bsk_blob.size(), seeded_bsk_blob.size(), double(bsk_blob.size()) / seeded_bsk_blob.size(),
                    ksk_blob.size(), seeded_ksk_blob.size(), double(ksk_blob.size()) / seeded_ksk_blob.size());
        EXPECT_GT(double(bsk_blob.size()) / seeded_bsk_blob.size(), p.glwe_dimension.value + 0.99);
        EXPECT_GT(double(ksk_blob.size()) / seeded_ksk_blob.size(), p.lwe_dimension.value * 0.9);

        // Bootstrapping with the reloaded plain keys and the reloaded client key.
        ServerKey server;
        server.parameters = p;
        server.keyswitch_key = ksk;
        server.bootstrap_key = convert_to_fourier_lwe_bootstrap_key(bsk);
        const ClientKey client = deserialize_client_key(serialize_client_key(keys.client), p);
        expect_bootstraps(client, server);
    }
}

TEST(TfheSerialization, KeyFilesRoundTripAndBootstrap) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      ("fhegpt-test-serialization-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string client_path = (dir / "client.key").string(), server_path = (dir / "server.key").string();
    save_client_key(client_path, keys.client);
    save_compressed_server_key(server_path, keys.compressed);
    struct stat st {};
    ASSERT_EQ(::stat(client_path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u); // secret
    EXPECT_FALSE(std::filesystem::exists(client_path + ".tmp"));

    const ClientKey client = load_client_key(client_path); // parameters named by the file
    EXPECT_EQ(client.parameters.name, p.name);
    EXPECT_EQ(client.glwe_secret_key, keys.client.glwe_secret_key);
    const CompressedServerKey compressed = load_compressed_server_key(server_path, p);
    EXPECT_EQ(compressed.bootstrap_key, keys.compressed.bootstrap_key);
    EXPECT_EQ(compressed.keyswitch_key, keys.compressed.keyswitch_key);
    expect_bootstraps(client, decompress_server_key(compressed));

    expect_error([&] { load_client_key(server_path, p); }, "is a compressed server key blob, expected a client key");
    expect_error([&] { load_client_key(server_path, parameters_by_name(kOtherSet)); }, server_path);
    expect_error([&] { load_client_key((dir / "missing").string()); }, "cannot open");
    std::filesystem::remove_all(dir);
}

TEST(TfheSerialization, SizeFiguresOfProductionSets) {
    std::printf("%-30s %14s %14s %6s %14s %12s %6s\n", "parameter set", "bsk bytes", "bsk compressed", "ratio",
                "ksk bytes", "ksk compr.", "ratio");
    for (const TfheParameters * p : production_parameter_sets()) {
        const EvaluationKeySizes s = serialized_evaluation_key_sizes(*p);
        std::printf("%-30s %14llu %14llu %6.2f %14llu %12llu %6.1f\n", p->name.c_str(),
                    (unsigned long long)s.bootstrap_key_bytes, (unsigned long long)s.bootstrap_key_compressed_bytes,
                    double(s.bootstrap_key_bytes) / s.bootstrap_key_compressed_bytes,
                    (unsigned long long)s.keyswitch_key_bytes, (unsigned long long)s.keyswitch_key_compressed_bytes,
                    double(s.keyswitch_key_bytes) / s.keyswitch_key_compressed_bytes);
        // Payload sizes from the entity definitions, plus a header of under 200 bytes.
        const uint64_t n = p->lwe_dimension.value, k = p->glwe_dimension.value, big_n = p->polynomial_size.value;
        const uint64_t ggsws = p->is_multi_bit() ? n / p->grouping_factor.value << p->grouping_factor.value : n;
        const uint64_t bsk = ggsws * p->pbs_level_count.value * (k + 1) * (k + 1) * big_n * 8;
        const uint64_t ksk = k * big_n * p->ks_level_count.value * (n + 1) * 4;
        EXPECT_GT(s.bootstrap_key_bytes, bsk);
        EXPECT_LT(s.bootstrap_key_bytes, bsk + 200);
        EXPECT_GT(s.keyswitch_key_bytes, ksk);
        EXPECT_LT(s.keyswitch_key_bytes, ksk + 200);
        EXPECT_LT(s.bootstrap_key_compressed_bytes, bsk / (k + 1) + 250);
        EXPECT_LT(s.keyswitch_key_compressed_bytes, ksk / (n + 1) + 250);
    }
}

// ---- rejections ----------------------------------------------------------------------------

TEST(TfheSerialization, RejectsWrongMagicVersionAndKind) {
    for (const char * name : {kSet, kMultiBitSet}) {
        SCOPED_TRACE(name);
        const TestKeys & keys = keys_for(name);
        const TfheParameters & p = *keys.params;
        const std::vector<Loader> loaders = all_loaders(p);
        for (const SampleBlob & blob : sample_blobs(keys)) {
            SCOPED_TRACE(object_kind_name(blob.kind));
            const Loader & own = loader_for(loaders, blob.kind);
            EXPECT_NO_THROW(own.load(blob.bytes, p));
            EXPECT_EQ(read_blob_info(blob.bytes).kind, blob.kind);
            EXPECT_EQ(&parameters_of_blob(blob.bytes), &p);
            for (size_t i = 0; i < 6; ++i) {
                Bytes bad = blob.bytes;
                bad[i] ^= 0x20;
                expect_error([&] { own.load(bad, p); }, "bad magic");
            }
            for (uint16_t version : {0, 2, 0xffff}) {
                Bytes bad = blob.bytes;
                bad[8] = static_cast<uint8_t>(version);
                bad[9] = static_cast<uint8_t>(version >> 8);
                expect_error([&] { own.load(bad, p); }, "format version " + std::to_string(version) + " is not supported");
            }
            Bytes unknown = blob.bytes;
            unknown[6] = 'Q';
            expect_error([&] { own.load(unknown, p); }, "unknown object kind 'Q");
            for (const Loader & other : loaders) {
                if (other.kind == blob.kind) continue;
                expect_error([&] { other.load(blob.bytes, p); },
                             std::string("is a ") + object_kind_name(blob.kind) + " blob, expected a " +
                                 object_kind_name(other.kind));
            }
        }
    }
}

TEST(TfheSerialization, BootstrapKeysOfMultiBitAndClassicSetsDoNotMix) {
    const TestKeys & classic = keys_for(kOtherSet);
    const TestKeys & multi_bit = keys_for(kMultiBitSet);
    EXPECT_EQ(multi_bit.bootstrap_key.grouping_factor.value, 2u);
    EXPECT_EQ(multi_bit.compressed.bootstrap_key.grouping_factor.value, 2u);
    // Same n, k, N and noise: the names, hashes and kinds keep them apart.
    const Bytes multi_bit_blob = serialize_seeded_lwe_bootstrap_key(multi_bit.compressed.bootstrap_key, *multi_bit.params);
    const Bytes classic_blob = serialize_seeded_lwe_bootstrap_key(classic.compressed.bootstrap_key, *classic.params);
    EXPECT_EQ(read_blob_info(multi_bit_blob).kind, ObjectKind::SeededLweMultiBitBootstrapKey);
    expect_error([&] { deserialize_seeded_lwe_bootstrap_key(multi_bit_blob, *classic.params); },
                 "is a seeded LWE multi-bit bootstrap key blob, expected a seeded LWE bootstrap key");
    expect_error([&] { deserialize_seeded_lwe_bootstrap_key(classic_blob, *multi_bit.params); },
                 "is a seeded LWE bootstrap key blob, expected a seeded LWE multi-bit bootstrap key");
    // The same values but another grouping factor: another hash.
    TfheParameters regrouped = *multi_bit.params;
    regrouped.grouping_factor = LweBskGroupingFactor{4};
    EXPECT_NE(parameter_set_hash(regrouped), parameter_set_hash(*multi_bit.params));
    expect_error([&] { deserialize_seeded_lwe_bootstrap_key(multi_bit_blob, regrouped); }, "with other values");
    // The grouping factor dimension, which the kinds alone do not pin.
    Bytes wrong_group = multi_bit_blob;
    put_u64(wrong_group, dimension_offset(*multi_bit.params, 1), 4);
    expect_error([&] { deserialize_seeded_lwe_bootstrap_key(wrong_group, *multi_bit.params); },
                 "grouping factor 4, expected 2");
}

TEST(TfheSerialization, RejectsOtherParameterSet) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    for (const SampleBlob & blob : sample_blobs(keys_for(kOtherSet))) {
        SCOPED_TRACE(object_kind_name(blob.kind));
        expect_error([&] { loader_for(all_loaders(*keys_for(kOtherSet).params), blob.kind).load(blob.bytes, p); },
                     std::string("made for parameter set '") + kOtherSet + "', expected '" + kSet + "'");
    }
    // Same name, other values (a parameter set changed between builds).
    TfheParameters changed = p;
    changed.pbs_base_log = DecompositionBaseLog{p.pbs_base_log.value + 1};
    EXPECT_NE(parameter_set_hash(changed), parameter_set_hash(p));
    const Bytes blob = serialize_lwe_secret_key(keys.client.lwe_secret_key, p);
    expect_error([&] { deserialize_lwe_secret_key(blob, changed, LweKeyChoice::Small); }, "with other values");
    Bytes bad_hash = blob;
    bad_hash[12 + p.name.size()] ^= 1;
    expect_error([&] { parameters_of_blob(bad_hash); }, "differs from this build's");
    // A name this build does not know, or that is malformed.
    Bytes renamed = blob;
    renamed[12] = 'X';
    expect_error([&] { parameters_of_blob(renamed); }, "which this build does not know");
    expect_error([&] { deserialize_lwe_secret_key(renamed, p, LweKeyChoice::Small); }, "made for parameter set 'XNSECURE");
    Bytes bad_char = blob;
    bad_char[13] = ' ';
    expect_error([&] { deserialize_lwe_secret_key(bad_char, p, LweKeyChoice::Small); }, "invalid byte 0x20");
    for (uint16_t length : {0, 65, 0xffff}) {
        Bytes bad_length = blob;
        bad_length[10] = static_cast<uint8_t>(length);
        bad_length[11] = static_cast<uint8_t>(length >> 8);
        expect_error([&] { deserialize_lwe_secret_key(bad_length, p, LweKeyChoice::Small); }, "name length");
    }
}

TEST(TfheSerialization, RejectsEveryWrongDimension) {
    for (const char * name : {kSet, kMultiBitSet}) {
        SCOPED_TRACE(name);
        const TestKeys & keys = keys_for(name);
        const TfheParameters & p = *keys.params;
        const std::vector<Loader> loaders = all_loaders(p);
        for (const SampleBlob & blob : sample_blobs(keys)) {
            SCOPED_TRACE(object_kind_name(blob.kind));
            const Loader & own = loader_for(loaders, blob.kind);
            for (size_t d = 0; d < blob.dimension_count; ++d) {
                const size_t offset = dimension_offset(p, d);
                const uint64_t value = get_u64(blob.bytes, offset);
                // A vector's count and layout are free: a wrong one fails on the sizes that follow.
                const bool free_dimension = d >= 1 && (blob.kind == ObjectKind::LweCiphertextVector ||
                                                       blob.kind == ObjectKind::SeededLweCiphertextVector);
                for (uint64_t wrong : {value + 1, value - 1, value * 2, uint64_t{1} << 62, ~uint64_t{0}}) {
                    Bytes bad = blob.bytes;
                    put_u64(bad, offset, wrong);
                    g_largest_allocation = 0;
                    expect_error([&] { own.load(bad, p); }, free_dimension ? "" : std::to_string(wrong));
                    EXPECT_LT(g_largest_allocation.load(), size_t{1} << 16) << "dimension " << d << " = " << wrong;
                }
            }
            // The declared payload size.
            const size_t payload_offset = dimension_offset(p, blob.dimension_count);
            const uint64_t payload = get_u64(blob.bytes, payload_offset);
            for (uint64_t wrong : {payload + 1, payload - 1, uint64_t{1} << 63}) {
                Bytes bad = blob.bytes;
                put_u64(bad, payload_offset, wrong);
                expect_error([&] { own.load(bad, p); }, "declares a payload of " + std::to_string(wrong));
            }
        }
    }
}

// A set with a second bootstrapping key: the bundle carries it, at its own decomposition.
void check_server_key_with_a_fine_bootstrap_key(const char * name, const char * base) {
    SCOPED_TRACE(name);
    const TfheParameters & p = parameters_by_name(name);
    ASSERT_TRUE(p.has_fine_bootstrap());
    const TfheParameters fine = p.fine_bootstrap_parameters();
    EXPECT_EQ(fine.pbs_level_count.value, p.fine_pbs_level_count.value);
    EXPECT_FALSE(fine.has_fine_bootstrap());
    EXPECT_NE(p.pbs_level_count.value, fine.pbs_level_count.value);
    const TestKeys & keys = keys_for(name);
    ASSERT_TRUE(keys.compressed.fine_bootstrap_key.has_value());
    EXPECT_EQ(keys.compressed.fine_bootstrap_key->level_count.value, p.fine_pbs_level_count.value);
    const Bytes bytes = serialize_compressed_server_key(keys.compressed);
    const CompressedServerKey back = deserialize_compressed_server_key(bytes, p);
    ASSERT_TRUE(back.fine_bootstrap_key.has_value());
    EXPECT_EQ(*back.fine_bootstrap_key, *keys.compressed.fine_bootstrap_key);
    EXPECT_EQ(back.bootstrap_key, keys.compressed.bootstrap_key);
    const ServerKey server = decompress_server_key(back);
    expect_bootstraps(keys.client, server);
    // The fine key bootstraps too (same secret keys, finer decomposition).
    const LweCiphertext in = encrypt_message(keys.client, 3, 16);
    LweCiphertext out = allocate_lwe_ciphertext(server);
    const LookupTable lut = generate_lookup_table(server, 16, 16, [](uint64_t m) { return (m + 5) % 16; });
    BootstrapWorkspace workspace = allocate_bootstrap_workspace(server, ThreadPool::global(), BootstrapKeyKind::fine);
    const LweCiphertext * ins[1] = {&in};
    LweCiphertext * outs[1] = {&out};
    const LookupTable * luts[1] = {&lut};
    batch_keyswitch_bootstrap(server, BootstrapKeyKind::fine, ins, outs, luts, workspace);
    EXPECT_EQ(decrypt_message(keys.client, out, 16), 8u);
    // Every truncation of the fine part, and the bundle read as the single-key set, fail cleanly.
    for (size_t cut : {size_t{1}, size_t{8}, size_t{100}, bytes.size() / 3})
        expect_error([&] { deserialize_compressed_server_key(std::span<const uint8_t>(bytes).first(bytes.size() - cut), p); },
                     "");
    expect_error([&] { deserialize_compressed_server_key(bytes, parameters_by_name(base)); }, base);
}

TEST(TfheSerialization, ServerKeyWithAFineBootstrapKeyRoundTrips) {
    check_server_key_with_a_fine_bootstrap_key("INSECURE_TEST_4BIT_MIXED", "INSECURE_TEST_4BIT");
    check_server_key_with_a_fine_bootstrap_key("INSECURE_TEST_4BIT_MULTI_BIT_G4_MIXED", "INSECURE_TEST_4BIT_MULTI_BIT_G4");
}

TEST(TfheSerialization, RejectsEveryTruncationAndTrailingBytes) {
    size_t loads = 0;
    for (const char * name : {kSet, kMultiBitSet}) {
        SCOPED_TRACE(name);
        const TestKeys & keys = keys_for(name);
        const TfheParameters & p = *keys.params;
        const std::vector<Loader> loaders = all_loaders(p);
        for (const SampleBlob & blob : sample_blobs(keys)) {
            SCOPED_TRACE(object_kind_name(blob.kind));
            const Loader & own = loader_for(loaders, blob.kind);
            // Every prefix of blobs up to 64 KiB; of larger ones the whole header region, then
            // every 4093 bytes (and the last few).
            const size_t size = blob.bytes.size();
            for (size_t length = 0; length < size;) {
                g_largest_allocation = 0;
                try {
                    own.load(std::span<const uint8_t>(blob.bytes).first(length), p);
                    ADD_FAILURE() << "prefix of " << length << " of " << size << " bytes accepted";
                } catch (const Error &) {
                }
                EXPECT_LT(g_largest_allocation.load(), size_t{1} << 16) << "prefix " << length;
                ++loads;
                length = (size <= 65536 || length < 512 || length + 8 >= size) ? length + 1
                                                                               : std::min(length + 4093, size - 8);
            }
            for (size_t extra : {1, 7, 1000}) {
                Bytes longer = blob.bytes;
                longer.resize(size + extra, 0);
                expect_error([&] { own.load(longer, p); }, std::to_string(extra) + " trailing bytes");
            }
        }
    }
    std::printf("%zu truncated blobs rejected\n", loads);
}

TEST(TfheSerialization, RejectsEnormousSizesWithoutAllocating) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    const LweCiphertext ct = encrypt_message(keys.client, 1, p.message_modulus());
    const Bytes vector_blob = serialize_lwe_ciphertext_vector(std::vector<LweCiphertext>{ct, ct}, p);
    const size_t count_offset = dimension_offset(p, 1);
    // Each rejection costs a few allocations (the message, the blob copy); a reader that walked
    // the claimed ciphertexts one by one before noticing the blob is short would allocate at
    // least once per ciphertext, 2^20 times for the smallest hostile count below. (A bound on
    // allocations, not on time, so that a loaded machine cannot fail the test.)
    g_allocations = 0;
    for (uint64_t count : {uint64_t{3}, uint64_t{1} << 20, uint64_t{1} << 40, uint64_t{1} << 61, ~uint64_t{0}}) {
        Bytes bad = vector_blob;
        put_u64(bad, count_offset, count);
        g_largest_allocation = 0;
        expect_error([&] { deserialize_lwe_ciphertext_vector(bad, p, LweKeyChoice::Big); },
                     "claims " + std::to_string(count) + " ciphertexts");
        EXPECT_LT(g_largest_allocation.load(), size_t{1} << 16);
        // The payload size agreeing with the count does not help.
        if (count < (uint64_t{1} << 40)) {
            put_u64(bad, count_offset + 8, count * (p.big_lwe_dimension().value + 1) * 8);
            expect_error([&] { deserialize_lwe_ciphertext_vector(bad, p, LweKeyChoice::Big); }, "claims");
        }
    }
    const size_t allocations_vectors = g_allocations.load();
    // Seeded vectors: count, layout and stream overflow.
    const Seed seed = Seed::from_os();
    std::vector<SeededLweCiphertext> seeded;
    for (uint64_t i = 0; i < 4; ++i) seeded.push_back(encrypt_message_seeded(keys.client, i, p.message_modulus(), seed, i));
    const Bytes seeded_blob = serialize_seeded_lwe_ciphertext_vector(seeded, p);
    g_allocations = 0;
    EXPECT_EQ(get_u64(seeded_blob, dimension_offset(p, 2)), 1u); // shared-seed layout
    for (uint64_t count : {uint64_t{1} << 62, ~uint64_t{0}}) {
        Bytes bad = seeded_blob;
        put_u64(bad, count_offset, count);
        g_largest_allocation = 0;
        expect_error([&] { deserialize_seeded_lwe_ciphertext_vector(bad, p, LweKeyChoice::Big); }, "claims");
        EXPECT_LT(g_largest_allocation.load(), size_t{1} << 16);
    }
    Bytes separate = seeded_blob;
    put_u64(separate, dimension_offset(p, 2), 0); // 4 x 48 bytes claimed, 4 x 8 + 40 present
    expect_error([&] { deserialize_seeded_lwe_ciphertext_vector(separate, p, LweKeyChoice::Big); }, "claims 4");
    Bytes bad_layout = seeded_blob;
    put_u64(bad_layout, dimension_offset(p, 2), 2);
    expect_error([&] { deserialize_seeded_lwe_ciphertext_vector(bad_layout, p, LweKeyChoice::Big); }, "layout 2");
    Bytes overflow = seeded_blob;
    put_u64(overflow, dimension_offset(p, 4) + 32, ~uint64_t{0} - 1); // first stream
    expect_error([&] { deserialize_seeded_lwe_ciphertext_vector(overflow, p, LweKeyChoice::Big); }, "overflow");

    // Bundles: a part length that lies.
    const size_t allocations_seeded = g_allocations.load();
    const Bytes client_blob = serialize_client_key(keys.client);
    Bytes bad_part = client_blob;
    put_u64(bad_part, dimension_offset(p, 1), uint64_t{1} << 60);
    g_allocations = 0;
    expect_error([&] { deserialize_client_key(bad_part, p); }, "LWE secret key is declared as 1152921504606846976 bytes");
    const size_t allocations_bundle = g_allocations.load();
    std::printf("allocations: %zu for the hostile vectors, %zu for the seeded ones, %zu for the bundle\n",
                allocations_vectors, allocations_seeded, allocations_bundle);
    EXPECT_LT(allocations_vectors, size_t{1} << 10);
    EXPECT_LT(allocations_seeded, size_t{1} << 10);
    EXPECT_LT(allocations_bundle, size_t{1} << 10);
}

TEST(TfheSerialization, RejectsBadPayloadValues) {
    const TestKeys & keys = keys_for(kSet);
    const TfheParameters & p = *keys.params;
    Bytes lwe_key = serialize_lwe_secret_key(keys.client.lwe_secret_key, p);
    lwe_key[lwe_key.size() - 5] = 2;
    expect_error([&] { deserialize_lwe_secret_key(lwe_key, p, LweKeyChoice::Small); },
                 "LWE secret key coefficient 59 is 2, not 0 or 1");
    Bytes glwe_key = serialize_glwe_secret_key(keys.client.glwe_secret_key, p);
    glwe_key.back() = 0xff;
    expect_error([&] { deserialize_glwe_secret_key(glwe_key, p); }, "is 255, not 0 or 1");
    // A corrupt part inside a bundle names the bundle's source.
    Bytes client = serialize_client_key(keys.client);
    client.back() = 7;
    expect_error([&] { deserialize_client_key(client, p, "alice.key"); }, "alice.key (client key): GLWE secret key");
}

} // namespace
} // namespace fhegpt::tfhe
