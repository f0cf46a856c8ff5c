#include "common/thread_pool.h"

#include <atomic>
#include <gtest/gtest.h>
#include <vector>

using fhegpt::ThreadPool;

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
    ThreadPool pool(3);
    for (size_t count : {0u, 1u, 2u, 3u, 7u, 1000u}) {
        std::vector<std::atomic<int>> hits(count);
        pool.parallel_for(count, [&](size_t begin, size_t end, size_t thread) {
            ASSERT_LT(thread, pool.size());
            for (size_t i = begin; i < end; ++i) hits[i]++;
        });
        for (size_t i = 0; i < count; ++i) EXPECT_EQ(hits[i].load(), 1) << "count " << count << " index " << i;
    }
}

TEST(ThreadPool, ReusableManyTimes) {
    ThreadPool pool(2);
    std::atomic<long> sum{0};
    for (int round = 0; round < 200; ++round)
        pool.parallel_for(100, [&](size_t b, size_t e, size_t) {
            for (size_t i = b; i < e; ++i) sum += static_cast<long>(i);
        });
    EXPECT_EQ(sum.load(), 200L * 4950);
}
