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

SessionSlot & SessionSlot::operator=(SessionSlot && other) noexcept {
    if (this != &other) {
        SessionSlot released(std::move(*this));
        counter_ = std::move(other.counter_);
    }
    return *this;
}

SessionSlot::~SessionSlot() {
    if (!counter_) return;
    std::lock_guard lock(counter_->mutex);
    --counter_->in_use;
}

Session::Session(SessionSlot slot, tfhe::ServerKey key) : slot_(std::move(slot)), server_key(std::move(key)) {}

std::shared_ptr<CancellationToken> Session::begin_request() {
    std::lock_guard lock(mutex_);
    if (running_ || closed_) return nullptr;
    running_ = std::make_shared<CancellationToken>();
    return running_;
}

void Session::end_request() {
    std::lock_guard lock(mutex_);
    running_.reset();
}

bool Session::close(CancelReason reason) {
    std::lock_guard lock(mutex_);
    closed_ = true;
    if (!running_) return false;
    running_->cancel(reason);
    return true;
}

bool Session::close_if_idle() {
    std::lock_guard lock(mutex_);
    if (running_) return false;
    closed_ = true;
    return true;
}

bool Session::closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

SessionTable::SessionTable(int32_t max_sessions, double idle_timeout_seconds, std::string token_prefix)
    : max_sessions_(max_sessions),
      idle_timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(idle_timeout_seconds))),
      slots_(std::make_shared<SessionSlot::Counter>()), token_prefix_(std::move(token_prefix)) {
    if (max_sessions <= 0) fail("sessions: at most {} sessions", max_sessions);
    if (!(idle_timeout_seconds > 0)) fail("sessions: idle timeout {} s", idle_timeout_seconds);
    // Letters, digits, '-' and '_': it travels in an HTTP header and a load balancer's rules.
    if (token_prefix_.size() > 32 ||
        token_prefix_.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            std::string::npos)
        fail("sessions: token prefix '{}': 1 to 32 letters, digits, '-' or '_'", token_prefix_);
    if (!token_prefix_.empty()) token_prefix_ += '.';
}

SessionSlot SessionTable::reserve_slot() {
    std::lock_guard lock(slots_->mutex);
    if (slots_->in_use >= max_sessions_) return {};
    ++slots_->in_use;
    return SessionSlot(slots_);
}

int32_t SessionTable::slots_in_use() const {
    std::lock_guard lock(slots_->mutex);
    return slots_->in_use;
}

std::string SessionTable::add(std::shared_ptr<Session> session) {
    const tfhe::Seed random = tfhe::Seed::from_os();
    std::string token = token_prefix_ + hex(random.bytes);
    std::lock_guard lock(mutex_);
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

std::shared_ptr<Session> SessionTable::remove(const std::string & token) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(token_hash(token));
    if (it == sessions_.end()) return nullptr;
    std::shared_ptr<Session> session = std::move(it->second.session);
    sessions_.erase(it);
    return session;
}

std::vector<std::shared_ptr<Session>> SessionTable::remove_all() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Session>> all;
    for (auto & [hash, entry] : sessions_) all.push_back(std::move(entry.session));
    sessions_.clear();
    return all;
}

size_t SessionTable::expire_idle(Clock::time_point now) {
    std::vector<std::shared_ptr<Session>> expired; // freed after the table's lock is released
    {
        std::lock_guard lock(mutex_);
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            if (now - it->second.last_used > idle_timeout_ && it->second.session->close_if_idle()) {
                expired.push_back(std::move(it->second.session));
                it = sessions_.erase(it);
            } else {
                ++it;
            }
        }
    }
    return expired.size();
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
