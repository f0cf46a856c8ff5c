// 64-byte aligned buffers for SIMD kernels; large ones (bootstrapping keys, tens of MB) are
// backed by 2 MB pages where the OS allows it.
//
// A blind rotation streams its whole key once per pass: with 4 kB pages that is a TLB miss every
// 4 kB (the key is far larger than what the TLB maps); with 2 MB pages, one every 2 MB. Linux
// gives 2 MB pages to memory marked MADV_HUGEPAGE when transparent huge pages are set to
// "madvise" (a common default) or "always"; elsewhere the request is ignored.
#pragma once

#include <cstddef>
#include <vector>

namespace fhegpt::tfhe {

// Buffers of at least this many bytes are 2 MB aligned and marked for huge pages.
inline constexpr size_t kHugePageThreshold = size_t{4} << 20;

void * allocate_aligned_bytes(size_t bytes);
// `bytes` must be the size given to allocate_aligned_bytes.
void deallocate_aligned_bytes(void * p, size_t bytes) noexcept;

// std::allocator with 64-byte alignment (2 MB and huge pages for large buffers).
template <typename T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <typename U>
    AlignedAllocator(const AlignedAllocator<U> &) noexcept {}
    T * allocate(size_t n) { return static_cast<T *>(allocate_aligned_bytes(n * sizeof(T))); }
    void deallocate(T * p, size_t n) noexcept { deallocate_aligned_bytes(p, n * sizeof(T)); }
    template <typename U>
    bool operator==(const AlignedAllocator<U> &) const noexcept { return true; }
};
template <typename T>
using aligned_vector = std::vector<T, AlignedAllocator<T>>;

} // namespace fhegpt::tfhe
