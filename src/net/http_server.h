// A small HTTP/1.1 server for hostile networks (Boost.Beast on one Asio I/O thread).
//
// Every connection is asynchronous, so slow clients hold no thread: the I/O thread answers
// quick calls at once however many connections are open. A request goes through three steps:
// 1. Its head (request line and fields) must arrive whole within head_timeout, in at most
//    max_header_bytes and max_header_fields.
// 2. From the head alone, before a byte of body is read: a Transfer-Encoding (chunked or any)
//    is refused with 411, a Content-Encoding with 415, a body without Content-Length with 411,
//    and a Content-Length over the route's own limit with 413; then the route's admit() takes
//    what the request needs (a session slot, the session's one request) or answers at once.
//    A request refused with its body unread has its connection closed.
// 3. The body (exactly Content-Length bytes) must arrive whole within body_timeout; run() then
//    works on a thread of its own, while the I/O thread watches the connection: a client that
//    disconnects is reported to on_client_gone, and the answer is written within
//    write_timeout.
// One log record per request, also for requests refused here (with what is known of them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fhegpt::net {

struct HttpLimits {
    size_t max_connections = 256;          // beyond: 503 and closed at once
    size_t max_header_bytes = 16 * 1024;   // request line and fields together
    size_t max_header_fields = 64;
    double idle_timeout_seconds = 30;      // an open connection between requests
    double head_timeout_seconds = 10;      // from a request's first byte to the end of its head
    double body_timeout_seconds = 120;     // from the end of the head to the end of the body
    double write_timeout_seconds = 120;    // a whole answer
};

// What is known of a request once its head is in.
struct HttpHead {
    std::string method, target, path; // path: the target without its query
    std::vector<std::pair<std::string, std::string>> fields;
    uint64_t content_length = 0;
    std::string peer;                  // "ADDRESS:PORT"

    // The first field of that name (case-insensitive), or "".
    std::string field(std::string_view name) const;
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string log_detail; // appended to the request's log line
    bool logged = true;     // false: a routine poll that would flood the log
};

// A route's decision on a request's head.
struct HttpAdmission {
    // Set: the answer, sent without reading the body.
    std::optional<HttpResponse> answer;
    // Otherwise: called with the body, on a thread of its own (it may take minutes). Whatever
    // the closure holds (reservations) is released when it is destroyed, even if the body never
    // arrives.
    std::function<HttpResponse(std::string body)> run;
    // Called on the I/O thread if the client disconnects while run() works (must not block).
    std::function<void()> on_client_gone;

    static HttpAdmission answered(HttpResponse response) {
        HttpAdmission a;
        a.answer = std::move(response);
        return a;
    }
};

struct HttpRoute {
    std::string method, path;
    uint64_t max_body_bytes = 0; // 0: no body
    // Runs on the I/O thread: must not block.
    std::function<HttpAdmission(const HttpHead &)> admit;
};

// One line of the request log (request_log.h formats it).
struct HttpLogRecord {
    std::chrono::system_clock::time_point start; // the request's first byte
    std::string peer, method, target;            // empty when not known
    int status = 0;   // sent, or 499: the client left before an answer could be sent
    uint64_t bytes_in = 0, bytes_out = 0;
    double seconds = 0; // first byte to the end of the answer
    std::string detail;
};

class HttpServer {
public:
    HttpServer(std::vector<HttpRoute> routes, HttpLimits limits, std::function<void(const HttpLogRecord &)> log);
    ~HttpServer();
    HttpServer(const HttpServer &) = delete;
    HttpServer & operator=(const HttpServer &) = delete;

    // Listens on host:port (0: any free port) and returns the port; fails with fhegpt::Error.
    int bind(const std::string & host, int port);
    // Runs the I/O thread on the calling thread until stop() and until every run() has
    // returned. A stop() before serve() is not lost.
    void serve();
    // From any thread: stops accepting, closes every connection (an answer still being worked
    // out is dropped when it comes).
    void stop();

    size_t connection_count() const;
    const HttpLimits & limits() const;

    struct Impl; // defined in http_server.cpp (its connections use it)

private:
    std::shared_ptr<Impl> impl_;
};

} // namespace fhegpt::net
