// async_client_test.cpp — specifications of AsyncClient on an application's io_context, against a real memqd.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "async_client.hpp"
#include "broker_process.hpp"
#include "client.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;

TEST(AsyncClient, SubscribeSendAndReceiveRunOnTheApplicationsIoContext) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    asio::io_context io;
    AsyncClient client(io);
    std::vector<std::string> steps;
    std::optional<Message> received;
    client.on_message([&](const Message& message) { received = message; });
    client.async_connect("127.0.0.1", broker.port(), [&](std::error_code error) {
        ASSERT_FALSE(error) << error.message();
        steps.push_back("connected");
        client.async_subscribe("t", std::nullopt, std::nullopt, [&](std::error_code error, const Reply& reply) {
            ASSERT_FALSE(error) << error.message();
            EXPECT_TRUE(reply.success);
            steps.push_back("subscribed");
            client.async_send("t", "hello", Delivery::all, std::nullopt,
                              [&](std::error_code error, const Reply& reply) {
                                  EXPECT_FALSE(error);
                                  EXPECT_TRUE(reply.success);
                                  steps.push_back("sent");  // after the delivery to us
                                  client.close();           // done: no work is left, run() returns
                              });
        });
    });
    io.run_for(10s);
    EXPECT_EQ(steps, (std::vector<std::string>{"connected", "subscribed", "sent"}));
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(received->msg, "hello");
    EXPECT_EQ(received->index, 0);
}

// on_message takes each message as it is decoded, so the core's inbox bound
// never holds a message back, however small it is.
TEST(AsyncClient, MessagesHandedToOnMessageNeverFillTheInbox) {
    MEMQ_REQUIRE_MEMQD();
    constexpr int kMessages = 5;
    BrokerProcess broker;
    Client sender;
    sender.connect("127.0.0.1", broker.port(), 10s);
    asio::io_context io;
    AsyncClient client(io, ClientCoreOptions{.max_inbox_messages = 1});
    std::vector<std::int64_t> indices;
    client.on_message([&](const Message& message) { indices.push_back(message.index); });
    client.async_connect("127.0.0.1", broker.port(), [&](std::error_code error) {
        ASSERT_FALSE(error) << error.message();
        client.async_subscribe("t", std::nullopt, std::nullopt, [&](std::error_code error, const Reply&) {
            ASSERT_FALSE(error) << error.message();
            for (int i = 0; i < kMessages; ++i) sender.send("t", "m");  // acked: queued for us first
            client.async_send("u", "x", Delivery::all, std::nullopt, [&](std::error_code error, const Reply& reply) {
                EXPECT_FALSE(error);
                EXPECT_TRUE(reply.success) << "the reply behind the messages was read";
                client.close();
            });
        });
    });
    io.run_for(10s);
    EXPECT_EQ(indices, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST(AsyncClient, RefusedRequestReportsTheReasonInTheReply) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    asio::io_context io;
    AsyncClient client(io);
    std::optional<Reply> answer;
    client.async_connect("127.0.0.1", broker.port(), [](std::error_code) {});
    client.async_subscribe("\xff", std::nullopt, std::nullopt, [&](std::error_code error, const Reply& reply) {
        EXPECT_FALSE(error);
        answer = reply;
        client.close();
    });
    io.run_for(10s);
    ASSERT_TRUE(answer.has_value());
    EXPECT_FALSE(answer->success);
    EXPECT_EQ(answer->reason, "Could not decode input as UTF-8");
}

TEST(AsyncClient, RequestsOutstandingAtCloseGetOperationAborted) {
    asio::io_context io;
    std::optional<std::error_code> result;
    {
        AsyncClient client(io);
        client.async_send("t", "m", Delivery::all, std::nullopt,
                          [&](std::error_code error, const Reply&) { result = error; });
    }
    io.run_for(10s);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, asio::error::operation_aborted);
}

TEST(AsyncClient, ConnectFailureReachesTheConnectHandler) {
    asio::io_context io;
    AsyncClient client(io);
    std::optional<std::error_code> result;
    client.async_connect("127.0.0.1", 1, [&](std::error_code error) { result = error; });
    io.run_for(10s);
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(*result);
}

TEST(AsyncClient, ConnectingAgainAfterABrokerRestartResumesWithAResetAndTheNewBrokersCache) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    asio::io_context io;
    AsyncClient client(io, ClientCoreOptions{.drop_duplicates = true});
    std::vector<std::string> received;
    std::vector<std::string> resets;
    std::optional<std::string> first_incarnation;
    client.on_reset([&](const Reset& reset) { resets.push_back(reset.topic + " " + std::to_string(reset.last_index)); });
    client.on_message([&](const Message& message) {
        received.push_back(message.msg);
        if (message.msg == "after") client.close();  // done
    });
    client.on_error([&](std::error_code, std::string_view) {  // the old broker is gone: connect to the new one
        client.async_connect("127.0.0.1", broker.port(), [](std::error_code error) { EXPECT_FALSE(error); });
    });
    client.async_connect("127.0.0.1", broker.port(), [](std::error_code error) { ASSERT_FALSE(error); });
    client.async_subscribe("t", std::nullopt, std::nullopt, [](std::error_code, const Reply&) {});
    client.async_send("t", "before", Delivery::all, std::nullopt, [&](std::error_code error, const Reply&) {
        ASSERT_FALSE(error);
        first_incarnation = client.broker_incarnation();
        broker.restart(SIGKILL);
        Client sender;  // the new broker caches "after" at index 0 before the subscriber is back
        sender.connect("127.0.0.1", broker.port(), 10s);
        sender.send("t", "after");
    });
    io.run_for(10s);
    EXPECT_EQ(received, (std::vector<std::string>{"before", "after"}));
    EXPECT_EQ(resets, std::vector<std::string>{"t 0"});
    ASSERT_TRUE(first_incarnation.has_value());
    ASSERT_TRUE(client.broker_incarnation().has_value());
    EXPECT_NE(*client.broker_incarnation(), *first_incarnation);
}

}  // namespace
}  // namespace memq
