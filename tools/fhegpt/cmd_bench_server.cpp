// fhegpt bench server: how long a part server's session calls take while another session
// evaluates. Against a running fhegpt-server (any machine), it times info, key upload (a new
// session), progress, health and close, first with the server idle, then while a second
// client has the server evaluate --positions positions over and over. Each figure is the
// median and the maximum of --rounds calls.
#include "commands.h"
#include "common/error.h"
#include "net/part_client.h"
#include "tfhe/tfhe.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fhegpt::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchServerOptions {
    std::string url;
    int positions = 4;
    int rounds = 3;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Timings {
    std::map<std::string, std::vector<double>> seconds; // by call
    void add(const std::string & call, double s) { seconds[call].push_back(s); }
};

// One round of the session calls, each timed.
void time_session_calls(const std::string & url, const tfhe::CompressedServerKey & key, Timings & out) {
    net::PartClient client(url, 3600);
    auto timed = [&](const char * call, const std::function<void()> & f) {
        const auto start = Clock::now();
        f();
        out.add(call, seconds_since(start));
    };
    timed("info", [&] { client.info(); });
    timed("key upload (new session)", [&] { client.open_session(key); });
    timed("progress", [&] { client.progress(); });
    timed("health", [&] {
        httplib::Client http(url);
        http.set_read_timeout(3600, 0);
        const auto res = http.Get("/v1/health");
        if (!res) fail("{}: GET /v1/health failed", url);
    });
    timed("close", [&] { client.close_session(); });
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

void run_bench_server(const BenchServerOptions & opt) {
    net::PartClient probe(opt.url);
    const net::PartManifest manifest = probe.info();
    const tfhe::TfheParameters & params = manifest.parameters();
    if (opt.positions < 1 || opt.positions > manifest.max_positions)
        fail("--positions {}: the server holds 1 to {}", opt.positions, manifest.max_positions);
    std::fprintf(stderr, "bench server: %s serves %s (%s); generating keys\n", opt.url.c_str(), manifest.part.c_str(),
                 params.name.c_str());
    const tfhe::ClientKey probe_key = tfhe::generate_client_key(params);
    const tfhe::CompressedServerKey probe_server_key = tfhe::generate_compressed_server_key(probe_key);

    Timings idle, loaded;
    for (int r = 0; r < opt.rounds; ++r) time_session_calls(opt.url, probe_server_key, idle);

    // The load: another client evaluating the same positions again and again.
    net::RemotePart worker(opt.url, "", 0, manifest.n_embd);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    std::vector<float> x(size_t(opt.positions) * size_t(manifest.n_embd));
    for (float & v : x) v = normal(rng);
    std::atomic<bool> stop{false};
    std::atomic<int> evaluations{0};
    std::string worker_error;
    std::thread load([&] {
        try {
            while (!stop) {
                worker.run(x, opt.positions, 0);
                ++evaluations;
            }
        } catch (const std::exception & e) {
            worker_error = e.what();
        }
    });
    std::this_thread::sleep_for(std::chrono::seconds(1)); // the first evaluation is under way
    const auto loaded_start = Clock::now();
    for (int r = 0; r < opt.rounds; ++r) {
        time_session_calls(opt.url, probe_server_key, loaded);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const double loaded_seconds = seconds_since(loaded_start);
    stop = true;
    load.join();
    if (!worker_error.empty()) fail("the evaluating client failed: {}", worker_error);

    const double eval_seconds = worker.runs().empty() ? 0 : worker.runs().back().server_seconds;
    std::printf("server %s, part %s, %s; load: one session evaluating %d positions (%llu bootstraps, %.1f s each), "
                "%d done in the %.1f s of the loaded rounds\n",
                opt.url.c_str(), manifest.part.c_str(), params.name.c_str(), opt.positions,
                static_cast<unsigned long long>(worker.runs().empty() ? 0 : worker.runs().back().bootstraps),
                eval_seconds, evaluations.load(), loaded_seconds);
    std::printf("%-26s %14s %14s %14s %14s\n", "call (seconds)", "idle median", "idle max", "loaded median",
                "loaded max");
    for (const auto & [call, seconds] : idle.seconds) {
        const std::vector<double> & l = loaded.seconds[call];
        std::printf("%-26s %14.3f %14.3f %14.3f %14.3f\n", call.c_str(), median(seconds),
                    *std::max_element(seconds.begin(), seconds.end()), median(l),
                    l.empty() ? 0.0 : *std::max_element(l.begin(), l.end()));
    }
}

} // namespace

void add_bench_server_command(CLI::App & bench) {
    auto opt = std::make_shared<BenchServerOptions>();
    CLI::App * cmd = bench.add_subcommand(
        "server", "Latency of a part server's session calls (info, key upload, progress, health, close), idle and while "
                  "another session evaluates");
    cmd->add_option("--server", opt->url, "the server, http://HOST:PORT")->required();
    cmd->add_option("--positions", opt->positions, "positions of the loading evaluation")->capture_default_str();
    cmd->add_option("--rounds", opt->rounds, "calls of each kind, idle and loaded")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    cmd->callback([opt] { run_bench_server(*opt); });
}

} // namespace fhegpt::cli
