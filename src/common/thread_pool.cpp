#include "common/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace fhegpt {

namespace {

// Chunk i of `parts` over [0, count): sizes differ by at most one.
std::pair<size_t, size_t> chunk(size_t count, size_t parts, size_t i) {
    size_t base = count / parts, extra = count % parts;
    size_t begin = i * base + std::min(i, extra);
    return {begin, begin + base + (i < extra ? 1 : 0)};
}

} // namespace

ThreadPool::ThreadPool(size_t threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    start_cv_.notify_all();
    for (auto & t : workers_) t.join();
}

void ThreadPool::worker_loop(size_t index) {
    size_t seen = 0;
    for (;;) {
        const std::function<void(size_t, size_t, size_t)> * job;
        size_t count;
        {
            std::unique_lock lock(mutex_);
            start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            job = job_;
            count = job_count_;
        }
        auto [begin, end] = chunk(count, size(), index);
        if (begin < end) (*job)(begin, end, index);
        {
            std::lock_guard lock(mutex_);
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(size_t count, const std::function<void(size_t, size_t, size_t)> & fn) {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
        fn(0, count, 0);
        return;
    }
    // One loop at a time on the workers. A caller that finds them busy runs its chunks itself,
    // in order and with their usual indices, instead of waiting for the other loop to end.
    std::unique_lock submit(submit_mutex_, std::try_to_lock);
    if (!submit.owns_lock()) {
        for (size_t i = 0; i < size(); ++i) {
            auto [begin, end] = chunk(count, size(), i);
            if (begin < end) fn(begin, end, i);
        }
        return;
    }
    {
        std::lock_guard lock(mutex_);
        job_ = &fn;
        job_count_ = count;
        pending_ = workers_.size();
        ++generation_;
    }
    start_cv_.notify_all();
    auto [begin, end] = chunk(count, size(), 0);
    if (begin < end) fn(begin, end, 0);
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
}

ThreadPool & ThreadPool::global() {
    static ThreadPool pool([] {
        const char * env = std::getenv("FHEGPT_THREADS");
        return env != nullptr ? static_cast<size_t>(std::strtoul(env, nullptr, 10)) : size_t{0};
    }());
    return pool;
}

} // namespace fhegpt
