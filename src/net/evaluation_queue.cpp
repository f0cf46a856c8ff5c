#include "net/evaluation_queue.h"

#include "common/error.h"

#include <algorithm>

namespace fhegpt::net {

EvaluationQueue::EvaluationQueue(int32_t limit) : limit_(limit) {
    if (limit <= 0) fail("server: at most {} evaluations at once", limit);
}

EvaluationQueue::Turn::~Turn() {
    if (queue_ == nullptr) return;
    {
        std::lock_guard lock(queue_->mutex_);
        --queue_->running_;
    }
    queue_->changed_.notify_all();
}

EvaluationQueue::Turn EvaluationQueue::wait_turn(const CancellationToken & cancel) {
    std::unique_lock lock(mutex_);
    const uint64_t ticket = next_ticket_++;
    waiting_.push_back(ticket);
    changed_.wait(lock, [&] { return cancel.cancelled() || (waiting_.front() == ticket && running_ < limit_); });
    if (cancel.cancelled()) {
        waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
        lock.unlock();
        changed_.notify_all(); // the next in line may be first now
        cancel.throw_if_cancelled();
    }
    waiting_.pop_front();
    ++running_;
    lock.unlock();
    changed_.notify_all(); // a free turn may remain for the next in line
    return Turn(*this);
}

void EvaluationQueue::wake() {
    std::lock_guard lock(mutex_); // a waiter between its check and its wait is not missed
    changed_.notify_all();
}

int32_t EvaluationQueue::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

int32_t EvaluationQueue::waiting() const {
    std::lock_guard lock(mutex_);
    return int32_t(waiting_.size());
}

} // namespace fhegpt::net
