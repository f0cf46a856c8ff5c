#include "tfhe/commons/decomposition.h"

namespace fhegpt::tfhe {

namespace {

// The whole slice decomposition as flat loops over the coefficients, compiled for several
// instruction sets (the build stays portable; the loader picks the best one).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void decompose_slice_kernel(const uint64_t * __restrict in, int64_t * __restrict out, uint64_t * __restrict state,
                            size_t size, size_t base_log, size_t level_count) {
    const size_t kept = base_log * level_count;
    const size_t shift = kept == 64 ? 0 : 64 - kept;
    const uint64_t keep_mask = kept == 64 ? ~uint64_t{0} : (uint64_t{1} << kept) - 1;
    const uint64_t mask = (uint64_t{1} << base_log) - 1;
    // Blocks of 512 coefficients: the state stays in L1 across the levels.
    constexpr size_t kBlock = 512;
    for (size_t j0 = 0; j0 < size; j0 += kBlock) {
        const size_t len = size - j0 < kBlock ? size - j0 : kBlock;
        const uint64_t * src = in + j0;
        uint64_t * st = state + j0;
        if (kept == 64) {
            for (size_t j = 0; j < len; ++j) st[j] = src[j];
        } else {
            for (size_t j = 0; j < len; ++j) st[j] = (((src[j] >> (shift - 1)) + 1) >> 1) & keep_mask;
        }
        for (size_t i = level_count; i-- > 0;) {
            int64_t * level = out + i * size + j0;
            for (size_t j = 0; j < len; ++j) {
                const uint64_t digit = st[j] & mask;
                const uint64_t carry = digit >> (base_log - 1);
                st[j] = (st[j] >> base_log) + carry;
                level[j] = static_cast<int64_t>(digit) - static_cast<int64_t>(carry << base_log);
            }
        }
    }
}

} // namespace

void SignedDecomposer::decompose_slice(const uint64_t * in, int64_t * out, uint64_t * state, size_t size) const {
    decompose_slice_kernel(in, out, state, size, base_log_, level_count_);
}

} // namespace fhegpt::tfhe
