// duration_histogram.hpp — a Prometheus histogram of durations, for memqd's
// shell: fixed upper bounds (in seconds, as the exposition writes them),
// counts per bucket, the sum and the count. The bucket sets of memqd's
// histograms are named here too.
//
// Rules:
// - Recording is cheap and never allocates: a search over at most
//   kBucketsMax bounds held in nanoseconds, three integer additions.
// - The sum is kept in integer nanoseconds, so it never loses precision
//   to rounding however many samples it adds up.
// - One thread: the event loop's (no atomics, no locks).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "check.hpp"

namespace memq {

class DurationHistogram {
public:
    static constexpr std::size_t kBucketsMax = 24;  // finite bounds; +Inf comes on top

    // `upper_bounds_seconds`: strictly increasing, positive, at most kBucketsMax.
    explicit DurationHistogram(std::initializer_list<double> upper_bounds_seconds) {
        MEMQ_CHECK(upper_bounds_seconds.size() >= 1 && upper_bounds_seconds.size() <= kBucketsMax);
        for (const double bound : upper_bounds_seconds) {
            MEMQ_CHECK(bound > 0 && (bounds_ == 0 || bound > bounds_seconds_[bounds_ - 1]));
            bounds_seconds_[bounds_] = bound;
            bounds_ns_[bounds_] = static_cast<std::uint64_t>(bound * 1e9);
            ++bounds_;
        }
    }

    void observe(std::chrono::nanoseconds duration) {
        const std::uint64_t ns = duration.count() > 0 ? static_cast<std::uint64_t>(duration.count()) : 0;
        // The first bound the sample fits under (`le`); past the last: the +Inf bucket.
        const std::uint64_t* const begin = bounds_ns_.data();
        const auto bucket = static_cast<std::size_t>(std::lower_bound(begin, begin + bounds_, ns) - begin);
        ++counts_[bucket];
        ++count_;
        sum_ns_ += ns;
    }

    // The finite upper bounds, in seconds.
    std::span<const double> upper_bounds() const { return {bounds_seconds_.data(), bounds_}; }
    // Samples per bucket, not cumulative: one per finite bound, then the +Inf bucket's.
    std::span<const std::uint64_t> bucket_counts() const { return {counts_.data(), bounds_ + 1}; }
    std::uint64_t count() const { return count_; }
    double sum_seconds() const { return static_cast<double>(sum_ns_) / 1e9; }

private:
    std::array<double, kBucketsMax> bounds_seconds_{};
    std::array<std::uint64_t, kBucketsMax> bounds_ns_{};
    std::array<std::uint64_t, kBucketsMax + 1> counts_{};
    std::size_t bounds_ = 0;
    std::uint64_t count_ = 0;
    std::uint64_t sum_ns_ = 0;
};

// memq_event_loop_turn_seconds: one read's handling, from 5 µs to 1 s.
inline DurationHistogram make_event_loop_turn_histogram() {
    return DurationHistogram{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                             2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1};
}

// memq_storage_sync_seconds: one sync of the data dir (fdatasync and the
// like), from 100 µs to 10 s; the storage layer records into it.
inline DurationHistogram make_storage_sync_histogram() {
    return DurationHistogram{1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
                             5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace memq
