// Raw TCP clients for the server's hostile-client tests: they send exactly the bytes a test
// writes (slow, partial, oversized, coded) and read exactly what comes back.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fhegpt::test {

struct RawResponse {
    int status = 0; // 0: none (closed or timed out first)
    std::string head, body;
};

class RawConnection {
public:
    explicit RawConnection(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(uint16_t(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect");
        }
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval send_timeout{5, 0}; // a server that stops reading fails a send, never hangs it
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    }
    ~RawConnection() { close(); }
    RawConnection(const RawConnection &) = delete;
    RawConnection & operator=(const RawConnection &) = delete;

    // False once the server has closed (or reset) the connection.
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(size_t(n));
        }
        return true;
    }

    // Reads what arrives within `timeout_seconds`, until the server closes; closed() tells
    // which ended it.
    std::string read_until_closed(double timeout_seconds) {
        std::string out;
        const auto deadline = now() + timeout_seconds;
        char buf[65536];
        while (!closed_) {
            const double left = deadline - now();
            if (left <= 0) break;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, int(left * 1000) + 1) <= 0) continue;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                closed_ = true;
                break;
            }
            out.append(buf, size_t(n));
        }
        return out;
    }

    // One response (head and Content-Length body), read within `timeout_seconds`.
    RawResponse read_response(double timeout_seconds) {
        RawResponse r;
        const auto deadline = now() + timeout_seconds;
        char buf[65536];
        size_t head_end = std::string::npos;
        uint64_t length = 0;
        while (true) {
            if (head_end == std::string::npos) {
                head_end = pending_.find("\r\n\r\n");
                if (head_end != std::string::npos) {
                    r.head = pending_.substr(0, head_end + 4);
                    if (r.head.rfind("HTTP/1.", 0) == 0 && r.head.size() > 12) r.status = std::atoi(r.head.c_str() + 9);
                    const size_t at = lower(r.head).find("content-length:");
                    if (at != std::string::npos) length = std::strtoull(r.head.c_str() + at + 15, nullptr, 10);
                    if (r.status == 100) { // an interim answer: the real one follows
                        pending_.erase(0, head_end + 4);
                        head_end = std::string::npos;
                        r = RawResponse{};
                        continue;
                    }
                }
            }
            if (head_end != std::string::npos && pending_.size() >= head_end + 4 + length) {
                r.body = pending_.substr(head_end + 4, length);
                pending_.erase(0, head_end + 4 + length);
                return r;
            }
            const double left = deadline - now();
            if (left <= 0 || closed_) break;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, int(left * 1000) + 1) <= 0) continue;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                closed_ = true;
                continue;
            }
            pending_.append(buf, size_t(n));
        }
        r.status = 0;
        return r;
    }

    // Waits up to `timeout_seconds` for the server to close the connection.
    bool wait_closed(double timeout_seconds) {
        read_until_closed(timeout_seconds);
        return closed_;
    }
    bool closed() const { return closed_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd() const { return fd_; }

    static double now() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }

private:
    static std::string lower(std::string s) {
        for (char & c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }
    int fd_ = -1;
    bool closed_ = false;
    std::string pending_;
};

// One request on a fresh connection: the response, read within `timeout_seconds`.
inline RawResponse raw_request(int port, std::string_view request, double timeout_seconds = 30) {
    RawConnection c(port);
    c.send(request);
    return c.read_response(timeout_seconds);
}

// The process's peak resident memory (VmHWM), in bytes.
inline uint64_t peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string key;
    while (status >> key) {
        if (key == "VmHWM:") {
            uint64_t kib = 0;
            status >> kib;
            return kib * 1024;
        }
        std::getline(status, key);
    }
    return 0;
}

} // namespace fhegpt::test
