#include "net/request_log.h"

#include "net/protocol.h"

#include <fmt/format.h>

#include <ctime>

namespace fhegpt::net {

std::string escape_log_text(std::string_view text, size_t max_bytes) {
    std::string out;
    const size_t n = std::min(text.size(), max_bytes);
    out.reserve(n + 8);
    for (size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f || c == '\\')
            out += fmt::format("\\x{:02x}", c);
        else
            out.push_back(char(c));
    }
    if (n < text.size()) out += "...";
    return out;
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t seconds = std::time_t(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                       utc.tm_hour, utc.tm_min, utc.tm_sec, int(((ms % 1000) + 1000) % 1000));
}

std::string format_log_line(const HttpLogRecord & r) {
    auto or_dash = [](const std::string & s) { return s.empty() ? std::string("-") : escape_log_text(s); };
    std::string line = fmt::format("{} {} {} {} {} in={} out={} {:.3f}s", utc_timestamp(r.start), or_dash(r.peer),
                                   or_dash(r.method), or_dash(r.target), r.status, format_bytes(r.bytes_in),
                                   format_bytes(r.bytes_out), r.seconds);
    if (!r.detail.empty()) {
        line += ' ';
        line += escape_log_text(r.detail, 2048);
    }
    return line;
}

} // namespace fhegpt::net
