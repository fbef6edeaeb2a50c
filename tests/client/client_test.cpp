// client_test.cpp — specifications of memq::Client against a real memqd.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "broker_process.hpp"
#include "client.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;

constexpr auto kPatience = 10s;    // for things that must happen
constexpr auto kQuiet = 200ms;     // to observe that something does not happen

Client connected_client(const BrokerProcess& broker, ClientOptions options = {}) {
    Client client(std::move(options));
    client.connect("127.0.0.1", broker.port(), kPatience);
    return client;
}

// A port on which nothing listens: bound, then released.
std::uint16_t closed_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return acceptor.local_endpoint().port();
}

TEST(ClientConnection, ConnectingWhereNothingListensThrowsConnectionError) {
    Client client;
    EXPECT_THROW(client.connect("127.0.0.1", closed_port(), kPatience), ConnectionError);
    EXPECT_FALSE(client.connected());
}

TEST(ClientConnection, CallsWithoutAConnectionThrowConnectionError) {
    Client client;
    EXPECT_THROW(client.subscribe("t"), ConnectionError);
    EXPECT_THROW((void)client.receive(10ms), ConnectionError);
}

TEST(ClientConnection, ConnectsToARunningBroker) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    EXPECT_TRUE(client.connected());
}

TEST(ClientRoundTrip, SentMessageReachesASubscriberWithItsIndex) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker);
    Client sender = connected_client(broker);
    subscriber.subscribe("orders");
    sender.send("orders", "42");
    const auto message = subscriber.receive(kPatience);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic, "orders");
    EXPECT_EQ(message->msg, "42");
    EXPECT_EQ(message->index, 0);
    EXPECT_EQ(message->delivery, Delivery::all);
    EXPECT_FALSE(message->cache.has_value());
}

TEST(ClientRoundTrip, ArbitraryTextSurvivesTheRoundTrip) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    const std::string topic = "t \"q\" \xc3\xa9";
    const std::string msg = "line\nnext\t\\ \xf0\x9f\x98\x80 \x01";
    client.subscribe(topic);
    client.send(topic, msg);
    const auto message = client.receive(kPatience);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic, topic);
    EXPECT_EQ(message->msg, msg);
}

TEST(ClientRoundTrip, ReceiveReturnsNothingWhenNothingArrivesInTime) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.subscribe("quiet");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(client.receive(kQuiet).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, kQuiet);
}

TEST(ClientRoundTrip, OwnDeliveryArrivingBeforeTheAckWaitsInTheInbox) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.subscribe("echo");
    client.send("echo", "me");  // the broker delivers to us before it acks
    EXPECT_EQ(client.inbox_size(), 1u);
    const auto message = client.receive(0ms);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->msg, "me");
}

TEST(ClientRoundTrip, SubscribeReplaysTheCacheAfterLastSeen) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client sender = connected_client(broker);
    for (const char* msg : {"a", "b", "c"}) sender.send("history", msg);
    Client late = connected_client(broker);
    late.subscribe("history", 0);
    std::vector<std::string> got;
    while (auto message = late.receive(kQuiet)) got.push_back(message->msg);
    EXPECT_EQ(got, (std::vector<std::string>{"b", "c"}));
}

TEST(ClientRoundTrip, SubscribeWithoutCacheReplaysNothing) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client sender = connected_client(broker);
    sender.send("history", "old");
    Client late = connected_client(broker);
    late.subscribe("history", std::nullopt, false);
    EXPECT_FALSE(late.receive(kQuiet).has_value());
}

TEST(ClientRoundTrip, UnsubscribedClientGetsNothingMore) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker);
    Client sender = connected_client(broker);
    subscriber.subscribe("t");
    subscriber.unsubscribe("t");
    sender.send("t", "after");
    EXPECT_FALSE(subscriber.receive(kQuiet).has_value());
}

TEST(ClientRoundTrip, DeliveryOneReachesExactlyOneSubscriber) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client first = connected_client(broker);
    Client second = connected_client(broker);
    Client sender = connected_client(broker);
    first.subscribe("work");
    second.subscribe("work");
    sender.send("work", "job", Delivery::one);
    const int got = (first.receive(kQuiet).has_value() ? 1 : 0) + (second.receive(kQuiet).has_value() ? 1 : 0);
    EXPECT_EQ(got, 1);
}

TEST(ClientErrors, RefusedRequestThrowsBrokerErrorWithTheReason) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    try {
        client.subscribe("\xff\xfe not utf-8");
        FAIL() << "subscribe with an invalid UTF-8 topic was accepted";
    } catch (const BrokerError& error) {
        EXPECT_EQ(error.reason(), "Could not decode input as UTF-8");
    }
}

TEST(ClientErrors, ClientStaysUsableAfterABrokerError) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    EXPECT_THROW(client.send("\xff", "m"), BrokerError);
    EXPECT_NO_THROW(client.send("t", "m"));
}

TEST(ClientErrors, RawGarbageGetsTheBrokersReply) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("this is not json\n");
    client.send_raw("{\"command\": \"subscribe\"}\n");
    const Reply first = client.next_reply();
    const Reply second = client.next_reply();
    EXPECT_FALSE(first.success);
    EXPECT_EQ(first.reason, "Could not parse json");
    EXPECT_FALSE(second.success);
    EXPECT_EQ(second.reason, "Malformed json message");
}

TEST(ClientErrors, RawValidCommandGetsASuccessReply) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("  {\"command\": \"unsubscribe\", \"topic\": \"t\"}  \r\n");
    EXPECT_TRUE(client.next_reply().success);
}

TEST(ClientErrors, RawHelloGetsTheWholeReplyWithTheIncarnation) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("{\"command\": \"hello\"}\n");
    const Reply reply = client.next_reply(kPatience);
    EXPECT_TRUE(reply.success);
    const auto incarnation = client.broker_incarnation(kPatience);  // from the SDK's own hello
    ASSERT_TRUE(incarnation.has_value());
    EXPECT_EQ(reply.raw, "{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"" + *incarnation + "\"}");
}

TEST(ClientErrors, PlainAckHasNoRawLine) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("{\"command\": \"unsubscribe\", \"topic\": \"t\"}\n");
    const Reply reply = client.next_reply(kPatience);
    EXPECT_TRUE(reply.success);
    EXPECT_EQ(reply.raw, "");
}

TEST(ClientErrors, BlockingCallWithNoReplyThrowsTimeout) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("{\"command\": ", true);  // half a line: the broker waits for the rest
    EXPECT_THROW(client.next_reply(kQuiet), Timeout);
}

TEST(ClientErrors, EmptyLinesGetNoReply) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("\n   \n", false);
    client.send("t", "still in step");  // its ack is the next line, not an answer to the blanks
    client.flush(kPatience);
}

TEST(ClientErrors, QuitMakesTheBrokerCloseTheConnection) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("quit\n", false);
    EXPECT_THROW((void)client.receive(kPatience), ConnectionError);
    EXPECT_FALSE(client.connected());
}

TEST(ClientErrors, BrokerGoingAwayFailsTheWaitingCallWithConnectionError) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.subscribe("t");
    broker.stop();
    EXPECT_THROW((void)client.receive(kPatience), ConnectionError);
}

TEST(ClientPublish, HundredThousandPipelinedPublishesAreAllAcked) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    constexpr int kCount = 100'000;
    for (int i = 0; i < kCount; ++i) client.publish("bulk", "message " + std::to_string(i));
    client.flush(kPatience);
    EXPECT_EQ(client.unacknowledged(), 0u);
}

TEST(ClientPublish, PublishedMessagesArriveInOrder) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client subscriber = connected_client(broker);
    Client publisher = connected_client(broker);
    subscriber.subscribe("seq");
    constexpr int kCount = 20'000;
    for (int i = 0; i < kCount; ++i) publisher.publish("seq", std::to_string(i));
    publisher.flush(kPatience);
    for (int i = 0; i < kCount; ++i) {
        const auto message = subscriber.receive(kPatience);
        ASSERT_TRUE(message.has_value()) << "message " << i << " missing";
        ASSERT_EQ(message->index, i);
        ASSERT_EQ(message->msg, std::to_string(i));
    }
}

TEST(ClientPublish, FlushReportsTheFirstRefusedPublish) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.publish("fine", "1");
    client.publish("\xff bad", "2");
    client.publish("fine", "3");
    try {
        client.flush(kPatience);
        FAIL() << "flush did not report the refused publish";
    } catch (const BrokerError& error) {
        EXPECT_EQ(error.reason(), "Could not decode input as UTF-8");
    }
    EXPECT_EQ(client.unacknowledged(), 0u);
    EXPECT_NO_THROW(client.flush(kPatience)) << "the tally starts afresh after a report";
}

TEST(ClientPublish, PublishesUnansweredWhenTheConnectionDiesMakeFlushThrow) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    client.send_raw("quit\n", false);  // the broker reads nothing after this line
    EXPECT_THROW(
        {
            client.publish("t", "never answered");  // throws at once if the close was already seen
            client.flush(kPatience);
        },
        ConnectionError);
    EXPECT_EQ(client.unacknowledged(), 0u);
}

TEST(ClientPublish, PublishWaitsForTheWindowAndTimesOutWhenNoAckComes) {
    asio::io_context io;  // a listener that never answers: the kernel completes the connect
    asio::ip::tcp::acceptor silent(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    ClientOptions options;
    options.publish_window = 2;
    options.publish_timeout = kQuiet;
    Client client(options);
    client.connect("127.0.0.1", silent.local_endpoint().port(), kPatience);
    client.publish("t", "1");
    client.publish("t", "2");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(client.publish("t", "3"), Timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, kQuiet);
    EXPECT_EQ(client.unacknowledged(), 2u);
}

TEST(ClientPublish, BlockingSendAfterPublishesWaitsOnlyForItsOwnReply) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    Client client = connected_client(broker);
    for (int i = 0; i < 1000; ++i) client.publish("t", "p");
    client.send("t", "s");  // every publish was written before it, so every ack came before its own
    EXPECT_EQ(client.unacknowledged(), 0u);
}

}  // namespace
}  // namespace memq
