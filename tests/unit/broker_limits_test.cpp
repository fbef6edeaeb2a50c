// broker_limits_test.cpp — specifies the broker-wide limits of the core
// (limits.hpp): topics_max and indexed_topics_max ("Too many topics", and no
// effect at all), the cache's byte budget (global eviction, oldest first) and
// connections_max (refused at once with its own CloseReason), each counted in
// BrokerStats.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker_harness.hpp"

namespace {

using memq::CloseReason;
using memq::Limits;
using memq_test::ack;
using memq_test::BrokerHarness;
using memq_test::failure;
using memq_test::json;
using memq_test::message;
using memq_test::send_line;
using memq_test::subscribe_line;
using memq_test::unsubscribe_line;
using Objects = std::vector<json>;

const std::string kTooManyTopics = "Too many topics";

Limits with_topics_max(std::size_t topics_max) {
    Limits limits;
    limits.topics_max = topics_max;
    return limits;
}

// The frame of `message(...)` as the broker sends it: its size counts against the cache budget.
std::size_t frame_bytes(const std::string& topic, const std::string& msg, std::int64_t index) {
    return memq::encode_message(memq::Send{topic, msg, memq::Delivery::all, std::nullopt}, index).size();
}

// ---- topics_max ---------------------------------------------------------

TEST(BrokerLimits, subscribe_to_a_new_topic_past_topics_max_is_refused) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTooManyTopics)}));
    EXPECT_EQ(h.subscriber_count("b"), 0u);
    EXPECT_EQ(h.broker().topics().find("b"), nullptr) << "a refused command creates no topic";
    EXPECT_EQ(h.broker().stats().topics_refused, 1u);
    h.broker().check_invariants();
}

TEST(BrokerLimits, a_topic_that_holds_state_already_is_never_refused) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("a"));
    h.receive(2, subscribe_line("a") + send_line("a", "m"));
    EXPECT_EQ(h.take(2), (Objects{ack(), message("a", "m", "all", 0), ack()}));
    EXPECT_EQ(h.broker().stats().topics_refused, 0u);
}

TEST(BrokerLimits, a_cached_send_to_a_new_topic_past_topics_max_has_no_effect) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.receive(1, send_line("a", "kept") + send_line("b", "refused"));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTooManyTopics)}));
    EXPECT_EQ(h.broker().topics().find("b"), nullptr) << "no index consumed, no cache";
    EXPECT_EQ(h.broker().stats().messages_published, 1u);
}

TEST(BrokerLimits, an_uncached_send_without_subscribers_creates_only_an_index) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.receive(1, subscribe_line("a") + send_line("b", "m", "all", {{"cache", false}}) +
                     send_line("b", "m", "one", {{"cache", false}}));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack()}));
    EXPECT_EQ(h.next_index("b"), 2);
    EXPECT_EQ(h.broker().topics().find("b")->state, nullptr);
    EXPECT_EQ(h.broker().topics().stateful_count(), 1u);
}

TEST(BrokerLimits, a_topic_that_empties_frees_its_place) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.receive(1, subscribe_line("a") + unsubscribe_line("a") + subscribe_line("b"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack()}));
    h.disconnect(1);
    EXPECT_EQ(h.broker().topics().stateful_count(), 0u) << "a disconnect empties its topics too";
    h.connect(2);
    h.receive(2, subscribe_line("c"));
    EXPECT_EQ(h.take(2), (Objects{ack()}));
}

TEST(BrokerLimits, an_emptied_topic_keeps_its_index) {
    BrokerHarness h(with_topics_max(1));
    h.connect(1);
    h.receive(1, send_line("a", "m", "all", {{"cache", false}}) + subscribe_line("a") + unsubscribe_line("a") +
                     subscribe_line("a") + send_line("a", "n"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack(), ack(), message("a", "n", "all", 1), ack()}));
}

TEST(BrokerLimits, a_message_too_big_to_cache_needs_no_topic_state) {
    Limits limits = with_topics_max(0);
    limits.cache_bytes_max = 10;
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, send_line("a", "longer than ten bytes"));
    EXPECT_EQ(h.take(1), (Objects{ack()}));
    EXPECT_EQ(h.next_index("a"), 1);
}

// ---- indexed_topics_max -------------------------------------------------

TEST(BrokerLimits, a_brand_new_topic_past_indexed_topics_max_is_refused) {
    Limits limits;
    limits.indexed_topics_max = 1;
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, send_line("a", "m", "all", {{"cache", false}}) + send_line("b", "m", "all", {{"cache", false}}) +
                     subscribe_line("b") + send_line("a", "n", "all", {{"cache", false}}));
    EXPECT_EQ(h.take(1), (Objects{ack(), failure(kTooManyTopics), failure(kTooManyTopics), ack()}));
    EXPECT_EQ(h.broker().topics().size(), 1u);
    EXPECT_EQ(h.broker().stats().topics_refused, 2u);
}

TEST(BrokerLimits, unsubscribe_from_an_unknown_topic_creates_nothing) {
    Limits limits;
    limits.indexed_topics_max = 0;
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, unsubscribe_line("a"));
    EXPECT_EQ(h.take(1), (Objects{ack()}));
    EXPECT_EQ(h.broker().topics().size(), 0u);
}

// ---- cache_bytes_max ----------------------------------------------------

TEST(BrokerLimits, caching_past_the_byte_budget_evicts_the_globally_oldest) {
    Limits limits;
    limits.cache_bytes_max = frame_bytes("a", "1", 0) + frame_bytes("b", "2", 0);  // room for two
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, send_line("a", "1") + send_line("b", "2") + send_line("b", "3"));
    h.take(1);
    EXPECT_EQ(h.broker().topics().find("a")->cached_count(), 0u) << "a's message was the oldest";
    EXPECT_EQ(h.broker().topics().find("b")->cached_count(), 2u);
    EXPECT_EQ(h.broker().stats().cache_evictions, 1u);
    h.receive(1, subscribe_line("a") + subscribe_line("b"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), message("b", "2", "all", 0), message("b", "3", "all", 1)}));
}

TEST(BrokerLimits, a_message_bigger_than_the_budget_is_delivered_not_cached) {
    Limits limits;
    limits.cache_bytes_max = frame_bytes("a", "small", 0);
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    h.receive(1, subscribe_line("a"));
    h.receive(2, send_line("a", "small") + send_line("a", "much too big"));
    EXPECT_EQ(h.take(1), (Objects{ack(), message("a", "small", "all", 0), message("a", "much too big", "all", 1)}));
    EXPECT_EQ(h.broker().topics().find("a")->cached_indices(), (std::vector<std::int64_t>{0}))
        << "the small one is not evicted for a message that cannot fit anyway";
    EXPECT_EQ(h.broker().topics().cached_bytes(), frame_bytes("a", "small", 0));
}

TEST(BrokerLimits, eviction_that_empties_a_topic_frees_its_place) {
    Limits limits = with_topics_max(2);
    limits.cache_bytes_max = frame_bytes("a", "1", 0);  // room for one message
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, send_line("a", "1") + send_line("b", "2"));  // b's message evicts a's
    EXPECT_EQ(h.broker().topics().find("a")->state, nullptr);
    EXPECT_EQ(h.broker().topics().stateful_count(), 1u);
    h.receive(1, send_line("c", "3"));
    EXPECT_EQ(h.take(1), (Objects{ack(), ack(), ack()}));
}

TEST(BrokerLimits, a_replayed_one_message_is_not_evicted_twice) {
    Limits limits;
    limits.cache_bytes_max = 2 * frame_bytes("a", "1", 0);
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    h.receive(1, send_line("a", "1", "one") + send_line("b", "2"));
    h.receive(2, subscribe_line("a") + unsubscribe_line("a"));  // takes a's "one" message out of the cache
    h.receive(1, send_line("b", "3") + send_line("b", "4"));   // room for two: b's 2 goes, not a phantom
    h.take(1);
    EXPECT_EQ(h.broker().topics().find("b")->cached_indices(), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(h.broker().stats().cache_evictions, 1u);
    h.broker().check_invariants();
}

// ---- connections_max ----------------------------------------------------

TEST(BrokerLimits, a_connection_past_connections_max_is_closed_at_once) {
    Limits limits;
    limits.connections_max = 1;
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);
    EXPECT_FALSE(h.close_reason(1));
    EXPECT_EQ(h.close_reason(2), CloseReason::too_many_connections);
    EXPECT_TRUE(h.received(2).empty());
    EXPECT_EQ(h.broker().stats().connections_refused, 1u);
    EXPECT_EQ(h.broker().stats().connections_accepted, 1u);
}

TEST(BrokerLimits, a_refused_connection_takes_no_input) {
    Limits limits;
    limits.connections_max = 0;
    BrokerHarness h(limits);
    h.connect(1);
    h.receive(1, subscribe_line("a"));
    EXPECT_TRUE(h.received(1).empty());
    EXPECT_EQ(h.broker().topics().size(), 0u);
}

TEST(BrokerLimits, a_refused_connection_does_not_hold_a_place) {
    Limits limits;
    limits.connections_max = 1;
    BrokerHarness h(limits);
    h.connect(1);
    h.connect(2);  // refused
    h.disconnect(2);
    h.disconnect(1);
    h.connect(3);
    EXPECT_FALSE(h.close_reason(3)) << "the place of 1 is free again, and 2 never took one";
    EXPECT_EQ(h.broker().admitted_count(), 1u);
}

}  // namespace
