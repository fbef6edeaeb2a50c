// client_core_test.cpp — specifications of ClientCore: encoding, reply matching,
// message decoding at any split, protocol errors, and resume bookkeeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "client_core.hpp"

namespace memq {
namespace {

constexpr std::string_view kAck = "{\"success\": true}\r\n";

std::vector<Event> drain(ClientCore& core) {
    std::vector<Event> events;
    while (auto event = core.poll_event()) events.push_back(std::move(*event));
    return events;
}

std::string take(ClientCore& core) {
    std::string out;
    core.take_output(out);
    return out;
}

std::string message_line(std::string_view topic, std::string_view msg, std::int64_t index) {
    return nlohmann::json{{"command", "send"}, {"topic", topic}, {"msg", msg}, {"delivery", "all"}, {"index", index}}
               .dump() +
           "\r\n";
}

// A comparable rendering of an event, for "same events" assertions.
std::string describe(const Event& event) {
    return std::visit(
        [](const auto& e) -> std::string {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, Ack>) {
                return "ack " + std::to_string(e.request);
            } else if constexpr (std::is_same_v<T, Failure>) {
                return "failure " + std::to_string(e.request) + " " + e.reason;
            } else if constexpr (std::is_same_v<T, Message>) {
                return "message " + e.topic + " " + e.msg + " " + std::to_string(e.index) + " " + e.raw;
            } else if constexpr (std::is_same_v<T, ProtocolError>) {
                return "protocol error " + e.description + " " + e.raw;
            } else if constexpr (std::is_same_v<T, Gap>) {
                return "gap " + e.topic + " " + std::to_string(e.expected_index) + " " + std::to_string(e.got_index);
            } else {
                return "reset " + e.topic + " " + std::to_string(e.last_index);
            }
        },
        event);
}

std::vector<std::string> describe_all(const std::vector<Event>& events) {
    std::vector<std::string> out;
    for (const Event& event : events) out.push_back(describe(event));
    return out;
}

// ------------------------------------------------------------------ encoding

TEST(ClientCoreEncoding, SubscribeIsOneLineWithOnlyTheGivenKeys) {
    ClientCore core;
    core.subscribe("orders");
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"orders\"}\n");
}

TEST(ClientCoreEncoding, SubscribeCarriesLastSeenAndCacheWhenGiven) {
    ClientCore core;
    core.subscribe("orders", 41, false);
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"orders\", \"last_seen\": 41, \"cache\": false}\n");
}

TEST(ClientCoreEncoding, UnsubscribeIsOneLine) {
    ClientCore core;
    core.unsubscribe("orders");
    EXPECT_EQ(take(core), "{\"command\": \"unsubscribe\", \"topic\": \"orders\"}\n");
}

TEST(ClientCoreEncoding, SendCarriesDeliveryAndCacheOnlyWhenGiven) {
    ClientCore core;
    core.send("t", "hello", Delivery::one);
    core.send("t", "bye", Delivery::all, false);
    EXPECT_EQ(take(core),
              "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"hello\", \"delivery\": \"one\"}\n"
              "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"bye\", \"delivery\": \"all\", \"cache\": false}\n");
}

TEST(ClientCoreEncoding, QuotesNewlinesAndUnicodeSurviveAsJson) {
    ClientCore core;
    const std::string topic = "a \"quoted\"\ttopic\\";
    const std::string msg = "line one\nline two \xc3\xa9 \xf0\x9f\x98\x80";
    core.send(topic, msg);
    const std::string line = take(core);
    ASSERT_EQ(line.find('\n'), line.size() - 1) << "exactly one line";
    const auto parsed = nlohmann::json::parse(line);
    EXPECT_EQ(parsed["topic"], topic);
    EXPECT_EQ(parsed["msg"], msg);
}

TEST(ClientCoreEncoding, TakeOutputHandsOverEverythingAndEmptiesTheBuffer) {
    ClientCore core;
    core.subscribe("a");
    core.subscribe("b");
    EXPECT_TRUE(core.has_output());
    const std::string out = take(core);
    EXPECT_NE(out.find("\"a\""), std::string::npos);
    EXPECT_NE(out.find("\"b\""), std::string::npos);
    EXPECT_FALSE(core.has_output());
    EXPECT_EQ(core.output_bytes(), 0u);
}

TEST(ClientCoreEncoding, RequestIdsCountUpFromOne) {
    ClientCore core;
    EXPECT_EQ(core.subscribe("a"), 1u);
    EXPECT_EQ(core.send("a", "m"), 2u);
    EXPECT_EQ(core.unsubscribe("a"), 3u);
    EXPECT_EQ(core.pending_requests(), 3u);
}

// ------------------------------------------------------------------ replies

TEST(ClientCoreReplies, AckAnswersTheOldestPendingRequest) {
    ClientCore core;
    const RequestId first = core.subscribe("t");
    core.send("t", "m");
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    const auto& ack = std::get<Ack>(events[0]);
    EXPECT_EQ(ack.request, first);
    EXPECT_EQ(ack.kind, RequestKind::subscribe);
    EXPECT_EQ(core.pending_requests(), 1u);
}

TEST(ClientCoreReplies, FailureCarriesTheBrokersReasonAndLine) {
    ClientCore core;
    const RequestId id = core.send("t", "m");
    core.receive("{\"success\": false, \"reason\": \"Malformed json message\"}\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    const auto& failure = std::get<Failure>(events[0]);
    EXPECT_EQ(failure.request, id);
    EXPECT_EQ(failure.reason, "Malformed json message");
    EXPECT_EQ(failure.raw, "{\"success\": false, \"reason\": \"Malformed json message\"}");
}

TEST(ClientCoreReplies, RepliesMatchRequestsInRequestOrder) {
    ClientCore core;
    const RequestId a = core.send("t", "1");
    const RequestId b = core.send("t", "2");
    const RequestId c = core.send("t", "3");
    core.receive(std::string(kAck) + "{\"success\": false, \"reason\": \"no\"}\r\n" + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(std::get<Ack>(events[0]).request, a);
    EXPECT_EQ(std::get<Failure>(events[1]).request, b);
    EXPECT_EQ(std::get<Ack>(events[2]).request, c);
    EXPECT_EQ(core.pending_requests(), 0u);
}

TEST(ClientCoreReplies, AckWithOtherSpacingIsStillAnAck) {
    ClientCore core;
    core.send("t", "m");
    core.receive("{\"success\":true}\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<Ack>(events[0]));
}

TEST(ClientCoreReplies, MessagesInterleavedWithRepliesTakeNoReplySlot) {
    ClientCore core;
    const RequestId subscribe = core.subscribe("t");
    const RequestId send = core.send("t", "x");
    core.receive(std::string(kAck) + message_line("t", "x", 0) + message_line("t", "y", 1) + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(std::get<Ack>(events[0]).request, subscribe);
    EXPECT_EQ(std::get<Message>(events[1]).msg, "x");
    EXPECT_EQ(std::get<Message>(events[2]).msg, "y");
    EXPECT_EQ(std::get<Ack>(events[3]).request, send);
}

// ------------------------------------------------------------------ messages

TEST(ClientCoreMessages, MessageCarriesEveryFieldAndTheRawLine) {
    ClientCore core;
    const std::string line = R"({"command": "send", "topic": "t", "msg": "hi", "delivery": "one", "cache": true, "index": 7})";
    core.receive(line + "\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    const auto& message = std::get<Message>(events[0]);
    EXPECT_EQ(message.topic, "t");
    EXPECT_EQ(message.msg, "hi");
    EXPECT_EQ(message.index, 7);
    EXPECT_EQ(message.delivery, Delivery::one);
    EXPECT_EQ(message.cache, std::optional<bool>(true));
    EXPECT_EQ(message.raw, line);
}

TEST(ClientCoreMessages, MessageWithoutCacheHasNoCache) {
    ClientCore core;
    core.receive(message_line("t", "hi", 0));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_FALSE(std::get<Message>(events[0]).cache.has_value());
}

TEST(ClientCoreMessages, EscapedTextIsDecoded) {
    ClientCore core;
    core.receive(R"({"command": "send", "topic": "t\u00e9", "msg": "a\"b\nc", "delivery": "all", "index": 0})"
                 "\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Message>(events[0]).topic, "t\xc3\xa9");
    EXPECT_EQ(std::get<Message>(events[0]).msg, "a\"b\nc");
}

TEST(ClientCoreMessages, EveryTwoWaySplitOfAStreamGivesTheSameEvents) {
    const std::string stream = std::string(kAck) + message_line("t", "first", 0) +
                               "{\"success\": false, \"reason\": \"Could not parse json\"}\r\n" +
                               message_line("t", "second \xc3\xa9", 1) + std::string(kAck) + "not json\r\n";
    const auto expected = [&] {
        ClientCore core;
        core.subscribe("t");
        core.send_raw("x\n", true);
        core.send("t", "m");
        core.receive(stream);
        return describe_all(drain(core));
    }();
    ASSERT_EQ(expected.size(), 6u);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        ClientCore core;
        core.subscribe("t");
        core.send_raw("x\n", true);
        core.send("t", "m");
        core.receive(std::string_view(stream).substr(0, cut));
        core.receive(std::string_view(stream).substr(cut));
        EXPECT_EQ(describe_all(drain(core)), expected) << "cut at " << cut;
    }
}

TEST(ClientCoreMessages, ByteAtATimeGivesTheSameEventsAsOneChunk) {
    const std::string stream = message_line("t", "a", 0) + std::string(kAck) + message_line("t", "b", 1);
    ClientCore whole;
    whole.send("t", "m");
    whole.receive(stream);
    ClientCore bytes;
    bytes.send("t", "m");
    for (const char byte : stream) bytes.receive(std::string_view(&byte, 1));
    EXPECT_EQ(describe_all(drain(bytes)), describe_all(drain(whole)));
}

TEST(ClientCoreMessages, BareNewlineEndingsAreAccepted) {
    ClientCore core;
    core.send("t", "m");
    core.receive("{\"success\": true}\n");
    core.receive(message_line("t", "x", 0).substr(0, message_line("t", "x", 0).size() - 2) + "\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<Ack>(events[0]));
    EXPECT_TRUE(std::holds_alternative<Message>(events[1]));
}

// ------------------------------------------------------------------ protocol errors

TEST(ClientCoreProtocolErrors, ReplyWithNoPendingRequestIsAProtocolError) {
    ClientCore core;
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    const auto& error = std::get<ProtocolError>(events[0]);
    EXPECT_EQ(error.raw, "{\"success\": true}");
    EXPECT_FALSE(error.request.has_value());
}

TEST(ClientCoreProtocolErrors, GarbageLineIsAProtocolErrorThatAnswersTheOldestRequest) {
    ClientCore core;
    const RequestId first = core.send("t", "1");
    const RequestId second = core.send("t", "2");
    core.receive("garbage\r\n");
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u);
    const auto& error = std::get<ProtocolError>(events[0]);
    EXPECT_EQ(error.raw, "garbage");
    EXPECT_EQ(error.request, std::optional<RequestId>(first));
    EXPECT_EQ(std::get<Ack>(events[1]).request, second);
}

TEST(ClientCoreProtocolErrors, GarbageLineWithNothingPendingIsStillJustAnEvent) {
    ClientCore core;
    core.receive("\x01\x02 nonsense [\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_FALSE(std::get<ProtocolError>(events[0]).request.has_value());
}

TEST(ClientCoreProtocolErrors, ObjectThatIsNeitherReplyNorMessageIsAProtocolError) {
    ClientCore core;
    const RequestId id = core.send("t", "m");
    core.receive("{\"hello\": 1}\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<ProtocolError>(events[0]).request, std::optional<RequestId>(id));
}

TEST(ClientCoreProtocolErrors, MalformedMessageIsAProtocolErrorThatTakesNoReplySlot) {
    ClientCore core;
    const RequestId id = core.send("t", "m");
    core.receive(R"({"command": "send", "topic": "t", "msg": 5, "delivery": "all", "index": 0})"
                 "\r\n");
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_FALSE(std::get<ProtocolError>(events[0]).request.has_value());
    EXPECT_EQ(std::get<Ack>(events[1]).request, id);
}

TEST(ClientCoreProtocolErrors, LineOverTheLimitIsAProtocolErrorAndInputStops) {
    ClientCore core(ClientCoreOptions{.line_bytes_max = 16});
    core.send("t", "m");
    core.receive(std::string(40, 'x'));
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<ProtocolError>(events[0]));
    EXPECT_EQ(core.pending_requests(), 1u);
}

// ------------------------------------------------------------------ raw lines

TEST(ClientCoreRaw, RawLineExpectingAReplyOwnsTheNextReply) {
    ClientCore core;
    const auto id = core.send_raw("{\"command\": \"nope\"}\n", true);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(take(core), "{\"command\": \"nope\"}\n");
    core.receive("{\"success\": false, \"reason\": \"Malformed json message\"}\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Failure>(events[0]).request, *id);
    EXPECT_EQ(std::get<Failure>(events[0]).kind, RequestKind::raw);
}

TEST(ClientCoreRaw, RawLineWithoutReplyIsNotPending) {
    ClientCore core;
    EXPECT_FALSE(core.send_raw("   \n", false).has_value());
    EXPECT_FALSE(core.send_raw("quit\n", false).has_value());
    EXPECT_EQ(core.pending_requests(), 0u);
    EXPECT_EQ(take(core), "   \nquit\n");
}

// ------------------------------------------------------------------ connection lifecycle and resume

TEST(ClientCoreResume, ResetReturnsPendingRequestsAndDropsPartialInputAndOutput) {
    ClientCore core;
    const RequestId a = core.subscribe("t");
    const RequestId b = core.send("t", "m");
    core.receive("{\"succ");  // half a line of the old connection
    const auto lost = core.reset();
    ASSERT_EQ(lost.size(), 2u);
    EXPECT_EQ(lost[0].first, a);
    EXPECT_EQ(lost[1].first, b);
    EXPECT_EQ(core.pending_requests(), 0u);
    EXPECT_FALSE(core.has_output());
    core.receive(message_line("t", "fresh", 0));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Message>(events[0]).msg, "fresh");
}

TEST(ClientCoreResume, ResubscribeAsksForWhatFollowsTheLastIndexReceived) {
    ClientCore core;
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 4) + message_line("t", "b", 5));
    drain(core);
    take(core);
    core.reset();
    EXPECT_EQ(core.resubscribe_all(), 1u);
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 5}\n");
}

TEST(ClientCoreResume, ResubscribeBeforeAnyMessageKeepsTheOriginalLastSeenAndCache) {
    ClientCore core;
    core.subscribe("a", 9, false);
    core.subscribe("b");
    take(core);
    core.reset();
    EXPECT_EQ(core.resubscribe_all(), 2u);
    const std::string out = take(core);
    EXPECT_NE(out.find("{\"command\": \"subscribe\", \"topic\": \"a\", \"last_seen\": 9, \"cache\": false}\n"),
              std::string::npos);
    EXPECT_NE(out.find("{\"command\": \"subscribe\", \"topic\": \"b\"}\n"), std::string::npos);
}

TEST(ClientCoreResume, ResubscribeAcksAreTaggedAsResubscribe) {
    ClientCore core;
    core.subscribe("t");
    core.reset();
    core.resubscribe_all();
    core.receive(kAck);
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::resubscribe);
}

TEST(ClientCoreResume, FirstMessageAfterResumeThatSkipsIndicesIsReportedAsAGap) {
    ClientCore core;
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 3));
    drain(core);
    core.reset();
    core.resubscribe_all();
    core.receive(std::string(kAck) + message_line("t", "b", 10) + message_line("t", "c", 11));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 4u);
    const auto& gap = std::get<Gap>(events[1]);
    EXPECT_EQ(gap.topic, "t");
    EXPECT_EQ(gap.expected_index, 4);
    EXPECT_EQ(gap.got_index, 10);
    EXPECT_EQ(std::get<Message>(events[2]).index, 10);
    EXPECT_EQ(std::get<Message>(events[3]).index, 11);
}

TEST(ClientCoreResume, AMessageBelowLastSeenAfterAResumeIsNoGapEvenAtTheLargestLastSeen) {
    ClientCore core;
    core.subscribe("t", std::numeric_limits<std::int64_t>::max());
    core.receive(kAck);
    drain(core);
    core.reset();
    core.resubscribe_all();
    core.receive(std::string(kAck) + message_line("t", "fresh topic", 0));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_TRUE(std::holds_alternative<Ack>(events[0]));
    EXPECT_EQ(std::get<Message>(events[1]).index, 0) << "an index below last_seen is not a gap";
}

TEST(ClientCoreResume, ResumeThatContinuesExactlyReportsNoGap) {
    ClientCore core;
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 3));
    drain(core);
    core.reset();
    core.resubscribe_all();
    core.receive(std::string(kAck) + message_line("t", "b", 4));
    for (const Event& event : drain(core)) EXPECT_FALSE(std::holds_alternative<Gap>(event)) << describe(event);
}

TEST(ClientCoreResume, GapsAreOnlyCheckedOnTheFirstMessageAfterAResume) {
    ClientCore core;
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 0) + message_line("t", "b", 5));
    for (const Event& event : drain(core)) EXPECT_FALSE(std::holds_alternative<Gap>(event)) << describe(event);
}

TEST(ClientCoreResume, DuplicatesAreDroppedByIndexWhenAsked) {
    ClientCore core(ClientCoreOptions{.drop_duplicates = true});
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 0) + message_line("t", "b", 1) +
                 message_line("t", "a", 0) + message_line("t", "c", 2));
    std::vector<std::int64_t> indices;
    for (const Event& event : drain(core)) {
        if (const auto* message = std::get_if<Message>(&event)) indices.push_back(message->index);
    }
    EXPECT_EQ(indices, (std::vector<std::int64_t>{0, 1, 2}));
}

TEST(ClientCoreResume, DuplicatesAreKeptByDefault) {
    ClientCore core;
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 0) + message_line("t", "a", 0));
    EXPECT_EQ(drain(core).size(), 3u);
}

TEST(ClientCoreResume, RefusedSubscribeIsForgotten) {
    ClientCore core;
    core.subscribe("t");
    EXPECT_TRUE(core.is_subscribed("t"));
    core.receive("{\"success\": false, \"reason\": \"Could not decode input as UTF-8\"}\r\n");
    EXPECT_FALSE(core.is_subscribed("t"));
    EXPECT_EQ(core.resubscribe_all(), 0u);
}

TEST(ClientCoreResume, UnsubscribeForgetsTheTopic) {
    ClientCore core;
    core.subscribe("t");
    core.unsubscribe("t");
    EXPECT_FALSE(core.is_subscribed("t"));
    EXPECT_EQ(core.subscriptions(), 0u);
}

TEST(ClientCoreResume, LastIndexFollowsTheMessagesReceived) {
    ClientCore core;
    core.subscribe("t");
    EXPECT_FALSE(core.last_index("t").has_value());
    core.receive(std::string(kAck) + message_line("t", "a", 12));
    EXPECT_EQ(core.last_index("t"), std::optional<std::int64_t>(12));
}

// ------------------------------------------------------------------ broker identity (hello) and Reset

constexpr std::string_view kHello = "{\"command\": \"hello\"}\n";
constexpr std::string_view kMalformed = "{\"success\": false, \"reason\": \"Malformed json message\"}\r\n";

std::string hello_reply(std::string_view incarnation) {
    return "{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"" + std::string(incarnation) + "\"}\r\n";
}

// A core with drop_duplicates (as resuming clients use) whose first session
// learned `first_reply`, subscribed to "t", and received index `last` there.
ClientCore core_that_saw(std::string_view first_reply, std::int64_t last) {
    ClientCore core(ClientCoreOptions{.drop_duplicates = true});
    core.start_session();
    core.receive(first_reply);
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "old", last));
    drain(core);
    take(core);
    return core;
}

std::string holes_line(std::string_view topic, std::int64_t after) {
    return "{\"command\": \"holes\", \"topic\": \"" + std::string(topic) + "\", \"after\": " + std::to_string(after) +
           "}\n";
}

std::string holes_reply(std::string_view holes) {
    return "{\"success\": true, \"holes\": " + std::string(holes) + "}\r\n";
}

// Reconnects `core`: reset, a new session, its hello answered by `reply`.
void reconnect(ClientCore& core, std::string_view reply) {
    core.reset();
    core.start_session();
    take(core);
    core.receive(reply);
}

TEST(ClientCoreHello, StartSessionPutsHelloFirstInFrontOfWhatIsQueued) {
    ClientCore core;
    core.subscribe("t");
    core.start_session();
    EXPECT_EQ(take(core), std::string(kHello) + "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
    EXPECT_TRUE(core.hello_pending());
}

TEST(ClientCoreHello, TheHelloReplyIsConsumedAndItsIncarnationKept) {
    ClientCore core;
    core.start_session();
    const RequestId subscribe = core.subscribe("t");
    core.receive(hello_reply("00000000000000aa") + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u) << "no event for the hello itself";
    EXPECT_EQ(std::get<Ack>(events[0]).request, subscribe);
    EXPECT_FALSE(core.hello_pending());
    EXPECT_EQ(core.broker_incarnation(), std::optional<std::string>("00000000000000aa"));
}

TEST(ClientCoreHello, AFailureReplyMeansABrokerWithoutIdentity) {
    ClientCore core;
    core.start_session();
    core.receive(kMalformed);
    EXPECT_TRUE(drain(core).empty());
    EXPECT_FALSE(core.hello_pending());
    EXPECT_FALSE(core.broker_incarnation().has_value());
}

TEST(ClientCoreHello, AckOfARawLineCarriesTheWholeReplyUnlessItIsThePlainAck) {
    ClientCore core;
    core.send_raw("{\"command\": \"hello\"}\n", true);
    core.send_raw("{\"command\": \"unsubscribe\", \"topic\": \"t\"}\n", true);
    core.receive(hello_reply("00000000000000aa") + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::raw) << "a raw hello is the caller's, not the core's";
    EXPECT_EQ(std::get<Ack>(events[0]).raw, trim_line(hello_reply("00000000000000aa")));
    EXPECT_EQ(std::get<Ack>(events[1]).raw, "");
    EXPECT_FALSE(core.broker_incarnation().has_value());
}

TEST(ClientCoreHello, ResumeWaitsForTheHelloReply) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    core.reset();
    core.start_session();
    EXPECT_EQ(take(core), kHello) << "no subscribe before the broker is known";
}

TEST(ClientCoreHello, SameIncarnationResubscribesWithLastSeen) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    EXPECT_EQ(take(core), holes_line("t", 19) + "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 19}\n");
    core.receive(holes_reply("[]") + std::string(kAck) + message_line("t", "next", 20));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u) << describe_all(events).back();
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::resubscribe);
    EXPECT_EQ(std::get<Message>(events[1]).index, 20);
}

TEST(ClientCoreHello, ChangedIncarnationReportsAResetAndResubscribesWithoutLastSeen) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000bb"));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(describe(events[0]), "reset t 19");
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
    EXPECT_FALSE(core.last_index("t").has_value());
    EXPECT_EQ(core.broker_incarnation(), std::optional<std::string>("00000000000000bb"));
}

TEST(ClientCoreHello, AfterAResetTheNewBrokersMessagesFromIndexZeroAreDelivered) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000bb"));
    drain(core);
    core.receive(std::string(kAck) + message_line("t", "new0", 0) + message_line("t", "new1", 1));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(std::get<Message>(events[1]).msg, "new0") << "index 0 is no duplicate of the old broker's 0..19";
    EXPECT_EQ(std::get<Message>(events[2]).msg, "new1");
}

TEST(ClientCoreHello, AfterAResetAFirstIndexPastZeroIsAGapFromZero) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000bb"));
    drain(core);
    core.receive(std::string(kAck) + message_line("t", "new5", 5));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(describe(events[1]), "gap t 0 5") << "the new broker's cache had dropped 0..4";
}

TEST(ClientCoreHello, ChangedIncarnationReportsNoResetForATopicThatReceivedNothing) {
    ClientCore core(ClientCoreOptions{.drop_duplicates = true});
    core.start_session();
    core.receive(hello_reply("00000000000000aa"));
    core.subscribe("t");
    core.receive(kAck);
    drain(core);
    take(core);
    reconnect(core, hello_reply("00000000000000bb"));
    EXPECT_TRUE(drain(core).empty());
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
}

TEST(ClientCoreHello, ASwitchFromAnIdentityToNoneIsAReset) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, kMalformed);
    EXPECT_EQ(describe_all(drain(core)), std::vector<std::string>{"reset t 19"});
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
}

TEST(ClientCoreHello, ATopicSubscribedAgainBeforeTheHelloReplyIsNotResumed) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    core.reset();
    core.start_session();
    const RequestId subscribe = core.subscribe("t", 30);
    take(core);
    core.receive(hello_reply("00000000000000bb"));
    EXPECT_FALSE(core.has_output()) << "no resubscribe, and no reset: the caller said where it stands";
    core.receive(holes_reply("[]") + std::string(kAck));  // the subscribe with last_seen asked for holes
    EXPECT_EQ(describe_all(drain(core)), std::vector<std::string>{"ack " + std::to_string(subscribe)});
}

TEST(ClientCoreHello, AGarbageHelloReplyIsAProtocolErrorAndResumeGoesOnWithoutIdentity) {
    ClientCore core = core_that_saw(kMalformed, 19);
    core.reset();
    core.start_session();
    take(core);
    core.receive("nonsense\r\n");
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<ProtocolError>(events[0]).kind, std::optional<RequestKind>(RequestKind::hello));
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 19}\n");
}

// ---- without identity (aiomemq): the first index after the resume decides

// Resumed against a broker that answers hello with a failure, both times.
ClientCore resumed_without_identity(std::int64_t last) {
    ClientCore core = core_that_saw(kMalformed, last);
    reconnect(core, kMalformed);
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": " + std::to_string(last) + "}\n");
    core.receive(kAck);
    EXPECT_EQ(drain(core).size(), 1u);
    return core;
}

TEST(ClientCoreFallback, FirstIndexAtLastSeenIsAResetAndTheMessageIsDropped) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "new19", 19));
    EXPECT_EQ(describe_all(drain(core)), std::vector<std::string>{"reset t 19"});
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n") << "a fresh subscribe";
}

TEST(ClientCoreFallback, FirstIndexOneBelowLastSeenIsAReset) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "new18", 18));
    EXPECT_EQ(describe_all(drain(core)), std::vector<std::string>{"reset t 19"});
}

TEST(ClientCoreFallback, FirstIndexRightAfterLastSeenIsNoReset) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "next", 20));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Message>(events[0]).index, 20);
    EXPECT_FALSE(core.has_output());
}

TEST(ClientCoreFallback, FirstIndexPastLastSeenPlusOneIsAGapNotAReset) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "later", 25));
    EXPECT_EQ(describe(drain(core).at(0)), "gap t 20 25");
}

TEST(ClientCoreFallback, OnlyTheFirstMessageAfterTheResumeIsChecked) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "next", 20) + message_line("t", "again", 3));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u) << "3 is a duplicate to drop, not a reset";
    EXPECT_EQ(std::get<Message>(events[0]).index, 20);
}

TEST(ClientCoreFallback, AfterAResetMessagesAreDroppedUntilTheFreshSubscribeIsAcknowledged) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "new0", 0));
    drain(core);
    core.receive(message_line("t", "new1", 1));  // live, before the fresh subscribe is answered
    EXPECT_TRUE(drain(core).empty());
    // The fresh subscribe's ack, then the new broker's cache replayed, then live.
    core.receive(std::string(kAck) + message_line("t", "new0", 0) + message_line("t", "new1", 1) +
                 message_line("t", "new2", 2));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::resubscribe);
    EXPECT_EQ(std::get<Message>(events[1]).msg, "new0");
    EXPECT_EQ(std::get<Message>(events[2]).msg, "new1");
    EXPECT_EQ(std::get<Message>(events[3]).msg, "new2");
    EXPECT_EQ(core.last_index("t"), std::optional<std::int64_t>(2));
}

TEST(ClientCoreFallback, AConnectionLostWhileDroppingResumesFromTheStartOfTheCacheWithoutASecondReset) {
    ClientCore core = resumed_without_identity(19);
    core.receive(message_line("t", "new0", 0));  // the Reset; the fresh subscribe goes out ...
    drain(core);
    reconnect(core, kMalformed);                  // ... and is lost with the connection
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
    core.receive(std::string(kAck) + message_line("t", "new0", 0));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u) << describe_all(events).back();
    EXPECT_EQ(std::get<Message>(events[1]).msg, "new0");
}

TEST(ClientCoreFallback, AResetTopicLosesOnlyItsOwnMessages) {
    ClientCore core = core_that_saw(kMalformed, 19);
    core.subscribe("u");
    core.receive(std::string(kAck) + message_line("u", "u7", 7));
    drain(core);
    reconnect(core, kMalformed);
    take(core);
    core.receive(std::string(kAck) + std::string(kAck) + message_line("t", "new0", 0) + message_line("u", "u8", 8));
    std::vector<std::string> seen = describe_all(drain(core));
    EXPECT_EQ(std::count(seen.begin(), seen.end(), "reset t 19"), 1);
    EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](const std::string& e) { return e.rfind("message u u8 8", 0) == 0; }), 1);
}

// ------------------------------------------------------------------ holes (the memq extension)

// A core that saw index `last` of "t" on memqd 00000000000000aa, reconnected
// to the same broker life, whose holes query was answered with `holes` and
// whose resubscribe was acknowledged.
ClientCore resumed_with_holes(std::int64_t last, std::string_view holes) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), last);
    reconnect(core, hello_reply("00000000000000aa"));
    take(core);
    core.receive(holes_reply(holes) + std::string(kAck));
    drain(core);
    return core;
}

std::vector<std::string> gaps_of(const std::vector<Event>& events) {
    std::vector<std::string> gaps;
    for (const Event& event : events) {
        if (std::holds_alternative<Gap>(event)) gaps.push_back(describe(event));
    }
    return gaps;
}

TEST(ClientCoreHoles, AResumeFromTheSameBrokerLifeAsksForHolesAfterTheLastIndexBeforeItSubscribes) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    EXPECT_EQ(take(core), holes_line("t", 19) + "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 19}\n");
}

TEST(ClientCoreHoles, TheHolesReplyMakesNoEvent) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    core.receive(holes_reply("[[30, 39]]") + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u) << describe_all(events).back();
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::resubscribe);
    EXPECT_EQ(core.pending_requests(), 0u);
}

TEST(ClientCoreHoles, AResumeWithoutALastIndexAsksForNoHoles) {
    ClientCore core(ClientCoreOptions{.drop_duplicates = true});
    core.start_session();
    core.receive(hello_reply("00000000000000aa"));
    core.subscribe("t");
    take(core);
    reconnect(core, hello_reply("00000000000000aa"));
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
}

TEST(ClientCoreHoles, AResumeIntoANewBrokerLifeAsksForNoHoles) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000bb"));
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\"}\n");
}

TEST(ClientCoreHoles, ABrokerWithoutIdentityIsNotAskedForHoles) {
    ClientCore core = core_that_saw(kMalformed, 19);
    reconnect(core, kMalformed);
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 19}\n");
}

TEST(ClientCoreHoles, SubscribeWithLastSeenAfterAHelloAsksForHolesFirst) {
    ClientCore core;
    core.start_session();
    take(core);
    core.receive(hello_reply("00000000000000aa"));
    const RequestId subscribe = core.subscribe("t", 40);
    EXPECT_EQ(take(core), holes_line("t", 40) + "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 40}\n");
    core.receive(holes_reply("[]") + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<Ack>(events[0]).request, subscribe);
}

TEST(ClientCoreHoles, SubscribeWithLastSeenWhileTheHelloIsUnansweredAsksForHolesToo) {
    ClientCore core;
    core.start_session();
    core.subscribe("t", 0);
    EXPECT_EQ(take(core), std::string(kHello) + holes_line("t", 0) +
                              "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 0}\n");
}

TEST(ClientCoreHoles, SubscribeWithLastSeenMinusOneOrNoneAsksForNoHoles) {
    ClientCore core;
    core.start_session();
    take(core);
    core.receive(hello_reply("00000000000000aa"));
    core.subscribe("t", -1);
    core.subscribe("u");
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": -1}\n"
                          "{\"command\": \"subscribe\", \"topic\": \"u\"}\n");
}

TEST(ClientCoreHoles, SubscribeWithLastSeenWithoutAHelloOnThisConnectionAsksForNoHoles) {
    ClientCore plain;
    plain.subscribe("t", 40);
    EXPECT_EQ(take(plain), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 40}\n");
    ClientCore reconnected;
    reconnected.start_session();
    reconnected.receive(hello_reply("00000000000000aa"));
    reconnected.reset();  // the next connection sent no hello
    reconnected.subscribe("t", 40);
    EXPECT_EQ(take(reconnected), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 40}\n");
}

TEST(ClientCoreHoles, SubscribeWithLastSeenToABrokerWithoutIdentityAsksForNoHoles) {
    ClientCore core;
    core.start_session();
    take(core);
    core.receive(kMalformed);
    core.subscribe("t", 40);
    EXPECT_EQ(take(core), "{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 40}\n");
}

TEST(ClientCoreHoles, AHoleTheStreamPassesIsAGapCoveringExactlyIt) {
    ClientCore core = resumed_with_holes(19, "[[30, 39]]");
    core.receive(message_line("t", "a", 20) + message_line("t", "b", 29) + message_line("t", "c", 40));
    const auto events = drain(core);
    EXPECT_EQ(describe_all(events), (std::vector<std::string>{
                                        describe(events[0]), describe(events[1]), "gap t 30 40", describe(events[3])}));
    EXPECT_EQ(std::get<Message>(events[3]).index, 40) << "the gap comes before the message past it";
}

TEST(ClientCoreHoles, AHoleEndingJustBelowAMessageIsAGapUpToThatMessage) {
    ClientCore core = resumed_with_holes(19, "[[21, 21]]");
    core.receive(message_line("t", "a", 20) + message_line("t", "b", 22));
    EXPECT_EQ(gaps_of(drain(core)), std::vector<std::string>{"gap t 21 22"});
}

TEST(ClientCoreHoles, AHoleStartingAtTheNextMessageIsNotPassedByIt) {
    ClientCore core = resumed_with_holes(19, "[[21, 25]]");
    core.receive(message_line("t", "a", 20));
    EXPECT_TRUE(gaps_of(drain(core)).empty());
    core.receive(message_line("t", "b", 26));
    EXPECT_EQ(gaps_of(drain(core)), std::vector<std::string>{"gap t 21 26"});
}

TEST(ClientCoreHoles, EachHoleIsReportedOnceAndInOrder) {
    ClientCore core = resumed_with_holes(19, "[[25, 30], [40, 49]]");
    core.receive(message_line("t", "a", 20) + message_line("t", "b", 50) + message_line("t", "c", 51));
    EXPECT_EQ(gaps_of(drain(core)), (std::vector<std::string>{"gap t 25 31", "gap t 40 50"}));
    core.receive(message_line("t", "d", 60));
    EXPECT_TRUE(gaps_of(drain(core)).empty()) << "consumed holes are not reported again";
}

TEST(ClientCoreHoles, TheFirstMessagesGapCoversTheHolesBelowItWithoutASecondReport) {
    ClientCore core = resumed_with_holes(19, "[[21, 30]]");
    core.receive(message_line("t", "a", 31));
    EXPECT_EQ(gaps_of(drain(core)), std::vector<std::string>{"gap t 20 31"});
}

TEST(ClientCoreHoles, AHoleAboveTheFirstMessagesGapIsStillReported) {
    ClientCore core = resumed_with_holes(19, "[[25, 30]]");
    core.receive(message_line("t", "a", 22) + message_line("t", "b", 31));
    EXPECT_EQ(gaps_of(drain(core)), (std::vector<std::string>{"gap t 20 22", "gap t 25 31"}));
}

TEST(ClientCoreHoles, OnlyThePartAboveTheLastIndexReceivedIsReported) {
    ClientCore core;
    core.start_session();
    core.receive(hello_reply("00000000000000aa"));
    core.subscribe("t", 19);
    core.receive(holes_reply("[[10, 25]]") + std::string(kAck) + message_line("t", "a", 26));
    EXPECT_EQ(gaps_of(drain(core)), std::vector<std::string>{"gap t 20 26"});
}

TEST(ClientCoreHoles, AFailureReplyMeansNoHoles) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    core.receive(std::string(kMalformed) + std::string(kAck) + message_line("t", "a", 20) + message_line("t", "b", 40));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 3u) << describe_all(events).back();
    EXPECT_TRUE(gaps_of(events).empty());
    EXPECT_EQ(std::get<Ack>(events[0]).kind, RequestKind::resubscribe);
}

TEST(ClientCoreHoles, AHolesReplyWithoutAHolesArrayIsAProtocolError) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    core.receive(std::string(kAck) + std::string(kAck));
    const auto events = drain(core);
    ASSERT_EQ(events.size(), 2u) << describe_all(events).back();
    EXPECT_EQ(describe(events[0]), "protocol error holes reply without a \"holes\" array {\"success\": true}");
    EXPECT_EQ(std::get<Ack>(events[1]).kind, RequestKind::resubscribe);
}

TEST(ClientCoreHoles, HolesOutOfOrderOrBackwardsAreAProtocolError) {
    for (const std::string_view holes : {"[[30, 29]]", "[[30, 39], [35, 49]]", "[[1]]", "[[1, \"2\"]]",
                                         "[[1, 9223372036854775808]]"}) {
        ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
        reconnect(core, hello_reply("00000000000000aa"));
        core.receive(holes_reply(holes) + std::string(kAck) + message_line("t", "a", 20) + message_line("t", "b", 60));
        const auto events = drain(core);
        ASSERT_FALSE(events.empty());
        EXPECT_TRUE(std::holds_alternative<ProtocolError>(events[0])) << holes;
        EXPECT_TRUE(gaps_of(events).empty()) << holes << ": no hole is kept from a bad reply";
    }
}

TEST(ClientCoreHoles, AHolesReplyForATopicUnsubscribedMeanwhileIsDropped) {
    ClientCore core = core_that_saw(hello_reply("00000000000000aa"), 19);
    reconnect(core, hello_reply("00000000000000aa"));
    core.unsubscribe("t");
    core.receive(holes_reply("[[30, 39]]") + std::string(kAck) + std::string(kAck) + message_line("t", "a", 40));
    EXPECT_TRUE(gaps_of(drain(core)).empty());
}

TEST(ClientCoreHoles, ASubscribeWithoutLastSeenForgetsTheHoles) {
    ClientCore core = resumed_with_holes(19, "[[30, 39]]");
    core.subscribe("t");
    core.receive(std::string(kAck) + message_line("t", "a", 40));
    EXPECT_TRUE(gaps_of(drain(core)).empty());
}

TEST(ClientCoreHoles, SubscribeWithLastSeenThatAsksForHolesChecksItsFirstMessageToo) {
    ClientCore core;
    core.start_session();
    core.receive(hello_reply("00000000000000aa"));
    core.subscribe("t", 19);
    core.receive(holes_reply("[]") + std::string(kAck) + message_line("t", "a", 31) + message_line("t", "b", 40));
    EXPECT_EQ(gaps_of(drain(core)), std::vector<std::string>{"gap t 20 31"}) << "a hole pruned before the query";
}

TEST(ClientCoreHoles, SubscribeWithLastSeenThatAsksForNoHolesChecksNothing) {
    ClientCore core;
    core.subscribe("t", 19);
    core.receive(std::string(kAck) + message_line("t", "a", 31));
    EXPECT_TRUE(gaps_of(drain(core)).empty());
}

}  // namespace
}  // namespace memq
