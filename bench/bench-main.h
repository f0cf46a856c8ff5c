// The tail of every benchmark's main(): the benchmarks are registered at run time (their
// parameter sets and models come from the project's tables), then Google Benchmark runs them.
#pragma once

#include <benchmark/benchmark.h>

namespace fhegpt::bench {

inline int run_registered_benchmarks(int argc, char ** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

} // namespace fhegpt::bench
