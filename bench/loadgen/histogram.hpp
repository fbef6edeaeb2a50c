// histogram.hpp — memq-bench's latency histogram: log-linear buckets over
// nanoseconds (64 sub-buckets per power of two, so any reported percentile is
// within ~1.6% of the true sample), fixed size, no allocation while recording.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace bench {

class Histogram {
public:
    static constexpr unsigned kSubBits = 6;  // 64 sub-buckets per octave
    static constexpr std::size_t kSub = std::size_t{1} << kSubBits;
    static constexpr std::size_t kBuckets = 60 * kSub;

    void record(std::uint64_t ns) {
        ++counts_[index_of(ns)];
        ++total_;
        if (ns > max_) max_ = ns;
    }

    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
        total_ += other.total_;
        if (other.max_ > max_) max_ = other.max_;
    }

    std::uint64_t count() const { return total_; }
    std::uint64_t max() const { return max_; }

    // The sample at quantile q in [0, 1] (the midpoint of its bucket), 0 when empty.
    std::uint64_t quantile(double q) const {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
        if (rank < 1) rank = 1;
        if (rank >= total_) return max_;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < kBuckets; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const std::uint64_t mid = midpoint_of(i);
                return mid > max_ ? max_ : mid;
            }
        }
        return max_;
    }

private:
    // Values below 2*kSub map to themselves; above, bucket e*kSub + mantissa
    // where mantissa is the top kSubBits+1 bits (in [kSub, 2*kSub)).
    static std::size_t index_of(std::uint64_t ns) {
        if (ns < 2 * kSub) return static_cast<std::size_t>(ns);
        const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns));
        const unsigned shift = msb - kSubBits;
        const std::size_t index = shift * kSub + static_cast<std::size_t>(ns >> shift);
        return index < kBuckets ? index : kBuckets - 1;
    }

    static std::uint64_t midpoint_of(std::size_t index) {
        if (index < 2 * kSub) return index;
        const std::size_t shift = index / kSub - 1;
        const std::uint64_t mantissa = index - shift * kSub;
        return (mantissa << shift) + ((std::uint64_t{1} << shift) >> 1);
    }

    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace bench
