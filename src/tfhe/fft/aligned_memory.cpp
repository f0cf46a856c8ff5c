#include "tfhe/fft/aligned_memory.h"

#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fhegpt::tfhe {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
} // namespace

void * allocate_aligned_bytes(size_t bytes) {
    if (bytes < kHugePageThreshold) return ::operator new(bytes, std::align_val_t{64});
    void * p = ::operator new(bytes, std::align_val_t{kHugePage});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Whole 2 MB pages only; a refusal (no THP support) just leaves 4 kB pages.
    (void)madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
    return p;
}

void deallocate_aligned_bytes(void * p, size_t bytes) noexcept {
    if (bytes < kHugePageThreshold) ::operator delete(p, std::align_val_t{64});
    else ::operator delete(p, std::align_val_t{kHugePage});
}

} // namespace fhegpt::tfhe
