// Cryptographically secure random generators.
//
// RandomGenerator is a ChaCha20 keystream (libsodium) keyed by a 32-byte Seed and a 64-bit
// stream id (the ChaCha20 nonce). Two uses:
// - secret randomness (secret keys, noise): from_os() keys it with fresh bytes from the OS
//   (libsodium randombytes_buf: getrandom / /dev/urandom), never stored;
// - public masks: keyed by a Seed that is stored with a compressed (seeded) ciphertext or key,
//   so that the masks can be regenerated; the stream id separates independent parts of one
//   object (one stream per GGSW of a bootstrapping key, per input coefficient of a
//   key-switching key), which also lets them be generated in parallel.
// The output is a byte stream: how requests are split does not change what they return.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace fhegpt::tfhe {

// 256-bit seed of a deterministic RandomGenerator.
struct Seed {
    std::array<uint8_t, 32> bytes{};
    bool operator==(const Seed &) const = default;

    // A fresh seed from the OS CSPRNG.
    static Seed from_os();
};

class RandomGenerator {
public:
    // Deterministic keystream of (seed, stream).
    RandomGenerator(const Seed & seed, uint64_t stream);
    // Secret keystream keyed from the OS CSPRNG.
    static RandomGenerator from_os();

    RandomGenerator(const RandomGenerator &) = delete;
    RandomGenerator & operator=(const RandomGenerator &) = delete;
    RandomGenerator(RandomGenerator &&) = default;
    RandomGenerator & operator=(RandomGenerator &&) = default;
    ~RandomGenerator();

    void fill_bytes(std::span<uint8_t> out);
    uint64_t next_u64();
    // Uniform torus elements (uniform uint64_t).
    void fill_uniform(std::span<uint64_t> out);
    // Uniform bits in {0, 1} (binary secret keys).
    void fill_binary(std::span<uint64_t> out);
    // A uniform double in (0, 1] with 53 random bits.
    double next_unit_open0();

private:
    void refill();

    static constexpr size_t kBufferBytes = 4096; // 64 ChaCha20 blocks
    std::array<uint8_t, 32> key_{};
    uint64_t nonce_ = 0;
    uint64_t block_counter_ = 0;
    alignas(64) std::array<uint8_t, kBufferBytes> buffer_{};
    size_t position_ = kBufferBytes;
};

} // namespace fhegpt::tfhe
