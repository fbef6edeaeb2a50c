// exchange_test.cpp — end to end: subscribe, send, deliver, replay, over real TCP.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_fixture.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

using namespace std::chrono_literals;

constexpr auto kQuiet = 200ms;  // "nothing arrives" window: long enough for loopback, short for the suite

class Exchange : public MemqdTest {};

// Replies on one connection keep request order, and a send's deliveries are
// queued before later replies; so once this ack arrives, everything the
// broker queued for `client` before it has arrived too.
void sync(LineClient& client) {
    client.send_line(subscribe_command("memq-e2e-sync"));
    ASSERT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(Exchange, SubscriberReceivesMessageSentByAnotherConnection) {
    LineClient subscriber(port());
    LineClient sender(port());
    subscriber.send_line(subscribe_command("orders"));
    ASSERT_TRUE(is_json(subscriber.read_line(), kAck));

    sender.send_line(send_command("orders", "42"));
    EXPECT_TRUE(is_json(sender.read_line(), kAck));
    EXPECT_TRUE(is_json(subscriber.read_line(), delivered_message("orders", "42", 0)));
    EXPECT_TRUE(sender.nothing_arrives_within(kQuiet));
}

TEST_F(Exchange, SubscribedSenderGetsItsOwnMessageBeforeItsAck) {
    LineClient client(port());
    client.send_line(subscribe_command("echo"));
    ASSERT_TRUE(is_json(client.read_line(), kAck));

    client.send_line(send_command("echo", "to myself"));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("echo", "to myself", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(Exchange, SubscribeReplaysCachedMessagesAfterLastSeen) {
    LineClient sender(port());
    for (const char* msg : {"zero", "one", "two"}) {
        sender.send_line(send_command("history", msg));
        ASSERT_TRUE(is_json(sender.read_line(), kAck));
    }
    LineClient late(port());
    late.send_line(subscribe_command("history", 0));
    EXPECT_TRUE(is_json(late.read_line(), kAck));
    EXPECT_TRUE(is_json(late.read_line(), delivered_message("history", "one", 1)));
    EXPECT_TRUE(is_json(late.read_line(), delivered_message("history", "two", 2)));
    EXPECT_TRUE(late.nothing_arrives_within(kQuiet));
}

TEST_F(Exchange, DeliveryOneReachesExactlyOneOfTwoSubscribers) {
    LineClient first(port());
    LineClient second(port());
    for (LineClient* subscriber : {&first, &second}) {
        subscriber->send_line(subscribe_command("work"));
        ASSERT_TRUE(is_json(subscriber->read_line(), kAck));
    }
    constexpr int kMessages = 20;
    LineClient sender(port());
    for (int i = 0; i < kMessages; ++i) {
        sender.send_line(send_command("work", "job " + std::to_string(i), "one"));
        ASSERT_TRUE(is_json(sender.read_line(), kAck));
    }

    // Each subscriber reads what it got, up to its sync ack.
    std::multiset<std::int64_t> indices;
    for (LineClient* subscriber : {&first, &second}) {
        subscriber->send_line(subscribe_command("memq-e2e-sync"));
        for (;;) {
            const std::optional<std::string> line = subscriber->read_line();
            ASSERT_TRUE(line.has_value());
            const nlohmann::json reply = nlohmann::json::parse(*line);
            if (reply == nlohmann::json::parse(kAck)) break;
            const std::int64_t index = reply.at("index");
            ASSERT_TRUE(is_json(line, delivered_message("work", "job " + std::to_string(index), index, "one")));
            indices.insert(index);
        }
    }
    ASSERT_EQ(indices.size(), static_cast<std::size_t>(kMessages));
    for (int i = 0; i < kMessages; ++i) EXPECT_EQ(indices.count(i), 1u) << "message " << i;
}

TEST_F(Exchange, UnsubscribedConnectionReceivesNothingMore) {
    LineClient subscriber(port());
    LineClient sender(port());
    subscriber.send_line(subscribe_command("news"));
    ASSERT_TRUE(is_json(subscriber.read_line(), kAck));
    subscriber.send_line(R"({"command": "unsubscribe", "topic": "news"})");
    ASSERT_TRUE(is_json(subscriber.read_line(), kAck));

    sender.send_line(send_command("news", "nobody listens"));
    ASSERT_TRUE(is_json(sender.read_line(), kAck));
    sync(subscriber);
    EXPECT_TRUE(subscriber.nothing_arrives_within(kQuiet));
}

TEST_F(Exchange, PipelinedCommandsInOneSegmentGetRepliesInOrder) {
    LineClient client(port());
    client.send_raw(subscribe_command("a") + "\n" + "not json\n" + send_command("a", "x") + "\n");
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Could not parse json")));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("a", "x", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(Exchange, CommandSplitAcrossSegmentsIsOneCommand) {
    LineClient client(port());
    const std::string line = subscribe_command("split") + "\r\n";
    for (const char byte : line) {
        client.send_raw(std::string(1, byte));
        if (byte != '\n') {
            EXPECT_TRUE(client.nothing_arrives_within(1ms));
        }
    }
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(Exchange, HalfClosedClientStillGetsItsRepliesThenEof) {
    LineClient client(port());
    client.send_line(subscribe_command("last words"));
    client.send_line(send_command("last words", "bye"));
    client.shutdown_sending();
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("last words", "bye", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_EQ(client.read_until_closed(5s), LineClient::Ending::eof);
}

}  // namespace
}  // namespace memq::e2e
