#include "tfhe/commons/csprng.h"

#include "common/check.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <mutex>

namespace fhegpt::tfhe {

namespace {

void ensure_sodium() {
    static std::once_flag once;
    std::call_once(once, [] { FHEGPT_CHECK(sodium_init() >= 0, "libsodium initialisation failed"); });
}

constexpr size_t kBlockBytes = 64;

// Writes whole ChaCha20 blocks of (key, nonce) starting at block `counter` into out.
void chacha20_blocks(uint8_t * out, size_t blocks, const std::array<uint8_t, 32> & key, uint64_t nonce,
                     uint64_t counter) {
    uint8_t nonce_bytes[crypto_stream_chacha20_NONCEBYTES];
    static_assert(crypto_stream_chacha20_NONCEBYTES == 8);
    for (size_t i = 0; i < 8; ++i) nonce_bytes[i] = static_cast<uint8_t>(nonce >> (8 * i));
    std::memset(out, 0, blocks * kBlockBytes);
    crypto_stream_chacha20_xor_ic(out, out, blocks * kBlockBytes, nonce_bytes, counter, key.data());
}

} // namespace

Seed Seed::from_os() {
    ensure_sodium();
    Seed seed;
    randombytes_buf(seed.bytes.data(), seed.bytes.size());
    return seed;
}

RandomGenerator::RandomGenerator(const Seed & seed, uint64_t stream) : key_(seed.bytes), nonce_(stream) {
    ensure_sodium();
}

RandomGenerator RandomGenerator::from_os() {
    Seed seed = Seed::from_os();
    RandomGenerator generator(seed, 0);
    sodium_memzero(seed.bytes.data(), seed.bytes.size());
    return generator;
}

RandomGenerator::~RandomGenerator() {
    sodium_memzero(key_.data(), key_.size());
    sodium_memzero(buffer_.data(), buffer_.size());
}

void RandomGenerator::refill() {
    chacha20_blocks(buffer_.data(), kBufferBytes / kBlockBytes, key_, nonce_, block_counter_);
    block_counter_ += kBufferBytes / kBlockBytes;
    position_ = 0;
}

void RandomGenerator::fill_bytes(std::span<uint8_t> out) {
    uint8_t * dst = out.data();
    size_t left = out.size();
    // Buffered bytes first, then whole blocks straight into the destination, then the tail.
    size_t take = std::min(left, kBufferBytes - position_);
    std::memcpy(dst, buffer_.data() + position_, take);
    position_ += take;
    dst += take;
    left -= take;
    if (left >= kBufferBytes) {
        size_t blocks = left / kBlockBytes;
        chacha20_blocks(dst, blocks, key_, nonce_, block_counter_);
        block_counter_ += blocks;
        dst += blocks * kBlockBytes;
        left -= blocks * kBlockBytes;
    }
    while (left > 0) {
        if (position_ == kBufferBytes) refill();
        take = std::min(left, kBufferBytes - position_);
        std::memcpy(dst, buffer_.data() + position_, take);
        position_ += take;
        dst += take;
        left -= take;
    }
}

uint64_t RandomGenerator::next_u64() {
    if (kBufferBytes - position_ < 8) {
        uint64_t value;
        fill_bytes({reinterpret_cast<uint8_t *>(&value), 8});
        return value;
    }
    uint64_t value;
    std::memcpy(&value, buffer_.data() + position_, 8);
    position_ += 8;
    return value;
}

void RandomGenerator::fill_uniform(std::span<uint64_t> out) {
    fill_bytes({reinterpret_cast<uint8_t *>(out.data()), out.size_bytes()});
    // Little-endian hosts only (x86-64, arm64): the byte stream is the value stream.
    static_assert(std::endian::native == std::endian::little);
}

void RandomGenerator::fill_binary(std::span<uint64_t> out) {
    size_t i = 0;
    while (i < out.size()) {
        uint64_t bits = next_u64();
        for (size_t b = 0; b < 64 && i < out.size(); ++b, ++i) out[i] = (bits >> b) & 1;
    }
}

double RandomGenerator::next_unit_open0() {
    // (x + 1) / 2^53 for x uniform in [0, 2^53): uniform on (0, 1].
    return static_cast<double>((next_u64() >> 11) + 1) * 0x1.0p-53;
}

} // namespace fhegpt::tfhe
