// inbox_bound_test.cpp — specifications of the client's inbox bound
// (ClientCoreOptions::max_inbox_messages, ClientOptions::max_inbox_messages):
// ClientCore decodes no line past the bound and holds the input until
// mark_delivered() makes room; memq::Client stops reading its socket and
// throws InboxFull from calls that need to read further; against memqd with a
// small --max-pending-bytes, a full inbox ends in a slow-consumer close, a
// resume and a reported Gap, never in a silent loss.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker_process.hpp"
#include "client.hpp"
#include "client_core.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;

constexpr auto kPatience = 10s;
constexpr std::string_view kAckLine = "{\"success\": true}\r\n";

// The shortest message the broker can send on topic "t" (an index < 10 keeps it so).
std::string short_message(std::int64_t index) {
    return R"({"command":"send","topic":"t","msg":"","delivery":"all","index":)" + std::to_string(index) + "}\r\n";
}

std::string messages(std::int64_t count) {
    std::string bytes;
    for (std::int64_t i = 0; i < count; ++i) bytes += short_message(i);
    return bytes;
}

ClientCore bounded_core(std::size_t bound) {
    ClientCoreOptions options;
    options.max_inbox_messages = bound;
    return ClientCore(options);
}

// The indices of the messages among the queued events (then marked delivered, with `deliver`).
std::vector<std::int64_t> polled_indices(ClientCore& core, bool deliver = false) {
    std::vector<std::int64_t> indices;
    while (auto event = core.poll_event()) {
        if (const auto* message = std::get_if<Message>(&*event)) indices.push_back(message->index);
    }
    if (deliver) core.mark_delivered(indices.size());
    return indices;
}

// ------------------------------------------------------------------ ClientCore

TEST(ClientCoreInbox, OneBelowTheBoundLeavesRoom) {
    ClientCore core = bounded_core(3);
    core.receive(messages(2));
    EXPECT_EQ(polled_indices(core).size(), 2u);
    EXPECT_EQ(core.undelivered_messages(), 2u);
    EXPECT_FALSE(core.inbox_full());
}

TEST(ClientCoreInbox, ExactlyTheBoundFillsItAndHoldsNothing) {
    ClientCore core = bounded_core(3);
    core.receive(messages(3));
    EXPECT_EQ(polled_indices(core), (std::vector<std::int64_t>{0, 1, 2}));
    EXPECT_TRUE(core.inbox_full());
    EXPECT_EQ(core.held_input_bytes(), 0u);
}

TEST(ClientCoreInbox, OneAboveTheBoundIsHeldUndecoded) {
    ClientCore core = bounded_core(3);
    core.receive(messages(4));
    EXPECT_EQ(polled_indices(core).size(), 3u);
    EXPECT_TRUE(core.inbox_full());
    EXPECT_EQ(core.held_input_bytes(), short_message(3).size());
}

TEST(ClientCoreInbox, DeliveringOneLetsTheHeldMessageIn) {
    ClientCore core = bounded_core(3);
    core.receive(messages(4));
    (void)polled_indices(core);
    core.mark_delivered(1);
    EXPECT_EQ(polled_indices(core), (std::vector<std::int64_t>{3}));
    EXPECT_EQ(core.held_input_bytes(), 0u);
    EXPECT_EQ(core.undelivered_messages(), 3u);
}

TEST(ClientCoreInbox, InputReceivedWhileFullQueuesBehindTheHeldInput) {
    ClientCore core = bounded_core(1);
    core.receive(short_message(0) + short_message(1));
    core.receive(short_message(2));
    EXPECT_EQ(polled_indices(core, /*deliver=*/true), (std::vector<std::int64_t>{0}));
    EXPECT_EQ(polled_indices(core, /*deliver=*/true), (std::vector<std::int64_t>{1}));
    EXPECT_EQ(polled_indices(core, /*deliver=*/true), (std::vector<std::int64_t>{2}));
    EXPECT_FALSE(core.inbox_full());
}

TEST(ClientCoreInbox, AReplyBehindAFullInboxWaitsUndecodedToo) {
    ClientCore core = bounded_core(2);
    core.send("u", "x");
    core.receive(messages(2) + std::string(kAckLine));
    (void)polled_indices(core);
    EXPECT_EQ(core.pending_requests(), 1u) << "the ack is not read while the inbox is full";
    core.mark_delivered(1);
    EXPECT_EQ(core.pending_requests(), 0u);
    ASSERT_TRUE(core.poll_event().has_value());  // the Ack
}

TEST(ClientCoreInbox, ExactlyTheBoundIsDecodedFromOneChunkOfAnySize) {
    // Both ways of decoding (the whole chunk at once when it cannot fill the
    // inbox, line by line near the bound) at every bound around the chunk's size.
    constexpr std::int64_t kChunkMessages = 40;
    for (std::size_t bound = 1; bound <= kChunkMessages + 1; ++bound) {
        ClientCore core = bounded_core(bound);
        core.receive(messages(kChunkMessages));
        const std::size_t expected = std::min<std::size_t>(bound, kChunkMessages);
        EXPECT_EQ(polled_indices(core).size(), expected) << "bound " << bound;
    }
}

TEST(ClientCoreInbox, TheRestOfAChunkIsDecodedAsRoomIsMade) {
    ClientCore core = bounded_core(2);
    core.receive(messages(9));
    std::vector<std::int64_t> indices = polled_indices(core);
    while (core.held_input_bytes() != 0) {
        core.mark_delivered(2);
        for (const std::int64_t index : polled_indices(core)) indices.push_back(index);
    }
    EXPECT_EQ(indices, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(ClientCoreInbox, ALineCutByTheReadsIsCountedOnceWhole) {
    ClientCore core = bounded_core(1);
    const std::string bytes = messages(2);
    const std::size_t cut = short_message(0).size() + 5;  // inside the second message
    core.receive(std::string_view(bytes).substr(0, cut));
    core.receive(std::string_view(bytes).substr(cut));
    EXPECT_EQ(polled_indices(core, /*deliver=*/true), (std::vector<std::int64_t>{0}));
    EXPECT_EQ(polled_indices(core, /*deliver=*/true), (std::vector<std::int64_t>{1}));
}

TEST(ClientCoreInbox, DroppedDuplicatesAreNotCounted) {
    ClientCoreOptions options;
    options.max_inbox_messages = 2;
    options.drop_duplicates = true;
    ClientCore core(options);
    core.subscribe("t");
    core.receive(std::string(kAckLine) + short_message(0) + short_message(0) + short_message(1));
    EXPECT_EQ(polled_indices(core), (std::vector<std::int64_t>{0, 1}));
    EXPECT_EQ(core.undelivered_messages(), 2u);
}

TEST(ClientCoreInbox, ResetDropsTheHeldInputAndKeepsTheCount) {
    ClientCore core = bounded_core(1);
    core.receive(messages(3));
    (void)polled_indices(core);
    (void)core.reset();
    EXPECT_EQ(core.held_input_bytes(), 0u);
    EXPECT_EQ(core.undelivered_messages(), 1u) << "the message already handed out is still the application's";
}

TEST(ClientCoreInbox, ABoundOfZeroIsTakenAsOne) {
    ClientCore core = bounded_core(0);
    core.receive(messages(2));
    EXPECT_EQ(polled_indices(core).size(), 1u);
}

// ------------------------------------------------------------- Client + memqd

ClientOptions bounded(std::size_t bound) {
    ClientOptions options;
    options.max_inbox_messages = bound;
    return options;
}

Client connected_client(const BrokerProcess& broker, ClientOptions options = {}) {
    Client client(std::move(options));
    client.connect("127.0.0.1", broker.port(), kPatience);
    return client;
}

// `count` messages on "t" are queued for `subscriber` before it sends anything.
void send_ahead(const BrokerProcess& broker, Client& subscriber, std::int64_t count) {
    subscriber.subscribe("t");
    Client sender = connected_client(broker);
    for (std::int64_t i = 0; i < count; ++i) sender.send("t", std::to_string(i));
}

TEST(ClientInbox, OneBelowTheBoundAReplyBehindTheMessagesIsRead) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(4));
    send_ahead(broker, subscriber, 3);
    subscriber.send("u", "x");  // its ack comes after the 3 messages
    EXPECT_EQ(subscriber.inbox_size(), 3u);
}

TEST(ClientInbox, ExactlyTheBoundFillsTheInboxAndTheReplyBehindItFailsFast) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(4));
    send_ahead(broker, subscriber, 4);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(subscriber.send("u", "x", Delivery::all, std::nullopt, kPatience), InboxFull);
    EXPECT_LT(std::chrono::steady_clock::now() - start, kPatience / 5) << "InboxFull comes at once, not at the timeout";
    EXPECT_EQ(subscriber.inbox_size(), 4u);
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(subscriber.receive(kPatience)->index, i);
}

TEST(ClientInbox, OneAboveTheBoundTheLastMessageIsLeftUnreadUntilOneIsTaken) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(4));
    send_ahead(broker, subscriber, 5);
    EXPECT_THROW(subscriber.send("u", "x"), InboxFull);
    EXPECT_EQ(subscriber.inbox_size(), 4u) << "the fifth message stays unread";
    EXPECT_EQ(subscriber.receive(kPatience)->index, 0);
    EXPECT_EQ(subscriber.inbox_size(), 4u) << "taking one let the fifth in";
    for (std::int64_t i = 1; i <= 4; ++i) EXPECT_EQ(subscriber.receive(kPatience)->index, i);
}

TEST(ClientInbox, EveryCallThatWouldReadFurtherFailsFastWhileFull) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(2));
    send_ahead(broker, subscriber, 2);
    EXPECT_THROW(subscriber.send("u", "x"), InboxFull);  // fills it
    EXPECT_THROW(subscriber.publish("u", "y"), InboxFull);
    EXPECT_THROW(subscriber.subscribe("v"), InboxFull);
    EXPECT_THROW(subscriber.unsubscribe("t"), InboxFull);
    EXPECT_THROW(subscriber.flush(kPatience), InboxFull) << "the send's ack is still owed";
    EXPECT_EQ(subscriber.unacknowledged(), 0u) << "the refused publish was not sent";
}

TEST(ClientInbox, TheMessageNamesTheBoundAndTheWayOut) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(2));
    send_ahead(broker, subscriber, 2);
    try {
        subscriber.send("u", "x");
        FAIL() << "no InboxFull";
    } catch (const InboxFull& error) {
        const std::string text = error.what();
        EXPECT_NE(text.find("max_inbox_messages=2"), std::string::npos) << text;
        EXPECT_NE(text.find("drain it with receive()"), std::string::npos) << text;
    }
}

TEST(ClientInbox, AReplyReadAfterInboxFullIsIgnoredAsATimedOutOnesIs) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker, bounded(2));
    send_ahead(broker, subscriber, 2);
    EXPECT_THROW(subscriber.send("u", "x"), InboxFull);
    (void)subscriber.receive(kPatience);
    (void)subscriber.receive(kPatience);
    subscriber.send("u", "again");  // its own ack answers it, not the forgotten one
    subscriber.flush(kPatience);
    EXPECT_EQ(subscriber.inbox_size(), 0u);
}

// memqd's queue for a client whose inbox is full grows until the slow-consumer
// rule closes it; the resuming client then reports what the cache lost.
TEST(ClientInbox, AFullInboxEndsInASlowConsumerCloseAndAReportedGap) {
    MEMQ_REQUIRE_MEMQD();
    // As resume_test.cpp: a flood far past the kernel's socket buffers, a
    // pending-bytes limit far past the publisher's acks.
    constexpr std::int64_t kFloodMessages = 100'000;
    constexpr std::int64_t kCacheSize = 100;
    BrokerProcess broker({"--max-pending-bytes", std::to_string(2 * 1024 * 1024), "--cache-size",
                          std::to_string(kCacheSize)});
    ClientOptions options = bounded(2);
    options.reconnect = true;
    options.backoff_min = 5ms;
    options.backoff_max = 100ms;
    Client subscriber = connected_client(broker, options);
    subscriber.subscribe("flood");
    {
        Client publisher = connected_client(broker);
        const std::string payload(200, 'p');
        for (std::int64_t i = 0; i < kFloodMessages; ++i) publisher.publish("flood", payload);
        publisher.flush(60s);
    }
    EXPECT_THROW(subscriber.send("other", "x"), InboxFull);

    std::int64_t want = 0;
    std::vector<Gap> gaps;
    while (want < kFloodMessages) {
        const auto message = subscriber.receive(kPatience);
        ASSERT_TRUE(message.has_value()) << "stalled at index " << want;
        for (const Gap& gap : subscriber.take_gaps()) {
            gaps.push_back(gap);
            if (want == gap.expected_index) want = gap.got_index;
        }
        ASSERT_EQ(message->index, want) << "nothing twice, no hole but the reported one";
        ++want;
    }
    EXPECT_GE(subscriber.reconnect_count(), 1u) << "the broker never closed the subscriber";
    ASSERT_EQ(gaps.size(), 1u);
    EXPECT_EQ(gaps[0].got_index, kFloodMessages - kCacheSize) << "resumed at the oldest message still cached";
}

}  // namespace
}  // namespace memq
