// log_limiter.cpp — one line per second per kind of limit hit, with what was left out.
#include "log_limiter.hpp"

namespace memq {

std::string_view to_string(LimitEvent event) {
    switch (event) {
        case LimitEvent::line_too_long: return "line too long";
        case LimitEvent::slow_consumer: return "slow consumer";
        case LimitEvent::too_many_connections: return "too many connections";
        case LimitEvent::too_many_topics: return "too many topics";
        case LimitEvent::cache_byte_budget: return "cache byte budget";
        case LimitEvent::topic_too_long: return "topic too long";
        case LimitEvent::too_many_subscriptions: return "too many subscriptions";
        case LimitEvent::accept_failed: return "accept failed";
        case LimitEvent::tls_handshake_failed: return "TLS handshake failed";
    }
    return "unknown limit";
}

LogLevel level_of(LimitEvent event) {
    return event == LimitEvent::cache_byte_budget ? LogLevel::info : LogLevel::warn;
}

bool LogLimiter::may_write(const State& state, std::chrono::steady_clock::time_point now) const {
    return !state.ever_written || now - state.last_line >= kInterval;
}

std::string LogLimiter::counters(LimitEvent event, std::chrono::steady_clock::time_point now) {
    State& kind = state(event);
    std::string text(to_string(event));
    text += ": ";
    text += std::to_string(kind.left_out);
    text += " left out since the last line, ";
    text += std::to_string(kind.total);
    text += " in all";
    kind.ever_written = true;
    kind.last_line = now;
    kind.left_out = 0;
    return text;
}

std::optional<std::string> LogLimiter::admit(LimitEvent event, std::uint64_t count) {
    State& kind = state(event);
    kind.total += count;
    const auto now = clock_();
    if (!may_write(kind, now)) {
        kind.left_out += count;
        return std::nullopt;
    }
    return " [" + counters(event, now) + "]";
}

void LogLimiter::flush() {
    const auto now = clock_();
    for (std::size_t index = 0; index < kLimitEventCount; ++index) {
        const auto event = static_cast<LimitEvent>(index);
        const State& kind = state(event);
        if (kind.left_out == 0 || !may_write(kind, now)) continue;
        log_.log(level_of(event), counters(event, now));
    }
}

}  // namespace memq
