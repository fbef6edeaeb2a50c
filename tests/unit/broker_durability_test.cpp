// broker_durability_test.cpp — specifications of the core's durable topics:
// what it writes, what waits for a sync, what recovery gives back, and what a
// failing disk does (broker.hpp "Durable topics", durability.hpp).
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "crc32c.hpp"

namespace memq_test {
namespace {

using memq::CloseReason;
using memq::Durability;
using memq::Limits;
using memq::SyncPolicy;

Durability durable(SyncPolicy policy = SyncPolicy::interval) {
    Durability durability;
    durability.enabled = true;
    durability.policy = policy;
    durability.index_reserve_ahead = 8;
    return durability;
}

std::string quit_line() { return "quit\n"; }

// A harness on a new data dir whose first snapshot is synced.
struct Fresh : BrokerHarness {
    explicit Fresh(const Limits& limits = {}, const Durability& durability = durable()) : BrokerHarness(limits, durability) {
        sync();
    }
};

TEST(DurableBroker, in_memory_broker_writes_nothing) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, send_line("t", "m"));
    memq::storage::StorageWrite write;
    EXPECT_FALSE(h.broker().poll_storage(write));
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
}

TEST(DurableBroker, first_write_of_a_new_data_dir_is_a_snapshot_with_the_header) {
    BrokerHarness h(Limits{}, durable(), {}, 42);
    ASSERT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.unsynced()[0].replace);
    std::uint64_t incarnation = 0;
    EXPECT_EQ(memq::storage::read_header(h.unsynced()[0].bytes, incarnation), memq::storage::HeaderStatus::ok);
    EXPECT_EQ(incarnation, 42u);
}

TEST(DurableBroker, first_send_to_a_topic_waits_until_its_reservation_is_synced) {
    Fresh h;
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    EXPECT_EQ(h.take(2), std::vector<json>{ack()});
    h.receive(1, send_line("t", "m"));
    EXPECT_TRUE(h.take(1).empty());
    EXPECT_TRUE(h.take(2).empty());
    ASSERT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.unsynced()[0].sync_now);
    h.sync();
    EXPECT_EQ(h.take(2), std::vector<json>{message("t", "m", "all", 0)});
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
    EXPECT_EQ(h.broker().stats().sends_stalled, 1u);
}

TEST(DurableBroker, lines_after_a_waiting_send_keep_their_order) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "m") + subscribe_line("u") + send_line("u", "x"));
    EXPECT_TRUE(h.take(1).empty());
    h.sync();  // t's reservation; then u's send waits for its own
    EXPECT_EQ(h.take(1), (std::vector<json>{ack(), ack()}));
    h.sync();
    EXPECT_EQ(h.take(1), (std::vector<json>{message("u", "x", "all", 0), ack()}));
}

TEST(DurableBroker, sends_within_a_synced_reservation_do_not_wait) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();
    h.take(1);
    h.receive(1, send_line("t", "1") + send_line("t", "2") + send_line("t", "3"));
    EXPECT_EQ(h.take(1), (std::vector<json>{ack(), ack(), ack()}));
}

TEST(DurableBroker, next_reservation_is_written_when_half_of_one_is_used) {
    Fresh h;  // reserve ahead 8
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();  // reserved up to 8
    for (int i = 1; i < 4; ++i) h.receive(1, send_line("t", std::to_string(i)));
    EXPECT_EQ(h.broker().topics().find("t")->reserved_until, 8);
    h.receive(1, send_line("t", "4"));  // index 4 + 8/2 reaches 8
    EXPECT_EQ(h.broker().topics().find("t")->reserved_until, 12);
    h.sync();
    for (int i = 5; i < 12; ++i) {
        h.receive(1, send_line("t", std::to_string(i)));
        h.sync();
    }
    EXPECT_EQ(h.take(1).size(), 12u);
    EXPECT_EQ(h.broker().stats().sends_stalled, 1u);  // only the topic's first send waited
}

TEST(DurableBroker, recovery_restores_every_topic_index_and_cache_byte_for_byte) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("a", "a0") + send_line("b", "b0") + send_line("a", "a1"));
    h.sync();  // a's reservation: a0 goes, b0 waits
    h.sync();  // b's: b0 and a1 go
    h.sync();  // their records
    EXPECT_TRUE(h.unsynced().empty());
    std::vector<std::string> before;
    h.broker().topics().for_each_cached(
        [&](const memq::Topic& topic, const memq::CachedMessage& m) { before.push_back(std::string(topic.name) + *m.frame); });

    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    std::vector<std::string> after;
    recovered.broker().topics().for_each_cached(
        [&](const memq::Topic& topic, const memq::CachedMessage& m) { after.push_back(std::string(topic.name) + *m.frame); });
    EXPECT_EQ(after, before);
    EXPECT_EQ(after.size(), 3u);
    EXPECT_EQ(recovered.broker().incarnation(), h.broker().incarnation());
    recovered.connect(1);
    recovered.receive(1, subscribe_line("a", {{"last_seen", -1}}));
    EXPECT_EQ(recovered.take(1), (std::vector<json>{ack(), message("a", "a0", "all", 0), message("a", "a1", "all", 1)}));
}

// The frames a recovered cache holds, with their topics.
std::vector<std::string> cached_frames(BrokerHarness& h) {
    std::vector<std::string> frames;
    h.broker().topics().for_each_cached(
        [&](const memq::Topic& topic, const memq::CachedMessage& m) { frames.push_back(std::string(topic.name) + *m.frame); });
    return frames;
}

// Lines whose frames the log record must rebuild exactly: a msg literal the
// sender escaped another way than memqd does (so the record takes it from the
// frame), a topic with an escape, delivery one with nobody to take it, and a
// cache field.
const std::string kUnusualSends =
    "{\"command\": \"send\", \"topic\": \"t\\n1\", \"msg\": \"caf\\u00e9 \\/\", \"delivery\": \"one\", \"cache\": true}\n"
    "{\"command\": \"send\", \"topic\": \"t\\n1\", \"msg\": \"\\\"quoted\\\"\", \"delivery\": \"all\"}\n"
    "{\"delivery\": \"all\", \"msg\": \"keys in another order\", \"topic\": \"u\", \"command\": \"send\"}\n";

TEST(DurableBroker, recovery_rebuilds_unusual_frames_byte_for_byte_from_appended_records) {
    Fresh h;
    h.connect(1);
    h.receive(1, kUnusualSends);
    for (int i = 0; i < 3; ++i) h.sync();
    ASSERT_EQ(cached_frames(h).size(), 3u);
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(cached_frames(recovered), cached_frames(h));
}

TEST(DurableBroker, recovery_rebuilds_unusual_frames_byte_for_byte_from_a_snapshot) {
    Fresh h;
    h.connect(1);
    h.receive(1, kUnusualSends);
    for (int i = 0; i < 3; ++i) h.sync();
    h.broker().request_snapshot(true);
    h.receive(1, "");
    ASSERT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.unsynced()[0].replace);
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(cached_frames(recovered), cached_frames(h));
    EXPECT_EQ(cached_frames(recovered).size(), 3u);
}

// A data dir written before version 2: its messages are framed records.
TEST(DurableBroker, recovery_reads_a_version_1_log_of_framed_messages) {
    std::string log = "memqlog\n";
    const auto put_le = [&log](std::uint64_t value, int bytes) {
        for (int i = 0; i < bytes; ++i) log.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    };
    put_le(1, 4);         // version 1
    put_le(0xABCDEF, 8);  // incarnation
    put_le(memq::storage::crc32c(0, log.data(), log.size()), 4);
    const std::string frame0 = memq::encode_message(memq::Send{"t", "old 0", memq::Delivery::all, std::nullopt}, 0);
    const std::string frame1 = memq::encode_message(memq::Send{"t", "old 1", memq::Delivery::one, true}, 1);
    memq::storage::append_reserve(log, "t", 4);
    memq::storage::append_framed_message(log, "t", 0, memq::Delivery::all, frame0);
    memq::storage::append_framed_message(log, "t", 1, memq::Delivery::one, frame1);
    BrokerHarness recovered(Limits{}, durable(), log);
    EXPECT_EQ(cached_frames(recovered), (std::vector<std::string>{"t" + frame0, "t" + frame1}));
    EXPECT_EQ(recovered.broker().incarnation(), 0xABCDEFu);
    EXPECT_EQ(recovered.next_index("t"), 4);
    // Its first write is a version 2 snapshot holding the same messages.
    ASSERT_FALSE(recovered.unsynced().empty());
    EXPECT_TRUE(recovered.unsynced()[0].replace) << "a version 1 log is rewritten, not appended to";
    recovered.sync();
    std::uint64_t incarnation = 0;
    std::uint32_t version = 0;
    EXPECT_EQ(memq::storage::read_header(recovered.synced_log(), incarnation, &version), memq::storage::HeaderStatus::ok);
    EXPECT_EQ(version, memq::storage::kLogVersion);
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    EXPECT_EQ(cached_frames(again), cached_frames(recovered));
}

// A version 1 frame memqd could not say again as a message record (not of
// its shape: only a foreign or crafted log has one) is not cached; its index
// still counts.
TEST(DurableBroker, recovery_caches_no_version_1_frame_of_another_shape) {
    std::string log = "memqlog\n";
    const auto put_le = [&log](std::uint64_t value, int bytes) {
        for (int i = 0; i < bytes; ++i) log.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    };
    put_le(1, 4);
    put_le(7, 8);
    put_le(memq::storage::crc32c(0, log.data(), log.size()), 4);
    const std::string good = memq::encode_message(memq::Send{"t", "good", memq::Delivery::all, std::nullopt}, 0);
    memq::storage::append_reserve(log, "t", 4);
    memq::storage::append_framed_message(log, "t", 0, memq::Delivery::all, good);
    memq::storage::append_framed_message(log, "t", 1, memq::Delivery::all, "not a frame\r\n");
    memq::storage::append_framed_message(log, "t", 2, memq::Delivery::all,
                                         memq::encode_message(memq::Send{"t", "x", memq::Delivery::all, false}, 2));
    BrokerHarness recovered(Limits{}, durable(), log);
    EXPECT_EQ(cached_frames(recovered), (std::vector<std::string>{"t" + good}));
    EXPECT_EQ(recovered.next_index("t"), 4);
    recovered.sync();  // the snapshot after recovery: the check inside it holds
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    EXPECT_EQ(cached_frames(again), cached_frames(recovered));
}

TEST(DurableBroker, after_a_crash_a_topic_goes_on_past_its_reservation_never_reusing_an_index) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();  // reserved up to 8
    h.sync();  // message 0's record
    h.receive(1, send_line("t", "1") + send_line("t", "2"));  // written, never synced: lost by the crash
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(recovered.next_index("t"), 8);
    recovered.sync();
    recovered.connect(1);
    recovered.receive(1, subscribe_line("t", {{"last_seen", -1}}) + send_line("t", "after"));
    recovered.sync();
    EXPECT_EQ(recovered.take(1), (std::vector<json>{ack(), message("t", "0", "all", 0), message("t", "after", "all", 8), ack()}));
}

TEST(DurableBroker, always_policy_acks_a_send_only_once_its_record_is_synced) {
    Fresh h(Limits{}, durable(SyncPolicy::always));
    h.connect(1);
    h.connect(2);
    h.receive(2, subscribe_line("t"));
    h.receive(1, send_line("t", "0"));
    h.sync();  // the reservation, then the record
    h.sync();
    h.take(1);
    h.take(2);
    h.receive(1, send_line("t", "1"));
    EXPECT_EQ(h.take(2), std::vector<json>{message("t", "1", "all", 1)});  // deliveries do not wait
    EXPECT_TRUE(h.take(1).empty());
    ASSERT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.unsynced()[0].sync_now);
    h.sync();
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
}

TEST(DurableBroker, always_policy_one_sync_covers_every_send_of_a_turn) {
    Fresh h(Limits{}, durable(SyncPolicy::always));
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();
    h.sync();
    h.take(1);
    std::string lines;
    for (int i = 1; i <= 3; ++i) lines += send_line("t", std::to_string(i));
    h.receive(1, lines);
    EXPECT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.take(1).empty());
    h.sync();
    EXPECT_EQ(h.take(1).size(), 3u);
}

TEST(DurableBroker, always_policy_a_send_not_cached_is_acked_without_a_sync) {
    Fresh h(Limits{}, durable(SyncPolicy::always));
    h.connect(1);
    h.receive(1, send_line("t", "0", "all", {{"cache", false}}));
    h.sync();  // the reservation
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
    h.receive(1, send_line("t", "1", "all", {{"cache", false}}));
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
}

TEST(DurableBroker, failed_storage_refuses_sends_and_keeps_serving_replays) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();
    h.take(1);
    h.fail_storage();
    h.receive(1, send_line("t", "1") + subscribe_line("t", {{"last_seen", -1}}));
    EXPECT_EQ(h.take(1), (std::vector<json>{failure("Storage unavailable"), ack(), message("t", "0", "all", 0)}));
    EXPECT_FALSE(h.broker().storage_healthy());
    EXPECT_EQ(h.broker().stats().storage_refused, 1u);
}

TEST(DurableBroker, failed_storage_recovers_once_a_snapshot_is_synced) {
    Fresh h;
    h.connect(1);
    h.fail_storage();
    h.broker().request_snapshot();
    h.receive(1, send_line("t", "refused"));
    ASSERT_EQ(h.unsynced().size(), 1u);
    EXPECT_TRUE(h.unsynced()[0].replace);
    h.sync();
    EXPECT_TRUE(h.broker().storage_healthy());
    h.receive(1, send_line("t", "0"));
    h.sync();
    EXPECT_EQ(h.take(1), (std::vector<json>{failure("Storage unavailable"), ack()}));
}

TEST(DurableBroker, failed_storage_under_always_closes_a_sender_whose_ack_is_not_stored) {
    Fresh h(Limits{}, durable(SyncPolicy::always));
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();  // reservation synced; the record's write is pending
    EXPECT_TRUE(h.take(1).empty());
    h.fail_storage();
    EXPECT_TRUE(h.take(1).empty());
    EXPECT_EQ(h.close_reason(1), CloseReason::storage_failed);
}

TEST(DurableBroker, waiting_send_is_refused_when_storage_fails) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.fail_storage();
    EXPECT_EQ(h.take(1), std::vector<json>{failure("Storage unavailable")});
}

TEST(DurableBroker, one_message_taken_by_a_replay_does_not_come_back_after_recovery) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "once", "one"));
    h.sync();
    h.connect(2);
    h.receive(2, subscribe_line("t", {{"last_seen", -1}}));
    EXPECT_EQ(h.take(2), (std::vector<json>{ack(), message("t", "once", "one", 0)}));
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(recovered.broker().topics().cached_messages(), 0u);
}

TEST(DurableBroker, exact_snapshot_at_a_graceful_stop_leaves_no_gap) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0") + send_line("t", "1"));
    h.sync();
    h.broker().request_snapshot(true);
    h.receive(1, "");  // any call: the harness polls
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(recovered.next_index("t"), 2);
}

TEST(DurableBroker, log_is_compacted_past_its_bound_and_recovers_the_same_state) {
    Durability durability = durable();
    durability.compaction_floor_bytes = 4096;
    Limits limits;
    limits.cache_messages_max = 2;
    Fresh h(limits, durability);
    h.connect(1);
    for (int i = 0; i < 200; ++i) {
        h.receive(1, send_line("t", std::string(100, 'x') + std::to_string(i)));
        h.sync();
    }
    EXPECT_GE(h.broker().stats().compactions, 2u);  // the first snapshot, then at least one compaction
    EXPECT_LE(h.synced_log().size(), 3 * durability.compaction_floor_bytes);
    BrokerHarness recovered(limits, durability, h.synced_log());
    EXPECT_EQ(recovered.broker().topics().find("t")->cached_indices(), (std::vector<std::int64_t>{198, 199}));
    EXPECT_GE(recovered.next_index("t"), 200);
}

TEST(DurableBroker, recovery_applies_the_cache_limits_in_force) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0") + send_line("t", "1") + send_line("t", "2"));
    h.sync();
    h.sync();
    Limits smaller;
    smaller.cache_messages_max = 1;
    BrokerHarness recovered(smaller, durable(), h.synced_log());
    EXPECT_EQ(recovered.broker().topics().find("t")->cached_indices(), std::vector<std::int64_t>{2});
}

TEST(DurableBroker, a_log_over_its_bound_under_smaller_limits_is_compacted_after_the_first_write) {
    Durability durability = durable();
    durability.compaction_floor_bytes = 4096;
    Fresh h(Limits{}, durability);
    h.connect(1);
    for (int i = 0; i < 40; ++i) h.receive(1, send_line("t", std::string(100, 'x') + std::to_string(i)));
    for (int i = 0; i < 8; ++i) h.sync();
    h.broker().request_snapshot(true);  // a clean stop: no hole for the restart to write
    h.receive(1, "");
    h.sync();
    ASSERT_GT(h.synced_log().size(), durability.compaction_floor_bytes);
    Limits smaller;
    smaller.cache_messages_max = 1;  // the live state is one message now: the log is far over twice it
    BrokerHarness recovered(smaller, durability, h.synced_log());
    EXPECT_TRUE(recovered.unsynced().empty()) << "nothing to write yet";
    recovered.connect(1);
    recovered.receive(1, send_line("t", "next"));
    ASSERT_EQ(recovered.unsynced().size(), 2u);
    EXPECT_FALSE(recovered.unsynced()[0].replace) << "the send's record";
    EXPECT_TRUE(recovered.unsynced()[1].replace) << "then the compaction";
    recovered.sync();
    EXPECT_LT(recovered.synced_log().size(), durability.compaction_floor_bytes);
}

TEST(DurableBroker, recovery_refuses_more_topics_than_the_limit) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("a", "0") + send_line("b", "0"));
    h.sync();
    h.sync();
    Limits smaller;
    smaller.indexed_topics_max = 1;
    memq::Broker broker(smaller, 1, 1, durable());
    memq::storage::scan_log(h.synced_log(), memq::storage::ScanMode::strict,
                            [&](const memq::storage::LogRecord& record) { broker.recover(record); });
    const std::optional<std::string> problem = broker.finish_recovery();
    ASSERT_TRUE(problem.has_value());
    EXPECT_NE(problem->find("more than --max-indexed-topics 1"), std::string::npos) << *problem;
}

TEST(DurableBroker, a_core_told_how_many_topics_to_expect_recovers_the_same_state) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("a", "0") + send_line("b", "0") + send_line("a", "1"));
    h.sync();
    h.sync();
    h.sync();
    const auto cached = [](const memq::Broker& broker) {
        std::vector<std::string> frames;
        broker.topics().for_each_cached(
            [&](const memq::Topic& topic, const memq::CachedMessage& m) { frames.push_back(std::string(topic.name) + *m.frame); });
        return frames;
    };
    // More than the log holds, and more than the limit: the expectation is
    // only a size hint, capped at --max-indexed-topics.
    for (const std::size_t expected : {std::size_t{1}, std::size_t{2}, std::size_t{1} << 40}) {
        memq::Broker broker(Limits{}, 1, 1, durable());
        broker.expect_recovered_topics(expected);
        memq::storage::scan_log(h.synced_log(), memq::storage::ScanMode::strict,
                                [&](const memq::storage::LogRecord& record) { broker.recover(record); });
        ASSERT_FALSE(broker.finish_recovery().has_value());
        EXPECT_EQ(broker.topics().size(), 2u) << expected;
        EXPECT_EQ(cached(broker), cached(h.broker())) << expected;
    }
}

TEST(DurableBroker, recovery_evicts_the_oldest_cached_messages_past_topics_max) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("a", "0") + send_line("b", "0"));
    h.sync();
    h.sync();
    h.sync();
    Limits smaller;
    smaller.topics_max = 1;
    BrokerHarness recovered(smaller, durable(), h.synced_log());
    EXPECT_EQ(recovered.broker().topics().find("a")->cached_count(), 0u);
    EXPECT_EQ(recovered.broker().topics().find("b")->cached_indices(), std::vector<std::int64_t>{0});
    EXPECT_EQ(recovered.next_index("a"), 8);  // its index stays
}

// Input held while a send waits counts against pending_bytes_max.
TEST(DurableBroker, input_held_behind_a_waiting_send_is_bounded_by_pending_bytes_max) {
    const std::string first = send_line("t", "0");
    const std::string next = send_line("t", "1");
    for (const std::size_t slack : {std::size_t{0}, std::size_t{1}}) {
        Limits limits;
        // Held: the waiting line and the next, each with its '\n'.
        limits.pending_bytes_max = first.size() + next.size() - 1 + slack;
        Fresh h(limits);
        h.connect(1);
        h.receive(1, first + next);
        if (slack == 1) {
            EXPECT_FALSE(h.close_reason(1).has_value());
            h.sync();
            EXPECT_EQ(h.take(1), (std::vector<json>{ack(), ack()}));
        } else {
            EXPECT_EQ(h.close_reason(1), CloseReason::slow_consumer);
        }
    }
}

TEST(DurableBroker, quit_behind_a_waiting_send_closes_after_its_ack) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0") + quit_line());
    EXPECT_FALSE(h.close_reason(1).has_value());
    h.sync();
    EXPECT_EQ(h.take(1), std::vector<json>{ack()});
    EXPECT_EQ(h.close_reason(1), CloseReason::quit);
}

// ---------------------------------------------------------------- holes

std::string holes_line(const std::string& topic, std::int64_t after) {
    return json{{"command", "holes"}, {"topic", topic}, {"after", after}}.dump() + "\n";
}

json holes_reply(const json& holes) { return json{{"success", true}, {"holes", holes}}; }

// A broker recovered from a crash that lost t's messages 1 and 2 (delivered,
// never synced) while message 0 stayed cached: t goes on at 8, and [1, 7] is a hole.
struct CrashedWithAHole {
    CrashedWithAHole() {
        h.connect(1);
        h.receive(1, send_line("t", "0"));
        h.sync();  // reserved up to 8
        h.sync();  // message 0's record
        h.receive(1, send_line("t", "1") + send_line("t", "2"));  // written, never synced
    }
    Fresh h;
};

std::vector<memq::Hole> holes_of(BrokerHarness& h, const std::string& topic) {
    const memq::Topic* found = h.broker().topics().find(topic);
    if (found == nullptr) return {};
    return {found->holes().begin(), found->holes().end()};
}

TEST(DurableHoles, recovery_makes_the_range_between_the_highest_recovered_index_and_the_reservation_a_hole) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    EXPECT_EQ(holes_of(recovered, "t"), (std::vector<memq::Hole>{{1, 7}}));
    recovered.broker().check_invariants();
}

TEST(DurableHoles, the_holes_command_answers_the_holes_after_an_index_clipped_to_it) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    recovered.sync();
    recovered.connect(1);
    const std::vector<std::pair<std::int64_t, json>> cases = {
        {-1, json::array({json::array({1, 7})})},  // after -1: the whole hole
        {0, json::array({json::array({1, 7})})},   // first - 1
        {1, json::array({json::array({2, 7})})},   // first: clipped
        {6, json::array({json::array({7, 7})})},   // last - 1
        {7, json::array()},                        // last: nothing after it
        {8, json::array()},                        // last + 1
    };
    for (const auto& [after, expected] : cases) {
        recovered.receive(1, holes_line("t", after));
        EXPECT_EQ(recovered.take(1), std::vector<json>{holes_reply(expected)}) << "after " << after;
    }
}

TEST(DurableHoles, the_holes_command_makes_no_topic_known_and_changes_nothing) {
    Fresh h;
    h.connect(1);
    h.receive(1, holes_line("unknown", -1));
    EXPECT_EQ(h.take(1), std::vector<json>{holes_reply(json::array())});
    EXPECT_EQ(h.broker().topics().find("unknown"), nullptr);
    EXPECT_EQ(h.broker().topics().size(), 0u);
}

TEST(DurableHoles, the_in_memory_broker_answers_no_holes) {
    BrokerHarness h;
    h.connect(1);
    h.receive(1, send_line("t", "0") + holes_line("t", -1));
    EXPECT_EQ(h.take(1), (std::vector<json>{ack(), holes_reply(json::array())}));
}

TEST(DurableHoles, the_holes_command_checks_the_topic_length_like_subscribe) {
    Limits limits;
    limits.topic_bytes_max = 4;
    Fresh h(limits);
    h.connect(1);
    h.receive(1, holes_line("tttt", -1) + holes_line("ttttt", -1));
    EXPECT_EQ(h.take(1), (std::vector<json>{holes_reply(json::array()),
                                            json{{"success", false}, {"reason", "Topic too long"}}}));
}

// The records of one write, in order (a snapshot's header skipped).
std::vector<memq::storage::LogRecord> records_of(const memq::storage::StorageWrite& write) {
    std::vector<memq::storage::LogRecord> records;
    std::string_view bytes = write.bytes;
    if (write.replace) bytes.remove_prefix(memq::storage::kHeaderBytes);
    memq::storage::DecodedRecord decoded;
    while (memq::storage::decode_record(bytes, decoded)) {
        records.push_back(decoded.record);
        bytes.remove_prefix(decoded.bytes);
    }
    EXPECT_TRUE(bytes.empty()) << "a write ends in a bad record";
    return records;
}

TEST(DurableHoles, the_first_write_after_recovering_a_clean_log_appends_just_the_hole) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    ASSERT_EQ(recovered.unsynced().size(), 1u);
    const memq::storage::StorageWrite& first = recovered.unsynced()[0];
    EXPECT_FALSE(first.replace) << "the log goes on as it is";
    const std::vector<memq::storage::LogRecord> records = records_of(first);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].kind, memq::storage::RecordKind::hole);
    EXPECT_EQ(records[0].topic, "t");
    EXPECT_EQ(records[0].index, 1);
    EXPECT_EQ(records[0].last, 7);
    EXPECT_EQ(recovered.broker().log_bytes(), crashed.h.synced_log().size() + first.bytes.size());
}

TEST(DurableHoles, the_first_write_after_a_recovery_that_must_rewrite_is_a_snapshot_holding_the_hole) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log(), 7, BrokerHarness::AfterRecovery::rewrite);
    ASSERT_EQ(recovered.unsynced().size(), 1u);
    const memq::storage::StorageWrite& first = recovered.unsynced()[0];
    EXPECT_TRUE(first.replace);
    std::vector<memq::storage::LogRecord> holes;
    for (const memq::storage::LogRecord& record : records_of(first)) {
        if (record.kind == memq::storage::RecordKind::hole) holes.push_back(record);
    }
    ASSERT_EQ(holes.size(), 1u);
    EXPECT_EQ(holes[0].topic, "t");
    EXPECT_EQ(holes[0].index, 1);
    EXPECT_EQ(holes[0].last, 7);
}

TEST(DurableHoles, a_hole_the_log_already_names_is_not_appended_again) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    recovered.sync();  // the hole record
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    EXPECT_TRUE(again.unsynced().empty()) << "nothing to write: the log names every hole";
    EXPECT_EQ(holes_of(again, "t"), (std::vector<memq::Hole>{{1, 7}}));
    EXPECT_EQ(again.broker().log_bytes(), recovered.synced_log().size());
}

TEST(DurableHoles, a_hole_grown_past_the_one_the_log_names_is_appended_whole) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    recovered.sync();  // the hole record [1, 7]
    recovered.connect(1);
    recovered.receive(1, send_line("t", "8"));
    recovered.sync();  // the reservation past 8; message 8's record, never synced: lost
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    const std::int64_t next = again.next_index("t");
    ASSERT_EQ(again.unsynced().size(), 1u);
    const std::vector<memq::storage::LogRecord> records = records_of(again.unsynced()[0]);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].kind, memq::storage::RecordKind::hole);
    EXPECT_EQ(records[0].index, 1);
    EXPECT_EQ(records[0].last, next - 1) << "the merged hole, which [1, 7] does not cover";
}

TEST(DurableBroker, a_torn_tail_is_cut_and_the_log_goes_on_after_its_good_prefix) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();
    h.sync();
    h.receive(1, send_line("t", "1"));  // its record is torn by the crash
    ASSERT_EQ(h.unsynced().size(), 1u);
    const std::string good = h.synced_log();
    const std::string torn = good + h.unsynced()[0].bytes.substr(0, h.unsynced()[0].bytes.size() / 2);
    BrokerHarness recovered(Limits{}, durable(), torn);
    recovered.sync();  // the hole [1, 7]
    recovered.connect(1);
    recovered.receive(1, send_line("t", "8"));
    recovered.sync();
    recovered.sync();
    const std::string& log = recovered.synced_log();
    EXPECT_EQ(log.substr(0, good.size()), good) << "appended to the good prefix";
    const memq::storage::ScanResult scan =
        memq::storage::scan_log(log, memq::storage::ScanMode::strict, [](const memq::storage::LogRecord&) {});
    EXPECT_EQ(scan.damage, memq::storage::Damage::none) << "the torn bytes are gone, not left inside the log";
    BrokerHarness again(Limits{}, durable(), log);
    again.connect(1);
    again.receive(1, subscribe_line("t", {{"last_seen", -1}}));
    EXPECT_EQ(again.take(1), (std::vector<json>{ack(), message("t", "0", "all", 0), message("t", "8", "all", 8)}));
}

TEST(DurableBroker, a_clean_stop_then_a_restart_writes_nothing_until_a_send) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0"));
    h.sync();
    h.sync();
    h.broker().request_snapshot(true);
    h.receive(1, "");
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_TRUE(recovered.unsynced().empty());
    EXPECT_EQ(recovered.broker().stats().compactions, 0u);
    EXPECT_EQ(recovered.broker().log_bytes(), h.synced_log().size());
}

TEST(DurableHoles, a_hole_survives_a_second_crash_and_merges_with_the_next) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    recovered.sync();  // the snapshot with the hole [1, 7]
    recovered.connect(1);
    recovered.receive(1, send_line("t", "8"));
    recovered.sync();  // its reservation, up to 16; its record, never synced: lost again
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    const std::int64_t next = again.next_index("t");
    EXPECT_GT(next, 9) << "past index 8, which was handed out";
    EXPECT_EQ(holes_of(again, "t"), (std::vector<memq::Hole>{{1, next - 1}})) << "[1, 7] and [8, next - 1] are one";
}

TEST(DurableHoles, a_topic_with_nothing_cached_keeps_no_hole) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0", "all", {{"cache", false}}));
    h.sync();
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(recovered.next_index("t"), 8);
    EXPECT_TRUE(holes_of(recovered, "t").empty()) << "a resume's first message shows the gap";
}

TEST(DurableHoles, a_hole_goes_once_the_cache_no_longer_holds_a_message_below_it) {
    Limits limits;
    limits.cache_messages_max = 2;
    CrashedWithAHole crashed;
    BrokerHarness recovered(limits, durable(), crashed.h.synced_log());
    recovered.sync();
    recovered.connect(1);
    recovered.receive(1, send_line("t", "8"));
    recovered.sync();
    EXPECT_EQ(holes_of(recovered, "t").size(), 1u) << "cache [0, 8]: 0 is below the hole";
    recovered.receive(1, send_line("t", "9"));  // evicts 0
    EXPECT_TRUE(holes_of(recovered, "t").empty());
    recovered.broker().check_invariants();
}

TEST(DurableHoles, a_compaction_snapshot_keeps_the_live_holes) {
    CrashedWithAHole crashed;
    BrokerHarness recovered(Limits{}, durable(), crashed.h.synced_log());
    recovered.sync();
    recovered.broker().request_snapshot();
    recovered.connect(1);
    recovered.receive(1, "");
    recovered.sync();
    BrokerHarness again(Limits{}, durable(), recovered.synced_log());
    EXPECT_EQ(holes_of(again, "t"), (std::vector<memq::Hole>{{1, 7}}));
}

TEST(DurableHoles, an_exact_snapshot_leaves_no_new_hole_even_when_the_last_index_is_not_cached) {
    Fresh h;
    h.connect(1);
    h.receive(1, send_line("t", "0") + send_line("t", "1", "all", {{"cache", false}}));
    h.sync();
    h.broker().request_snapshot(true);
    h.receive(1, "");
    h.sync();
    BrokerHarness recovered(Limits{}, durable(), h.synced_log());
    EXPECT_EQ(recovered.next_index("t"), 2);
    EXPECT_TRUE(holes_of(recovered, "t").empty());
}

}  // namespace
// durability.hpp's kFrameBytesBeyondRecord: a frame exceeds its record by
// exactly that at the least (a topic with nothing to escape, a one-digit
// index, no cache field), and by more otherwise.
std::size_t frame_bytes_beyond_record(const memq::SendRef& send, std::int64_t index) {
    std::string frame;
    memq::append_message(frame, send, index);
    const std::string_view msg_json = memq::message_frame_fields(frame, index, send.delivery).value().msg_json;
    return frame.size() - memq::storage::message_record_bytes(send.topic.text.size(), msg_json.size());
}

TEST(DurableLiveEstimate, a_frame_is_at_least_kFrameBytesBeyondRecord_larger_than_its_record) {
    EXPECT_EQ(memq::kFrameBytesBeyondRecord, 48u);
    EXPECT_EQ(frame_bytes_beyond_record({{"t", "\"t\""}, {"", "\"\""}, memq::Delivery::all, std::nullopt}, 0), 48u);
    EXPECT_EQ(frame_bytes_beyond_record({{"", "\"\""}, {"m", "\"m\""}, memq::Delivery::one, std::nullopt}, 9), 48u);
    EXPECT_EQ(frame_bytes_beyond_record({{"t", "\"t\""}, {"", "\"\""}, memq::Delivery::all, std::nullopt}, 10), 49u);
    EXPECT_EQ(frame_bytes_beyond_record({{"t", "\"t\""}, {"", "\"\""}, memq::Delivery::all, true}, 0), 48u + 15u);
    EXPECT_EQ(frame_bytes_beyond_record({{"t\n", {}}, {"", "\"\""}, memq::Delivery::all, std::nullopt}, 0), 49u);
}

}  // namespace memq_test
