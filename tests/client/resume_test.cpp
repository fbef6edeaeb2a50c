// resume_test.cpp — specifications of Client's reconnect-and-resume against a real memqd.
//
// Two ways to lose the connection: "quit" (the broker closes it at once), and
// the slow-consumer rule: memqd runs with a small --max-pending-bytes (small
// next to the flood, large next to the acks the publisher gets), and a
// subscriber that does not read (a Client reads only inside its calls) while
// a publisher floods the topic is closed by the broker. When the subscriber
// reads again it gets what the kernel had buffered, sees the close,
// reconnects and re-subscribes with last_seen, and the cache fills in the rest.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "broker_process.hpp"
#include "client.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;

constexpr auto kPatience = 10s;
constexpr auto kQuiet = 200ms;
// Far more than the kernel buffers between broker and subscriber hold (a few
// MiB), so the broker's own queue for the subscriber must pass its limit.
constexpr std::int64_t kFloodMessages = 100'000;
const std::string kPayload(200, 'p');
// The broker answers up to 1 MiB of pipelined input per wakeup before its first
// write completes, so a limit much below that would close the publisher too.
const std::string kMaxPendingBytes = std::to_string(2 * 1024 * 1024);

ClientOptions resuming() {
    ClientOptions options;
    options.reconnect = true;
    options.backoff_min = 5ms;
    options.backoff_max = 100ms;
    return options;
}

Client connected_client(const BrokerProcess& broker, ClientOptions options = {}) {
    Client client(std::move(options));
    client.connect("127.0.0.1", broker.port(), kPatience);
    return client;
}

void flood(const BrokerProcess& broker, const std::string& topic) {
    Client publisher = connected_client(broker);
    for (std::int64_t i = 0; i < kFloodMessages; ++i) publisher.publish(topic, kPayload);
    publisher.flush(60s);
}

// Receives until the message with index `last` arrives; returns every index seen.
std::vector<std::int64_t> receive_through(Client& client, std::int64_t last) {
    std::vector<std::int64_t> indices;
    while (indices.empty() || indices.back() < last) {
        const auto message = client.receive(kPatience);
        if (!message) {
            ADD_FAILURE() << "stalled after " << indices.size() << " messages";
            break;
        }
        indices.push_back(message->index);
    }
    return indices;
}

TEST(ClientResume, ResubscribesWithLastSeenAfterTheConnectionDrops) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, resuming());
    Client sender = connected_client(broker);
    subscriber.subscribe("t");
    sender.send("t", "zero");
    ASSERT_EQ(subscriber.receive(kPatience)->index, 0);
    subscriber.send_raw("quit\n", false);   // the broker closes the connection
    sender.send("t", "one");                 // sent while the subscriber is away
    const auto message = subscriber.receive(kPatience);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->index, 1);
    EXPECT_EQ(message->msg, "one");
    // "one" may have beaten the quit to the broker and come on the old
    // connection; either way the client is on a new one by now.
    EXPECT_FALSE(subscriber.receive(kQuiet).has_value()) << "nothing may come twice";
    EXPECT_EQ(subscriber.reconnect_count(), 1u);
    EXPECT_EQ(subscriber.gap_count(), 0u);
}

TEST(ClientResume, WithoutReconnectALostConnectionStaysLost) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker);
    subscriber.subscribe("t");
    subscriber.send_raw("quit\n", false);
    EXPECT_THROW((void)subscriber.receive(kPatience), ConnectionError);
    EXPECT_EQ(subscriber.reconnect_count(), 0u);
}

TEST(ClientResume, CatchesUpFromTheCacheAfterAnAbsenceWithoutLossOrDuplicates) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker({"--cache-size", std::to_string(kFloodMessages)});
    Client subscriber = connected_client(broker, resuming());
    subscriber.subscribe("flood");
    Client publisher = connected_client(broker);
    publisher.send("flood", kPayload);
    ASSERT_EQ(subscriber.receive(kPatience)->index, 0);
    subscriber.send_raw("quit\n", false);  // gone until its next call notices
    flood(broker, "flood");                // some may reach it before the quit, the rest only the cache

    const auto indices = receive_through(subscriber, kFloodMessages);
    EXPECT_EQ(subscriber.reconnect_count(), 1u);
    EXPECT_EQ(subscriber.gap_count(), 0u);
    ASSERT_EQ(indices.size(), static_cast<std::size_t>(kFloodMessages));
    for (std::int64_t i = 0; i < kFloodMessages; ++i) ASSERT_EQ(indices[static_cast<std::size_t>(i)], i + 1);
}

TEST(ClientResume, CatchUpBeyondTheCacheWindowReportsTheGap) {
    MEMQ_REQUIRE_MEMQD();
    constexpr std::int64_t kCacheSize = 100;
    BrokerProcess broker({"--max-pending-bytes", kMaxPendingBytes, "--cache-size", std::to_string(kCacheSize)});
    ClientOptions options = resuming();
    std::vector<Gap> reported;
    options.on_gap = [&reported](const Gap& gap) { reported.push_back(gap); };
    Client subscriber = connected_client(broker, options);
    subscriber.subscribe("flood");
    flood(broker, "flood");

    const auto indices = receive_through(subscriber, kFloodMessages - 1);
    ASSERT_GE(subscriber.reconnect_count(), 1u) << "the broker never closed the slow subscriber";
    const std::vector<Gap> gaps = subscriber.take_gaps();
    ASSERT_EQ(gaps.size(), 1u);
    ASSERT_EQ(reported.size(), 1u);
    const Gap& gap = gaps[0];
    EXPECT_EQ(gap.topic, "flood");
    EXPECT_EQ(gap.got_index, kFloodMessages - kCacheSize) << "resumed at the oldest message still cached";
    // What arrived is 0 .. expected-1, then got .. the end: nothing twice, and
    // the only hole is the one reported.
    std::int64_t want = 0;
    for (const std::int64_t index : indices) {
        if (want == gap.expected_index) want = gap.got_index;
        ASSERT_EQ(index, want);
        ++want;
    }
    EXPECT_EQ(want, kFloodMessages);
    EXPECT_TRUE(subscriber.take_gaps().empty()) << "take_gaps hands each gap over once";
}

}  // namespace
}  // namespace memq
