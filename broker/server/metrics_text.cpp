// metrics_text.cpp — writes the exposition format (see metrics_text.hpp).
#include "metrics_text.hpp"

#include <charconv>
#include <cmath>
#include <span>
#include <string>

namespace memq {
namespace {

void append_escaped(std::string& out, std::string_view text, bool quotes) {
    for (const char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '"' && quotes) out += "\\\"";
        else out += c;
    }
}

}  // namespace

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char text[32];
    // The shortest text that reads back as the same double (Go's ParseFloat reads it too).
    const auto result = std::to_chars(text, text + sizeof text, value);
    return std::string(text, result.ptr);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    append_escaped(text_, help, false);
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
}

void Exposition::sample_start(std::string_view name, std::initializer_list<Label> labels) {
    text_ += name;
    if (labels.size() != 0) {
        text_ += '{';
        bool first = true;
        for (const auto& [label, value] : labels) {
            if (!first) text_ += ',';
            first = false;
            text_ += label;
            text_ += "=\"";
            append_escaped(text_, value, true);
            text_ += '"';
        }
        text_ += '}';
    }
    text_ += ' ';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    sample_start(name, labels);
    text_ += format_value(value);
    text_ += '\n';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
    sample_start(name, labels);
    text_ += std::to_string(value);
    text_ += '\n';
}

void Exposition::counter(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "counter", help);
    sample(name, {}, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "gauge", help);
    sample(name, {}, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
    family(name, "gauge", help);
    sample(name, {}, value);
}

void Exposition::histogram(std::string_view name, std::string_view help, const DurationHistogram& histogram) {
    family(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    const std::span<const double> bounds = histogram.upper_bounds();
    const std::span<const std::uint64_t> counts = histogram.bucket_counts();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        cumulative += counts[i];
        const std::string le = format_value(bounds[i]);
        sample(bucket, {{"le", le}}, cumulative);
    }
    cumulative += counts[bounds.size()];
    sample(bucket, {{"le", "+Inf"}}, cumulative);
    sample(std::string(name) + "_sum", {}, histogram.sum_seconds());
    sample(std::string(name) + "_count", {}, histogram.count());
}

std::string write_metrics(const MetricsSnapshot& snapshot) {
    const BrokerStats& stats = snapshot.stats;
    const auto count = [](std::size_t value) { return static_cast<std::uint64_t>(value); };
    Exposition out;
    out.family("memq_build_info", "gauge", "Always 1; the labels name memqd's version and this run's incarnation.");
    out.sample("memq_build_info", {{"version", snapshot.version}, {"incarnation", snapshot.incarnation}},
               std::uint64_t{1});
    out.gauge("memq_uptime_seconds", "Seconds since memqd started.", snapshot.uptime_seconds);

    out.counter("memq_connections_accepted_total", "Connections admitted (refused ones are counted apart).",
                stats.connections_accepted);
    out.counter("memq_connections_refused_total", "Connections closed at once because max_connections were open.",
                stats.connections_refused);
    out.gauge("memq_connections", "Connections open (refused ones not counted).", count(snapshot.connections));
    out.gauge("memq_connections_max", "The max_connections limit.", count(snapshot.connections_max));
    out.family("memq_connection_closes_total", "counter", "Connections the broker closed, by reason.");
    out.sample("memq_connection_closes_total", {{"reason", "slow_consumer"}}, stats.slow_consumer_closes);
    out.sample("memq_connection_closes_total", {{"reason", "line_too_long"}}, stats.line_too_long_closes);

    out.counter("memq_lines_processed_total", "Input lines (commands) processed.", stats.lines_processed);
    out.counter("memq_errors_replied_total", "Commands answered with an error reply.", stats.errors_replied);
    out.counter("memq_topics_refused_total", "Commands answered \"Too many topics\".", stats.topics_refused);
    out.counter("memq_messages_published_total", "Messages accepted by send.", stats.messages_published);
    out.counter("memq_messages_delivered_total", "Messages queued to subscribers, replays included.",
                stats.messages_delivered);

    out.gauge("memq_topics_known", "Topics ever named (index-only ones included).", count(snapshot.topics_known));
    out.gauge("memq_topics_stateful", "Topics with a subscriber or a cached message.",
              count(snapshot.topics_stateful));
    out.gauge("memq_cached_messages", "Messages in the replay caches, all topics.", count(snapshot.cached_messages));
    out.gauge("memq_cached_bytes", "Bytes of cached frames, all topics.", count(snapshot.cached_bytes));
    out.gauge("memq_cache_bytes_max", "The max_cache_bytes limit.", count(snapshot.cache_bytes_max));
    out.counter("memq_cache_evictions_total", "Cached messages evicted to stay within max_cache_bytes.",
                stats.cache_evictions);

    out.gauge("memq_pending_bytes", "Output bytes queued or being written, all connections.",
              count(snapshot.pending_bytes));
    out.gauge("memq_pending_bytes_largest", "Output bytes queued or being written for the connection with the most.",
              count(snapshot.pending_bytes_largest));
    if (snapshot.event_loop_turns != nullptr) {
        out.histogram("memq_event_loop_turn_seconds",
                      "Time the event loop spent on one read: from its completion through the core's "
                      "handling and the draining of the output it made.",
                      *snapshot.event_loop_turns);
    }
    if (snapshot.durable) {
        const BrokerStats& stats = snapshot.stats;
        out.gauge("memq_storage_healthy", "1 while the data dir takes writes; 0 after a failed write or sync, until a snapshot is written (sends are refused meanwhile).", static_cast<std::uint64_t>(snapshot.storage_healthy ? 1 : 0));
        out.gauge("memq_storage_log_bytes", "Size of the data dir's log once every write handed out is written.", static_cast<std::uint64_t>(snapshot.log_bytes));
        out.counter("memq_storage_compactions_total", "Snapshots that replaced the log (compactions, the one at start, recoveries from a failure).", stats.compactions);
        out.counter("memq_storage_failures_total", "Failed writes or syncs of the data dir.", stats.storage_failures);
        out.counter("memq_storage_sends_refused_total", "Sends answered \"Storage unavailable\".", stats.storage_refused);
        out.counter("memq_storage_sends_waited_total", "Sends that waited for their topic's index reservation to be synced.", stats.sends_stalled);
        out.counter("memq_storage_closes_total", "Connections closed because an ack they were owed could not be stored.", stats.storage_closes);
    }
    if (snapshot.storage_syncs != nullptr) {
        out.histogram("memq_storage_sync_seconds", "Time one sync of the data dir took.", *snapshot.storage_syncs);
    }
    return out.take();
}

}  // namespace memq
