// duration_histogram_test.cpp — memqd's DurationHistogram: which bucket a
// sample lands in, the sum and count, the bound on its buckets, and how the
// exposition writes it (cumulative buckets up to +Inf, _sum, _count).
#include "duration_histogram.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "metrics_text.hpp"

namespace memq {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

std::vector<std::uint64_t> counts_of(const DurationHistogram& histogram) {
    const auto counts = histogram.bucket_counts();
    return {counts.begin(), counts.end()};
}

TEST(DurationHistogram, ASampleOnABoundCountsUnderThatBound) {
    DurationHistogram histogram{0.001, 0.01};
    histogram.observe(milliseconds(1));
    EXPECT_EQ(counts_of(histogram), (std::vector<std::uint64_t>{1, 0, 0}));
}

TEST(DurationHistogram, ASampleJustAboveABoundCountsUnderTheNext) {
    DurationHistogram histogram{0.001, 0.01};
    histogram.observe(milliseconds(1) + nanoseconds(1));
    EXPECT_EQ(counts_of(histogram), (std::vector<std::uint64_t>{0, 1, 0}));
}

TEST(DurationHistogram, ASamplePastTheLastBoundCountsInTheInfBucket) {
    DurationHistogram histogram{0.001, 0.01};
    histogram.observe(milliseconds(10) + nanoseconds(1));
    EXPECT_EQ(counts_of(histogram), (std::vector<std::uint64_t>{0, 0, 1}));
}

TEST(DurationHistogram, ANegativeDurationCountsAsZero) {
    DurationHistogram histogram{0.001};
    histogram.observe(nanoseconds(-5));
    EXPECT_EQ(counts_of(histogram), (std::vector<std::uint64_t>{1, 0}));
    EXPECT_EQ(histogram.sum_seconds(), 0.0);
}

TEST(DurationHistogram, SumAndCountAddUpEverySample) {
    DurationHistogram histogram{0.001};
    histogram.observe(microseconds(250));
    histogram.observe(microseconds(750));
    histogram.observe(milliseconds(3));
    EXPECT_EQ(histogram.count(), 3u);
    EXPECT_DOUBLE_EQ(histogram.sum_seconds(), 0.004);
}

TEST(DurationHistogram, TheSumStaysExactOverAMillionSmallSamples) {
    DurationHistogram histogram{0.001};
    for (int i = 0; i < 1'000'000; ++i) histogram.observe(nanoseconds(3));
    EXPECT_DOUBLE_EQ(histogram.sum_seconds(), 0.003);
}

std::vector<double> bounds(std::size_t count) {
    std::vector<double> result;
    for (std::size_t i = 1; i <= count; ++i) result.push_back(static_cast<double>(i) * 1e-3);
    return result;
}

// The constructor takes an initializer_list: each size the tests need is spelled out.
DurationHistogram with_bounds(std::size_t count) {
    const std::vector<double> b = bounds(25);
    switch (count) {
        case 23: return DurationHistogram{b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                                          b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19], b[20], b[21], b[22]};
        case 24: return DurationHistogram{b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                                          b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19], b[20], b[21], b[22],
                                          b[23]};
        default: return DurationHistogram{b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                                          b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19], b[20], b[21], b[22],
                                          b[23], b[24]};
    }
}

TEST(DurationHistogram, TakesUpToKBucketsMaxBounds) {
    static_assert(DurationHistogram::kBucketsMax == 24);
    EXPECT_EQ(with_bounds(23).upper_bounds().size(), 23u);
    EXPECT_EQ(with_bounds(24).upper_bounds().size(), 24u);
    EXPECT_EQ(with_bounds(24).bucket_counts().size(), 25u);
}

TEST(DurationHistogramDeathTest, OneBoundMoreThanKBucketsMaxIsAnInvariantFailure) {
    EXPECT_DEATH(with_bounds(25), "invariant failed");
}

TEST(DurationHistogramDeathTest, BoundsMustIncrease) {
    EXPECT_DEATH((DurationHistogram{0.01, 0.01}), "invariant failed");
}

TEST(DurationHistogram, MemqdsBucketSetsFitTheBound) {
    EXPECT_EQ(make_event_loop_turn_histogram().upper_bounds().front(), 5e-6);
    EXPECT_EQ(make_event_loop_turn_histogram().upper_bounds().back(), 1.0);
    EXPECT_EQ(make_storage_sync_histogram().upper_bounds().front(), 1e-4);
    EXPECT_EQ(make_storage_sync_histogram().upper_bounds().back(), 10.0);
}

TEST(HistogramExposition, BucketsAreCumulativeAndEndAtInf) {
    DurationHistogram histogram{0.001, 0.01};
    histogram.observe(microseconds(500));
    histogram.observe(milliseconds(5));
    histogram.observe(milliseconds(6));
    histogram.observe(milliseconds(20));
    Exposition out;
    out.histogram("memq_x_seconds", "X.", histogram);
    EXPECT_EQ(out.text(),
              "# HELP memq_x_seconds X.\n"
              "# TYPE memq_x_seconds histogram\n"
              "memq_x_seconds_bucket{le=\"0.001\"} 1\n"
              "memq_x_seconds_bucket{le=\"0.01\"} 3\n"
              "memq_x_seconds_bucket{le=\"+Inf\"} 4\n"
              "memq_x_seconds_sum 0.0315\n"
              "memq_x_seconds_count 4\n");
}

TEST(HistogramExposition, AnEmptyHistogramWritesZeros) {
    const DurationHistogram histogram{0.5};
    Exposition out;
    out.histogram("memq_y_seconds", "Y.", histogram);
    EXPECT_NE(out.text().find("memq_y_seconds_bucket{le=\"0.5\"} 0\n"), std::string::npos);
    EXPECT_NE(out.text().find("memq_y_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
    EXPECT_NE(out.text().find("memq_y_seconds_sum 0\n"), std::string::npos);
    EXPECT_NE(out.text().find("memq_y_seconds_count 0\n"), std::string::npos);
}

TEST(HistogramExposition, WriteMetricsAddsTheTurnHistogramOnlyWhenGiven) {
    MetricsSnapshot snapshot;
    EXPECT_EQ(write_metrics(snapshot).find("memq_event_loop_turn_seconds"), std::string::npos);
    DurationHistogram turns = make_event_loop_turn_histogram();
    turns.observe(microseconds(40));
    snapshot.event_loop_turns = &turns;
    const std::string text = write_metrics(snapshot);
    EXPECT_NE(text.find("# TYPE memq_event_loop_turn_seconds histogram\n"), std::string::npos);
    EXPECT_NE(text.find("memq_event_loop_turn_seconds_bucket{le=\"5e-05\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("memq_event_loop_turn_seconds_count 1\n"), std::string::npos);
}

TEST(HistogramExposition, WriteMetricsAddsTheStorageSyncHistogramOnlyWhenGiven) {
    MetricsSnapshot snapshot;
    EXPECT_EQ(write_metrics(snapshot).find("memq_storage_sync_seconds"), std::string::npos);
    DurationHistogram syncs = make_storage_sync_histogram();
    syncs.observe(milliseconds(2));
    snapshot.storage_syncs = &syncs;
    const std::string text = write_metrics(snapshot);
    EXPECT_NE(text.find("# TYPE memq_storage_sync_seconds histogram\n"), std::string::npos);
    EXPECT_NE(text.find("memq_storage_sync_seconds_bucket{le=\"0.0025\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("memq_storage_sync_seconds_sum 0.002\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace memq
