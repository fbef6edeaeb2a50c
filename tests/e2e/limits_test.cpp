// limits_test.cpp — memqd's broker-wide limits seen from a TCP client: the
// flags reach the core, "Too many topics", "Topic too long" and "Too many
// subscriptions" come as error replies, a
// connection past --max-connections reads EOF at once, and each hit is logged
// and counted. memqd runs on port 0, clients on loopback.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_process.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

// The number after `key=` in `log` (the first one), or nothing.
std::optional<std::size_t> logged_number(const std::string& log, const std::string& key) {
    const std::size_t at = log.find(key + "=");
    if (at == std::string::npos) return std::nullopt;
    return std::stoull(log.substr(at + key.size() + 1));
}

TEST(Limits, StartupLogNamesEveryLimitGiven) {
    MemqdProcess memqd(any_port({"--max-cache-bytes", "5000", "--max-topics", "3", "--max-indexed-topics", "9",
                                 "--max-connections", "11", "--max-topic-bytes", "12", "--max-subscriptions", "13"}));
    const std::string log = memqd.stderr_text();
    EXPECT_EQ(logged_number(log, "max_topic_bytes"), 12u) << log;
    EXPECT_EQ(logged_number(log, "max_subscriptions"), 13u) << log;
    EXPECT_EQ(logged_number(log, "max_cache_bytes"), 5000u) << log;
    EXPECT_EQ(logged_number(log, "max_topics"), 3u) << log;
    EXPECT_EQ(logged_number(log, "max_indexed_topics"), 9u) << log;
    EXPECT_EQ(logged_number(log, "max_connections"), 11u) << log;
    EXPECT_TRUE(memqd.stop().is_clean());
}

TEST(Limits, MaxConnectionsDefaultsToTheOpenFileLimitLessAReserve) {
    MemqdProcess memqd(any_port());
    const std::string log = memqd.stderr_text();
    const auto open_files = logged_number(log, "open_files");
    ASSERT_TRUE(open_files.has_value()) << log;
    ASSERT_GT(*open_files, 32u) << log;
    EXPECT_EQ(logged_number(log, "max_connections"), *open_files - 32) << log;
    EXPECT_TRUE(memqd.stop().is_clean());
}

TEST(Limits, SubscribePastMaxTopicsGetsTooManyTopics) {
    MemqdProcess memqd(any_port({"--max-topics", "1"}));
    LineClient client(memqd.port());
    client.send_line(subscribe_command("a"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(subscribe_command("b"));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Too many topics")));
    client.send_line(send_command("a", "still works"));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("a", "still works", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(memqd.stop().is_clean());
    EXPECT_EQ(logged_number(memqd.stderr_text(), "topics_refused"), 1u) << memqd.stderr_text();
}

TEST(Limits, SendNamingANewTopicPastMaxIndexedTopicsGetsTooManyTopics) {
    MemqdProcess memqd(any_port({"--max-indexed-topics", "1"}));
    LineClient client(memqd.port());
    client.send_line(R"({"command": "send", "topic": "a", "msg": "m", "delivery": "all", "cache": false})");
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(R"({"command": "send", "topic": "b", "msg": "m", "delivery": "all", "cache": false})");
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Too many topics")));
    EXPECT_TRUE(memqd.stop().is_clean());
}

std::string unsubscribe_command(std::string_view topic) {
    return R"({"command": "unsubscribe", "topic": ")" + std::string(topic) + "\"}";
}

TEST(Limits, TopicPastMaxTopicBytesGetsTopicTooLongAndIsLogged) {
    MemqdProcess memqd(any_port({"--max-topic-bytes", "4"}));
    LineClient client(memqd.port());
    client.send_line(subscribe_command("abcd"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(subscribe_command("abcde"));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Topic too long")));
    client.send_line(send_command("abcde", "m"));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Topic too long")));
    client.send_line(unsubscribe_command("abcde"));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Topic too long")));
    client.send_line(send_command("abcd", "still works"));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("abcd", "still works", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(memqd.stop().is_clean());
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find("warn: topic too long: refused 1 command(s) (max_topic_bytes=4) [topic too long: 0 left out"),
              std::string::npos)
        << log;
    EXPECT_EQ(logged_number(log, "topic_too_long_refused"), 3u) << log;
}

TEST(Limits, SubscribePastMaxSubscriptionsGetsTooManySubscriptionsAndIsLogged) {
    MemqdProcess memqd(any_port({"--max-subscriptions", "2"}));
    LineClient client(memqd.port());
    for (const char* topic : {"a", "b"}) {
        client.send_line(subscribe_command(topic));
        EXPECT_TRUE(is_json(client.read_line(), kAck));
    }
    client.send_line(subscribe_command("c"));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Too many subscriptions")));
    client.send_line(subscribe_command("a"));  // one it has already
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(unsubscribe_command("a"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(subscribe_command("c"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    LineClient other(memqd.port());  // the limit is per connection
    for (const char* topic : {"a", "b"}) {
        other.send_line(subscribe_command(topic));
        EXPECT_TRUE(is_json(other.read_line(), kAck));
    }
    EXPECT_TRUE(memqd.stop().is_clean());
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find("warn: too many subscriptions: refused 1 subscribe(s) (max_subscriptions=2 per connection)"),
              std::string::npos)
        << log;
    EXPECT_EQ(logged_number(log, "subscriptions_refused"), 1u) << log;
}

TEST(Limits, ConnectionPastMaxConnectionsReadsEofAndIsLogged) {
    MemqdProcess memqd(any_port({"--max-connections", "1"}));
    LineClient first(memqd.port());
    first.send_line(subscribe_command("a"));
    ASSERT_TRUE(is_json(first.read_line(), kAck));  // the first is surely accepted
    LineClient second(memqd.port());
    EXPECT_EQ(second.read_until_closed(std::chrono::seconds(5)), LineClient::Ending::eof);
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find("warn: refusing connection"), std::string::npos) << log;
    EXPECT_NE(log.find("too many connections (max_connections=1"), std::string::npos) << log;
    // The first connection is untouched.
    first.send_line(send_command("a", "m"));
    EXPECT_TRUE(is_json(first.read_line(), delivered_message("a", "m", 0)));
    EXPECT_TRUE(memqd.stop().is_clean());
    EXPECT_EQ(logged_number(memqd.stderr_text(), "connections_refused"), 1u) << memqd.stderr_text();
}

TEST(Limits, CacheByteBudgetEvictsTheOldestAcrossTopics) {
    const std::string first = send_command("a", "1");
    // Room for one cached frame of this size (as memqd writes it), not two.
    const std::size_t frame =
        std::string(R"({"command": "send", "topic": "a", "msg": "1", "delivery": "all", "index": 0})" "\r\n").size();
    MemqdProcess memqd(any_port({"--max-cache-bytes", std::to_string(frame + frame / 2)}));
    LineClient sender(memqd.port());
    sender.send_line(first);
    EXPECT_TRUE(is_json(sender.read_line(), kAck));
    sender.send_line(send_command("b", "2"));
    EXPECT_TRUE(is_json(sender.read_line(), kAck));
    LineClient late(memqd.port());
    late.send_line(subscribe_command("a"));
    EXPECT_TRUE(is_json(late.read_line(), kAck));
    late.send_line(subscribe_command("b"));
    EXPECT_TRUE(is_json(late.read_line(), kAck));
    EXPECT_TRUE(is_json(late.read_line(), delivered_message("b", "2", 0))) << "a's message was evicted for b's";
    EXPECT_TRUE(memqd.stop().is_clean());
    EXPECT_EQ(logged_number(memqd.stderr_text(), "cache_evictions"), 1u) << memqd.stderr_text();
}

}  // namespace
}  // namespace memq::e2e
