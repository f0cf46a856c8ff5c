// Always-on invariant checks for programming errors. Unlike assert(), they stay in Release
// builds: a silent dimension mismatch in a cryptographic kernel is worse than an abort.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FHEGPT_CHECK(cond, ...)                                                          \
    do {                                                                                 \
        if (!(cond)) [[unlikely]] {                                                      \
            std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                           \
            std::fprintf(stderr, "\n");                                                  \
            std::abort();                                                                \
        }                                                                                \
    } while (0)

// Checks a == b and prints both values on mismatch (sizes, dimensions).
#define FHEGPT_CHECK_EQ(a, b)                                                            \
    FHEGPT_CHECK((a) == (b), "%s = %lld, %s = %lld", #a, (long long)(a), #b, (long long)(b))
