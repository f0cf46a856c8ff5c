// The evaluation budget: at most `limit` evaluations run at once (each holds the ciphertexts
// of its circuit's widest depth); the others wait their turn, in arrival order. A waiting
// evaluation that is cancelled (its session closed, its client gone) leaves the queue at once.
#pragma once

#include "common/cancellation.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

namespace fhegpt::net {

class EvaluationQueue {
public:
    explicit EvaluationQueue(int32_t limit);

    // A turn to run; given back when destroyed.
    class Turn {
    public:
        explicit Turn(EvaluationQueue & queue) : queue_(&queue) {}
        Turn(Turn && other) noexcept : queue_(other.queue_) { other.queue_ = nullptr; }
        Turn & operator=(Turn &&) = delete;
        ~Turn();

    private:
        EvaluationQueue * queue_;
    };

    // Waits for a turn; throws Cancelled when `cancel` is raised first. Whoever raises a
    // waiter's token calls wake() afterwards.
    Turn wait_turn(const CancellationToken & cancel);
    void wake();

    int32_t running() const;
    int32_t waiting() const;
    int32_t limit() const { return limit_; }

private:
    const int32_t limit_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    int32_t running_ = 0;
    uint64_t next_ticket_ = 0;
    std::deque<uint64_t> waiting_; // tickets, in arrival order
};

} // namespace fhegpt::net
