// prng_test.cpp — specifies memq::Prng (prng.hpp): a seeded xoshiro256**,
// deterministic for a seed on every platform, with an unbiased below().
//
// The reference values below were computed by an independent implementation
// of splitmix64 and xoshiro256** (Blackman & Vigna), not by this one.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "prng.hpp"

namespace {

using memq::Prng;

std::vector<std::uint64_t> first_outputs(std::uint64_t seed, std::size_t count) {
    Prng prng(seed);
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(prng.next());
    return out;
}

TEST(Prng, splitmix64_matches_the_published_sequence_for_seed_zero) {
    std::uint64_t state = 0;
    EXPECT_EQ(memq::splitmix64(state), 0xe220a8397b1dcdafULL);
    EXPECT_EQ(memq::splitmix64(state), 0x6e789e6aa1b965f4ULL);
    EXPECT_EQ(memq::splitmix64(state), 0x06c45d188009454fULL);
}

TEST(Prng, next_matches_reference_xoshiro256starstar_seeded_by_splitmix64) {
    const std::vector<std::uint64_t> seed_0 = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL,
                                               0x1a5f849d4933e6e0ULL, 0x6aa594f1262d2d2cULL};
    const std::vector<std::uint64_t> seed_42 = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                                                0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL};
    const std::vector<std::uint64_t> seed_max = {0x8f5520d52a7ead08ULL, 0xc476a018caa1802dULL,
                                                 0x81de31c0d260469eULL, 0xbf658d7e065f3c2fULL};
    EXPECT_EQ(first_outputs(0, 4), seed_0);
    EXPECT_EQ(first_outputs(42, 4), seed_42);
    EXPECT_EQ(first_outputs(std::numeric_limits<std::uint64_t>::max(), 4), seed_max);
}

TEST(Prng, same_seed_gives_same_sequence) {
    EXPECT_EQ(first_outputs(12345, 1000), first_outputs(12345, 1000));
}

TEST(Prng, different_seeds_give_different_sequences) {
    EXPECT_NE(first_outputs(1, 16), first_outputs(2, 16));
    EXPECT_NE(first_outputs(0, 16), first_outputs(1, 16));
}

TEST(Prng, seed_zero_gives_a_well_mixed_state) {
    const auto outputs = first_outputs(0, 64);
    for (const std::uint64_t value : outputs) EXPECT_NE(value, 0u);
}

TEST(Prng, is_usable_at_compile_time) {
    constexpr std::uint64_t first = [] {
        Prng prng(42);
        return prng.next();
    }();
    static_assert(first == 0x15780b2e0c2ec716ULL);
    constexpr std::uint64_t bounded = [] {
        Prng prng(42);
        return prng.below(10);
    }();
    static_assert(bounded < 10);
    SUCCEED();
}

TEST(Prng, below_one_is_always_zero) {
    Prng prng(7);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(prng.below(1), 0u);
}

TEST(Prng, below_stays_within_bounds) {
    Prng prng(99);
    const std::array<std::uint64_t, 8> bounds = {2,
                                                 3,
                                                 7,
                                                 1000,
                                                 (1ULL << 32) + 1,
                                                 (1ULL << 63) + 1,
                                                 std::numeric_limits<std::uint64_t>::max() - 1,
                                                 std::numeric_limits<std::uint64_t>::max()};
    for (const std::uint64_t bound : bounds) {
        for (int i = 0; i < 2000; ++i) ASSERT_LT(prng.below(bound), bound) << "bound " << bound;
    }
}

TEST(Prng, below_reaches_every_value_of_a_small_range) {
    Prng prng(5);
    std::array<int, 7> seen{};
    for (int i = 0; i < 700; ++i) ++seen[prng.below(7)];
    for (std::size_t value = 0; value < seen.size(); ++value) EXPECT_GT(seen[value], 0) << "value " << value;
}

TEST(Prng, below_is_roughly_uniform) {
    Prng prng(2024);
    constexpr int draws = 60000;
    std::array<int, 6> counts{};
    for (int i = 0; i < draws; ++i) ++counts[prng.below(6)];
    for (const int count : counts) {
        EXPECT_GT(count, draws / 6 - 600);  // the expected 10000 ± ~6.5 standard deviations
        EXPECT_LT(count, draws / 6 + 600);
    }
}

TEST(Prng, below_on_a_huge_bound_uses_the_upper_half) {
    // A biased or truncated below() (e.g. next() % bound done in 32 bits) would
    // never produce values past 2^63 for this bound.
    Prng prng(3);
    const std::uint64_t bound = std::numeric_limits<std::uint64_t>::max();
    int upper = 0;
    for (int i = 0; i < 1000; ++i) upper += prng.below(bound) >= (1ULL << 63) ? 1 : 0;
    EXPECT_GT(upper, 400);
    EXPECT_LT(upper, 600);
}

TEST(Prng, below_matches_the_reference_multiply_and_reject_method) {
    // The high half of next() * bound, rejecting a low half below 2^64 mod bound
    // (Lemire): the same draws on every platform, unlike next() % bound.
    Prng prng(42);
    std::vector<std::uint64_t> draws;
    for (const std::uint64_t bound : {6ULL, 6ULL, 6ULL, 1000ULL, 1000ULL, (1ULL << 63) + 1, 3ULL, 7ULL}) {
        draws.push_back(prng.below(bound));
    }
    EXPECT_EQ(draws, (std::vector<std::uint64_t>{0, 2, 4, 924, 991, 7099593415032875292ULL, 2, 5}));
}

TEST(Prng, below_rejects_the_biased_draws_of_a_huge_bound) {
    // For bound 2^63 + 1 almost half of all draws fall in the biased zone and
    // must be drawn again; seed 7 rejects its second draw, among others.
    Prng prng(7);
    std::vector<std::uint64_t> draws;
    for (int i = 0; i < 6; ++i) draws.push_back(prng.below((1ULL << 63) + 1));
    EXPECT_EQ(draws, (std::vector<std::uint64_t>{6461677535414237997ULL, 7744196453246319819ULL,
                                                 9049029322324588832ULL, 9139072988219048332ULL,
                                                 1400256439129669809ULL, 6750200521807187948ULL}));
}

TEST(Prng, below_is_deterministic_for_a_seed) {
    Prng a(77);
    Prng b(77);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.below(13), b.below(13));
}

TEST(Prng, chance_of_zero_never_happens_and_chance_of_all_always_does) {
    Prng prng(11);
    for (int i = 0; i < 1000; ++i) {
        ASSERT_FALSE(prng.chance(0, 5));
        ASSERT_TRUE(prng.chance(5, 5));
    }
}

TEST(Prng, chance_matches_its_probability_roughly) {
    Prng prng(13);
    int hits = 0;
    for (int i = 0; i < 40000; ++i) hits += prng.chance(1, 4) ? 1 : 0;
    EXPECT_GT(hits, 9400);  // expected 10000, standard deviation ~87
    EXPECT_LT(hits, 10600);
}

}  // namespace
