#include "tfhe/speed_calibration.h"

#include "common/thread_pool.h"
#include "tfhe/keyset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fhegpt::tfhe {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kCacheFormat = 1;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Latency (one thread, one input at a time: 1 warm-up + 3 timed, median) and batch throughput
// (all threads, 2 batches of two groups per thread, the faster) of one bootstrapping key.
BootstrapSpeed measure_key(const ClientKey & client, const ServerKey & server, const FourierLweBootstrapKey & bsk,
                           ThreadPool & pool) {
    const TfheParameters & params = server.parameters;
    const uint64_t p = params.message_modulus();
    const LookupTable lut = generate_lookup_table(server, p, p, [p](uint64_t m) { return (m + 1) % p; });
    const LookupTable * luts[1] = {&lut};
    BootstrapSpeed speed;

    ThreadPool one(1);
    BootstrapWorkspace single = allocate_bootstrap_workspace(bsk, 1, 1);
    std::vector<double> latencies;
    for (int i = 0; i < 4; ++i) {
        const std::vector<LweCiphertext> input{encrypt_message(client, uint64_t(i) % p, p)};
        std::vector<LweCiphertext> output(1, allocate_lwe_ciphertext(server));
        const auto start = Clock::now();
        batch_keyswitch_programmable_bootstrap(input, output, luts, &server.keyswitch_key, bsk, params.modulus_switch,
                                               single, one);
        if (i > 0) latencies.push_back(seconds_since(start));
    }
    std::sort(latencies.begin(), latencies.end());
    speed.latency_seconds = latencies[latencies.size() / 2];

    BootstrapWorkspace workspace = allocate_bootstrap_workspace(bsk, pool.size());
    const size_t batch = 2 * pool.size() * workspace.group_size;
    std::vector<LweCiphertext> inputs, outputs(batch, allocate_lwe_ciphertext(server));
    for (size_t i = 0; i < batch; ++i) inputs.push_back(encrypt_message(client, i % p, p));
    for (int round = 0; round < 2; ++round) {
        const auto start = Clock::now();
        batch_keyswitch_programmable_bootstrap(inputs, outputs, luts, &server.keyswitch_key, bsk, params.modulus_switch,
                                               workspace, pool);
        speed.batch_per_second = std::max(speed.batch_per_second, static_cast<double>(batch) / seconds_since(start));
    }
    return speed;
}

json speed_to_json(const BootstrapSpeed & s) {
    return {{"latency_seconds", s.latency_seconds}, {"batch_per_second", s.batch_per_second}};
}

BootstrapSpeed speed_from_json(const json & j) {
    BootstrapSpeed s{j.at("latency_seconds").get<double>(), j.at("batch_per_second").get<double>()};
    if (!(s.latency_seconds > 0) || !(s.batch_per_second > 0)) throw std::runtime_error("non-positive speed");
    return s;
}

json entry_to_json(const SpeedCalibration & c) {
    json j = {{"parameter_set", c.parameter_set},   {"cpu", c.cpu},
              {"fft_kernel", c.fft_kernel},         {"threads", c.threads},
              {"engine", c.engine},                 {"standard", speed_to_json(c.standard)},
              {"measured_at", c.measured_at},       {"calibration_seconds", c.calibration_seconds}};
    if (c.fine) j["fine"] = speed_to_json(*c.fine);
    return j;
}

SpeedCalibration entry_from_json(const json & j) {
    SpeedCalibration c;
    c.parameter_set = j.at("parameter_set").get<std::string>();
    c.cpu = j.at("cpu").get<std::string>();
    c.fft_kernel = j.at("fft_kernel").get<std::string>();
    c.threads = j.at("threads").get<size_t>();
    c.engine = j.at("engine").get<std::string>();
    c.standard = speed_from_json(j.at("standard"));
    if (j.contains("fine")) c.fine = speed_from_json(j.at("fine"));
    c.measured_at = j.at("measured_at").get<std::string>();
    c.calibration_seconds = j.at("calibration_seconds").get<double>();
    return c;
}

bool same_key(const SpeedCalibration & a, const SpeedCalibration & b) {
    return a.parameter_set == b.parameter_set && a.cpu == b.cpu && a.fft_kernel == b.fft_kernel &&
           a.threads == b.threads && a.engine == b.engine;
}

// Every entry of the file; a missing file is empty, an unreadable or corrupt one too, with a
// warning.
std::vector<SpeedCalibration> read_entries(const fs::path & file) {
    std::error_code ec;
    if (!fs::exists(file, ec)) return {};
    try {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open");
        std::stringstream text;
        text << in.rdbuf();
        const json root = json::parse(text.str());
        if (root.at("format").get<int>() != kCacheFormat) throw std::runtime_error("unknown format");
        std::vector<SpeedCalibration> entries;
        for (const json & e : root.at("entries")) entries.push_back(entry_from_json(e));
        return entries;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "warning: ignoring the bootstrap speed cache %s (%s); measuring again\n",
                     file.string().c_str(), e.what());
        return {};
    }
}

} // namespace

double SpeedCalibration::estimate_seconds(int64_t standard_bootstraps, int64_t fine_bootstraps) const {
    double seconds = static_cast<double>(standard_bootstraps) / standard.batch_per_second;
    if (fine_bootstraps > 0) {
        const BootstrapSpeed & f = fine ? *fine : standard;
        seconds += static_cast<double>(fine_bootstraps) / f.batch_per_second;
    }
    return seconds;
}

std::string SpeedCalibration::machine_description() const {
    return cpu + " (" + fft_kernel + " FFT), " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") +
           ", measured " + measured_at;
}

fs::path default_calibration_cache_file() {
    const auto env = [](const char * name) -> std::string {
        const char * v = std::getenv(name);
        return v != nullptr ? v : "";
    };
    const std::string name = "bootstrap-speed.json";
    if (!env("FHEGPT_CACHE_DIR").empty()) return fs::path(env("FHEGPT_CACHE_DIR")) / name;
    if (!env("XDG_CACHE_HOME").empty()) return fs::path(env("XDG_CACHE_HOME")) / "fhegpt" / name;
    if (!env("HOME").empty()) return fs::path(env("HOME")) / ".cache" / "fhegpt" / name;
    return {};
}

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        name.erase(name.find_last_not_of(" \t") + 1);
        if (!name.empty()) return name;
    }
    return "unknown CPU";
}

std::string engine_build_stamp() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return "";
    const auto time = fs::last_write_time(exe, ec);
    if (ec) return exe.string();
    return exe.string() + "@" + std::to_string(time.time_since_epoch().count());
}

std::optional<SpeedCalibration> load_cached_calibration(const fs::path & file, const SpeedCalibration & key) {
    for (SpeedCalibration & entry : read_entries(file))
        if (same_key(entry, key)) {
            entry.from_cache = true;
            return entry;
        }
    return std::nullopt;
}

void store_calibration(const fs::path & file, const SpeedCalibration & calibration) {
    std::vector<SpeedCalibration> entries = read_entries(file);
    std::erase_if(entries, [&](const SpeedCalibration & e) { return same_key(e, calibration); });
    entries.push_back(calibration);
    json root = {{"format", kCacheFormat}, {"entries", json::array()}};
    for (const SpeedCalibration & e : entries) root["entries"].push_back(entry_to_json(e));
    std::error_code ec;
    if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
    const fs::path temporary = file.string() + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << root.dump(2) << "\n";
        if (!out) {
            std::fprintf(stderr, "warning: cannot write the bootstrap speed cache %s\n", temporary.string().c_str());
            fs::remove(temporary, ec);
            return;
        }
    }
    fs::rename(temporary, file, ec);
    if (ec) {
        std::fprintf(stderr, "warning: cannot write the bootstrap speed cache %s (%s)\n", file.string().c_str(),
                     ec.message().c_str());
        fs::remove(temporary, ec);
    }
}

SpeedCalibration calibrate_bootstrap_speed(const TfheParameters & params, const CalibrationOptions & options) {
    const size_t threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    SpeedCalibration c;
    c.parameter_set = params.name;
    c.cpu = cpu_model_name();
    c.fft_kernel = NegacyclicFft::kernel_name();
    c.threads = threads;
    c.engine = engine_build_stamp();
    const fs::path file = options.cache_file.empty() ? default_calibration_cache_file() : options.cache_file;
    if (!options.refresh && !file.empty())
        if (std::optional<SpeedCalibration> cached = load_cached_calibration(file, c)) return *cached;

    const auto start = Clock::now();
    ThreadPool pool(threads);
    const ClientKey client = generate_client_key(params);
    const ServerKey server = generate_server_key(client);
    c.standard = measure_key(client, server, server.bootstrap_key, pool);
    if (server.fine_bootstrap_key) c.fine = measure_key(client, server, *server.fine_bootstrap_key, pool);
    c.measured_at = utc_now();
    c.calibration_seconds = seconds_since(start);
    if (!file.empty()) store_calibration(file, c);
    return c;
}

} // namespace fhegpt::tfhe
