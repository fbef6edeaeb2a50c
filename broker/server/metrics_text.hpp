// metrics_text.hpp — the Prometheus text exposition format (version 0.0.4),
// and memqd's metrics written in it.
//
// Rules:
// - Pure: the shell takes a MetricsSnapshot from the core's public accessors
//   and its own clocks; write_metrics turns it into text, nothing else.
// - Each family is written whole, HELP and TYPE first, then its samples; no
//   family twice. Counters end in _total, units are base units (bytes, seconds).
// - HELP text escapes '\' and newline; label values escape '\', '"' and newline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "broker.hpp"
#include "duration_histogram.hpp"

namespace memq {

using Label = std::pair<std::string_view, std::string_view>;

// Appends families to a text, in the order they are written.
class Exposition {
public:
    // Starts a family: "# HELP name help" and "# TYPE name type" ("counter", "gauge", ...).
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample of the family just started: `name{labels} value`.
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);

    // A family of one unlabelled sample.
    void counter(std::string_view name, std::string_view help, std::uint64_t value);
    void gauge(std::string_view name, std::string_view help, std::uint64_t value);
    void gauge(std::string_view name, std::string_view help, double value);
    // A histogram family: name_bucket{le=...} cumulative, up to le="+Inf", then name_sum and name_count.
    void histogram(std::string_view name, std::string_view help, const DurationHistogram& histogram);

    const std::string& text() const { return text_; }
    std::string take() { return std::move(text_); }

private:
    void sample_start(std::string_view name, std::initializer_list<Label> labels);

    std::string text_;
};

// A sample value as the format writes it: integers exactly, NaN, +Inf, -Inf.
std::string format_value(double value);

// What /metrics shows, gathered by the shell at scrape time.
struct MetricsSnapshot {
    BrokerStats stats;
    std::size_t connections = 0;        // admitted connections open
    std::size_t topics_known = 0;       // index-only topics included
    std::size_t topics_stateful = 0;    // a subscriber or a cached message
    std::size_t cached_messages = 0;
    std::size_t cached_bytes = 0;
    std::size_t pending_bytes = 0;      // output queued or being written, all connections
    std::size_t pending_bytes_largest = 0;  // the same, the connection with the most
    std::size_t connections_max = 0;
    std::size_t cache_bytes_max = 0;
    double uptime_seconds = 0;
    std::string_view version;
    std::string incarnation;  // incarnation_text()
    // Written when set (the shell's own, alive while the text is written).
    const DurationHistogram* event_loop_turns = nullptr;  // memq_event_loop_turn_seconds
    const DurationHistogram* storage_syncs = nullptr;     // memq_storage_sync_seconds (with --data-dir)
    // Durable topics (--data-dir): written when `durable`.
    bool durable = false;
    bool storage_healthy = true;
    std::size_t log_bytes = 0;
};

// Every memq_ family, in a fixed order (docs/operations.md lists them).
std::string write_metrics(const MetricsSnapshot& snapshot);

}  // namespace memq
