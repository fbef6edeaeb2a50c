// log.cpp — formats and writes memqd's log lines (UTC timestamp, level, text).
#include "log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace memq {

std::string_view to_string(LogLevel level) {
    switch (level) {
        case LogLevel::error: return "error";
        case LogLevel::warn: return "warn";
        case LogLevel::info: return "info";
        case LogLevel::debug: return "debug";
    }
    return "unknown";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
    for (const LogLevel level : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
        if (text == to_string(level)) return level;
    }
    return std::nullopt;
}

void Logger::write_to_stderr(LogLevel level, std::string_view text) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    const std::size_t length = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    const std::string_view name = to_string(level);
    // One fprintf per line, so a line is never interleaved with another writer's.
    std::fprintf(stderr, "%.*s.%03dZ memqd %.*s: %.*s\n", static_cast<int>(length), stamp, static_cast<int>(millis),
                 static_cast<int>(name.size()), name.data(), static_cast<int>(text.size()), text.data());
    std::fflush(stderr);
}

}  // namespace memq
