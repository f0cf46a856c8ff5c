// A fixed pool of worker threads for data-parallel loops (attention heads, batches of PBS).
// One pool per process is enough; parallel_for splits [0, count) into contiguous chunks,
// one per thread, and blocks until all are done. The pool runs one loop at a time: a caller
// that finds it busy with another thread's loop runs its own chunks on its own thread rather
// than wait, so a short loop (a key upload on a server) is never held behind a long one (an
// evaluation's bootstrap batch).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fhegpt {

class ThreadPool {
public:
    // threads == 0 means one per hardware thread.
    explicit ThreadPool(size_t threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;

    size_t size() const { return workers_.size() + 1; } // the calling thread works too

    // Calls fn(begin, end, thread_index) on disjoint chunks covering [0, count).
    // thread_index < size(): use it to pick per-thread scratch memory (of this call: two
    // callers' loops may run at once, each with its own indices).
    void parallel_for(size_t count, const std::function<void(size_t, size_t, size_t)> & fn);

    // The process-wide pool, sized by FHEGPT_THREADS or the hardware.
    static ThreadPool & global();

private:
    void worker_loop(size_t index);

    std::vector<std::thread> workers_;
    std::mutex submit_mutex_; // held by the caller whose loop the workers run
    std::mutex mutex_;
    std::condition_variable start_cv_;
    std::condition_variable done_cv_;
    const std::function<void(size_t, size_t, size_t)> * job_ = nullptr;
    size_t job_count_ = 0;
    size_t generation_ = 0;
    size_t pending_ = 0;
    bool stopping_ = false;
};

} // namespace fhegpt
