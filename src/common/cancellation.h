// A flag that one thread raises to stop another thread's long computation at its next check
// point (an encrypted evaluation checks before each bootstrap batch). The computation then
// throws Cancelled, so that everything it holds is released on the way out.
#pragma once

#include <atomic>
#include <stdexcept>

namespace fhegpt {

// Thrown at a check point of a cancelled computation. Not an Error: nothing was wrong with the
// input.
class Cancelled : public std::runtime_error {
public:
    explicit Cancelled(int reason) : std::runtime_error("cancelled"), reason(reason) {}
    int reason;
};

class CancellationToken {
public:
    // Raises the flag with a reason (non-zero, its meaning is the caller's); the first reason
    // stays. Returns whether this call raised it. Safe from any thread.
    bool cancel(int reason = 1) noexcept {
        int none = 0;
        return reason_.compare_exchange_strong(none, reason == 0 ? 1 : reason);
    }
    bool cancelled() const noexcept { return reason_.load() != 0; }
    int reason() const noexcept { return reason_.load(); }
    void throw_if_cancelled() const {
        if (const int r = reason_.load()) throw Cancelled(r);
    }

private:
    std::atomic<int> reason_{0};
};

} // namespace fhegpt
