// sim_seeds_test.cpp — the simulator as a property: every seed, run for any
// number of requests, passes. rapidcheck shrinks a failure to a small seed
// and the fewest requests that still fail, and prints the memq-sim command
// that replays it. Replay the property itself with RC_PARAMS="seed=N".
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <string>

#include "simulator.hpp"

namespace {

using memq::sim::RunConfig;
using memq::sim::simulate;

RC_GTEST_PROP(SimulatorProperty, EverySeedPassesForAnyNumberOfRequests, ()) {
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    RunConfig config;
    config.ops = *rc::gen::inRange<std::uint64_t>(1, 600);
    const memq::sim::RunResult result = simulate(seed, config);
    if (!result.ok) {
        RC_FAIL(result.failure + "\noptions: " + result.options + "\nlast events:\n" + result.recent +
                "replay: " + result.replay + " --trace");
    }
}

TEST(SimulatorDeterminism, TheSameSeedGivesTheSameDigest) {
    RunConfig config;
    config.ops = 3000;
    for (const std::uint64_t seed : {1ULL, 42ULL, 0xdeadbeefULL}) {
        const auto first = simulate(seed, config);
        const auto second = simulate(seed, config);
        ASSERT_TRUE(first.ok) << first.failure;
        EXPECT_EQ(first.digest, second.digest) << "seed " << seed;
        EXPECT_EQ(first.stats.messages, second.stats.messages) << "seed " << seed;
    }
}

TEST(SimulatorDeterminism, DifferentSeedsGiveDifferentRuns) {
    RunConfig config;
    config.ops = 500;
    EXPECT_NE(simulate(1, config).digest, simulate(2, config).digest);
}

TEST(SimulatorDeterminism, FewerRequestsReplayAPrefixOfTheSameRun) {
    // The options and the first events depend on the seed alone, not on --ops:
    // that is what lets a failure shrink by its number of requests.
    RunConfig small;
    small.ops = 200;
    RunConfig large;
    large.ops = 2000;
    const auto a = simulate(7, small);
    const auto b = simulate(7, large);
    EXPECT_EQ(a.options, b.options);
    EXPECT_LE(a.stats.ops, b.stats.ops);
}

}  // namespace
