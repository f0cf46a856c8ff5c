// Errors for bad input (files, network, user options): thrown as fhegpt::Error with a message
// that names the source and what is wrong, caught at the program boundary and reported.
// Programming errors (a dimension mismatch between two of our own objects) use FHEGPT_CHECK
// from check.h instead, which aborts.
#pragma once

#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace fhegpt {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string & message) : std::runtime_error(message) {}
};

// Throws Error with a fmt::format message: fail("{}: header length {} past end of file", path, n).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> fmt, Args &&... args) {
    throw Error(fmt::format(fmt, std::forward<Args>(args)...));
}

} // namespace fhegpt
