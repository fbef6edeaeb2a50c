// wire.hpp — the test side of the protocol: command lines to send, replies to expect.
//
// Rules: commands are built with nlohmann::json, independently of the
// broker's own encoder; replies are compared as JSON values, since key order
// and spacing are not significant (PROTOCOL.md), but every key and value is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace memq::e2e {

inline constexpr std::string_view kAck = R"({"success": true})";

inline std::string subscribe_command(std::string_view topic, std::optional<std::int64_t> last_seen = std::nullopt) {
    nlohmann::json command{{"command", "subscribe"}, {"topic", topic}};
    if (last_seen) command["last_seen"] = *last_seen;
    return command.dump();
}

inline std::string send_command(std::string_view topic, std::string_view msg, std::string_view delivery = "all") {
    return nlohmann::json{{"command", "send"}, {"topic", topic}, {"msg", msg}, {"delivery", delivery}}.dump();
}

// The message a subscriber gets for send_command(topic, msg, delivery) at `index`.
inline std::string delivered_message(std::string_view topic, std::string_view msg, std::int64_t index,
                                     std::string_view delivery = "all") {
    return nlohmann::json{
        {"command", "send"}, {"topic", topic}, {"msg", msg}, {"delivery", delivery}, {"index", index}}
        .dump();
}

inline std::string error_reply(std::string_view reason) {
    return nlohmann::json{{"success", false}, {"reason", reason}}.dump();
}

// EXPECT_TRUE(is_json(line, R"({"success": true})")): `line` arrived and is
// the same JSON value as `expected`.
inline testing::AssertionResult is_json(const std::optional<std::string>& line, std::string_view expected) {
    if (!line) return testing::AssertionFailure() << "no line arrived; expected " << expected;
    const nlohmann::json actual = nlohmann::json::parse(*line, nullptr, false);
    if (actual.is_discarded()) return testing::AssertionFailure() << "not JSON: " << *line;
    if (actual != nlohmann::json::parse(expected)) {
        return testing::AssertionFailure() << "got " << *line << "; expected " << expected;
    }
    return testing::AssertionSuccess();
}

}  // namespace memq::e2e
