#include "common/thread_pool.h"

#include <atomic>
#include <chrono>
#include <future>
#include <gtest/gtest.h>
#include <thread>
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

TEST(ThreadPool, BusyPoolDoesNotMakeAnotherCallerWait) {
    // The first caller's loop cannot end before the second caller's loop has: if the second
    // waited for the pool, neither would end (the wait below is only there to fail, not hang).
    ThreadPool pool(2);
    std::promise<void> second_done;
    std::shared_future<void> second = second_done.get_future().share();
    std::promise<void> first_started;
    std::atomic<bool> first_saw_second{false};
    std::thread first([&] {
        pool.parallel_for(2, [&](size_t, size_t, size_t thread) {
            if (thread != 0) return;
            first_started.set_value();
            first_saw_second = second.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
        });
    });
    first_started.get_future().wait();
    std::vector<std::atomic<int>> hits(10);
    std::vector<size_t> indices;
    pool.parallel_for(hits.size(), [&](size_t begin, size_t end, size_t thread) {
        indices.push_back(thread); // on this thread only: no race
        for (size_t i = begin; i < end; ++i) hits[i]++;
    });
    second_done.set_value();
    first.join();
    EXPECT_TRUE(first_saw_second.load());
    for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(hits[i].load(), 1) << i;
    // Every chunk with its own index, as on the workers.
    EXPECT_EQ(indices, (std::vector<size_t>{0, 1}));
}
