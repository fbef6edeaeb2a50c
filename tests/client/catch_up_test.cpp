// catch_up_test.cpp — specifies the lazy replay from the outside: a consumer
// closed as slow resumes with last_seen and catches up through a backlog ten
// times --max-pending-bytes, while the publisher goes on writing, and gets
// every message once, in order (broker.hpp, "Replays are lazy").
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.hpp"
#include "client.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;

constexpr auto kPatience = 20s;
const std::string kPayload(200, 'c');
constexpr std::size_t kMaxPendingBytes = 512 * 1024;
constexpr std::size_t kReplayWindowBytes = 32 * 1024;
// Each message's frame is about 270 bytes: 20'000 of them are ten times the
// pending limit, and far more than the kernel buffers on loopback hold.
constexpr std::int64_t kBacklogMessages = 20'000;
constexpr std::int64_t kLiveMessages = 20'000;  // sent while the consumer catches up

TEST(CatchUp, AConsumerClosedAsSlowCatchesUpThroughTenTimesThePendingLimit) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker({"--max-pending-bytes", std::to_string(kMaxPendingBytes), "--replay-window-bytes",
                          std::to_string(kReplayWindowBytes), "--cache-size",
                          std::to_string(kBacklogMessages + kLiveMessages)});
    ClientOptions resuming;
    resuming.reconnect = true;
    resuming.backoff_min = 5ms;
    resuming.backoff_max = 100ms;
    Client consumer(resuming);
    consumer.connect("127.0.0.1", broker.port(), kPatience);
    consumer.subscribe("backlog");

    Client publisher;
    publisher.connect("127.0.0.1", broker.port(), kPatience);
    for (std::int64_t i = 0; i < kBacklogMessages; ++i) publisher.publish("backlog", kPayload);
    publisher.flush(60s);  // the consumer has read nothing: the broker has closed it by now

    // It comes back and reads while the publisher goes on.
    const auto started = std::chrono::steady_clock::now();
    std::chrono::duration<double> publishing{};
    std::thread live([&publisher, &publishing, started] {
        for (std::int64_t i = 0; i < kLiveMessages; ++i) publisher.publish("backlog", kPayload);
        publisher.flush(60s);
        publishing = std::chrono::steady_clock::now() - started;
    });
    std::vector<std::int64_t> indices;
    constexpr std::int64_t kLast = kBacklogMessages + kLiveMessages - 1;
    while (indices.empty() || indices.back() < kLast) {
        const auto message = consumer.receive(kPatience);
        if (!message) {
            ADD_FAILURE() << "stalled after " << indices.size() << " messages, "
                          << consumer.reconnect_count() << " reconnects";
            break;
        }
        indices.push_back(message->index);
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    live.join();

    EXPECT_GE(consumer.reconnect_count(), 1u) << "the broker never closed the slow consumer";
    EXPECT_LE(consumer.reconnect_count(), 2u) << "a resumed consumer must not be closed again and again";
    EXPECT_EQ(consumer.gap_count(), 0u);
    ASSERT_EQ(indices.size(), static_cast<std::size_t>(kLast + 1));
    for (std::int64_t i = 0; i <= kLast; ++i) ASSERT_EQ(indices[static_cast<std::size_t>(i)], i);
    std::printf("[figure] catch-up: %lld messages (%lld backlog, %lld live) in %.3f s, %.0f msg/s; "
                "the publisher wrote %.0f msg/s\n",
                static_cast<long long>(kLast + 1), static_cast<long long>(kBacklogMessages),
                static_cast<long long>(kLiveMessages), took.count(), static_cast<double>(indices.size()) / took.count(),
                static_cast<double>(kLiveMessages) / publishing.count());
}

}  // namespace
}  // namespace memq
