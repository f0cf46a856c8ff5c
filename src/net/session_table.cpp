#include "net/session_table.h"

#include "common/error.h"
#include "tfhe/commons/csprng.h"

#include <sodium.h>

namespace fhegpt::net {

namespace {

std::string hex(std::span<const uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 15]);
    }
    return out;
}

std::string token_hash(const std::string & token) {
    uint8_t digest[32];
    crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char *>(token.data()), token.size(),
                       nullptr, 0);
    return std::string(reinterpret_cast<const char *>(digest), sizeof digest);
}

} // namespace

SessionTable::SessionTable(int32_t max_sessions, double idle_timeout_seconds)
    : max_sessions_(max_sessions),
      idle_timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(idle_timeout_seconds))) {
    if (max_sessions <= 0) fail("sessions: at most {} sessions", max_sessions);
    if (!(idle_timeout_seconds > 0)) fail("sessions: idle timeout {} s", idle_timeout_seconds);
}

std::string SessionTable::add(std::shared_ptr<Session> session) {
    const tfhe::Seed random = tfhe::Seed::from_os();
    std::string token = hex(random.bytes);
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= size_t(max_sessions_))
        fail("the server has its maximum of {} sessions; try again later", max_sessions_);
    sessions_[token_hash(token)] = {std::move(session), Clock::now()};
    return token;
}

std::shared_ptr<Session> SessionTable::find(const std::string & token) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(token_hash(token));
    if (it == sessions_.end()) return nullptr;
    it->second.last_used = Clock::now();
    return it->second.session;
}

bool SessionTable::remove(const std::string & token) {
    std::lock_guard lock(mutex_);
    return sessions_.erase(token_hash(token)) > 0;
}

size_t SessionTable::expire_idle(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    size_t removed = 0;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session & s = *it->second.session;
        const bool idle = now - it->second.last_used > idle_timeout_;
        std::unique_lock busy(s.mutex, std::try_to_lock); // a running request is not idle
        if (idle && busy.owns_lock()) {
            busy.unlock();
            it = sessions_.erase(it);
            ++removed;
        } else {
            ++it;
        }
    }
    return removed;
}

size_t SessionTable::size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

std::string SessionTable::log_name(const std::string & token) {
    const std::string h = token_hash(token);
    return hex(std::span(reinterpret_cast<const uint8_t *>(h.data()), 4));
}

} // namespace fhegpt::net
