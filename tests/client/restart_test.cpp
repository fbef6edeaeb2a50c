// restart_test.cpp — specifications of Client's resume across a restart of its
// broker on the same port (SIGTERM and SIGKILL): the new broker's indices
// start over. From memqd the client learns so from the hello (a new
// incarnation); from the aiomemq reference server (no identity) from the
// first index after the resume, at or below last_seen. Either way it reports
// one Reset per topic it had received on, and takes every message sent after
// the restart from the new broker: those sent before it resumed come from
// the cache, those sent after it resumed live.
//
// The subscriber reads only inside its calls, so "before it resumes" is
// exact: it makes no call between the restart and those sends.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "broker_process.hpp"
#include "client.hpp"

namespace memq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::Server;

constexpr auto kPatience = 10s;
constexpr auto kQuiet = 200ms;

// A connected subscriber with reconnect whose resets also go to `reported`.
Client resuming_subscriber(const BrokerProcess& broker, std::vector<Reset>& reported) {
    ClientOptions options;
    options.reconnect = true;
    options.backoff_min = 5ms;
    options.backoff_max = 100ms;
    options.on_reset = [&reported](const Reset& reset) { reported.push_back(reset); };
    Client client(std::move(options));
    client.connect("127.0.0.1", broker.port(), kPatience);
    return client;
}

// Sends `count` messages "<label><i>" to `topic` through a fresh connection.
void send_some(const BrokerProcess& broker, const std::string& topic, const std::string& label, int count) {
    Client sender;
    sender.connect("127.0.0.1", broker.port(), kPatience);
    for (int i = 0; i < count; ++i) sender.send(topic, label + std::to_string(i));
}

// The next `count` messages, as topic -> texts in arrival order.
std::map<std::string, std::vector<std::string>> receive_n(Client& client, int count) {
    std::map<std::string, std::vector<std::string>> got;
    for (int i = 0; i < count; ++i) {
        const auto message = client.receive(kPatience);
        if (!message) {
            ADD_FAILURE() << "only " << i << " of " << count << " messages arrived";
            break;
        }
        got[message->topic].push_back(message->msg);
    }
    return got;
}

std::vector<std::string> texts(const std::string& label, int count) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) out.push_back(label + std::to_string(i));
    return out;
}

// Calls receive() (where IO happens) until the client has reconnected; keeps what arrives.
void wait_for_reconnect(Client& client, std::map<std::string, std::vector<std::string>>& into) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (client.reconnect_count() == 0) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the client did not reconnect";
        if (const auto message = client.receive(kQuiet)) into[message->topic].push_back(message->msg);
    }
}

using RestartCase = std::tuple<Server, int>;
class ClientRestart : public ::testing::TestWithParam<RestartCase> {};

TEST_P(ClientRestart, EveryMessageSentAfterTheRestartArrivesAndEachTopicReportsOneReset) {
    const auto [server, signal] = GetParam();
    if (server == Server::memqd) MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker(server);
    std::vector<Reset> reported;
    Client subscriber = resuming_subscriber(broker, reported);
    subscriber.subscribe("a");
    subscriber.subscribe("b");
    send_some(broker, "a", "old-a", 20);
    send_some(broker, "b", "old-b", 5);
    ASSERT_EQ(receive_n(subscriber, 25).size(), 2u);
    const auto before = subscriber.broker_incarnation(kPatience);
    EXPECT_EQ(before.has_value(), server == Server::memqd);

    broker.restart(signal);
    send_some(broker, "a", "early-a", 3);  // the subscriber has not noticed the restart yet
    send_some(broker, "b", "early-b", 2);
    std::map<std::string, std::vector<std::string>> got;
    wait_for_reconnect(subscriber, got);
    const auto after = subscriber.broker_incarnation(kPatience);  // the new connection's hello is answered ...
    subscriber.subscribe("resumed");  // ... and this reply comes after the resubscriptions'
    send_some(broker, "a", "late-a", 3);
    send_some(broker, "b", "late-b", 2);
    const std::size_t so_far = got["a"].size() + got["b"].size();
    for (auto& [topic, more] : receive_n(subscriber, static_cast<int>(10 - so_far))) {
        got[topic].insert(got[topic].end(), more.begin(), more.end());
    }

    std::vector<std::string> want_a = texts("early-a", 3), late_a = texts("late-a", 3);
    std::vector<std::string> want_b = texts("early-b", 2), late_b = texts("late-b", 2);
    want_a.insert(want_a.end(), late_a.begin(), late_a.end());
    want_b.insert(want_b.end(), late_b.begin(), late_b.end());
    EXPECT_EQ(got["a"], want_a);
    EXPECT_EQ(got["b"], want_b);
    EXPECT_FALSE(subscriber.receive(kQuiet).has_value()) << "nothing more, nothing twice";

    std::map<std::string, std::int64_t> resets;
    for (const Reset& reset : subscriber.take_resets()) {
        EXPECT_TRUE(resets.emplace(reset.topic, reset.last_index).second) << "two resets of " << reset.topic;
    }
    EXPECT_EQ(resets, (std::map<std::string, std::int64_t>{{"a", 19}, {"b", 4}}));
    EXPECT_EQ(reported.size(), 2u) << "on_reset sees each reset once";
    EXPECT_EQ(subscriber.reset_count(), 2u);
    EXPECT_EQ(subscriber.gap_count(), 0u);
    EXPECT_EQ(subscriber.reconnect_count(), 1u);
    if (server == Server::memqd) {
        ASSERT_TRUE(before.has_value() && after.has_value());
        EXPECT_NE(*after, *before);
    } else {
        EXPECT_FALSE(after.has_value());
    }
}

INSTANTIATE_TEST_SUITE_P(ServersAndSignals, ClientRestart,
                         ::testing::Combine(::testing::Values(Server::memqd, Server::aiomemq_reference),
                                            ::testing::Values(SIGTERM, SIGKILL)),
                         [](const ::testing::TestParamInfo<RestartCase>& info) {
                             return std::string(std::get<0>(info.param) == Server::memqd ? "memqd_" : "aiomemq_") +
                                    (std::get<1>(info.param) == SIGKILL ? "SIGKILL" : "SIGTERM");
                         });

TEST(ClientRestartSameBroker, AReconnectToTheSameBrokerReportsNoReset) {
    MEMQ_REQUIRE_MEMQD();
    BrokerProcess broker;
    std::vector<Reset> reported;
    Client subscriber = resuming_subscriber(broker, reported);
    subscriber.subscribe("a");
    send_some(broker, "a", "m", 3);
    ASSERT_EQ(receive_n(subscriber, 3)["a"], texts("m", 3));
    subscriber.send_raw("quit\n", false);  // the broker closes the connection; it keeps its state
    send_some(broker, "a", "n", 2);
    EXPECT_EQ(receive_n(subscriber, 2)["a"], texts("n", 2));
    EXPECT_EQ(subscriber.reconnect_count(), 1u);
    EXPECT_EQ(subscriber.reset_count(), 0u);
    EXPECT_TRUE(reported.empty());
}

}  // namespace
}  // namespace memq
