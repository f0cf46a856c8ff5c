// Bootstrap speed of a parameter set on the machine the program runs on: a short calibration
// (fresh keys of the set, a few key switch + bootstraps on one thread, a batch on all threads,
// for each bootstrapping key of the set), cached on disk so that later runs reuse it. Time
// estimates (`fhegpt compile`, the demo) come from here, never from figures measured elsewhere.
//
// Cache: one JSON file (default_calibration_cache_file()) holding every measurement, keyed by
// parameter set, CPU model, FFT kernel, thread count and the executable that measured it (its
// path and modification time: a rebuilt or upgraded engine measures again). A cache file that
// cannot be read or parsed is ignored with a warning on stderr and rewritten.
#pragma once

#include "tfhe/commons/parameters.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace fhegpt::tfhe {

struct BootstrapSpeed {
    double latency_seconds = 0;  // one key switch + bootstrap on one thread (median)
    double batch_per_second = 0; // key switch + bootstrap throughput of a batch on all threads
};

struct SpeedCalibration {
    // The key of the measurement.
    std::string parameter_set;
    std::string cpu;        // CPU model (cpu_model_name())
    std::string fft_kernel; // NegacyclicFft::kernel_name()
    size_t threads = 0;
    std::string engine;     // the measuring executable (engine_build_stamp())
    // The measurement.
    BootstrapSpeed standard;
    std::optional<BootstrapSpeed> fine; // sets with a fine bootstrapping key
    std::string measured_at;            // UTC, ISO 8601
    double calibration_seconds = 0;     // what the measurement took, keys included
    bool from_cache = false;            // not stored: whether this came from the cache file

    // Seconds for these bootstraps (key switch included) in batches on all `threads` threads.
    double estimate_seconds(int64_t standard_bootstraps, int64_t fine_bootstraps = 0) const;
    // "AMD EPYC 7B13 (avx2 FFT), 2 threads, measured 2025-01-01T12:00:00Z" for reports.
    std::string machine_description() const;
};

struct CalibrationOptions {
    size_t threads = 0;               // 0: all hardware threads
    bool refresh = false;             // measure even if the cache has this key
    std::filesystem::path cache_file; // empty: default_calibration_cache_file()
};

// $FHEGPT_CACHE_DIR/bootstrap-speed.json, else $XDG_CACHE_HOME/fhegpt/..., else
// $HOME/.cache/fhegpt/...; empty when none of these is set (then nothing is cached).
std::filesystem::path default_calibration_cache_file();
// The CPU model ("model name" of /proc/cpuinfo; "unknown CPU" where there is none).
std::string cpu_model_name();
// The running executable's path and modification time ("" where unknown).
std::string engine_build_stamp();

// The cached measurement for this key of this machine, or a new one (then cached).
SpeedCalibration calibrate_bootstrap_speed(const TfheParameters & params, const CalibrationOptions & options = {});

// The cache file itself. load: the entry with the key fields of `key` (parameter_set, cpu,
// fft_kernel, threads, engine), if any; a missing file is no entry, an unreadable or corrupt one
// a warning on stderr and no entry. store: replaces the entry with the same key, keeps the
// others (a corrupt file is replaced), writes atomically (temporary file, then rename).
std::optional<SpeedCalibration> load_cached_calibration(const std::filesystem::path & file,
                                                        const SpeedCalibration & key);
void store_calibration(const std::filesystem::path & file, const SpeedCalibration & calibration);

} // namespace fhegpt::tfhe
