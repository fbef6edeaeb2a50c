// log_limiter_test.cpp — LogLimiter: one line per second per kind, with what was left out.
#include "log_limiter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace memq {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr Clock::duration kTick{1};  // the clock's smallest step

class LogLimiterTest : public ::testing::Test {
protected:
    // Everything the logger would write, with its level; time moves only when a test says so.
    std::vector<std::pair<LogLevel, std::string>> lines;
    Clock::time_point now = Clock::time_point{} + 1000h;  // far from the epoch, as a real steady clock
    Logger log{LogLevel::debug, [this](LogLevel level, std::string_view text) { lines.emplace_back(level, text); }};
    LogLimiter limiter{log, [this] { return now; }};

    std::string last() const { return lines.empty() ? std::string() : lines.back().second; }
};

TEST_F(LogLimiterTest, TheFirstHitOfAKindIsWrittenWithItsCounters) {
    EXPECT_TRUE(limiter.hit(LimitEvent::line_too_long, 1, "closing connection ", 7, ": line too long"));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].first, LogLevel::warn);
    EXPECT_EQ(lines[0].second,
              "closing connection 7: line too long [line too long: 0 left out since the last line, 1 in all]");
}

TEST_F(LogLimiterTest, AHitOneTickBeforeTheSecondIsLeftOutAndOneAtTheSecondIsWritten) {
    ASSERT_TRUE(limiter.hit(LimitEvent::slow_consumer, 1, "first"));
    now += LogLimiter::kInterval - kTick;
    EXPECT_FALSE(limiter.hit(LimitEvent::slow_consumer, 1, "second"));
    EXPECT_EQ(lines.size(), 1u);
    EXPECT_EQ(limiter.left_out(LimitEvent::slow_consumer), 1u);
    now += kTick;  // exactly one second after the first line
    EXPECT_TRUE(limiter.hit(LimitEvent::slow_consumer, 1, "third"));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(last(), "third [slow consumer: 1 left out since the last line, 3 in all]");
    EXPECT_EQ(limiter.left_out(LimitEvent::slow_consumer), 0u);
}

TEST_F(LogLimiterTest, TheSecondIsCountedFromTheLastLineWrittenNotFromTheLastHit) {
    ASSERT_TRUE(limiter.hit(LimitEvent::line_too_long, 1, "a"));
    for (int i = 0; i < 9; ++i) {
        now += 100ms;  // 0.9 s after the line
        EXPECT_FALSE(limiter.hit(LimitEvent::line_too_long, 1, "b"));
    }
    now += 100ms;
    EXPECT_TRUE(limiter.hit(LimitEvent::line_too_long, 1, "c"));
    EXPECT_EQ(last(), "c [line too long: 9 left out since the last line, 11 in all]");
}

TEST_F(LogLimiterTest, AHundredThousandHitsInABurstWriteOneLinePlusOneSummary) {
    for (int i = 0; i < 100000; ++i) limiter.hit(LimitEvent::line_too_long, 1, "closing connection ", i);
    EXPECT_EQ(lines.size(), 1u);
    limiter.flush();  // not a second yet: nothing
    EXPECT_EQ(lines.size(), 1u);
    now += LogLimiter::kInterval - kTick;
    limiter.flush();
    EXPECT_EQ(lines.size(), 1u);
    now += kTick;
    limiter.flush();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[1].first, LogLevel::warn);
    EXPECT_EQ(lines[1].second, "line too long: 99999 left out since the last line, 100000 in all");
    now += 10s;
    limiter.flush();  // nothing left out since: nothing to say
    EXPECT_EQ(lines.size(), 2u);
}

TEST_F(LogLimiterTest, ASummaryStartsANewSecond) {
    limiter.hit(LimitEvent::too_many_connections, 1, "refusing");
    limiter.hit(LimitEvent::too_many_connections, 1, "refusing");
    now += LogLimiter::kInterval;
    limiter.flush();
    ASSERT_EQ(lines.size(), 2u);
    now += LogLimiter::kInterval - kTick;
    EXPECT_FALSE(limiter.hit(LimitEvent::too_many_connections, 1, "refusing"));
    EXPECT_EQ(lines.size(), 2u);
}

TEST_F(LogLimiterTest, KindsAreLimitedIndependently) {
    EXPECT_TRUE(limiter.hit(LimitEvent::line_too_long, 1, "a"));
    EXPECT_TRUE(limiter.hit(LimitEvent::slow_consumer, 1, "b"));
    EXPECT_TRUE(limiter.hit(LimitEvent::too_many_connections, 1, "c"));
    EXPECT_TRUE(limiter.hit(LimitEvent::too_many_topics, 4, "d"));
    EXPECT_TRUE(limiter.hit(LimitEvent::cache_byte_budget, 2, "e"));
    EXPECT_TRUE(limiter.hit(LimitEvent::accept_failed, 1, "f"));
    EXPECT_TRUE(limiter.hit(LimitEvent::topic_too_long, 3, "g"));
    EXPECT_TRUE(limiter.hit(LimitEvent::too_many_subscriptions, 5, "h"));
    EXPECT_TRUE(limiter.hit(LimitEvent::tls_handshake_failed, 6, "i"));
    EXPECT_FALSE(limiter.hit(LimitEvent::line_too_long, 1, "a"));
    EXPECT_EQ(lines.size(), kLimitEventCount);
    EXPECT_EQ(lines[3].second, "d [too many topics: 0 left out since the last line, 4 in all]");
    EXPECT_EQ(lines[4].first, LogLevel::info);
    EXPECT_EQ(lines[6].second, "g [topic too long: 0 left out since the last line, 3 in all]");
    EXPECT_EQ(lines[7].second, "h [too many subscriptions: 0 left out since the last line, 5 in all]");
    EXPECT_EQ(lines[7].first, LogLevel::warn);
    EXPECT_EQ(lines[8].second, "i [TLS handshake failed: 0 left out since the last line, 6 in all]");
    EXPECT_EQ(lines[8].first, LogLevel::warn);
}

TEST_F(LogLimiterTest, CountsAddUp) {
    limiter.hit(LimitEvent::too_many_topics, 3, "x");
    limiter.hit(LimitEvent::too_many_topics, 5, "y");
    limiter.hit(LimitEvent::too_many_topics, 7, "z");
    EXPECT_EQ(limiter.total(LimitEvent::too_many_topics), 15u);
    EXPECT_EQ(limiter.left_out(LimitEvent::too_many_topics), 12u);
    now += LogLimiter::kInterval;
    limiter.flush();
    EXPECT_EQ(last(), "too many topics: 12 left out since the last line, 15 in all");
}

// A log part that counts how often it is formatted.
struct CountedPart {
    int* formatted;
    friend std::ostream& operator<<(std::ostream& out, const CountedPart& part) {
        ++*part.formatted;
        return out << "part";
    }
};

TEST_F(LogLimiterTest, PartsAreFormattedOnlyForALineWritten) {
    int formatted = 0;
    limiter.hit(LimitEvent::slow_consumer, 1, CountedPart{&formatted});
    EXPECT_EQ(formatted, 1);
    for (int i = 0; i < 100; ++i) limiter.hit(LimitEvent::slow_consumer, 1, CountedPart{&formatted});
    EXPECT_EQ(formatted, 1);
}

}  // namespace
}  // namespace memq
