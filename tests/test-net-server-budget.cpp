// The part server's budget under load, on the in-process server of net-server-test-util.h.
// Evaluations are held at a gate in the served part's circuit building, so that nothing
// depends on timing:
// - health, info, progress, key upload and close are answered while another session
//   evaluates, the key upload also while the thread pool is held by another loop;
// - closing a session cancels its evaluation (410), and its slot comes back only once the
//   evaluation has stopped and its memory is freed;
// - a client that disconnects while its evaluation waits for a turn takes it out of the queue;
// - sessions and evaluations stay within their limits whatever the order of create / eval /
//   close / disconnect (a monitor reads /v1/health throughout), and nothing is held after;
// - stopping the server cancels a held evaluation and ends promptly with a client trickling;
// - the log says what happened.
#include "net-server-test-util.h"
#include "net-test-util.h"
#include "circuit/quantized_part_seams.h"
#include "common/thread_pool.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace fhegpt;
using namespace fhegpt::circuit;
using namespace fhegpt::test;

// A gate in the served part's circuit building: an evaluation that reaches it waits there,
// holding its turn and its session, until the test opens it. (Circuits are cached per rows:
// only the first evaluation of given rows meets the gate.)
struct CircuitGate {
    std::promise<void> opened;
    std::shared_future<void> open_future = opened.get_future().share();
    std::atomic<int> waiting{0};
    std::once_flag once;
    void open() {
        std::call_once(once, [this] { opened.set_value(); });
    }
};

net::ServedPart gated(net::ServedPart part, std::shared_ptr<CircuitGate> gate) {
    part.build_row_circuit = [build = part.build_row_circuit, gate](int32_t first, int32_t n) {
        ++gate->waiting;
        gate->open_future.wait_for(std::chrono::seconds(120)); // only a broken test waits this long
        --gate->waiting;
        return build(first, n);
    };
    return part;
}

// Waits (bounded: only a broken server takes this long) until `pred` holds.
template <typename Pred>
bool eventually(Pred pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

nlohmann::json get_health(const TestServer & server) {
    const test::RawResponse r = test::raw_request(server.port(), "GET /v1/health HTTP/1.1\r\n\r\n");
    EXPECT_EQ(r.status, 200) << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
}

// A raw evaluation request (head and body) for a session.
std::string raw_eval(const std::string & token, const std::string & body) {
    return "POST /v1/eval HTTP/1.1\r\nAuthorization: Bearer " + token + "\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(NetServerBudget, SessionCallsAnswerWhileAnotherSessionEvaluates) {
    auto gate = std::make_shared<CircuitGate>();
    TestServer server(gated(served_head(), gate));
    const net::PartManifest & m = server.manifest();
    const RawClient a(test_params()), b(test_params());
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const std::string token_a = session_token(post(http, "/v1/sessions", a.key_upload));
    ASSERT_EQ(token_a.size(), 64u);

    const std::vector<float> x = test::normal_x(size_t(2) * kEmbd, 91);
    std::optional<httplib::Result> evaluated;
    std::thread evaluation([&] {
        httplib::Client c(server.url());
        c.set_read_timeout(kReadTimeoutSeconds, 0);
        evaluated.emplace(post(c, "/v1/eval", a.eval_body(m.quantize_inputs(x), m.input_delta_log2, 0, 2), bearer(token_a)));
    });
    ASSERT_TRUE(eventually([&] { return gate->waiting.load() == 1; }));

    // While it is under way: health, info and progress.
    auto start = std::chrono::steady_clock::now();
    const nlohmann::json health = get_health(server);
    EXPECT_EQ(health["status"], "ok");
    EXPECT_EQ(health["sessions"], 1);
    EXPECT_EQ(health["max_sessions"], 4);
    EXPECT_EQ(health["evaluations"], 1);
    EXPECT_EQ(health["max_evaluations"], 2);
    EXPECT_EQ(health["evaluations_waiting"], 0);
    const double health_seconds = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const auto info = http.Get("/v1/info");
    const double info_seconds = seconds_since(start);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->status, 200);
    const auto progress = http.Get("/v1/progress", bearer(token_a));
    ASSERT_TRUE(progress);
    EXPECT_EQ(progress->status, 200);
    // A second evaluation of the same session is refused before its body is read.
    expect_error(post(http, "/v1/eval", a.eval_body(m.quantize_inputs(x), m.input_delta_log2, 0, 2), bearer(token_a)),
                 409, "a second request of a busy session", "busy");

    // A key upload and a close, also while the thread pool is held by another loop (as by an
    // evaluation's bootstrap batch): the upload decompresses the key without waiting for it.
    std::promise<void> pool_held, release_pool;
    std::shared_future<void> released = release_pool.get_future().share();
    std::thread pool_holder([&] {
        ThreadPool::global().parallel_for(ThreadPool::global().size(), [&](size_t, size_t, size_t thread) {
            if (thread != 0) return;
            pool_held.set_value();
            released.wait_for(std::chrono::seconds(120));
        });
    });
    pool_held.get_future().wait();
    start = std::chrono::steady_clock::now();
    const std::string token_b = session_token(post(http, "/v1/sessions", b.key_upload));
    const double create_seconds = seconds_since(start);
    ASSERT_EQ(token_b.size(), 64u);
    EXPECT_EQ(get_health(server)["sessions"], 2);
    start = std::chrono::steady_clock::now();
    const auto closed = http.Delete("/v1/session", bearer(token_b));
    const double delete_seconds = seconds_since(start);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->status, 204);
    EXPECT_EQ(get_health(server)["sessions"], 1);
    release_pool.set_value();
    pool_holder.join();
    std::printf("during an evaluation: health %.1f ms, info %.1f ms, key upload %.1f ms (pool busy), close %.1f ms\n",
                health_seconds * 1e3, info_seconds * 1e3, create_seconds * 1e3, delete_seconds * 1e3);

    // The evaluation was still at the gate all along; opened, it answers the right rows.
    EXPECT_EQ(gate->waiting.load(), 1);
    gate->open();
    evaluation.join();
    ASSERT_TRUE(evaluated && *evaluated);
    ASSERT_EQ((*evaluated)->status, 200) << (*evaluated)->body;
    std::vector<float> expected(size_t(2) * kHeadDim);
    QuantizedHeadAttention(test_head(), Executor::simulate).forward(x, 2, 0, expected);
    EXPECT_EQ(to_reals(a.decode((*evaluated)->body, m.output_delta_log2), m.output_unit), expected);
    EXPECT_EQ(get_health(server)["evaluations"], 0);
}

TEST(NetServerBudget, ClosingASessionCancelsItsEvaluationAndFreesItsSlotAfterwards) {
    auto gate = std::make_shared<CircuitGate>();
    net::ServerOptions options;
    options.max_sessions = 1;
    TestServer server(gated(served_head(), gate), options);
    const net::PartManifest & m = server.manifest();
    const RawClient client(test_params());
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const std::string token = session_token(post(http, "/v1/sessions", client.key_upload));
    ASSERT_EQ(token.size(), 64u);
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(kEmbd, 93));
    std::optional<httplib::Result> evaluated;
    std::thread evaluation([&] {
        httplib::Client c(server.url());
        c.set_read_timeout(kReadTimeoutSeconds, 0);
        evaluated.emplace(post(c, "/v1/eval", client.eval_body(x, m.input_delta_log2, 0, 1), bearer(token)));
    });
    ASSERT_TRUE(eventually([&] { return gate->waiting.load() == 1; }));

    const auto closed = http.Delete("/v1/session", bearer(token));
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->status, 204);
    expect_error(http.Get("/v1/progress", bearer(token)), 404, "progress of a closed session");
    // Its memory is still held by the evaluation: so is its slot.
    EXPECT_EQ(get_health(server)["sessions"], 1);
    expect_error(post(http, "/v1/sessions", client.key_upload), 503, "a session while the closed one frees", "maximum");

    gate->open();
    evaluation.join();
    ASSERT_TRUE(evaluated);
    expect_error(*evaluated, 410, "the closed session's evaluation", "the session was closed");
    ASSERT_TRUE(eventually([&] { return get_health(server)["sessions"] == 0; }));
    EXPECT_EQ(session_token(post(http, "/v1/sessions", client.key_upload)).size(), 64u);

    EXPECT_EQ(server.log_lines_with("DELETE /v1/session 204").size(), 1u);
    EXPECT_EQ(server.log_lines_with("its evaluation is cancelled").size(), 1u);
    const auto cancelled = server.log_lines_with("POST /v1/eval 410");
    ASSERT_EQ(cancelled.size(), 1u);
    EXPECT_NE(cancelled[0].find("evaluation cancelled before its first bootstrap batch: the session was closed"),
              std::string::npos)
        << cancelled[0];
}

TEST(NetServerBudget, DisconnectCancelsAWaitingEvaluation) {
    auto gate = std::make_shared<CircuitGate>();
    net::ServerOptions options;
    options.max_evaluations = 1;
    TestServer server(gated(served_head(), gate), options);
    const net::PartManifest & m = server.manifest();
    const RawClient a(test_params()), b(test_params());
    httplib::Client http(server.url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const std::string token_a = session_token(post(http, "/v1/sessions", a.key_upload));
    const std::string token_b = session_token(post(http, "/v1/sessions", b.key_upload));
    ASSERT_EQ(token_b.size(), 64u);
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(kEmbd, 95));
    std::optional<httplib::Result> evaluated;
    std::thread evaluation([&] {
        httplib::Client c(server.url());
        c.set_read_timeout(kReadTimeoutSeconds, 0);
        evaluated.emplace(post(c, "/v1/eval", a.eval_body(x, m.input_delta_log2, 0, 1), bearer(token_a)));
    });
    ASSERT_TRUE(eventually([&] { return gate->waiting.load() == 1; }));

    // B's evaluation waits for the one turn; its client leaves; it leaves the queue.
    {
        test::RawConnection c(server.port());
        ASSERT_TRUE(c.send(raw_eval(token_b, b.eval_body(x, m.input_delta_log2, 0, 1))));
        ASSERT_TRUE(eventually([&] { return get_health(server)["evaluations_waiting"] == 1; }));
    }
    ASSERT_TRUE(eventually([&] { return get_health(server)["evaluations_waiting"] == 0; }));
    ASSERT_TRUE(eventually([&] { return !server.log_lines_with("POST /v1/eval 499").empty(); }));
    const std::string line = server.log_lines_with("POST /v1/eval 499")[0];
    EXPECT_NE(line.find("evaluation cancelled while waiting for its turn: the client disconnected"), std::string::npos)
        << line;
    EXPECT_EQ(get_health(server)["evaluations"], 1); // A's, still at the gate

    gate->open();
    evaluation.join();
    ASSERT_TRUE(evaluated && *evaluated);
    EXPECT_EQ((*evaluated)->status, 200) << (*evaluated)->body;
    // B's session is as it was and works.
    const auto again = post(http, "/v1/eval", b.eval_body(x, m.input_delta_log2, 0, 1), bearer(token_b));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200) << again->body;
}

TEST(NetServerBudget, BudgetHoldsWhateverTheOrder) {
    // Three clients, three rounds each, in turn every order: create, then evaluate to
    // the end / evaluate and close from another connection / evaluate and disconnect / close
    // at once. A monitor reads /v1/health throughout: never more than 2 sessions (slots: key
    // sets in memory) or 1 evaluation; at the end, nothing is held.
    net::ServerOptions options;
    options.max_sessions = 2;
    options.max_evaluations = 1;
    TestServer server(served_head(), options);
    const net::PartManifest & m = server.manifest();
    const RawClient client(test_params());
    const std::vector<int64_t> x = m.quantize_inputs(test::normal_x(kEmbd, 97));
    const std::string eval_body = client.eval_body(x, m.input_delta_log2, 0, 1);

    std::atomic<bool> done{false};
    std::atomic<int> max_sessions{0}, max_evaluations{0}, polls{0};
    std::thread monitor([&] {
        while (!done) {
            const nlohmann::json h = get_health(server);
            if (h.is_object()) {
                max_sessions = std::max(max_sessions.load(), h["sessions"].get<int>());
                max_evaluations = std::max(max_evaluations.load(), h["evaluations"].get<int>());
                ++polls;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    std::mutex seen_mutex;
    std::map<int, int> eval_statuses;
    std::atomic<int> creates{0}, refusals{0};
    auto round = [&](int order) {
        httplib::Client http(server.url());
        http.set_read_timeout(kReadTimeoutSeconds, 0);
        std::string token;
        for (int attempt = 0; attempt < 2000 && token.empty(); ++attempt) {
            const auto created = post(http, "/v1/sessions", client.key_upload);
            ASSERT_TRUE(created);
            if (created->status == 503) {
                ++refusals;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                continue;
            }
            token = session_token(created);
        }
        ASSERT_EQ(token.size(), 64u);
        ++creates;
        int status = 0;
        if (order == 0) {
            const auto r = post(http, "/v1/eval", eval_body, bearer(token));
            ASSERT_TRUE(r);
            status = r->status;
        } else if (order == 1 || order == 2) {
            test::RawConnection c(server.port());
            ASSERT_TRUE(c.send(raw_eval(token, eval_body)));
            if (order == 1) {
                http.Delete("/v1/session", bearer(token));
                status = c.read_response(120).status;
            } else {
                c.close(); // gone, whatever the evaluation's state
            }
        }
        if (status != 0) {
            std::lock_guard lock(seen_mutex);
            ++eval_statuses[status];
        }
        http.Delete("/v1/session", bearer(token)); // 204, or 404 once closed
    };
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c)
        clients.emplace_back([&, c] {
            for (int r = 0; r < 3; ++r) round((c + r) % 4); // every order, by some client
        });
    for (auto & t : clients) t.join();
    ASSERT_TRUE(eventually([&] {
        const nlohmann::json h = get_health(server);
        return h["sessions"] == 0 && h["evaluations"] == 0 && h["evaluations_waiting"] == 0;
    }));
    done = true;
    monitor.join();
    std::printf("%d sessions created (%d refusals while full), %d health polls; evaluation answers:", creates.load(),
                refusals.load(), polls.load());
    for (const auto & [status, count] : eval_statuses) std::printf(" %d x%d", status, count);
    std::printf("\n");
    EXPECT_EQ(creates.load(), 9);
    EXPECT_LE(max_sessions.load(), 2);
    EXPECT_LE(max_evaluations.load(), 1);
    EXPECT_GT(polls.load(), 0);
    // 200: done before the close; 410: cancelled by it; 404: the close came first.
    for (const auto & [status, count] : eval_statuses)
        EXPECT_TRUE(status == 200 || status == 410 || status == 404) << status;
    EXPECT_EQ(server.server().session_count(), 0u);
}

TEST(NetServerBudget, StopCancelsEvaluationsAndEndsPromptly) {
    auto gate = std::make_shared<CircuitGate>();
    auto server = std::make_unique<TestServer>(gated(served_head(), gate));
    const net::PartManifest & m = server->manifest();
    const RawClient client(test_params());
    httplib::Client http(server->url());
    http.set_read_timeout(kReadTimeoutSeconds, 0);
    const std::string token = session_token(post(http, "/v1/sessions", client.key_upload));
    ASSERT_EQ(token.size(), 64u);
    test::RawConnection evaluation(server->port()), trickle(server->port());
    ASSERT_TRUE(evaluation.send(raw_eval(token, client.eval_body(m.quantize_inputs(test::normal_x(kEmbd, 99)),
                                                                 m.input_delta_log2, 0, 1))));
    ASSERT_TRUE(trickle.send("GET /v1/info HTTP/1.1\r\nX-Slow: a"));
    ASSERT_TRUE(eventually([&] { return gate->waiting.load() == 1; }));

    const auto start = std::chrono::steady_clock::now();
    server->server().stop(); // does not wait
    gate->open();
    server->stop(); // waits for serve(): the evaluation stops at its first batch
    std::printf("stopped in %.3f s\n", seconds_since(start));
    EXPECT_TRUE(trickle.wait_closed(60));
    EXPECT_TRUE(evaluation.wait_closed(60));
    const auto lines = server->log_lines_with("POST /v1/eval 499");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("the server is stopping"), std::string::npos) << lines[0];
}

} // namespace
