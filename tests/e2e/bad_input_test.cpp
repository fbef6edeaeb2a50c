// bad_input_test.cpp — end to end: error replies, "quit", and the line length limit.
#include <string>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_fixture.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

using namespace std::chrono_literals;

class BadInput : public MemqdTest {};

// After an error reply the same connection still subscribes and publishes.
void expect_usable(LineClient& client) {
    client.send_line(subscribe_command("still here"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    client.send_line(send_command("still here", "yes"));
    EXPECT_TRUE(is_json(client.read_line(), delivered_message("still here", "yes", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(BadInput, InvalidUtf8GetsDecodeErrorAndConnectionStaysUsable) {
    LineClient client(port());
    client.send_raw("{\"command\": \"subscribe\", \"topic\": \"\xff\xfe\"}\n");
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Could not decode input as UTF-8")));
    client.send_raw("\xc0\xaf\n");  // an overlong '/'
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Could not decode input as UTF-8")));
    expect_usable(client);
}

TEST_F(BadInput, InvalidJsonGetsParseErrorAndConnectionStaysUsable) {
    LineClient client(port());
    client.send_line(R"({"command": "subscribe", "topic": "t")");
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Could not parse json")));
    client.send_line(R"({"command": "subscribe", "topic": "t"} trailing)");
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Could not parse json")));
    expect_usable(client);
}

TEST_F(BadInput, MalformedCommandGetsMalformedErrorAndConnectionStaysUsable) {
    LineClient client(port());
    for (const char* line : {
             R"({"command": "subscribe"})",
             R"(["subscribe", "t"])",
             R"({"command": "publish", "topic": "t"})",
             R"({"command": "subscribe", "topic": "t", "last_seen": true})",
             R"({"command": "send", "topic": "t", "msg": "m", "delivery": "some"})",
             R"({"command": "unsubscribe", "topic": "t", "extra": 1})",
         }) {
        client.send_line(line);
        EXPECT_TRUE(is_json(client.read_line(), error_reply("Malformed json message"))) << "for " << line;
    }
    expect_usable(client);
}

TEST_F(BadInput, QuitClosesConnectionWithoutReply) {
    LineClient client(port());
    client.send_line("quit");
    std::size_t received = 0;
    EXPECT_EQ(client.read_until_closed(5s, &received), LineClient::Ending::eof);
    EXPECT_EQ(received, 0u);
}

TEST_F(BadInput, QuitComesAfterTheRepliesBeforeIt) {
    LineClient client(port());
    client.send_raw(subscribe_command("t") + "\n" + "quit\n" + subscribe_command("ignored") + "\n");
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_FALSE(client.read_line(5s).has_value());
    EXPECT_TRUE(client.at_eof());
}

class SmallLineLimit : public MemqdTest {
protected:
    std::vector<std::string> memqd_args() const override { return {"--max-line-bytes", "1024"}; }
};

TEST_F(SmallLineLimit, LineOverMaxLineBytesGetsLineTooLongThenEof) {
    LineClient client(port());
    client.send_line(send_command("t", std::string(2000, 'x')));
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Line too long")));
    EXPECT_EQ(client.read_until_closed(5s), LineClient::Ending::eof);
}

// memqd reads and discards what follows the overlong line, so closing does
// not reset the connection and destroy the reply before the client reads it.
TEST_F(SmallLineLimit, LineTooLongReplySurvivesClientThatKeepsSending) {
    LineClient client(port());
    client.send_raw(std::string(4 * 1024 * 1024, 'x'), 10s);
    EXPECT_TRUE(is_json(client.read_line(), error_reply("Line too long")));
    EXPECT_EQ(client.read_until_closed(5s), LineClient::Ending::eof);
}

TEST_F(SmallLineLimit, LineAtMaxLineBytesIsAccepted) {
    LineClient client(port());
    const std::string line = subscribe_command("t") + std::string(1024 - subscribe_command("t").size(), ' ');
    ASSERT_EQ(line.size(), 1024u);
    client.send_line(line);
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST_F(SmallLineLimit, LineTooLongCloseIsLoggedAsWarning) {
    {
        LineClient client(port());
        client.send_raw(std::string(4096, 'x'));
        EXPECT_TRUE(is_json(client.read_line(), error_reply("Line too long")));
        EXPECT_EQ(client.read_until_closed(5s), LineClient::Ending::eof);
    }
    const std::string log = memqd().stderr_text();
    EXPECT_NE(log.find(" warn: "), std::string::npos) << log;
    EXPECT_NE(log.find("line too long"), std::string::npos) << log;
}

}  // namespace
}  // namespace memq::e2e
