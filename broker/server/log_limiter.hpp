// log_limiter.hpp — the one rate limit for every line memqd logs when a limit is hit.
//
// Rule: at most one line per second (kInterval) per kind of event. A hit whose
// kind had a line less than a second ago is only counted. The next line of
// that kind, either for a later hit or the summary flush() writes once the
// second has passed, reports how many were left out since the last line and
// how many there were in all. The clock is injected so that tests can step it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "log.hpp"

namespace memq {

// Every kind of limit hit memqd logs. A new limit gets a new kind here, and
// its log line goes through LogLimiter::hit.
enum class LimitEvent : std::uint8_t {
    line_too_long,         // a connection closed: line past max_line_bytes
    slow_consumer,         // a connection closed: pending output past max_pending_bytes
    too_many_connections,  // a connection refused past max_connections
    too_many_topics,       // commands answered "Too many topics"
    cache_byte_budget,     // cached messages evicted to stay within max_cache_bytes
    topic_too_long,        // commands answered "Topic too long"
    too_many_subscriptions,  // subscribes answered "Too many subscriptions"
    accept_failed,         // accept() failed for want of descriptors (EMFILE and friends)
    tls_handshake_failed,  // a connection to the TLS port closed: handshake refused, broken or too slow
};
inline constexpr std::size_t kLimitEventCount = static_cast<std::size_t>(LimitEvent::tls_handshake_failed) + 1;

// "line too long", "slow consumer", ...: the label the lines of the kind carry.
std::string_view to_string(LimitEvent event);
// The level its lines are logged at: warn, except cache evictions (info, normal operation).
LogLevel level_of(LimitEvent event);

class LogLimiter {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;
    static constexpr std::chrono::seconds kInterval{1};

    explicit LogLimiter(const Logger& log, Clock clock = [] { return std::chrono::steady_clock::now(); })
        : log_(log), clock_(std::move(clock)) {}

    // Records `count` events of kind `event`. If no line of this kind was
    // written in the last kInterval, writes one: the parts, then
    // " [LABEL: K left out since the last line, T in all]". Otherwise only
    // counts them. The parts are formatted only when a line is written.
    // Returns whether a line was written.
    template <typename... Parts>
    bool hit(LimitEvent event, std::uint64_t count, const Parts&... parts) {
        const std::optional<std::string> suffix = admit(event, count);
        if (!suffix) return false;
        log_.log(level_of(event), parts..., *suffix);
        return true;
    }

    // For each kind with hits left out whose last line is at least kInterval
    // old, writes "LABEL: K left out since the last line, T in all".
    // memqd calls it on a timer, so a burst's tail is reported within about
    // a second after the burst.
    void flush();

    std::uint64_t total(LimitEvent event) const { return state(event).total; }
    std::uint64_t left_out(LimitEvent event) const { return state(event).left_out; }

private:
    struct State {
        bool ever_written = false;
        std::chrono::steady_clock::time_point last_line{};
        std::uint64_t left_out = 0;  // since the last line
        std::uint64_t total = 0;
    };

    // Counts the hits; returns the suffix of the line to write now, or nothing.
    std::optional<std::string> admit(LimitEvent event, std::uint64_t count);
    bool may_write(const State& state, std::chrono::steady_clock::time_point now) const;
    // "LABEL: K left out since the last line, T in all"; marks a line written now.
    std::string counters(LimitEvent event, std::chrono::steady_clock::time_point now);
    State& state(LimitEvent event) { return states_[static_cast<std::size_t>(event)]; }
    const State& state(LimitEvent event) const { return states_[static_cast<std::size_t>(event)]; }

    const Logger& log_;
    Clock clock_;
    std::array<State, kLimitEventCount> states_{};
};

}  // namespace memq
