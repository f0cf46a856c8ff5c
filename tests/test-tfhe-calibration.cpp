// The bootstrap speed calibration and its cache: a measurement is stored and found again under
// its key only (parameter set, CPU, FFT kernel, threads, engine), entries of other keys survive,
// a corrupt cache is ignored with a warning and replaced, refresh measures again. No speed is
// asserted (only that the measured figures are positive).
#include "tfhe/speed_calibration.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace fhegpt::tfhe;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("fhegpt-calibration-test-" + std::to_string(::getpid()));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

SpeedCalibration sample(const std::string & set, size_t threads) {
    SpeedCalibration c;
    c.parameter_set = set;
    c.cpu = "Test CPU 9000";
    c.fft_kernel = "avx2";
    c.threads = threads;
    c.engine = "/usr/bin/fhegpt@123";
    c.standard = {0.0123, 321.5};
    c.measured_at = "2025-01-02T03:04:05Z";
    c.calibration_seconds = 4.5;
    return c;
}

void expect_same(const SpeedCalibration & a, const SpeedCalibration & b) {
    EXPECT_EQ(a.parameter_set, b.parameter_set);
    EXPECT_EQ(a.cpu, b.cpu);
    EXPECT_EQ(a.fft_kernel, b.fft_kernel);
    EXPECT_EQ(a.threads, b.threads);
    EXPECT_EQ(a.engine, b.engine);
    EXPECT_EQ(a.standard.latency_seconds, b.standard.latency_seconds);
    EXPECT_EQ(a.standard.batch_per_second, b.standard.batch_per_second);
    ASSERT_EQ(a.fine.has_value(), b.fine.has_value());
    if (a.fine) {
        EXPECT_EQ(a.fine->batch_per_second, b.fine->batch_per_second);
    }
    EXPECT_EQ(a.measured_at, b.measured_at);
}

} // namespace

TEST(TfheCalibration, CacheRoundTripsPerKey) {
    TempDir dir;
    const fs::path file = dir.path / "sub" / "speed.json";
    EXPECT_FALSE(load_cached_calibration(file, sample("PARAM_4BIT_2M128", 2)).has_value()); // no file yet
    SpeedCalibration a = sample("PARAM_4BIT_2M128", 2);
    SpeedCalibration b = sample("PARAM_4BIT_2M128_MIXED", 2);
    b.fine = BootstrapSpeed{0.02, 150.25};
    store_calibration(file, a);
    store_calibration(file, b);
    const auto got_a = load_cached_calibration(file, a);
    const auto got_b = load_cached_calibration(file, b);
    ASSERT_TRUE(got_a && got_b);
    EXPECT_TRUE(got_a->from_cache);
    expect_same(*got_a, a);
    expect_same(*got_b, b);
    // Any other key field: no entry.
    SpeedCalibration other = a;
    other.threads = 1;
    EXPECT_FALSE(load_cached_calibration(file, other).has_value());
    other = a;
    other.cpu = "Another CPU";
    EXPECT_FALSE(load_cached_calibration(file, other).has_value());
    other = a;
    other.engine = "/usr/bin/fhegpt@124";
    EXPECT_FALSE(load_cached_calibration(file, other).has_value());
    // Storing the same key again replaces the entry.
    a.standard.batch_per_second = 400;
    store_calibration(file, a);
    EXPECT_EQ(load_cached_calibration(file, a)->standard.batch_per_second, 400);
    expect_same(*load_cached_calibration(file, b), b);
}

TEST(TfheCalibration, CorruptCacheIsIgnoredWithAWarningAndReplaced) {
    TempDir dir;
    const fs::path file = dir.path / "speed.json";
    const SpeedCalibration a = sample("PARAM_4BIT_2M128", 2);
    for (const std::string & text : {std::string("{not json"), std::string("{\"format\": 1, \"entries\": [{\"cpu\": 3}]}"),
                                     std::string("{\"format\": 99, \"entries\": []}"),
                                     std::string("{\"format\": 1, \"entries\": [{\"parameter_set\": \"PARAM_4BIT_2M128\", "
                                                 "\"cpu\": \"Test CPU 9000\", \"fft_kernel\": \"avx2\", \"threads\": 2, "
                                                 "\"engine\": \"/usr/bin/fhegpt@123\", \"standard\": {\"latency_seconds\": "
                                                 "-1, \"batch_per_second\": 5}, \"measured_at\": \"x\", "
                                                 "\"calibration_seconds\": 1}]}")}) {
        std::ofstream(file) << text;
        testing::internal::CaptureStderr();
        EXPECT_FALSE(load_cached_calibration(file, a).has_value()) << text;
        const std::string err = testing::internal::GetCapturedStderr();
        EXPECT_NE(err.find("warning: ignoring the bootstrap speed cache"), std::string::npos) << text;
        testing::internal::CaptureStderr();
        store_calibration(file, a); // replaces the corrupt file
        testing::internal::GetCapturedStderr();
        ASSERT_TRUE(load_cached_calibration(file, a).has_value()) << text;
    }
}

TEST(TfheCalibration, MeasuresOnceThenReadsTheCache) {
    TempDir dir;
    CalibrationOptions options;
    options.threads = 1;
    options.cache_file = dir.path / "speed.json";
    const TfheParameters & params = parameters_by_name("INSECURE_TEST_2BIT");
    const SpeedCalibration first = calibrate_bootstrap_speed(params, options);
    EXPECT_FALSE(first.from_cache);
    EXPECT_EQ(first.parameter_set, "INSECURE_TEST_2BIT");
    EXPECT_EQ(first.threads, 1u);
    EXPECT_EQ(first.cpu, cpu_model_name());
    EXPECT_GT(first.standard.latency_seconds, 0);
    EXPECT_GT(first.standard.batch_per_second, 0);
    EXPECT_FALSE(first.fine.has_value());
    EXPECT_NE(first.machine_description().find(first.cpu), std::string::npos);
    const SpeedCalibration second = calibrate_bootstrap_speed(params, options);
    EXPECT_TRUE(second.from_cache);
    expect_same(second, first);
    EXPECT_DOUBLE_EQ(second.estimate_seconds(1000), 1000 / first.standard.batch_per_second);
    options.refresh = true;
    EXPECT_FALSE(calibrate_bootstrap_speed(params, options).from_cache);
}

TEST(TfheCalibration, FineKeyIsMeasuredToo) {
    TempDir dir;
    CalibrationOptions options;
    options.threads = 1;
    options.cache_file = dir.path / "speed.json";
    const SpeedCalibration c = calibrate_bootstrap_speed(parameters_by_name("INSECURE_TEST_4BIT_MIXED"), options);
    ASSERT_TRUE(c.fine.has_value());
    EXPECT_GT(c.fine->batch_per_second, 0);
    EXPECT_DOUBLE_EQ(c.estimate_seconds(10, 5), 10 / c.standard.batch_per_second + 5 / c.fine->batch_per_second);
}

TEST(TfheCalibration, DefaultCacheFileFollowsTheEnvironment) {
    const char * saved_dir = std::getenv("FHEGPT_CACHE_DIR");
    const char * saved_xdg = std::getenv("XDG_CACHE_HOME");
    const std::string keep_dir = saved_dir ? saved_dir : "", keep_xdg = saved_xdg ? saved_xdg : "";
    ::unsetenv("FHEGPT_CACHE_DIR");
    ::setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
    EXPECT_EQ(default_calibration_cache_file(), fs::path("/tmp/xdg-test/fhegpt/bootstrap-speed.json"));
    ::setenv("FHEGPT_CACHE_DIR", "/tmp/fhegpt-cache-test", 1);
    EXPECT_EQ(default_calibration_cache_file(), fs::path("/tmp/fhegpt-cache-test/bootstrap-speed.json"));
    if (saved_dir) ::setenv("FHEGPT_CACHE_DIR", keep_dir.c_str(), 1);
    else ::unsetenv("FHEGPT_CACHE_DIR");
    if (saved_xdg) ::setenv("XDG_CACHE_HOME", keep_xdg.c_str(), 1);
    else ::unsetenv("XDG_CACHE_HOME");
}
