// log.hpp — memqd's log: one line per event on stderr, filtered by level.
//
// Rules: the shell is the only writer (one thread, no locks); a line is built
// only when its level is enabled; every line is "TIME memqd LEVEL: text".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace memq {

// In order of severity; a logger at level L prints L and everything above it.
enum class LogLevel : std::uint8_t { error, warn, info, debug };

std::string_view to_string(LogLevel level);
// "error", "warn", "info" or "debug"; nothing else.
std::optional<LogLevel> parse_log_level(std::string_view text);

class Logger {
public:
    // Where finished lines go: by default, stderr with a UTC timestamp (see
    // write_to_stderr); tests pass their own to capture them.
    using Sink = std::function<void(LogLevel level, std::string_view text)>;

    explicit Logger(LogLevel threshold, Sink sink = write_to_stderr) : threshold_(threshold), sink_(std::move(sink)) {}

    // "2026-11-25T14:33:21.424Z memqd warn: text\n", in one write.
    static void write_to_stderr(LogLevel level, std::string_view text);

    bool enabled(LogLevel level) const { return level <= threshold_; }

    // Streams every part into one line, if `level` is enabled.
    template <typename... Parts>
    void log(LogLevel level, const Parts&... parts) const {
        if (!enabled(level)) return;
        std::ostringstream line;
        (line << ... << parts);
        sink_(level, line.str());
    }

    template <typename... Parts>
    void error(const Parts&... parts) const { log(LogLevel::error, parts...); }
    template <typename... Parts>
    void warn(const Parts&... parts) const { log(LogLevel::warn, parts...); }
    template <typename... Parts>
    void info(const Parts&... parts) const { log(LogLevel::info, parts...); }
    template <typename... Parts>
    void debug(const Parts&... parts) const { log(LogLevel::debug, parts...); }

private:
    LogLevel threshold_;
    Sink sink_;
};

}  // namespace memq
