// The request log's line format: one line per request, every field printable.
//
//   2025-01-31T12:00:00.123Z 127.0.0.1:50412 POST /v1/eval 200 in=1.2 KiB out=4.0 MiB 3.217s session=1a2b3c4d rows 0..2 ...
//
// The timestamp (UTC, milliseconds) is the request's first byte; the duration runs from there
// to the end of the answer. Method, target and detail are escaped: bytes outside printable
// ASCII, and the backslash, become \xHH, so that no client can forge a line, cut one, or send
// a terminal escape. A field not known (a request refused in its head) is "-".
#pragma once

#include "net/http_server.h"

#include <chrono>
#include <string>
#include <string_view>

namespace fhegpt::net {

// Printable ASCII only; at most max_bytes of input (then "...").
std::string escape_log_text(std::string_view text, size_t max_bytes = 512);
// "2025-01-31T12:00:00.123Z"
std::string utc_timestamp(std::chrono::system_clock::time_point t);
std::string format_log_line(const HttpLogRecord & record);

} // namespace fhegpt::net
