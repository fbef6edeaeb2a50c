// metrics_text_test.cpp — the Prometheus text exposition writer and memqd's metric families.
#include "metrics_text.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace memq {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// sample line "name{labels} value" -> value, keyed by everything before the last space.
std::map<std::string, std::string> samples_of(const std::string& text) {
    std::map<std::string, std::string> samples;
    for (const std::string& line : lines_of(text)) {
        if (line.empty() || line[0] == '#') continue;
        const std::size_t space = line.rfind(' ');
        samples[line.substr(0, space)] = line.substr(space + 1);
    }
    return samples;
}

TEST(Exposition, AFamilyIsHelpThenTypeThenSamples) {
    Exposition out;
    out.counter("memq_things_total", "Things seen.", std::uint64_t{42});
    EXPECT_EQ(out.text(),
              "# HELP memq_things_total Things seen.\n"
              "# TYPE memq_things_total counter\n"
              "memq_things_total 42\n");
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
    Exposition out;
    out.family("memq_x", "gauge", "a \\ back\nslash \"quoted\"");
    out.sample("memq_x", {{"a", "q\"uote"}, {"b", "back\\slash\nnewline"}}, std::uint64_t{1});
    EXPECT_EQ(out.text(),
              "# HELP memq_x a \\\\ back\\nslash \"quoted\"\n"
              "# TYPE memq_x gauge\n"
              "memq_x{a=\"q\\\"uote\",b=\"back\\\\slash\\nnewline\"} 1\n");
}

TEST(Exposition, CountersKeepEverySixtyFourBitValueExact) {
    Exposition out;
    out.counter("memq_big_total", "Big.", std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(samples_of(out.text())["memq_big_total"], "18446744073709551615");
}

TEST(Exposition, FloatValues) {
    EXPECT_EQ(format_value(0.0), "0");
    EXPECT_EQ(format_value(3.0), "3");
    EXPECT_EQ(format_value(0.25), "0.25");
    EXPECT_EQ(format_value(0.1), "0.1");
    EXPECT_EQ(format_value(-1.5), "-1.5");
    EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    const double third = 1.0 / 3.0;
    EXPECT_EQ(std::stod(format_value(third)), third);  // reads back exactly
}

MetricsSnapshot example_snapshot() {
    MetricsSnapshot snapshot;
    snapshot.stats.connections_accepted = 11;
    snapshot.stats.lines_processed = 12;
    snapshot.stats.errors_replied = 13;
    snapshot.stats.messages_published = 14;
    snapshot.stats.messages_delivered = 15;
    snapshot.stats.slow_consumer_closes = 16;
    snapshot.stats.line_too_long_closes = 17;
    snapshot.stats.connections_refused = 18;
    snapshot.stats.topics_refused = 19;
    snapshot.stats.cache_evictions = 20;
    snapshot.connections = 21;
    snapshot.topics_known = 22;
    snapshot.topics_stateful = 23;
    snapshot.cached_messages = 24;
    snapshot.cached_bytes = 25;
    snapshot.pending_bytes = 26;
    snapshot.pending_bytes_largest = 27;
    snapshot.connections_max = 28;
    snapshot.cache_bytes_max = 29;
    snapshot.uptime_seconds = 1.5;
    snapshot.version = "1.2.3";
    snapshot.incarnation = "00000000000000ab";
    return snapshot;
}

TEST(WriteMetrics, EveryFigureLandsInItsOwnSample) {
    const auto samples = samples_of(write_metrics(example_snapshot()));
    const std::map<std::string, std::string> expected = {
        {"memq_build_info{version=\"1.2.3\",incarnation=\"00000000000000ab\"}", "1"},
        {"memq_uptime_seconds", "1.5"},
        {"memq_connections_accepted_total", "11"},
        {"memq_lines_processed_total", "12"},
        {"memq_errors_replied_total", "13"},
        {"memq_messages_published_total", "14"},
        {"memq_messages_delivered_total", "15"},
        {"memq_connection_closes_total{reason=\"slow_consumer\"}", "16"},
        {"memq_connection_closes_total{reason=\"line_too_long\"}", "17"},
        {"memq_connections_refused_total", "18"},
        {"memq_topics_refused_total", "19"},
        {"memq_cache_evictions_total", "20"},
        {"memq_connections", "21"},
        {"memq_topics_known", "22"},
        {"memq_topics_stateful", "23"},
        {"memq_cached_messages", "24"},
        {"memq_cached_bytes", "25"},
        {"memq_pending_bytes", "26"},
        {"memq_pending_bytes_largest", "27"},
        {"memq_connections_max", "28"},
        {"memq_cache_bytes_max", "29"},
    };
    EXPECT_EQ(samples, expected);
}

// The format's rules that promtool also checks, here without it: every sample
// belongs to the family declared just before it, each family once, with HELP
// and TYPE; counters end in _total; names are memq_ and [a-z_].
TEST(WriteMetrics, FamiliesAreWellFormed) {
    const std::vector<std::string> lines = lines_of(write_metrics(example_snapshot()));
    std::set<std::string> families;
    std::string current;
    std::string current_type;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        ASSERT_FALSE(line.empty());
        if (line.rfind("# HELP ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            ASSERT_TRUE(families.insert(current).second) << "family twice: " << current;
            ASSERT_LT(i + 1, lines.size());
            ASSERT_EQ(lines[i + 1].rfind("# TYPE " + current + " ", 0), 0u) << lines[i + 1];
            current_type = lines[i + 1].substr(7 + current.size() + 1);
            ASSERT_TRUE(current_type == "counter" || current_type == "gauge") << current_type;
            EXPECT_EQ(current.rfind("memq_", 0), 0u) << current;
            for (const char c : current) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << current;
            EXPECT_EQ(current_type == "counter", current.ends_with("_total")) << current;
            ++i;
            continue;
        }
        ASSERT_NE(line[0], '#') << line;
        const std::string name = line.substr(0, line.find_first_of("{ "));
        EXPECT_EQ(name, current) << "sample outside its family: " << line;
    }
    EXPECT_EQ(families.size(), 20u);
}

}  // namespace
}  // namespace memq
