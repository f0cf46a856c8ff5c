// <utility> first: Boost 1.74's Asio uses std::exchange without including it (C++20, g++ 12).
#include <utility>

#include "net/http_server.h"

#include "common/error.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <map>
#include <mutex>
#include <strings.h>
#include <system_error>
#include <thread>

namespace fhegpt::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Reads of a body go through a buffer of this size; the head must fit max_header_bytes.
constexpr size_t kReadBufferBytes = 64 * 1024;
// After an answer that closes a connection whose client may still be sending (a refused body),
// what is read and dropped before closing, so that the client sees the answer rather than a reset.
constexpr size_t kLingerBytes = 1 << 20;
constexpr double kLingerSeconds = 2;

std::string to_string(beast::string_view s) { return {s.data(), s.size()}; }

SteadyClock::duration seconds_to_duration(double s) {
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
}

HttpResponse error_response(int status, const std::string & message) {
    HttpResponse r;
    r.status = status;
    r.body = nlohmann::json{{"error", message}}.dump();
    r.log_detail = message;
    return r;
}

// The method and target of a head that did not arrive whole (or did not parse): what the log
// can say about it.
std::pair<std::string, std::string> partial_request_line(std::string_view data) {
    const size_t eol = data.find_first_of("\r\n");
    const std::string_view line = data.substr(0, eol);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space > 16) return {};
    std::string_view target = line.substr(space + 1);
    target = target.substr(0, target.find(' '));
    return {std::string(line.substr(0, space)), std::string(target.substr(0, 1024))};
}

bool is_disconnect(const error_code & ec) {
    return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

class Connection;

} // namespace

struct HttpServer::Impl {
    Impl(std::vector<HttpRoute> r, HttpLimits l, std::function<void(const HttpLogRecord &)> lg)
        : routes(std::move(r)), limits(l), log(std::move(lg)), work(asio::make_work_guard(io)) {}

    void accept();
    void begin_stop();
    void start_job(std::function<void()> fn);
    void finish_job(uint64_t id);
    void write_log(const HttpLogRecord & record) {
        if (log) log(record);
    }

    const std::vector<HttpRoute> routes;
    const HttpLimits limits;
    const std::function<void(const HttpLogRecord &)> log;

    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    asio::steady_timer accept_retry{io};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::atomic<bool> stop_requested{false};
    std::atomic<size_t> open_connections{0};
    // I/O thread only.
    bool stopping = false;
    uint64_t next_connection = 0;
    std::map<uint64_t, std::weak_ptr<Connection>> connections; // by age
    // Jobs: started on the I/O thread, joined there once they have posted their end.
    std::mutex jobs_mutex;
    std::map<uint64_t, std::thread> jobs;
    uint64_t next_job = 0;
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
public:
    enum class Phase { idle, head, body, job, write, closing };

    Connection(HttpServer::Impl & server, tcp::socket socket, uint64_t id)
        : server_(server), socket_(std::move(socket)), timer_(server.io), id_(id), buffer_(kReadBufferBytes) {
        error_code ec;
        const tcp::endpoint remote = socket_.remote_endpoint(ec);
        if (!ec) peer_ = remote.address().to_string() + ":" + std::to_string(remote.port());
        ++server_.open_connections;
    }
    ~Connection() {
        --server_.open_connections;
        server_.connections.erase(id_);
    }

    void start() { read_next(); }
    Phase phase() const { return phase_; }

    // Closes at once (server stopping, or making room for a newer connection).
    void close(const char * why = nullptr) {
        if (closed_) return;
        if (why != nullptr && (phase_ == Phase::head || phase_ == Phase::body)) {
            record_.status = 503;
            record_.detail = why;
            finish_record();
            server_.write_log(record_);
        }
        closed_ = true;
        phase_ = Phase::closing;
        disarm();
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

private:
    // One deadline at a time; a timer that fires cancels the socket's operations, whose
    // handlers then see timed_out_.
    void arm(double seconds) {
        timed_out_ = false;
        const uint64_t generation = ++timer_generation_;
        timer_.expires_after(seconds_to_duration(seconds));
        timer_.async_wait([self = shared_from_this(), generation](const error_code & ec) {
            if (ec || generation != self->timer_generation_) return;
            self->timed_out_ = true;
            error_code ignored;
            self->socket_.cancel(ignored);
        });
    }
    void disarm() {
        ++timer_generation_;
        timer_.cancel();
    }

    void read_next() {
        if (closed_) return;
        phase_ = Phase::idle;
        if (buffer_.size() > 0) { // a pipelined request is already here
            start_head();
            return;
        }
        arm(server_.limits.idle_timeout_seconds);
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code & ec) {
            if (self->closed_) return;
            if (ec) {
                self->close(); // idle too long, or gone: not a request
                return;
            }
            self->start_head();
        });
    }

    void start_head() {
        phase_ = Phase::head;
        linger_bytes_ = kLingerBytes;
        linger_seconds_ = kLingerSeconds;
        record_ = HttpLogRecord{};
        record_.start = std::chrono::system_clock::now();
        record_.peer = peer_;
        start_ = SteadyClock::now();
        arm(server_.limits.head_timeout_seconds);
        parser_.emplace();
        parser_->header_limit(uint32_t(std::min<size_t>(server_.limits.max_header_bytes, UINT32_MAX)));
        // Lengths are judged per route, below (not boost::none: Boost 1.74 compares it as smaller
        // than any length).
        parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
        http::async_read_header(socket_, buffer_, *parser_,
                                [self = shared_from_this()](const error_code & ec, size_t bytes) { self->on_head(ec, bytes); });
    }

    void on_head(const error_code & ec, size_t head_bytes) {
        if (closed_) return;
        if (ec) {
            // The parser keeps the request line once it has parsed it, and drops its bytes
            // from the buffer; before that, the buffer still holds it.
            const std::string_view data(static_cast<const char *>(buffer_.data().data()), buffer_.size());
            const uint64_t received = head_bytes + data.size();
            if (received == 0 && (timed_out_ || is_disconnect(ec))) {
                close(); // nothing was sent: not a request
                return;
            }
            const auto & req = parser_->get();
            if (!req.method_string().empty()) {
                record_.method = to_string(req.method_string());
                record_.target = to_string(req.target());
            } else {
                std::tie(record_.method, record_.target) = partial_request_line(data);
            }
            record_.bytes_in = received;
            if (timed_out_)
                reject(408, fmt::format("the request head did not arrive within {} s ({} bytes came)",
                                        server_.limits.head_timeout_seconds, received));
            else if (is_disconnect(ec))
                client_left(fmt::format("the client closed the connection in the request head ({} bytes came)", received));
            else if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
                reject(431, fmt::format("the request head is over {} bytes", server_.limits.max_header_bytes));
            else
                reject(400, "malformed request head: " + ec.message());
            return;
        }
        record_.bytes_in = head_bytes;
        const auto & req = parser_->get();
        record_.method = to_string(req.method_string());
        record_.target = to_string(req.target());
        version_ = req.version();
        keep_alive_ = req.keep_alive();

        HttpHead head;
        head.method = record_.method;
        head.target = record_.target;
        head.path = head.target.substr(0, head.target.find('?'));
        head.peer = peer_;
        for (const auto & f : req) head.fields.emplace_back(to_string(f.name_string()), to_string(f.value()));
        const HttpLimits & limits = server_.limits;
        if (head.fields.size() > limits.max_header_fields)
            return reject(431, fmt::format("{} header fields, at most {}", head.fields.size(), limits.max_header_fields));
        // Before any body byte: no transfer or content coding (a small coded body can expand
        // without bound), and a declared length within the route's limit.
        if (req.count(http::field::transfer_encoding) > 0)
            return reject(411, fmt::format("Transfer-Encoding '{}' is not accepted: send the body with a Content-Length",
                                           head.field("Transfer-Encoding")));
        if (req.count(http::field::content_encoding) > 0)
            return reject(415, fmt::format("Content-Encoding '{}' is not accepted: send the body unencoded",
                                           head.field("Content-Encoding")));
        const HttpRoute * route = nullptr;
        bool known_path = false;
        for (const HttpRoute & r : server_.routes)
            if (r.path == head.path) {
                known_path = true;
                if (r.method == head.method) route = &r;
            }
        if (!known_path) return reject(404, "no such call");
        if (route == nullptr) return reject(405, fmt::format("{} is not allowed on {}", head.method, head.path));
        const auto length = parser_->content_length();
        if (route->max_body_bytes > 0 && !length) return reject(411, "a body needs a Content-Length");
        head.content_length = length.value_or(0);
        if (head.content_length > route->max_body_bytes)
            return reject(413, route->max_body_bytes == 0
                                   ? fmt::format("this call takes no body ({} bytes announced)", head.content_length)
                                   : fmt::format("a body of {} bytes is over this call's limit of {} bytes",
                                                 head.content_length, route->max_body_bytes));
        body_length_ = head.content_length;
        try {
            admission_ = route->admit(head);
        } catch (const std::exception & e) {
            admission_ = HttpAdmission::answered(error_response(500, std::string("internal error: ") + e.what()));
        }
        if (admission_.answer) {
            HttpResponse answer = std::move(*admission_.answer);
            admission_ = {};
            // A body within the route's limit, refused for another reason (no session slot, no
            // session): read and dropped after the answer, within the body deadline, so that a
            // client that writes its whole body before reading still reads the answer.
            linger_bytes_ = body_length_;
            linger_seconds_ = limits.body_timeout_seconds;
            return respond(std::move(answer), body_length_ > 0 || !keep_alive_);
        }
        if (body_length_ == 0) return run_job(std::string());
        phase_ = Phase::body;
        arm(limits.body_timeout_seconds);
        parser_->body_limit(body_length_);
        const auto expect = req[http::field::expect];
        if (expect.size() == 12 && strncasecmp(expect.data(), "100-continue", 12) == 0) {
            static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            asio::async_write(socket_, asio::buffer(kContinue), [self = shared_from_this()](const error_code & e, size_t) {
                if (self->closed_) return;
                if (e) return self->on_body(e);
                self->read_body();
            });
            return;
        }
        read_body();
    }

    void read_body() {
        http::async_read(socket_, buffer_, *parser_,
                         [self = shared_from_this()](const error_code & ec, size_t) { self->on_body(ec); });
    }

    void on_body(const error_code & ec) {
        if (closed_) return;
        const uint64_t got = parser_->get().body().size();
        record_.bytes_in += got;
        if (ec) {
            admission_ = {}; // releases what the route reserved
            if (timed_out_)
                reject(408, fmt::format("the body did not arrive within {} s ({} of {} bytes came)",
                                        server_.limits.body_timeout_seconds, got, body_length_));
            else if (is_disconnect(ec))
                client_left(fmt::format("the client closed the connection after {} of {} body bytes", got, body_length_));
            else
                reject(400, "bad request body: " + ec.message());
            return;
        }
        disarm();
        auto message = parser_->release();
        run_job(std::move(message.body()));
    }

    void run_job(std::string body) {
        phase_ = Phase::job;
        client_gone_ = false;
        on_client_gone_ = std::move(admission_.on_client_gone);
        auto run = std::move(admission_.run);
        admission_ = {};
        HttpServer::Impl & server = server_;
        try {
            server_.start_job([&server, self = shared_from_this(), run = std::move(run), body = std::move(body)]() mutable {
            HttpResponse response;
            try {
                response = run(std::move(body));
            } catch (const std::exception & e) {
                response = error_response(500, std::string("internal error: ") + e.what());
            }
            run = nullptr; // releases the route's reservations before the answer goes out
            asio::post(server.io, [self = std::move(self), response = std::move(response)]() mutable {
                self->on_job_done(std::move(response));
            });
        });
        } catch (const std::system_error & e) { // no thread to be had: the route's hold is released
            on_client_gone_ = nullptr;
            return respond(error_response(503, std::string("the server cannot start a thread: ") + e.what()), true);
        }
        watch_client();
    }

    // While a job works: a readable socket that reads end of file (or fails) means the client
    // has gone; bytes mean a pipelined request, so the client is still there.
    void watch_client() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code & ec) {
            if (self->phase_ != Phase::job || self->closed_ || ec == asio::error::operation_aborted) return;
            bool gone = bool(ec);
            if (!gone) {
                char byte = 0;
                const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_client();
                gone = n <= 0;
            }
            if (gone) {
                self->client_gone_ = true;
                if (self->on_client_gone_) self->on_client_gone_();
            }
        });
    }

    void on_job_done(HttpResponse response) {
        on_client_gone_ = nullptr;
        if (client_gone_ || closed_) {
            record_.status = 499;
            record_.detail = response.log_detail + (client_gone_ ? " (client disconnected: no answer sent)"
                                                                  : " (server stopping: no answer sent)");
            finish_record();
            server_.write_log(record_);
            close();
            return;
        }
        error_code ignored;
        socket_.cancel(ignored); // ends watch_client
        respond(std::move(response), !keep_alive_);
    }

    void respond(HttpResponse response, bool close_after) {
        phase_ = Phase::write;
        arm(server_.limits.write_timeout_seconds);
        record_.status = response.status;
        record_.detail = std::move(response.log_detail);
        record_.bytes_out = response.body.size();
        logged_ = response.logged;
        response_ = {};
        response_.version(version_ == 10 ? 10 : 11);
        response_.result(unsigned(response.status));
        response_.set(http::field::content_type, response.content_type);
        response_.keep_alive(!close_after);
        response_.body() = std::move(response.body);
        response_.prepare_payload();
        http::async_write(socket_, response_, [self = shared_from_this(), close_after](const error_code & ec, size_t) {
            self->on_written(ec, close_after);
        });
    }

    void on_written(const error_code & ec, bool close_after) {
        if (closed_) return;
        disarm();
        finish_record();
        if (ec) {
            record_.detail += timed_out_ ? fmt::format(" (answer not delivered within {} s)", server_.limits.write_timeout_seconds)
                                         : " (answer not delivered: " + ec.message() + ")";
            server_.write_log(record_);
            close();
            return;
        }
        if (logged_) server_.write_log(record_);
        response_ = {};
        parser_.reset();
        if (close_after) return linger();
        read_next();
    }

    // A refusal in the head or body: answered, then the connection is closed.
    void reject(int status, const std::string & message) { respond(error_response(status, message), true); }

    // The client left before anything could be answered.
    void client_left(const std::string & why) {
        record_.status = 499;
        record_.detail = why;
        finish_record();
        server_.write_log(record_);
        close();
    }

    // Stops sending, reads and drops what the client still sends (a bounded amount, for a
    // bounded time), then closes: a client writing a refused body reads the answer instead of
    // a connection reset.
    void linger() {
        phase_ = Phase::closing;
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        arm(linger_seconds_);
        linger_read(0);
    }
    void linger_read(uint64_t dropped) {
        if (closed_) return;
        dropped += buffer_.size();
        if (dropped >= linger_bytes_) return close();
        buffer_.consume(buffer_.size());
        socket_.async_read_some(buffer_.prepare(kReadBufferBytes), [self = shared_from_this(), dropped](const error_code & ec, size_t n) {
            if (ec) return self->close();
            self->buffer_.commit(n);
            self->linger_read(dropped);
        });
    }

    void finish_record() { record_.seconds = std::chrono::duration<double>(SteadyClock::now() - start_).count(); }

    HttpServer::Impl & server_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    const uint64_t id_;
    std::string peer_;
    uint64_t timer_generation_ = 0;
    bool timed_out_ = false, closed_ = false, keep_alive_ = false, logged_ = true, client_gone_ = false;
    Phase phase_ = Phase::idle;
    unsigned version_ = 11;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    uint64_t body_length_ = 0;
    uint64_t linger_bytes_ = kLingerBytes; // after an answer that closes the connection
    double linger_seconds_ = kLingerSeconds;
    HttpAdmission admission_;
    std::function<void()> on_client_gone_;
    http::response<http::string_body> response_;
    HttpLogRecord record_;
    SteadyClock::time_point start_;
};

// A connection over the limit, when no open one can make room: a short answer, written
// without waiting (a fresh socket's send buffer takes it), then closed.
void refuse_connection(tcp::socket & socket, HttpServer::Impl & server) {
    static const std::string body = R"({"error":"too many connections; try again later"})";
    static const std::string answer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                      "Connection: close\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body;
    HttpLogRecord record;
    record.start = std::chrono::system_clock::now();
    error_code ec;
    const tcp::endpoint remote = socket.remote_endpoint(ec);
    if (!ec) record.peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    record.status = 503;
    record.bytes_out = body.size();
    record.detail = fmt::format("connection refused: {} connections open, none idle", server.connections.size());
    [[maybe_unused]] const ssize_t sent =
        ::send(socket.native_handle(), answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    socket.close(ec);
    server.write_log(record);
}

} // namespace

std::string HttpHead::field(std::string_view name) const {
    for (const auto & [key, value] : fields)
        if (key.size() == name.size() && strncasecmp(key.data(), name.data(), key.size()) == 0) return value;
    return {};
}

void HttpServer::Impl::accept() {
    acceptor.async_accept([this](const error_code & ec, tcp::socket socket) {
        if (stopping || ec == asio::error::operation_aborted) return;
        if (ec) { // out of descriptors, most likely: try again a little later
            accept_retry.expires_after(std::chrono::milliseconds(100));
            accept_retry.async_wait([this](const error_code & e) {
                if (!e && !stopping) accept();
            });
            return;
        }
        if (connections.size() >= limits.max_connections) {
            // Room from the oldest connection with no request under way (idle, or still
            // sending its head): slow clients cannot keep newer ones out.
            std::shared_ptr<Connection> oldest;
            for (const auto & [id, weak] : connections) {
                std::shared_ptr<Connection> c = weak.lock();
                if (c && (c->phase() == Connection::Phase::idle || c->phase() == Connection::Phase::head)) {
                    oldest = std::move(c);
                    break;
                }
            }
            if (oldest) {
                oldest->close("closed to make room for a new connection (connection limit)");
            } else {
                refuse_connection(socket, *this);
                accept();
                return;
            }
        }
        const uint64_t id = next_connection++;
        auto connection = std::make_shared<Connection>(*this, std::move(socket), id);
        connections.emplace(id, connection);
        connection->start();
        accept();
    });
}

void HttpServer::Impl::begin_stop() {
    if (stopping) return;
    stopping = true;
    error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
    std::vector<std::shared_ptr<Connection>> open;
    for (const auto & [id, weak] : connections)
        if (auto c = weak.lock()) open.push_back(std::move(c));
    for (const auto & c : open) c->close();
    std::lock_guard lock(jobs_mutex);
    if (jobs.empty()) work.reset();
}

void HttpServer::Impl::start_job(std::function<void()> fn) {
    std::lock_guard lock(jobs_mutex);
    const uint64_t id = next_job++;
    jobs.emplace(id, std::thread([this, id, fn = std::move(fn)]() mutable {
        fn();
        fn = nullptr;
        asio::post(io, [this, id] { finish_job(id); });
    }));
}

void HttpServer::Impl::finish_job(uint64_t id) {
    std::thread done;
    {
        std::lock_guard lock(jobs_mutex);
        auto it = jobs.find(id);
        if (it == jobs.end()) return;
        done = std::move(it->second);
        jobs.erase(it);
        if (stopping && jobs.empty()) work.reset();
    }
    done.join(); // it has posted its last handler: a moment at most
}

HttpServer::HttpServer(std::vector<HttpRoute> routes, HttpLimits limits, std::function<void(const HttpLogRecord &)> log)
    : impl_(std::make_shared<Impl>(std::move(routes), limits, std::move(log))) {
    if (limits.max_connections == 0 || limits.max_header_bytes == 0 || !(limits.head_timeout_seconds > 0) ||
        !(limits.body_timeout_seconds > 0) || !(limits.idle_timeout_seconds > 0) || !(limits.write_timeout_seconds > 0))
        fail("http server: every limit must be positive");
}

HttpServer::~HttpServer() {
    stop();
    // Whatever serve() left (or all of it, if serve() never ran): closes, then joins the jobs.
    impl_->io.restart();
    impl_->io.run();
    std::lock_guard lock(impl_->jobs_mutex);
    for (auto & [id, thread] : impl_->jobs) thread.join();
}

int HttpServer::bind(const std::string & host, int port) {
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (ec) fail("server: cannot listen on {}:{}: not an IP address", host, port);
    const tcp::endpoint endpoint(address, uint16_t(port));
    tcp::acceptor & a = impl_->acceptor;
    a.open(endpoint.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(endpoint, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail("server: cannot listen on {}:{}: {}", host, port, ec.message());
    return a.local_endpoint().port();
}

void HttpServer::serve() {
    Impl & impl = *impl_;
    if (!impl.acceptor.is_open()) fail("server: serve() before bind()");
    asio::post(impl.io, [&impl] {
        if (!impl.stop_requested) impl.accept();
    });
    for (;;) {
        try {
            impl.io.run();
            return;
        } catch (const std::exception & e) { // a handler failed (out of memory): its connection's deadline ends it
            HttpLogRecord record;
            record.start = std::chrono::system_clock::now();
            record.status = 500;
            record.detail = std::string("internal error in the HTTP layer: ") + e.what();
            impl.write_log(record);
        }
    }
}

void HttpServer::stop() {
    impl_->stop_requested = true;
    asio::post(impl_->io, [impl = impl_] { impl->begin_stop(); });
}

size_t HttpServer::connection_count() const { return impl_->open_connections.load(); }

const HttpLimits & HttpServer::limits() const { return impl_->limits; }

} // namespace fhegpt::net
