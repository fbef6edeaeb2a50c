// broker_test.cpp — specifies the broker core (broker.hpp) against
// PROTOCOL.md, driven only through its public API by BrokerHarness: framing
// of the input stream, replies in request order, the error rows, send /
// subscribe / unsubscribe / disconnect semantics with the cache and the
// index, delivery "one", quit and line-too-long closes, the slow-consumer
// rule with its pending-bytes accounting, and frames shared by recipients.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "broker_harness.hpp"

namespace {

using memq::CloseReason;
using memq::Limits;
using memq_test::ack;
using memq_test::BrokerHarness;
using memq_test::cat;
using memq_test::failure;
using memq_test::json;
using memq_test::kBadJson;
using memq_test::kBadUtf8;
using memq_test::kLineTooLong;
using memq_test::kMalformed;
using memq_test::line_of;
using memq_test::message;
using memq_test::numbered;
using memq_test::send_line;
using memq_test::subscribe_line;
using memq_test::unsubscribe_line;

using Objects = std::vector<json>;

Limits with_cache(std::size_t cache_messages_max) {
    Limits limits;
    limits.cache_messages_max = cache_messages_max;
    return limits;
}

// The size of a frame as the codec builds it.
std::size_t message_frame_size(const std::string& topic, const std::string& msg, std::int64_t index) {
    return memq::encode_message(memq::Send{topic, msg, memq::Delivery::all, std::nullopt}, index).size();
}

// ---------------------------------------------------------------------------
// Connections and framing.

TEST(Broker, a_new_connection_receives_nothing) {
    BrokerHarness h;
    h.connect(1);
    EXPECT_TRUE(h.broker().is_connected(1));
    EXPECT_EQ(h.broker().connection_count(), 1u);
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_FALSE(h.close_reason(1));
}

TEST(Broker, keeps_the_limits_it_was_given) {
    Limits limits;
    limits.line_bytes_max = 123;
    limits.pending_bytes_max = 4567;
    limits.cache_messages_max = 8;
    BrokerHarness h(limits);
    EXPECT_EQ(h.broker().limits().line_bytes_max, 123u);
    EXPECT_EQ(h.broker().limits().pending_bytes_max, 4567u);
    EXPECT_EQ(h.broker().limits().cache_messages_max, 8u);
}

TEST(Broker, hello_is_answered_with_the_incarnation_it_was_given) {
    memq::Broker broker(Limits{}, 1, 0xfeedULL);
    broker.handle_connect(1);
    broker.handle_receive(1, "{\"command\": \"hello\"}\n");
    const auto transmit = broker.poll_transmit();
    ASSERT_TRUE(transmit);
    ASSERT_EQ(transmit->frames.size(), 1u);
    EXPECT_EQ(*transmit->frames[0], "{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"000000000000feed\"}\r\n");
    EXPECT_EQ(broker.incarnation(), 0xfeedULL);
}

TEST(Broker, hello_keeps_request_order_and_changes_no_state) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, cat(subscribe_line("t"), "{\"command\": \"hello\"}\n", send_line("t", "m")));
    const Objects got = h.take(1);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0], ack());
    EXPECT_EQ(got[1]["broker"], "memqd");
    EXPECT_EQ(got[2], message("t", "m", "all", 0));
    EXPECT_EQ(got[3], ack());
}

TEST(Broker, subscribe_is_acknowledged) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("orders"));
    EXPECT_EQ(h.take(1), Objects{ack()});
    EXPECT_EQ(h.subscriber_count("orders"), 1u);
}

TEST(Broker, replies_come_in_request_order_for_pipelined_lines) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("a") + "garbage\n" + send_line("b", "x") + unsubscribe_line("a") + "\"\xff\"\n" +
                     "[]\n" + send_line("a", "y", "one") + "{\n" + subscribe_line("b"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kBadJson), ack(), ack(), failure(kBadUtf8), failure(kMalformed),
                                  ack(), failure(kBadJson), ack(), message("b", "x", "all", 0)}));
}

TEST(Broker, a_line_split_over_many_segments_is_one_command) {
    BrokerHarness h;
    h.connect(1);
    const std::string line = subscribe_line("t");
    h.receive(1, line.substr(0, 5));
    h.receive(1, line.substr(5, 10));
    EXPECT_TRUE(h.received(1).empty()) << "no reply before the line is complete";
    h.receive(1, line.substr(15));
    EXPECT_EQ(h.take(1), Objects{ack()});
}

// `line` (ending in '\n') with `ending` in place of its '\n'.
std::string ended_by(const std::string& line, const std::string& ending) {
    return line.substr(0, line.size() - 1) + ending;
}

// A stream that touches every part of the line handling, and what it must produce.
const std::string& mixed_stream() {
    static const std::string stream =
        ended_by(subscribe_line("t"), "\r\n") +                            // \r\n ending
        "   \n" +                                                          // blank line
        send_line("t", "a\nb") +                                          // escaped newline
        "not json\n" +                                                     // bad json
        "\t " + ended_by(send_line("u", "x", "one"), "  \r\n") +           // whitespace around
        "\n" +                                                             // empty line
        subscribe_line("u", {{"last_seen", -1}}) +                          // replays the one message
        send_line("t", "caf\xc3\xa9", "all", {{"cache", false}}) +          // raw UTF-8
        "\"\xff\"\r\n" +                                                    // bad UTF-8
        "{\"command\": \"subscribe\", \"topic\": \"t\", \"cache\": 1}\n" +  // malformed
        unsubscribe_line("t") +                                             //
        send_line("t", "gone");
    return stream;
}

Objects mixed_stream_replies() {
    return {ack(),
            message("t", "a\nb", "all", 0),
            ack(),
            failure(kBadJson),
            ack(),
            ack(),
            message("u", "x", "one", 0),
            message("t", "caf\xc3\xa9", "all", 1, false),
            ack(),
            failure(kBadUtf8),
            failure(kMalformed),
            ack(),
            ack()};
}

TEST(Broker, mixed_stream_in_one_segment_gives_the_specified_replies) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, mixed_stream());
    EXPECT_EQ(h.take(1), mixed_stream_replies());
    EXPECT_FALSE(h.close_reason(1));
}

TEST(Broker, every_split_point_of_a_stream_gives_the_same_replies) {
    const std::string& stream = mixed_stream();
    BrokerHarness whole;
    whole.connect(1);
    whole.receive(1, stream);
    const std::string expected = whole.received(1);
    ASSERT_FALSE(expected.empty());
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        BrokerHarness h;
        h.connect(1);
        h.receive(1, stream.substr(0, cut));
        h.receive(1, stream.substr(cut));
        ASSERT_EQ(h.received(1), expected) << "cut at " << cut;
    }
}

TEST(Broker, a_stream_fed_byte_by_byte_gives_the_same_replies) {
    BrokerHarness h;
    h.connect(1);
    for (const char byte : mixed_stream()) h.receive(1, std::string(1, byte));
    EXPECT_EQ(h.take(1), mixed_stream_replies());
}

TEST(Broker, a_stream_cut_at_random_points_gives_the_same_replies) {
    const std::string& stream = mixed_stream();
    memq::Prng prng(2718);
    for (int run = 0; run < 200; ++run) {
        BrokerHarness h;
        h.connect(1);
        std::size_t at = 0;
        while (at < stream.size()) {
            const std::size_t length = 1 + prng.below(40);
            h.receive(1, stream.substr(at, length));
            at += length;
        }
        ASSERT_EQ(h.take(1), mixed_stream_replies()) << "run " << run;
    }
}

TEST(Broker, crlf_and_lf_line_endings_are_equivalent) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "{\"command\": \"subscribe\", \"topic\": \"t\"}\r\n");
    h.receive(1, "{\"command\": \"subscribe\", \"topic\": \"u\"}\n");
    h.receive(1, "nope\r\n");
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), failure(kBadJson)}));
    EXPECT_EQ(h.subscriber_count("t"), 1u);
    EXPECT_EQ(h.subscriber_count("u"), 1u);
}

TEST(Broker, ascii_whitespace_around_a_line_is_ignored) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, " \t\f\v{\"command\": \"subscribe\", \"topic\": \"t\"} \t\v\f\r\n");
    EXPECT_EQ(h.take(1), Objects{ack()});
    EXPECT_EQ(h.subscriber_count("t"), 1u);
}

TEST(Broker, empty_and_blank_lines_are_ignored) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "\n\r\n   \n\t\r\n\n");
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_FALSE(h.close_reason(1));
    h.receive(1, cat("\n", subscribe_line("t"), "\n"));
    EXPECT_EQ(h.take(1), Objects{ack()});
}

TEST(Broker, an_unfinished_line_is_not_processed) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "{\"command\": \"subscribe\", \"topic\": \"t\"}");
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_EQ(h.subscriber_count("t"), 0u);
}

TEST(Broker, connections_are_independent_streams) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    const std::string line = subscribe_line("t");
    h.receive(1, line.substr(0, 10));
    h.receive(2, "junk");
    h.receive(1, line.substr(10));
    h.receive(2, "\n");
    EXPECT_EQ(h.take(1), Objects{ack()});
    EXPECT_EQ(h.take(2), Objects{failure(kBadJson)});
}

// ---------------------------------------------------------------------------
// quit.

TEST(Broker, quit_closes_without_a_reply) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "quit\n");
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_TRUE(h.received(1).empty());
}

TEST(Broker, quit_with_whitespace_and_crlf_still_quits) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "  quit \t\r\n");
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_TRUE(h.received(1).empty());
}

TEST(Broker, quit_closes_after_flushing_earlier_replies) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("t") + "bad\n" + "quit\n");
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kBadJson)}));
    EXPECT_EQ(h.bytes_at_close(1), h.received(1).size()) << "every reply was handed over before the Close";
    EXPECT_EQ(h.outstanding_at_close(1), 0u) << "and written";
}

TEST(Broker, quit_close_waits_until_earlier_replies_are_written) {
    BrokerHarness h;
    h.connect(1);
    h.stall(1);
    h.receive(1, subscribe_line("t") + "quit\n");
    EXPECT_FALSE(h.close_reason(1)) << "the ack is not written yet";
    h.resume(1);
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_EQ(h.take(1), Objects{ack()});
}

TEST(Broker, quit_mid_buffer_ignores_what_follows) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.take(2);
    h.receive(1, cat("quit\n", send_line("t", "after quit"), subscribe_line("u")));
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_TRUE(h.take(2).empty());
    EXPECT_EQ(h.next_index("t"), 0);
    EXPECT_EQ(h.subscriber_count("u"), 0u);
}

TEST(Broker, input_after_quit_in_a_later_segment_is_ignored) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.take(2);
    h.receive(1, "quit\n");
    h.receive(1, send_line("t", "late"));  // already read by the shell when the Close came
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_TRUE(h.take(2).empty());
    EXPECT_EQ(h.next_index("t"), 0);
}

TEST(Broker, quit_as_part_of_another_line_is_not_quit) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "quit now\n\"quit\"\n");
    EXPECT_FALSE(h.close_reason(1));
    EXPECT_EQ(h.take(1), (Objects{failure(kBadJson), failure(kMalformed)}));
}

// ---------------------------------------------------------------------------
// Line too long.

Limits with_line_limit(std::size_t line_bytes_max) {
    Limits limits;
    limits.line_bytes_max = line_bytes_max;
    return limits;
}

// A subscribe line of exactly `length` bytes before its '\n'.
std::string subscribe_of_length(std::size_t length) {
    std::string line = R"({"command": "subscribe", "topic": "t"})";
    EXPECT_LE(line.size(), length) << "test bug";
    line.insert(1, length - line.size(), ' ');
    return line;
}

TEST(Broker, a_line_of_exactly_the_limit_is_processed) {
    BrokerHarness h(with_line_limit(64));
    h.connect(1);
    const std::string line = subscribe_of_length(64);
    ASSERT_EQ(line.size(), 64u);
    h.receive(1, line + "\n");
    EXPECT_EQ(h.take(1), Objects{ack()});
    EXPECT_FALSE(h.close_reason(1));
}

TEST(Broker, a_line_past_the_limit_gets_line_too_long_then_close) {
    BrokerHarness h(with_line_limit(64));
    h.connect(1);
    h.receive(1, subscribe_of_length(65) + "\n");
    EXPECT_EQ(h.take(1), Objects{failure(kLineTooLong)});
    EXPECT_EQ(h.close_reason(1), CloseReason::line_too_long);
    EXPECT_EQ(h.bytes_at_close(1), h.received(1).size()) << "the error was handed over before the Close";
    EXPECT_EQ(h.outstanding_at_close(1), 0u) << "and written";
    EXPECT_EQ(h.subscriber_count("t"), 0u);
    EXPECT_EQ(h.broker().stats().line_too_long_closes, 1u);
}

TEST(Broker, a_line_past_the_limit_is_refused_before_its_newline_arrives) {
    BrokerHarness h(with_line_limit(64));
    h.connect(1);
    h.receive(1, std::string(40, ' '));
    EXPECT_FALSE(h.close_reason(1));
    h.receive(1, std::string(25, 'x'));
    EXPECT_EQ(h.take(1), Objects{failure(kLineTooLong)});
    EXPECT_EQ(h.close_reason(1), CloseReason::line_too_long);
}

TEST(Broker, the_line_limit_counts_whitespace_before_trimming) {
    BrokerHarness h(with_line_limit(64));
    h.connect(1);
    const std::string command = ended_by(subscribe_line("t"), "");
    ASSERT_EQ(command.size(), 35u);
    h.receive(1, std::string(20, ' ') + command + std::string(10, ' ') + "\n");  // 65 bytes, 35 once trimmed
    EXPECT_EQ(h.take(1), Objects{failure(kLineTooLong)});
    EXPECT_EQ(h.close_reason(1), CloseReason::line_too_long);
}

TEST(Broker, lines_before_a_too_long_line_are_answered_and_lines_after_it_ignored) {
    BrokerHarness h(with_line_limit(64));
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("a"));
    h.take(2);
    h.receive(1, send_line("a", "before") + "oops\n" + std::string(100, 'x') + "\n" + send_line("a", "after"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kBadJson), failure(kLineTooLong)}));
    EXPECT_EQ(h.close_reason(1), CloseReason::line_too_long);
    EXPECT_EQ(h.take(2), Objects{message("a", "before", "all", 0)});
    EXPECT_EQ(h.next_index("a"), 1);
}

TEST(Broker, line_too_long_close_waits_until_the_error_is_written) {
    BrokerHarness h(with_line_limit(16));
    h.connect(1);
    h.stall(1);
    h.receive(1, std::string(17, 'x'));
    EXPECT_FALSE(h.close_reason(1));
    h.resume(1);
    EXPECT_EQ(h.take(1), Objects{failure(kLineTooLong)});
    EXPECT_EQ(h.close_reason(1), CloseReason::line_too_long);
}

// ---------------------------------------------------------------------------
// Topic name bytes (topic_bytes_max) and subscriptions per connection
// (subscriptions_max): refused with their own reasons, changing nothing.

const std::string kTopicTooLong = "Topic too long";
const std::string kTooManySubscriptions = "Too many subscriptions";
const std::string kTooManyTopics = "Too many topics";

// The default limits, but `limit` set to `value`.
Limits with(std::size_t Limits::*limit, std::size_t value) {
    Limits limits;
    limits.*limit = value;
    return limits;
}

TEST(Broker, a_subscribe_to_a_topic_of_exactly_topic_bytes_max_is_accepted_one_byte_more_refused) {
    BrokerHarness h(with(&Limits::topic_bytes_max, 8));
    h.connect(1);
    h.receive(1, subscribe_line("12345678") + subscribe_line("123456789"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTopicTooLong)}));
    EXPECT_EQ(h.subscriber_count("12345678"), 1u);
    EXPECT_EQ(h.broker().topics().find("123456789"), nullptr) << "a refused subscribe makes no topic known";
    EXPECT_EQ(h.broker().topics().size(), 1u);
    EXPECT_EQ(h.broker().stats().topic_too_long_refused, 1u);
}

TEST(Broker, a_send_to_a_topic_of_exactly_topic_bytes_max_is_accepted_one_byte_more_refused) {
    BrokerHarness h(with(&Limits::topic_bytes_max, 8));
    h.connect(1);
    h.receive(1, send_line("12345678", "m") + send_line("123456789", "m") + send_line("123456789", "m", "one"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTopicTooLong), failure(kTopicTooLong)}));
    EXPECT_EQ(h.next_index("12345678"), 1);
    EXPECT_EQ(h.broker().topics().find("123456789"), nullptr) << "no index used, nothing cached";
    EXPECT_EQ(h.broker().topics().cached_messages(), 1u);
    EXPECT_EQ(h.broker().stats().messages_published, 1u);
    EXPECT_EQ(h.broker().stats().topic_too_long_refused, 2u);
}

TEST(Broker, an_unsubscribe_from_a_topic_of_exactly_topic_bytes_max_is_accepted_one_byte_more_refused) {
    BrokerHarness h(with(&Limits::topic_bytes_max, 8));
    h.connect(1);
    h.receive(1, subscribe_line("12345678") + unsubscribe_line("12345678") + unsubscribe_line("123456789"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), failure(kTopicTooLong)}));
    EXPECT_EQ(h.subscriber_count("12345678"), 0u);
    EXPECT_EQ(h.broker().topics().find("123456789"), nullptr);
}

TEST(Broker, topic_bytes_max_counts_the_decoded_utf8_not_the_json_literal) {
    BrokerHarness h(with(&Limits::topic_bytes_max, 8));
    h.connect(1);
    // Four u-umlauts are 8 bytes of UTF-8 (24 as \u escapes); five are 10.
    const std::string four = "\\u00fc\\u00fc\\u00fc\\u00fc";
    h.receive(1, R"({"command": "subscribe", "topic": ")" + four + "\"}\n" +
                     R"({"command": "subscribe", "topic": ")" + four + "\\u00fc\"}\n" +
                     R"({"command": "send", "topic": "\"\"\"\"\"\"\"\"", "msg": "m", "delivery": "all"})" + "\n");
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTopicTooLong), ack()}));
    EXPECT_EQ(h.subscriber_count("\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"), 1u);
    EXPECT_EQ(h.next_index(std::string(8, '"')), 1) << "8 quotes are 8 bytes, 16 escaped";
}

TEST(Broker, topic_length_is_checked_before_every_other_limit) {
    Limits limits = with(&Limits::topic_bytes_max, 1);
    limits.subscriptions_max = 1;
    limits.indexed_topics_max = 1;
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, subscribe_line("a") + subscribe_line("bb") + send_line("cc", "m") + subscribe_line("d"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTopicTooLong), failure(kTopicTooLong),
                                  failure(kTooManySubscriptions)}));
    EXPECT_EQ(h.broker().stats().topics_refused, 0u);
}

TEST(Broker, subscriptions_are_checked_before_the_topics) {
    Limits limits = with(&Limits::subscriptions_max, 1);
    limits.topics_max = 1;
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTooManySubscriptions)}));
    h.receive(2, subscribe_line("b"));
    EXPECT_EQ(h.take(2), Objects{failure(kTooManyTopics)}) << "a connection with room meets the topic limit";
}

TEST(Broker, subscriptions_max_subscriptions_are_accepted_one_more_refused) {
    BrokerHarness h(with(&Limits::subscriptions_max, 2));
    h.connect(1);
    h.connect(2);
    h.receive(2, send_line("c", "cached"));
    h.take(2);
    h.receive(1, subscribe_line("a") + subscribe_line("b") + subscribe_line("c"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), failure(kTooManySubscriptions)})) << "no replay either";
    EXPECT_EQ(h.subscriber_count("c"), 0u);
    EXPECT_EQ(h.broker().topics().find("c")->cached_count(), 1u) << "the cache is untouched";
    EXPECT_EQ(h.broker().stats().subscriptions_refused, 1u);
    h.receive(1, subscribe_line("d"));
    EXPECT_EQ(h.take(1), Objects{failure(kTooManySubscriptions)});
    EXPECT_EQ(h.broker().topics().find("d"), nullptr) << "a refused subscribe makes no topic known";
}

TEST(Broker, re_subscribing_at_subscriptions_max_is_accepted) {
    BrokerHarness h(with(&Limits::subscriptions_max, 2));
    h.connect(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b") + send_line("a", "m"));
    h.take(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b", {{"cache", false}}));
    EXPECT_EQ(h.take(1), (Objects{ack(), message("a", "m", "all", 0), ack()}));
    EXPECT_EQ(h.subscriber_count("a"), 1u);
}

TEST(Broker, an_unsubscribe_frees_a_subscription_slot) {
    BrokerHarness h(with(&Limits::subscriptions_max, 2));
    h.connect(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b") + unsubscribe_line("x") + subscribe_line("c") +
                     unsubscribe_line("a") + subscribe_line("c"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack(), failure(kTooManySubscriptions), ack(), ack()}));
    EXPECT_EQ(h.subscriber_count("a"), 0u);
    EXPECT_EQ(h.subscriber_count("c"), 1u);
}

TEST(Broker, subscriptions_max_counts_per_connection) {
    BrokerHarness h(with(&Limits::subscriptions_max, 1));
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("a"));
    h.receive(2, subscribe_line("b"));
    EXPECT_EQ(h.take(1), Objects{ack()});
    EXPECT_EQ(h.take(2), Objects{ack()});
    h.disconnect(1);
    h.connect(1);
    h.receive(1, subscribe_line("b"));
    EXPECT_EQ(h.take(1), Objects{ack()}) << "a new connection starts with none";
}

// ---------------------------------------------------------------------------
// Errors.

TEST(Broker, each_error_row_reaches_the_client_with_its_reason) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "{\"command\": \"subscribe\", \"topic\": \"\xc0\x80\"}\n");
    h.receive(1, "{\"command\": \"subscribe\", \"topic\": \"t\"\n");
    h.receive(1, "{\"command\": \"subscribe\"}\n");
    EXPECT_EQ(h.take(1), (Objects{failure(kBadUtf8), failure(kBadJson), failure(kMalformed)}));
    EXPECT_EQ(h.broker().stats().errors_replied, 3u);
}

TEST(Broker, errors_do_not_close_the_connection) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, "\xff\nnope\n[]\n");
    EXPECT_FALSE(h.close_reason(1));
    h.receive(1, subscribe_line("t"));
    EXPECT_EQ(h.take(1), (Objects{failure(kBadUtf8), failure(kBadJson), failure(kMalformed), ack()}));
}

TEST(Broker, errors_never_change_state) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, send_line("t", "cached"));  // t: index 1, one cached message
    h.take(2);
    const std::size_t topics_before = h.broker().topics().size();
    h.receive(1, subscribe_line("t", {{"extra", 1}}) +                          // no subscription
                     subscribe_line("t", {{"last_seen", true}}) +               //
                     send_line("t", "m", "some") +                              // no index, no cache
                     send_line("t", "m", "all", {{"cache", "no"}}) +            //
                     send_line("new", "m", "all", {{"index", 5}}) +             // no topic created
                     "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"\xed\xa0\x80\", \"delivery\": \"all\"}\n" +
                     "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"m\", \"delivery\": \"all\"}}\n");
    EXPECT_EQ(h.take(1), (Objects{failure(kMalformed), failure(kMalformed), failure(kMalformed), failure(kMalformed),
                                  failure(kMalformed), failure(kBadUtf8), failure(kBadJson)}));
    EXPECT_EQ(h.subscriber_count("t"), 0u);
    EXPECT_EQ(h.next_index("t"), 1);
    EXPECT_EQ(h.broker().topics().find("t")->cached_count(), 1u);
    EXPECT_EQ(h.broker().topics().find("new"), nullptr);
    EXPECT_EQ(h.broker().topics().size(), topics_before);
    // And the next valid send gets the next index.
    h.receive(1, send_line("t", "valid") + subscribe_line("t"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), message("t", "cached", "all", 0), message("t", "valid", "all", 1)}));
}

TEST(Broker, an_error_does_not_undo_an_existing_subscription) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("t"));
    h.receive(1, "{\"command\": \"unsubscribe\", \"topic\": \"t\", \"cache\": false}\n");
    h.receive(2, send_line("t", "still here"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kMalformed), message("t", "still here", "all", 0)}));
}

// ---------------------------------------------------------------------------
// send.

TEST(Broker, send_all_is_delivered_to_every_subscriber_and_acked) {
    BrokerHarness h;
    for (memq::ConnId id = 1; id <= 4; ++id) h.connect(id);
    for (memq::ConnId id = 2; id <= 4; ++id) {
        h.receive(id, subscribe_line("orders"));
        h.take(id);
    }
    h.receive(1, send_line("orders", "42"));
    EXPECT_EQ(h.take(1), Objects{ack()});
    for (memq::ConnId id = 2; id <= 4; ++id) EXPECT_EQ(h.take(id), Objects{message("orders", "42", "all", 0)});
}

TEST(Broker, a_subscribed_sender_gets_its_own_all_message_before_its_ack) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("t"));
    h.take(1);
    h.receive(1, send_line("t", "echo"));
    EXPECT_EQ(h.take(1), (Objects{message("t", "echo", "all", 0), ack()}));
}

TEST(Broker, deliveries_reach_other_subscribers_before_the_senders_ack_is_handed_over) {
    // All of one send's frames are queued at once: when the sender's ack is
    // transmitted, the subscribers' copies have been transmitted too.
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.take(2);
    h.receive(1, send_line("t", "m"));
    EXPECT_EQ(h.take(2), Objects{message("t", "m", "all", 0)});
    EXPECT_EQ(h.take(1), Objects{ack()});
}

TEST(Broker, delivered_message_carries_exactly_the_senders_fields_and_index) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.take(2);
    h.receive(1, send_line("t", "with cache", "all", {{"cache", true}}));
    h.receive(1, send_line("t", "without cache"));
    h.receive(1, send_line("t", "not cached", "all", {{"cache", false}}));
    EXPECT_EQ(h.take(2), (Objects{message("t", "with cache", "all", 0, true), message("t", "without cache", "all", 1),
                                  message("t", "not cached", "all", 2, false)}));
}

TEST(Broker, delivered_message_preserves_arbitrary_text) {
    BrokerHarness h;
    h.connect(1);
    const std::string text = std::string("q\"b\\s/n\nr\rt\tz\0e", 15) + "\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x98\x80";
    h.receive(1, subscribe_line(text) + send_line(text, text) + send_line(text, ""));
    EXPECT_EQ(h.take(1), (Objects{ack(), message(text, text, "all", 0), ack(), message(text, "", "all", 1), ack()}));
}

TEST(Broker, index_starts_at_zero_and_counts_per_topic) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    h.take(1);
    h.receive(1, send_line("a", "a0") + send_line("b", "b0") + send_line("a", "a1") + send_line("a", "a2"));
    EXPECT_EQ(h.take(1), (Objects{message("a", "a0", "all", 0), ack(), message("b", "b0", "all", 0), ack(),
                                  message("a", "a1", "all", 1), ack(), message("a", "a2", "all", 2), ack()}));
}

TEST(Broker, index_grows_on_every_send_whatever_its_delivery_cache_or_subscribers) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "all, no subscriber") +                        // 0
                     send_line("t", "all, not cached", "all", {{"cache", false}}) +  // 1
                     send_line("t", "one, no subscriber", "one") +             // 2
                     send_line("t", "one, dropped", "one", {{"cache", false}}));  // 3
    EXPECT_EQ(h.next_index("t"), 4);
    h.receive(2, subscribe_line("t", {{"cache", false}}));
    h.receive(1, send_line("t", "one, delivered", "one") +                   // 4
                     send_line("t", "all, delivered", "all", {{"cache", false}}));  // 5
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "one, delivered", "one", 4),
                                  message("t", "all, delivered", "all", 5, false)}));
    EXPECT_EQ(h.next_index("t"), 6);
}

TEST(Broker, send_all_without_subscribers_is_cached_for_later_subscribers) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(1, send_line("t", "first") + send_line("t", "second"));
    h.receive(2, subscribe_line("t"));
    h.receive(3, subscribe_line("t"));
    const Objects expected = {ack(), message("t", "first", "all", 0), message("t", "second", "all", 1)};
    EXPECT_EQ(h.take(2), expected);
    EXPECT_EQ(h.take(3), expected) << "an all message stays cached after a replay";
}

TEST(Broker, send_all_with_subscribers_is_also_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("t") + send_line("t", "m"));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "m", "all", 0)}));
}

TEST(Broker, send_all_with_cache_false_is_delivered_but_not_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("t") + send_line("t", "live only", "all", {{"cache", false}}));
    EXPECT_EQ(h.take(1), (Objects{ack(), message("t", "live only", "all", 0, false), ack()}));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), Objects{ack()});
    EXPECT_TRUE(h.broker().topics().find("t")->cached_count() == 0);
}

TEST(Broker, send_all_with_cache_true_is_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "m", "all", {{"cache", true}}));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "m", "all", 0, true)}));
}

TEST(Broker, send_one_goes_to_exactly_one_subscriber) {
    BrokerHarness h;
    for (memq::ConnId id = 1; id <= 4; ++id) h.connect(id);
    for (memq::ConnId id = 2; id <= 4; ++id) {
        h.receive(id, subscribe_line("t"));
        h.take(id);
    }
    for (int i = 0; i < 30; ++i) {
        h.receive(1, send_line("t", numbered("job ", i), "one"));
        EXPECT_EQ(h.take(1), Objects{ack()});
        int recipients = 0;
        for (memq::ConnId id = 2; id <= 4; ++id) {
            const Objects got = h.take(id);
            if (got.empty()) continue;
            ++recipients;
            EXPECT_EQ(got, Objects{message("t", numbered("job ", i), "one", i)});
        }
        EXPECT_EQ(recipients, 1) << "message " << i;
    }
}

TEST(Broker, send_one_with_subscribers_is_not_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(2, subscribe_line("t"));
    h.receive(1, send_line("t", "job", "one"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "job", "one", 0)}));
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), Objects{ack()});
    EXPECT_TRUE(h.broker().topics().find("t")->cached_count() == 0);
}

TEST(Broker, send_one_with_cache_true_and_subscribers_is_still_not_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(2, subscribe_line("t"));
    h.receive(1, send_line("t", "job", "one", {{"cache", true}}));
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), Objects{ack()});
}

TEST(Broker, send_one_without_subscribers_is_cached_and_replayed_to_the_first_subscriber_only) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(1, send_line("t", "job", "one"));
    EXPECT_EQ(h.take(1), Objects{ack()});
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "job", "one", 0)}));
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), Objects{ack()}) << "the second subscriber must not get the one message";
    EXPECT_TRUE(h.broker().topics().find("t")->cached_count() == 0);
}

TEST(Broker, replay_removes_only_the_one_messages) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(1, send_line("t", "a0") + send_line("t", "o1", "one") + send_line("t", "a2") +
                     send_line("t", "o3", "one"));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "a0", "all", 0), message("t", "o1", "one", 1),
                                  message("t", "a2", "all", 2), message("t", "o3", "one", 3)}));
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), (Objects{ack(), message("t", "a0", "all", 0), message("t", "a2", "all", 2)}));
}

TEST(Broker, send_one_with_cache_false_and_no_subscribers_is_dropped) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "lost", "one", {{"cache", false}}));
    EXPECT_EQ(h.take(1), Objects{ack()});
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), Objects{ack()});
    EXPECT_EQ(h.next_index("t"), 1);
}

TEST(Broker, send_one_echoes_the_cache_flag_when_given) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "kept", "one", {{"cache", true}}));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "kept", "one", 0, true)}));
}

TEST(Broker, a_subscribed_sender_may_receive_its_own_one_message) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("t"));
    h.take(1);
    h.receive(1, send_line("t", "to myself", "one"));
    EXPECT_EQ(h.take(1), (Objects{message("t", "to myself", "one", 0), ack()}));
}

// Which subscriber got each of `count` one-messages, with `subscribers`
// subscribed in order and the broker seeded by `seed`.
std::vector<memq::ConnId> one_recipients(std::uint64_t seed, memq::ConnId subscribers, int count) {
    BrokerHarness h(Limits{}, seed);
    h.connect(100);
    for (memq::ConnId id = 1; id <= subscribers; ++id) {
        h.connect(id);
        h.receive(id, subscribe_line("t"));
        h.take(id);
    }
    std::string lines;
    for (int i = 0; i < count; ++i) lines += send_line("t", std::to_string(i), "one");
    h.receive(100, lines);
    std::vector<memq::ConnId> recipients(static_cast<std::size_t>(count), 0);
    for (memq::ConnId id = 1; id <= subscribers; ++id) {
        for (const json& object : h.take(id)) {
            const std::int64_t index = object.at("index").get<std::int64_t>();
            if (index < 0 || index >= count) {
                ADD_FAILURE() << "unexpected index " << index;
                continue;
            }
            auto& slot = recipients[static_cast<std::size_t>(index)];
            EXPECT_EQ(slot, 0u) << "message " << index << " delivered twice";
            slot = id;
            EXPECT_EQ(object.at("msg").get<std::string>(), std::to_string(index));
        }
    }
    for (int i = 0; i < count; ++i) {
        EXPECT_NE(recipients[static_cast<std::size_t>(i)], 0u) << "message " << i << " delivered to nobody";
    }
    return recipients;
}

TEST(Broker, send_one_is_roughly_uniform_across_subscribers) {
    constexpr int count = 4000;
    const std::vector<memq::ConnId> recipients = one_recipients(31337, 4, count);
    std::map<memq::ConnId, int> per_subscriber;
    for (const memq::ConnId id : recipients) ++per_subscriber[id];
    ASSERT_EQ(per_subscriber.size(), 4u);
    for (const auto& [id, got] : per_subscriber) {
        EXPECT_GT(got, 1000 - 150) << "subscriber " << id;  // expected 1000, standard deviation ~27
        EXPECT_LT(got, 1000 + 150) << "subscriber " << id;
    }
}

TEST(Broker, send_one_choice_is_deterministic_for_a_seed) {
    EXPECT_EQ(one_recipients(7, 5, 200), one_recipients(7, 5, 200));
}

TEST(Broker, send_one_choice_depends_on_the_seed) {
    EXPECT_NE(one_recipients(7, 5, 200), one_recipients(8, 5, 200));
}

TEST(Broker, send_one_never_goes_to_a_subscriber_that_left) {
    BrokerHarness h;
    for (memq::ConnId id = 1; id <= 4; ++id) h.connect(id);
    for (memq::ConnId id = 2; id <= 4; ++id) h.receive(id, subscribe_line("t"));
    h.receive(3, unsubscribe_line("t"));
    h.disconnect(4);
    h.take(2);
    h.take(3);
    std::string lines;
    for (int i = 0; i < 50; ++i) lines += send_line("t", "m", "one");
    h.receive(1, lines);
    EXPECT_EQ(h.take(2).size(), 50u);
    EXPECT_TRUE(h.take(3).empty());
}

TEST(Broker, a_one_message_skipped_by_last_seen_stays_cached) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(1, send_line("t", "early", "one") + send_line("t", "late", "one"));
    h.receive(2, subscribe_line("t", {{"last_seen", 0}}));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "late", "one", 1)}));
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), (Objects{ack(), message("t", "early", "one", 0)}));
}

TEST(Broker, a_one_message_stays_cached_when_a_subscriber_asks_for_no_replay) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(1, send_line("t", "job", "one"));
    h.receive(2, subscribe_line("t", {{"cache", false}}));
    EXPECT_EQ(h.take(2), Objects{ack()});
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), (Objects{ack(), message("t", "job", "one", 0)}));
}

// ---------------------------------------------------------------------------
// subscribe, the cache and last_seen.

TEST(Broker, subscribe_ack_comes_before_the_replay_oldest_first) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "m0") + send_line("t", "m1") + send_line("t", "m2"));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "m0", "all", 0), message("t", "m1", "all", 1),
                                  message("t", "m2", "all", 2)}));
}

TEST(Broker, replies_after_a_subscribe_come_after_its_replay) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "m0"));
    h.receive(2, subscribe_line("t") + "bad\n");
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "m0", "all", 0), failure(kBadJson)}));
}

TEST(Broker, subscribe_with_cache_false_gets_no_replay_but_joins) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "old"));
    h.receive(2, subscribe_line("t", {{"cache", false}}));
    EXPECT_EQ(h.take(2), Objects{ack()});
    h.receive(1, send_line("t", "new"));
    EXPECT_EQ(h.take(2), Objects{message("t", "new", "all", 1)});
}

TEST(Broker, subscribe_with_cache_true_replays) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "old"));
    h.receive(2, subscribe_line("t", {{"cache", true}}));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "old", "all", 0)}));
}

// Conn 1 sends messages 0..4 to "t" (nobody subscribed); conn 2 is connected.
void send_five(BrokerHarness& h) {
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 5; ++i) h.receive(1, send_line("t", numbered("m", i)));
}

std::vector<std::int64_t> replayed_indices(BrokerHarness& h, memq::ConnId conn) {
    std::vector<std::int64_t> out;
    const Objects got = h.take(conn);
    EXPECT_FALSE(got.empty());
    if (got.empty()) return out;
    EXPECT_EQ(got.front(), ack());
    for (std::size_t i = 1; i < got.size(); ++i) out.push_back(got[i].at("index").get<std::int64_t>());
    return out;
}

TEST(Broker, last_seen_replays_only_later_messages) {
    BrokerHarness h(with_cache(100));
    send_five(h);
    h.receive(2, subscribe_line("t", {{"last_seen", 2}}));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{3, 4}));
}

TEST(Broker, last_seen_of_the_latest_index_replays_nothing) {
    BrokerHarness h(with_cache(100));
    send_five(h);
    h.receive(2, subscribe_line("t", {{"last_seen", 4}}));
    EXPECT_EQ(replayed_indices(h, 2), std::vector<std::int64_t>{});
}

TEST(Broker, last_seen_beyond_the_next_index_replays_nothing) {
    BrokerHarness h(with_cache(100));
    send_five(h);
    h.receive(2, subscribe_line("t", {{"last_seen", 1000}}));
    EXPECT_EQ(replayed_indices(h, 2), std::vector<std::int64_t>{});
    h.receive(2, subscribe_line("t", {{"last_seen", std::numeric_limits<std::int64_t>::max()}}));
    EXPECT_EQ(replayed_indices(h, 2), std::vector<std::int64_t>{});
}

TEST(Broker, last_seen_minus_one_replays_everything) {
    BrokerHarness h(with_cache(100));
    send_five(h);
    h.receive(2, subscribe_line("t", {{"last_seen", -1}}));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST(Broker, negative_last_seen_replays_everything) {
    BrokerHarness h(with_cache(100));
    send_five(h);
    h.receive(2, subscribe_line("t", {{"last_seen", -5}}));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
    h.receive(2, unsubscribe_line("t"));
    h.take(2);
    h.receive(2, subscribe_line("t", {{"last_seen", std::numeric_limits<std::int64_t>::min()}}));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST(Broker, the_cache_keeps_the_last_cache_size_messages) {
    BrokerHarness h(with_cache(3));
    send_five(h);
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{2, 3, 4}));
}

TEST(Broker, cache_size_zero_caches_nothing) {
    BrokerHarness h(with_cache(0));
    send_five(h);
    h.receive(1, send_line("t", "one", "one"));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(replayed_indices(h, 2), std::vector<std::int64_t>{});
    EXPECT_EQ(h.next_index("t"), 6);
}

TEST(Broker, cache_size_one_keeps_only_the_latest_message) {
    BrokerHarness h(with_cache(1));
    send_five(h);
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{4}));
}

TEST(Broker, one_messages_count_toward_the_cache_size) {
    BrokerHarness h(with_cache(2));
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "o0", "one") + send_line("t", "a1") + send_line("t", "o2", "one"));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "a1", "all", 1), message("t", "o2", "one", 2)}));
}

TEST(Broker, uncached_sends_do_not_evict_cached_messages) {
    BrokerHarness h(with_cache(2));
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "a0") + send_line("t", "a1") + send_line("t", "x", "all", {{"cache", false}}) +
                     send_line("t", "y", "one", {{"cache", false}}));
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(replayed_indices(h, 2), (std::vector<std::int64_t>{0, 1}));
}

TEST(Broker, caches_are_per_topic) {
    BrokerHarness h(with_cache(2));
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("a", "a0") + send_line("b", "b0") + send_line("a", "a1") + send_line("a", "a2"));
    h.receive(2, subscribe_line("b"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("b", "b0", "all", 0)}));
}

TEST(Broker, subscribing_twice_delivers_each_message_once) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t") + subscribe_line("t"));
    EXPECT_EQ(h.take(2), (Objects{ack(), ack()}));
    EXPECT_EQ(h.subscriber_count("t"), 1u);
    h.receive(1, send_line("t", "once") + send_line("t", "job", "one"));
    EXPECT_EQ(h.take(2), (Objects{message("t", "once", "all", 0), message("t", "job", "one", 1)}));
}

TEST(Broker, subscribing_twice_then_unsubscribing_once_leaves_the_topic) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t") + subscribe_line("t") + unsubscribe_line("t"));
    h.receive(1, send_line("t", "m"));
    EXPECT_EQ(h.take(2), (Objects{ack(), ack(), ack()}));
}

// ---------------------------------------------------------------------------
// unsubscribe.

TEST(Broker, unsubscribe_when_not_subscribed_succeeds) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, unsubscribe_line("never seen"));
    h.receive(2, subscribe_line("t"));
    h.receive(1, unsubscribe_line("t"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack()}));
    EXPECT_EQ(h.subscriber_count("t"), 1u) << "someone else's subscription is untouched";
}

TEST(Broker, unsubscribe_stops_deliveries) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.receive(1, send_line("t", "before"));
    h.receive(2, unsubscribe_line("t"));
    h.receive(1, send_line("t", "after") + send_line("t", "job", "one"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("t", "before", "all", 0), ack()}));
    EXPECT_EQ(h.subscriber_count("t"), 0u);
}

TEST(Broker, unsubscribe_leaves_only_that_topic) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("a") + subscribe_line("b") + unsubscribe_line("a"));
    h.take(2);
    h.receive(1, send_line("a", "to a") + send_line("b", "to b"));
    EXPECT_EQ(h.take(2), Objects{message("b", "to b", "all", 0)});
}

TEST(Broker, a_message_sent_after_unsubscribe_in_the_same_segment_is_not_delivered) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, subscribe_line("t") + send_line("t", "in") + unsubscribe_line("t") + send_line("t", "out"));
    EXPECT_EQ(h.take(1), (Objects{ack(), message("t", "in", "all", 0), ack(), ack(), ack()}));
}

// ---------------------------------------------------------------------------
// disconnect.

TEST(Broker, disconnect_leaves_every_topic) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    h.receive(2, subscribe_line("b"));
    h.disconnect(1);
    EXPECT_FALSE(h.broker().is_connected(1));
    EXPECT_EQ(h.broker().connection_count(), 1u);
    EXPECT_EQ(h.subscriber_count("a"), 0u);
    EXPECT_EQ(h.subscriber_count("b"), 1u);
}

TEST(Broker, no_deliveries_to_a_disconnected_connection) {
    // The harness fails the test on any Transmit for a disconnected connection.
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(2, subscribe_line("t"));
    h.receive(3, subscribe_line("t"));
    h.disconnect(2);
    std::string lines;
    for (int i = 0; i < 20; ++i) lines += send_line("t", numbered("all ", i)) + send_line("t", "one", "one");
    h.receive(1, lines);
    EXPECT_EQ(h.take(3).size(), 41u);  // its ack and 40 messages
}

TEST(Broker, disconnect_changes_nothing_else) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("t", "a0") + send_line("t", "o1", "one"));
    h.receive(2, subscribe_line("t", {{"cache", false}}));
    h.disconnect(2);
    h.disconnect(1);
    EXPECT_EQ(h.next_index("t"), 2);
    EXPECT_EQ(h.broker().topics().find("t")->cached_count(), 2u);
    h.connect(3);
    h.receive(3, subscribe_line("t"));
    EXPECT_EQ(h.take(3), (Objects{ack(), message("t", "a0", "all", 0), message("t", "o1", "one", 1)}));
}

TEST(Broker, a_disconnected_id_may_connect_again_with_a_fresh_state) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t") + "{\"command\": \"sub");  // a subscription and half a line
    h.disconnect(2);
    h.connect(2);
    EXPECT_TRUE(h.broker().is_connected(2));
    h.receive(1, send_line("t", "m"));
    EXPECT_TRUE(h.take(2).empty()) << "the new connection is not subscribed";
    h.receive(2, subscribe_line("u"));
    EXPECT_EQ(h.take(2), Objects{ack()}) << "the old half line is gone";
}

TEST(Broker, disconnect_without_close_during_a_stalled_write_is_clean) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.stall(2);
    h.receive(1, send_line("t", "m0") + send_line("t", "m1"));
    EXPECT_GT(h.broker().pending_bytes(2), 0u);
    h.disconnect(2);
    EXPECT_EQ(h.broker().pending_bytes(2), 0u);
    EXPECT_EQ(h.subscriber_count("t"), 0u);
    h.receive(1, send_line("t", "m2"));
    EXPECT_EQ(h.broker().connection_count(), 1u);
}

// ---------------------------------------------------------------------------
// Output: transmits and pending bytes.

TEST(Broker, pending_bytes_of_an_unknown_connection_is_zero) {
    BrokerHarness h;
    EXPECT_EQ(h.broker().pending_bytes(42), 0u);
}

TEST(Broker, pending_bytes_count_queued_and_unwritten_output) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.take(2);
    EXPECT_EQ(h.broker().pending_bytes(2), 0u) << "everything written";
    h.stall(2);
    h.receive(1, send_line("t", "m"));
    const std::size_t one = message_frame_size("t", "m", 0);
    EXPECT_EQ(h.outstanding(2), one) << "handed over, not written";
    EXPECT_EQ(h.broker().pending_bytes(2), one);
    h.receive(1, send_line("t", "m") + send_line("t", "m"));
    EXPECT_EQ(h.outstanding(2), one) << "no second Transmit while one is outstanding";
    EXPECT_EQ(h.broker().pending_bytes(2), 3 * one);
    EXPECT_EQ(h.broker().pending_bytes(1), 0u);
    h.resume(2);
    EXPECT_EQ(h.broker().pending_bytes(2), 0u);
    EXPECT_EQ(h.take(2), (Objects{message("t", "m", "all", 0), message("t", "m", "all", 1),
                                  message("t", "m", "all", 2)}));
}

TEST(Broker, a_transmit_hands_over_every_queued_frame_in_order) {
    BrokerHarness h;
    h.connect(1);
    h.stall(1);
    h.receive(1, subscribe_line("t"));
    EXPECT_EQ(h.transmit_count(1), 1u);
    h.receive(1, cat("x\n", send_line("t", "m"), "[]\n"));
    EXPECT_EQ(h.transmit_count(1), 1u);
    h.resume(1);
    EXPECT_EQ(h.transmit_count(1), 2u) << "the four queued frames go out as one gather write";
    EXPECT_EQ(h.frames(1).size(), 5u);
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kBadJson), message("t", "m", "all", 0), ack(),
                                  failure(kMalformed)}));
}

TEST(Broker, the_next_transmit_waits_until_every_byte_is_written) {
    BrokerHarness h;
    h.connect(1);
    h.stall(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    const std::size_t first = h.outstanding(1);
    ASSERT_GT(first, 2u);
    h.receive(1, subscribe_line("c"));
    h.write(1, 1);
    EXPECT_EQ(h.broker().pending_bytes(1), first - 1 + memq::encode_ack().size());
    EXPECT_EQ(h.transmit_count(1), 1u);
    h.write(1, first - 2);
    EXPECT_EQ(h.transmit_count(1), 1u);
    h.write(1, 1);
    EXPECT_EQ(h.transmit_count(1), 2u);
    EXPECT_EQ(h.outstanding(1), memq::encode_ack().size());
    h.resume(1);
    EXPECT_EQ(h.broker().pending_bytes(1), 0u);
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack()}));
}

// ---------------------------------------------------------------------------
// Slow consumers.

// Conn 1 sends, conn 2 (stalled) and conn 3 subscribe to "t"; pending output
// is limited to `frames` message frames of "t"/"m" plus `extra` bytes.
struct SlowConsumerSetup {
    explicit SlowConsumerSetup(std::size_t frames, std::size_t extra = 0)
        : frame(message_frame_size("t", "m", 0)), h(limits_for(frame * frames + extra)) {
        h.connect(1);
        h.connect(2);
        h.connect(3);
        h.receive(2, subscribe_line("t"));
        h.receive(3, subscribe_line("t"));
        h.take(2);
        h.take(3);
        h.stall(2);
    }
    static Limits limits_for(std::size_t pending_bytes_max) {
        Limits limits;
        limits.pending_bytes_max = pending_bytes_max;
        return limits;
    }
    void send(int count) {
        for (int i = 0; i < count; ++i) h.receive(1, send_line("t", "m"));
    }
    std::size_t frame;
    BrokerHarness h;
};

TEST(Broker, pending_output_exactly_at_the_limit_is_allowed) {
    SlowConsumerSetup s(3);
    s.send(3);
    EXPECT_FALSE(s.h.close_reason(2));
    EXPECT_TRUE(s.h.broker().is_connected(2));
    EXPECT_EQ(s.h.broker().pending_bytes(2), 3 * s.frame);
}

TEST(Broker, a_slow_consumer_is_closed_once_pending_would_pass_the_limit) {
    SlowConsumerSetup s(3);
    s.send(3);
    ASSERT_FALSE(s.h.close_reason(2));
    s.send(1);
    EXPECT_EQ(s.h.close_reason(2), CloseReason::slow_consumer);
    EXPECT_EQ(s.h.broker().stats().slow_consumer_closes, 1u);
}

TEST(Broker, a_slow_consumer_is_closed_when_one_byte_does_not_fit) {
    SlowConsumerSetup t(2, /*extra=*/message_frame_size("t", "m", 0) - 1);
    t.send(2);
    EXPECT_FALSE(t.h.close_reason(2));
    t.send(1);
    EXPECT_EQ(t.h.close_reason(2), CloseReason::slow_consumer);
}

TEST(Broker, other_subscribers_and_the_sender_are_unaffected_by_a_slow_consumer) {
    SlowConsumerSetup s(2);
    s.send(5);
    EXPECT_EQ(s.h.close_reason(2), CloseReason::slow_consumer);
    EXPECT_FALSE(s.h.close_reason(1));
    EXPECT_FALSE(s.h.close_reason(3));
    EXPECT_EQ(s.h.take(1), (Objects{ack(), ack(), ack(), ack(), ack()}));
    EXPECT_EQ(s.h.take(3).size(), 5u);
}

TEST(Broker, a_closed_slow_consumer_gets_no_further_deliveries) {
    // The harness fails the test on a Transmit after the connection's Close.
    SlowConsumerSetup s(2);
    const std::size_t transmits_before = s.h.transmit_count(2);
    s.send(3);
    ASSERT_EQ(s.h.close_reason(2), CloseReason::slow_consumer);
    s.send(3);
    for (int i = 0; i < 3; ++i) s.h.receive(1, send_line("t", "job", "one"));  // one at a time: conn 3 has a limit too
    EXPECT_FALSE(s.h.close_reason(3));
    EXPECT_EQ(s.h.take(3).size(), 9u) << "the live subscriber gets every message, the one messages included";
    EXPECT_EQ(s.h.transmit_count(2), transmits_before + 1) << "only the Transmit handed over before the stall";
    s.h.disconnect(2);
    EXPECT_EQ(s.h.subscriber_count("t"), 1u);
    EXPECT_EQ(s.h.broker().pending_bytes(2), 0u);
}

TEST(Broker, a_slow_consumers_later_input_is_ignored) {
    SlowConsumerSetup s(1);
    s.send(2);
    ASSERT_EQ(s.h.close_reason(2), CloseReason::slow_consumer);
    s.h.receive(2, send_line("t", "from a closed connection") + subscribe_line("other"));
    EXPECT_EQ(s.h.next_index("t"), 2);
    EXPECT_EQ(s.h.subscriber_count("other"), 0u);
    EXPECT_EQ(s.h.take(3).size(), 2u);
}

// ---------------------------------------------------------------------------
// Lazy replay: a cursor into the cache, expanded as the connection drains.

// Limits whose pending_bytes_max holds an ack and `frames` frames of ("t", "m").
Limits with_room_for(std::size_t frames) {
    Limits limits;
    limits.pending_bytes_max = memq::encode_ack().size() + frames * message_frame_size("t", "m", 0);
    limits.replay_window_bytes = 1;  // one frame at a time
    return limits;
}

std::vector<std::int64_t> indices_of(const Objects& objects) {
    std::vector<std::int64_t> out;
    for (const json& object : objects) {
        if (object.contains("index")) out.push_back(object["index"].get<std::int64_t>());
    }
    return out;
}

TEST(Broker, a_replay_bigger_than_the_limit_is_delivered_as_the_reader_drains) {
    BrokerHarness h(with_room_for(2));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 5; ++i) h.receive(1, send_line("t", "m"));
    h.receive(2, subscribe_line("t"));
    EXPECT_FALSE(h.close_reason(2));
    const Objects got = h.take(2);
    EXPECT_EQ(got.front(), ack());
    EXPECT_EQ(indices_of(got), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST(Broker, a_replay_to_a_stalled_reader_waits_within_the_window_and_does_not_close_it) {
    Limits limits = with_room_for(2);
    limits.replay_window_bytes = 2 * message_frame_size("t", "m", 0);
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 10; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, subscribe_line("t"));
    EXPECT_FALSE(h.close_reason(2));
    EXPECT_LE(h.broker().pending_bytes(2), limits.replay_window_bytes + message_frame_size("t", "m", 0));
    h.resume(2);
    EXPECT_EQ(indices_of(h.take(2)), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Broker, messages_published_during_a_replay_follow_it_in_index_order) {
    BrokerHarness h(with_room_for(3));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 4; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, subscribe_line("t"));
    for (int i = 0; i < 4; ++i) h.receive(1, send_line("t", "m"));                 // cached: the cursor reaches them
    h.receive(1, R"({"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": false})" "\n");  // held
    h.resume(2);
    EXPECT_EQ(indices_of(h.take(2)), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_FALSE(h.close_reason(2));
}

TEST(Broker, replies_after_a_subscribe_wait_behind_its_unexpanded_replay) {
    BrokerHarness h(with_room_for(3));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 3; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, cat(subscribe_line("t"), send_line("u", "x")));
    h.resume(2);
    const Objects got = h.take(2);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[0], ack());
    EXPECT_EQ(indices_of(Objects(got.begin() + 1, got.begin() + 4)), (std::vector<std::int64_t>{0, 1, 2}));
    EXPECT_EQ(got[4], ack());
}

TEST(Broker, cached_messages_evicted_before_the_cursor_reaches_them_are_a_gap_not_a_reorder) {
    Limits limits = with_room_for(2);
    limits.cache_messages_max = 3;
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 3; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, subscribe_line("t"));  // the ack fills the window; 0, 1 and 2 wait in the cache
    for (int i = 0; i < 3; ++i) h.receive(1, send_line("t", "m"));  // 3, 4, 5 evict them
    h.resume(2);
    EXPECT_EQ(indices_of(h.take(2)), (std::vector<std::int64_t>{3, 4, 5}));
}

TEST(Broker, an_unsubscribe_ends_the_replay_where_the_topic_was) {
    BrokerHarness h(with_room_for(3));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 3; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, cat(subscribe_line("t"), unsubscribe_line("t")));
    for (int i = 0; i < 2; ++i) h.receive(1, send_line("t", "m"));  // cached after the unsubscribe: not owed
    h.resume(2);
    const Objects got = h.take(2);
    EXPECT_EQ(indices_of(got), (std::vector<std::int64_t>{0, 1, 2}));
    EXPECT_EQ(got.back(), ack());
}

TEST(Broker, a_quit_flushes_the_replay_then_closes) {
    BrokerHarness h(with_room_for(2));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 4; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    h.receive(2, cat(subscribe_line("t"), "quit\n"));
    EXPECT_FALSE(h.close_reason(2));
    h.resume(2);
    EXPECT_EQ(indices_of(h.take(2)), (std::vector<std::int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(h.close_reason(2), CloseReason::quit);
}

TEST(Broker, a_replay_closes_a_reader_only_when_what_waits_behind_it_leaves_no_room) {
    BrokerHarness h(with_room_for(2));
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 3; ++i) h.receive(1, send_line("t", "m"));
    h.stall(2);
    // Replies behind the replay fill the room the next cached frame needs.
    std::string subscribes = subscribe_line("t");
    for (int i = 0; i < 8; ++i) subscribes += subscribe_line(numbered("u", i));
    h.receive(2, subscribes);
    EXPECT_FALSE(h.close_reason(2)) << "the replay waits while output drains";
    h.resume(2);
    EXPECT_EQ(h.close_reason(2), CloseReason::slow_consumer);
}

TEST(Broker, a_replay_that_fits_the_limit_exactly_is_delivered) {
    Limits limits;
    limits.pending_bytes_max = memq::encode_ack().size() + 5 * message_frame_size("t", "m", 0);
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    for (int i = 0; i < 5; ++i) h.receive(1, send_line("t", "m"));
    h.receive(2, subscribe_line("t"));
    EXPECT_FALSE(h.close_reason(2));
    EXPECT_EQ(h.take(2).size(), 6u);
}

TEST(Broker, a_sender_flooding_without_reading_is_closed_too) {
    Limits limits;
    limits.pending_bytes_max = 10 * memq::encode_ack().size();
    BrokerHarness h(limits);
    h.connect(1);
    h.stall(1);
    std::string lines;
    for (int i = 0; i < 20; ++i) lines += send_line("t", "m");
    h.receive(1, lines);
    EXPECT_EQ(h.close_reason(1), CloseReason::slow_consumer);
    EXPECT_LT(h.next_index("t"), 20) << "a closed connection's remaining lines are not executed";
}

// A connection whose output is at its limit sends a line that is too long:
// the "Line too long" error cannot be queued, so the connection is closed (as
// a slow consumer: its output is dropped), once, and the core survives.
void too_long_line_at_the_output_limit() {
    Limits limits;
    limits.line_bytes_max = 64;
    limits.pending_bytes_max = 3 * memq::encode_ack().size();
    BrokerHarness h(limits);
    h.connect(1);
    h.stall(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b") + subscribe_line("c"));
    ASSERT_EQ(h.broker().pending_bytes(1), limits.pending_bytes_max);
    h.receive(1, std::string(100, 'x'));
    EXPECT_EQ(h.close_reason(1), CloseReason::slow_consumer);
    h.disconnect(1);
    EXPECT_EQ(h.broker().connection_count(), 0u);
}

TEST(Broker, a_too_long_line_from_a_connection_at_its_output_limit_closes_it_cleanly) {
    // First in a child process, so that a crash of the core fails this test only.
    EXPECT_EXIT(
        {
            too_long_line_at_the_output_limit();
            std::exit(::testing::Test::HasFailure() ? 1 : 0);
        },
        ::testing::ExitedWithCode(0), "");
    if (::testing::Test::HasFailure()) return;
    too_long_line_at_the_output_limit();  // again here, for readable assertion messages
}

// ---------------------------------------------------------------------------
// Frames are shared.

TEST(Broker, one_message_is_one_frame_shared_by_every_recipient) {
    BrokerHarness h;
    for (memq::ConnId id = 1; id <= 4; ++id) h.connect(id);
    for (memq::ConnId id = 1; id <= 4; ++id) h.receive(id, subscribe_line("t"));
    h.receive(1, send_line("t", "shared"));
    std::set<const std::string*> message_frames;
    for (memq::ConnId id = 1; id <= 4; ++id) {
        for (const memq::Frame& frame : h.frames(id)) {
            if (frame->find("shared") != std::string::npos) message_frames.insert(frame.get());
        }
    }
    EXPECT_EQ(message_frames.size(), 1u);
}

TEST(Broker, a_replayed_message_is_the_frame_delivered_live) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("t") + send_line("t", "shared"));
    h.receive(2, subscribe_line("t"));
    ASSERT_EQ(h.frames(1).size(), 3u);  // ack, message, ack
    ASSERT_EQ(h.frames(2).size(), 2u);  // ack, message
    EXPECT_EQ(h.frames(1)[1].get(), h.frames(2)[1].get());
    EXPECT_EQ(*h.frames(2)[1], *h.frames(1)[1]);
}

// ---------------------------------------------------------------------------
// Counters.

TEST(Broker, stats_count_connections_publishes_and_deliveries) {
    BrokerHarness h;
    h.connect(1);
    h.connect(2);
    h.connect(3);
    h.receive(2, subscribe_line("t"));
    h.receive(3, subscribe_line("t"));
    h.receive(1, send_line("t", "m") + send_line("t", "job", "one"));
    const memq::BrokerStats& stats = h.broker().stats();
    EXPECT_EQ(stats.connections_accepted, 3u);
    EXPECT_EQ(stats.messages_published, 2u);
    EXPECT_EQ(stats.messages_delivered, 3u);
    h.connect(4);
    h.receive(4, subscribe_line("t"));
    EXPECT_EQ(h.broker().stats().messages_delivered, 4u) << "a replay counts as a delivery";
    EXPECT_EQ(h.broker().stats().errors_replied, 0u);
}

TEST(Broker, messages_delivered_counts_only_frames_actually_queued) {
    // "frames queued to subscribers": a frame dropped with a slow consumer is not one.
    SlowConsumerSetup s(1);
    s.send(1);  // queued to 2 and 3
    ASSERT_EQ(s.h.broker().stats().messages_delivered, 2u);
    s.send(1);  // queued to 3 only: 2 is closed as a slow consumer instead
    ASSERT_EQ(s.h.close_reason(2), CloseReason::slow_consumer);
    EXPECT_EQ(s.h.broker().stats().messages_delivered, 3u);
}

TEST(Broker, close_reasons_have_distinct_names) {
    const std::set<std::string_view> names = {memq::to_string(CloseReason::quit),
                                              memq::to_string(CloseReason::line_too_long),
                                              memq::to_string(CloseReason::slow_consumer)};
    EXPECT_EQ(names.size(), 3u);
    EXPECT_EQ(names.count(""), 0u);
}

}  // namespace
