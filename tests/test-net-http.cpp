// The server's HTTP layer (net::HttpServer) under hostile clients, on loopback with raw
// sockets and toy routes (no cryptography, so every test takes a second or two):
// - bodies that are coded (Content-Encoding), chunked or of another transfer coding, without a
//   length, or longer than the route's limit are refused from the head, before a byte of body
//   is read and before the route is asked; the connection is closed; peak memory stays flat
//   while such clients push hundreds of MiB;
// - the whole head and the whole body have deadlines (a client trickling a byte at a time
//   is cut off), header count and size are bounded, idle connections are closed;
// - 64 slow clients do not keep others from being answered; at the connection limit, room
//   is made from connections with no request under way, and only when there is none is a new
//   connection refused;
// - a client that disconnects while its request is worked on is reported to the route;
// - one log line per request, timestamped, escaped, with what is known of refused ones;
// - stop() ends serve() while clients trickle.
// Timings are never asserted, except as generous bounds on "does not hang".
#include "net-test-util.h"
#include "net/http_server.h"
#include "net/request_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace fhegpt::net;
using fhegpt::test::RawConnection;
using fhegpt::test::RawResponse;
using fhegpt::test::raw_request;

constexpr double kGenerous = 20; // seconds: only a broken server takes this long

// A toy server on a free loopback port, with counters of what its routes saw.
class ToyServer {
public:
    explicit ToyServer(HttpLimits limits = {}) : server_(routes(), limits, [this](const HttpLogRecord & r) { log(r); }) {
        port_ = server_.bind("127.0.0.1", 0);
        thread_ = std::thread([this] { server_.serve(); });
    }
    ~ToyServer() {
        release_gate();
        server_.stop();
        thread_.join();
    }

    int port() const { return port_; }
    HttpServer & server() { return server_; }
    std::vector<std::string> log_lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }
    // Lines that mention `text`.
    std::vector<std::string> log_lines_with(const std::string & text) {
        std::vector<std::string> out;
        for (const auto & l : log_lines())
            if (l.find(text) != std::string::npos) out.push_back(l);
        return out;
    }
    void release_gate() {
        std::lock_guard lock(mutex_);
        if (!gate_released_) gate_.set_value();
        gate_released_ = true;
    }
    // Waits (bounded) until `pred` holds.
    template <typename Pred>
    static bool eventually(Pred pred, double seconds = kGenerous) {
        const double end = RawConnection::now() + seconds;
        while (!pred()) {
            if (RawConnection::now() > end) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return true;
    }

    std::atomic<int> admitted{0}, ran{0}, gone{0}, in_gate{0};

private:
    std::vector<HttpRoute> routes() {
        std::vector<HttpRoute> r;
        r.push_back({"GET", "/health", 0, [](const HttpHead &) {
                         HttpResponse res;
                         res.body = R"({"status":"ok"})";
                         return HttpAdmission::answered(res);
                     }});
        // Echoes the body's size from a job thread.
        r.push_back({"POST", "/echo", 1000, [this](const HttpHead &) {
                         ++admitted;
                         HttpAdmission a;
                         a.run = [this](std::string body) {
                             ++ran;
                             HttpResponse res;
                             res.body = std::to_string(body.size());
                             res.log_detail = "echoed";
                             return res;
                         };
                         return a;
                     }});
        // Works until the gate opens or the client goes.
        r.push_back({"POST", "/slow", 100, [this](const HttpHead &) {
                         auto left = std::make_shared<std::promise<void>>();
                         auto left_future = std::make_shared<std::shared_future<void>>(left->get_future().share());
                         HttpAdmission a;
                         a.run = [this, left_future](std::string) {
                             ++in_gate;
                             std::shared_future<void> gate = gate_future_;
                             const double end = RawConnection::now() + kGenerous;
                             HttpResponse res;
                             res.log_detail = "timed out";
                             while (RawConnection::now() < end) {
                                 if (left_future->wait_for(std::chrono::milliseconds(5)) == std::future_status::ready) {
                                     res.log_detail = "stopped: client gone";
                                     break;
                                 }
                                 if (gate.wait_for(std::chrono::milliseconds(5)) == std::future_status::ready) {
                                     res.log_detail = "done";
                                     break;
                                 }
                             }
                             --in_gate;
                             return res;
                         };
                         a.on_client_gone = [this, left] {
                             ++gone;
                             left->set_value();
                         };
                         return a;
                     }});
        return r;
    }
    void log(const HttpLogRecord & r) {
        std::lock_guard lock(mutex_);
        lines_.push_back(format_log_line(r));
    }

    std::mutex mutex_;
    std::vector<std::string> lines_;
    std::promise<void> gate_;
    std::shared_future<void> gate_future_ = gate_.get_future().share();
    bool gate_released_ = false;
    HttpServer server_;
    int port_ = 0;
    std::thread thread_;
};

// "2025-01-31T12:00:00.123Z 127.0.0.1:PORT METHOD TARGET STATUS in=... out=... 0.000s[ ...]"
bool has_log_line_shape(const std::string & line) {
    const std::string stamp = "0000-00-00T00:00:00.000Z"; // 0: a digit
    if (line.size() < stamp.size()) return false;
    for (size_t i = 0; i < stamp.size(); ++i)
        if (stamp[i] == '0' ? !std::isdigit(static_cast<unsigned char>(line[i])) : line[i] != stamp[i]) return false;
    std::istringstream fields(line.substr(stamp.size()));
    std::string peer, method, target, status, in, in_unit, out, out_unit, seconds;
    fields >> peer >> method >> target >> status >> in >> in_unit >> out >> out_unit >> seconds;
    const auto digits = [](const std::string & t) {
        return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    return peer.rfind("127.0.0.1:", 0) == 0 && !method.empty() && !target.empty() && status.size() == 3 &&
           digits(status) && in.rfind("in=", 0) == 0 && out.rfind("out=", 0) == 0 && seconds.size() >= 6 &&
           seconds.back() == 's' && seconds[seconds.size() - 5] == '.';
}

std::string post_head(const std::string & path, const std::string & fields) {
    return "POST " + path + " HTTP/1.1\r\nHost: test\r\n" + fields + "\r\n";
}

TEST(NetHttp, AnswersAndKeepsTheConnection) {
    ToyServer toy;
    RawConnection c(toy.port());
    ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_EQ(c.read_response(kGenerous).status, 200);
    // A body, then a pipelined pair on the same connection.
    ASSERT_TRUE(c.send(post_head("/echo", "Content-Length: 5\r\n") + "hello"));
    RawResponse r = c.read_response(kGenerous);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "5");
    ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n" + post_head("/echo", "Content-Length: 3\r\n") + "abc"));
    EXPECT_EQ(c.read_response(kGenerous).status, 200);
    r = c.read_response(kGenerous);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "3");
    EXPECT_EQ(toy.ran.load(), 2);
    EXPECT_FALSE(c.closed());
    // Unknown calls and methods.
    ASSERT_TRUE(c.send("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"));
    r = c.read_response(kGenerous);
    EXPECT_EQ(r.status, 404);
    EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
    EXPECT_EQ(raw_request(toy.port(), "DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n").status, 405);
}

TEST(NetHttp, RefusesBodiesFromTheHead) {
    // Each refused before a byte of body is sent (the client sends none and still gets its
    // answer), without asking the route, and the connection is closed.
    ToyServer toy;
    struct Case {
        std::string head;
        int status;
        const char * what;
    };
    const std::vector<Case> cases = {
        {post_head("/echo", "Content-Length: 10000000000\r\n"), 413, "10 GB announced"},
        {post_head("/echo", "Content-Length: 1001\r\n"), 413, "one byte over the route's limit"},
        {post_head("/echo", "Transfer-Encoding: chunked\r\n"), 411, "chunked"},
        {post_head("/echo", "Transfer-Encoding: gzip, chunked\r\n"), 411, "gzip transfer coding"},
        {post_head("/echo", "Content-Encoding: gzip\r\nContent-Length: 20\r\n"), 415, "gzip body"},
        {post_head("/echo", "Content-Encoding: br\r\nContent-Length: 20\r\n"), 415, "brotli body"},
        {post_head("/echo", ""), 411, "no Content-Length"},
        {"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", 413, "a body on a call that takes none"},
    };
    for (const Case & c : cases) {
        RawConnection conn(toy.port());
        ASSERT_TRUE(conn.send(c.head)) << c.what;
        const RawResponse r = conn.read_response(kGenerous);
        EXPECT_EQ(r.status, c.status) << c.what << ": " << r.head;
        EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << c.what << ": " << r.head;
        EXPECT_NE(r.body.find("\"error\""), std::string::npos) << c.what;
        EXPECT_TRUE(conn.wait_closed(kGenerous)) << c.what << ": the connection stayed open";
    }
    EXPECT_EQ(toy.admitted.load(), 0);
    EXPECT_EQ(toy.ran.load(), 0);
    // Each is logged with its method, path and status.
    EXPECT_EQ(toy.log_lines_with("POST /echo 413").size(), 2u);
    EXPECT_EQ(toy.log_lines_with("POST /echo 411").size(), 3u);
    EXPECT_EQ(toy.log_lines_with("POST /echo 415").size(), 2u);
    // With Expect: 100-continue, a client learns it before sending anything, and a body within
    // the limit is asked for.
    RawConnection polite(toy.port());
    ASSERT_TRUE(polite.send(post_head("/echo", "Expect: 100-continue\r\nContent-Length: 4\r\n")));
    const std::string interim = polite.read_until_closed(0.5);
    EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << interim;
    ASSERT_TRUE(polite.send("abcd"));
    const RawResponse echoed = polite.read_response(kGenerous);
    EXPECT_EQ(echoed.status, 200);
    EXPECT_EQ(echoed.body, "4");
}

TEST(NetHttp, MemoryStaysFlatUnderBodyFloods) {
    // Four clients each announce (or not) a body the server must refuse and push 64 MiB at it
    // regardless: the server reads at most a little of each, so this process's peak memory
    // grows by far less than what was pushed (the old server kept 128 MiB of a chunked body
    // and expanded 1 MB of gzip to 1 GiB).
    ToyServer toy;
    const uint64_t before = fhegpt::test::peak_rss_bytes();
    const std::string chunk(1 << 20, 'z');
    const std::vector<std::string> heads = {
        post_head("/echo", "Content-Length: 100000000\r\n"),
        post_head("/echo", "Transfer-Encoding: chunked\r\n"),
        post_head("/echo", "Content-Encoding: gzip\r\nContent-Length: 67108864\r\n"),
        post_head("/echo", ""),
    };
    uint64_t pushed = 0;
    for (const std::string & head : heads) {
        RawConnection c(toy.port());
        if (!c.send(head)) continue;
        for (int i = 0; i < 64 && c.send(chunk); ++i) pushed += chunk.size();
        EXPECT_TRUE(c.wait_closed(kGenerous));
    }
    const uint64_t after = fhegpt::test::peak_rss_bytes();
    std::printf("pushed %.1f MiB of refused bodies; peak RSS %.1f -> %.1f MiB\n", double(pushed) / 1048576.0,
                double(before) / 1048576.0, double(after) / 1048576.0);
    EXPECT_LT(after - before, uint64_t(16) << 20);
    EXPECT_EQ(toy.admitted.load(), 0);
}

TEST(NetHttp, WholeHeadAndBodyDeadlines) {
    HttpLimits limits;
    limits.head_timeout_seconds = 1;
    limits.body_timeout_seconds = 1;
    limits.idle_timeout_seconds = 0.5;
    ToyServer toy(limits);
    // A head trickled a byte every 50 ms: no single wait is long, the whole head is.
    {
        RawConnection c(toy.port());
        const std::string endless = "GET /health HTTP/1.1\r\nX-Slow: " + std::string(1000, 'a');
        size_t sent = 0;
        const double end = RawConnection::now() + kGenerous;
        while (RawConnection::now() < end && sent < endless.size() && c.send(endless.substr(sent, 1))) {
            ++sent;
            const std::string got = c.read_until_closed(0.05);
            if (!got.empty() || c.closed()) {
                EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
                break;
            }
        }
        EXPECT_LT(sent, endless.size()) << "the server never cut the trickle off";
        EXPECT_TRUE(c.wait_closed(kGenerous));
        const auto lines = toy.log_lines_with(" 408 ");
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_NE(lines[0].find("GET /health 408"), std::string::npos) << lines[0];
        EXPECT_NE(lines[0].find("request head did not arrive within 1 s"), std::string::npos) << lines[0];
    }
    // A body trickled likewise.
    {
        RawConnection c(toy.port());
        ASSERT_TRUE(c.send(post_head("/echo", "Content-Length: 1000\r\n") + "0123456789"));
        const double end = RawConnection::now() + kGenerous;
        std::string got;
        while (RawConnection::now() < end && c.send("x")) {
            got = c.read_until_closed(0.05);
            if (!got.empty() || c.closed()) break;
        }
        EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0u) << got;
        EXPECT_EQ(toy.ran.load(), 0);
        const auto lines = toy.log_lines_with("POST /echo 408");
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_NE(lines[0].find("of 1000 bytes came"), std::string::npos) << lines[0];
    }
    // An idle connection is closed without a log line (it was not a request).
    const size_t logged = toy.log_lines().size();
    RawConnection idle(toy.port());
    EXPECT_TRUE(idle.wait_closed(kGenerous));
    EXPECT_EQ(idle.read_until_closed(0), "");
    EXPECT_EQ(toy.log_lines().size(), logged);
}

TEST(NetHttp, HeaderBounds) {
    HttpLimits limits;
    limits.max_header_fields = 20;
    limits.max_header_bytes = 4096;
    ToyServer toy(limits);
    std::string many;
    for (int i = 0; i < 21; ++i) many += "X-F" + std::to_string(i) + ": v\r\n";
    EXPECT_EQ(raw_request(toy.port(), "GET /health HTTP/1.1\r\n" + many + "\r\n").status, 431);
    EXPECT_EQ(raw_request(toy.port(), "GET /health HTTP/1.1\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n").status, 431);
    EXPECT_EQ(raw_request(toy.port(), "GET /" + std::string(5000, 'p') + " HTTP/1.1\r\n\r\n").status, 431);
    EXPECT_EQ(raw_request(toy.port(), "GET /health HTTP/1.1\r\n" + many.substr(0, many.size() / 2) + "\r\n").status, 200);
    // Malformed heads get 400 and are logged with what could be read.
    EXPECT_EQ(raw_request(toy.port(), "GET /health HTTP/9.9\r\n\r\n").status, 400);
    EXPECT_EQ(raw_request(toy.port(), "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").status, 400);
    EXPECT_EQ(toy.log_lines_with(" 431 ").size(), 3u);
    EXPECT_EQ(toy.log_lines_with("GET /health 400").size(), 1u);
}

TEST(NetHttp, SlowClientsDoNotStarveOthers) {
    // 64 connections trickle their heads (a byte every 100 ms, for longer than the test) while
    // other clients call /health: every call is answered (in milliseconds, printed).
    ToyServer toy;
    std::vector<std::unique_ptr<RawConnection>> slow;
    for (int i = 0; i < 64; ++i) slow.push_back(std::make_unique<RawConnection>(toy.port()));
    const std::string head = "GET /health HTTP/1.1\r\nX-Slow: " + std::string(1000, 's');
    std::atomic<bool> done{false};
    std::thread trickle([&] {
        for (size_t i = 0; i < head.size() && !done; ++i) {
            for (auto & c : slow) c->send(head.substr(i, 1));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.server().connection_count() >= 64; }));
    double slowest = 0;
    for (int i = 0; i < 20; ++i) {
        const double start = RawConnection::now();
        const RawResponse r = raw_request(toy.port(), "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", kGenerous);
        slowest = std::max(slowest, RawConnection::now() - start);
        EXPECT_EQ(r.status, 200) << "call " << i;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    done = true;
    trickle.join();
    std::printf("/health with 64 slow connections open: slowest of 20 answers %.1f ms\n", slowest * 1000);
    EXPECT_GE(toy.server().connection_count(), 64u); // they were all still open
}

TEST(NetHttp, ConnectionLimitMakesRoomFromIdleConnections) {
    HttpLimits limits;
    limits.max_connections = 8;
    ToyServer toy(limits);
    // 20 connections that never finish their heads: the newest 8 stay, the others were closed
    // to make room, and a health check still gets through.
    std::vector<std::unique_ptr<RawConnection>> slow;
    for (int i = 0; i < 20; ++i) {
        slow.push_back(std::make_unique<RawConnection>(toy.port()));
        slow.back()->send("GET /hea");
    }
    EXPECT_EQ(raw_request(toy.port(), "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", kGenerous).status, 200);
    EXPECT_TRUE(ToyServer::eventually([&] { return toy.server().connection_count() <= 8; }));
    EXPECT_TRUE(slow.front()->wait_closed(kGenerous));
    slow.clear();
    // 8 connections whose requests are under way leave no room: the ninth is refused.
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.server().connection_count() == 0; }));
    std::vector<std::unique_ptr<RawConnection>> busy;
    for (int i = 0; i < 8; ++i) {
        busy.push_back(std::make_unique<RawConnection>(toy.port()));
        busy.back()->send(post_head("/slow", "Content-Length: 0\r\n"));
    }
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.in_gate.load() == 8; }));
    const RawResponse refused = raw_request(toy.port(), "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", kGenerous);
    EXPECT_EQ(refused.status, 503);
    EXPECT_NE(refused.body.find("too many connections"), std::string::npos) << refused.body;
    toy.release_gate();
    for (auto & c : busy) EXPECT_EQ(c->read_response(kGenerous).status, 200);
}

TEST(NetHttp, ClientDisconnectReachesTheRoute) {
    ToyServer toy;
    {
        RawConnection c(toy.port());
        ASSERT_TRUE(c.send(post_head("/slow", "Content-Length: 3\r\n") + "abc"));
        ASSERT_TRUE(ToyServer::eventually([&] { return toy.in_gate.load() == 1; }));
    } // closed with the request under way
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.gone.load() == 1; }));
    ASSERT_TRUE(ToyServer::eventually([&] { return !toy.log_lines_with("POST /slow 499").empty(); }));
    const std::string line = toy.log_lines_with("POST /slow 499")[0];
    EXPECT_NE(line.find("stopped: client gone (client disconnected: no answer sent)"), std::string::npos) << line;
    // A client that stays gets its answer, and is not taken for gone.
    RawConnection stays(toy.port());
    ASSERT_TRUE(stays.send(post_head("/slow", "Content-Length: 0\r\n")));
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.in_gate.load() == 1; }));
    toy.release_gate();
    EXPECT_EQ(stays.read_response(kGenerous).status, 200);
    EXPECT_EQ(toy.gone.load(), 1);
}

TEST(NetHttp, LogLinesAreTimestampedAndEscaped) {
    EXPECT_EQ(escape_log_text("a\nb\rc\x1b[31m\\d\x7f\xc3\xa9"), "a\\x0ab\\x0dc\\x1b[31m\\x5cd\\x7f\\xc3\\xa9");
    EXPECT_EQ(escape_log_text(std::string("x\0y", 3)), "x\\x00y");
    EXPECT_EQ(escape_log_text(std::string(600, 'a'), 512), std::string(512, 'a') + "...");
    EXPECT_EQ(utc_timestamp(std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123))),
              "2023-11-14T22:13:20.123Z");

    ToyServer toy;
    // Encoded and raw control bytes in targets, a bad method, a head cut by the client.
    raw_request(toy.port(), "GET /health%0A%0D%1B%00x HTTP/1.1\r\nHost: t\r\n\r\n", kGenerous);
    raw_request(toy.port(), std::string("GET /v1/\x1b[2J\x07\x00zz HTTP/1.1\r\n\r\n", 29), kGenerous);
    raw_request(toy.port(), "G\x1b\nT / HTTP/1.1\r\n\r\n", kGenerous);
    {
        RawConnection cut(toy.port());
        cut.send("POST /echo?q=1 HTT"); // cut in the request line
    }
    {
        RawConnection cut(toy.port());
        cut.send("PUT /echo HTTP/1.1\r\nContent-Le"); // cut after it
    }
    raw_request(toy.port(), post_head("/echo", "Content-Length: 2\r\n") + "hi", kGenerous);
    ASSERT_TRUE(ToyServer::eventually([&] { return toy.log_lines().size() >= 6; }));
    for (const std::string & line : toy.log_lines()) {
        EXPECT_TRUE(has_log_line_shape(line)) << line;
        for (char ch : line) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << "a control byte in: " << line;
    }
    // The target as sent (not decoded), and the raw bytes escaped.
    EXPECT_EQ(toy.log_lines_with("GET /health%0A%0D%1B%00x 404").size(), 1u);
    EXPECT_EQ(toy.log_lines_with("/v1/\\x1b[2J\\x07\\x00zz").size(), 1u);
    // What came of cut heads.
    EXPECT_EQ(toy.log_lines_with("POST /echo?q=1 499 in=18 B").size(), 1u);
    EXPECT_EQ(toy.log_lines_with("PUT /echo 499 in=30 B").size(), 1u);
    EXPECT_EQ(toy.log_lines_with("POST /echo 200 in=").size(), 1u);
}

TEST(NetHttp, StopEndsServeWhileClientsTrickle) {
    auto toy = std::make_unique<ToyServer>();
    RawConnection slow(toy->port());
    slow.send("GET /health HTTP/1.1\r\nX-Slow: a");
    RawConnection working(toy->port());
    working.send(post_head("/slow", "Content-Length: 0\r\n"));
    ASSERT_TRUE(ToyServer::eventually([&] { return toy->in_gate.load() == 1; }));
    const double start = RawConnection::now();
    toy.reset(); // stop(), serve() returns once the job is done (the gate opens), join
    const double seconds = RawConnection::now() - start;
    std::printf("stopped in %.3f s\n", seconds);
    EXPECT_LT(seconds, kGenerous);
    EXPECT_TRUE(slow.wait_closed(kGenerous));
}

} // namespace
