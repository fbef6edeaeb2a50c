// topic_table_test.cpp — specifies memq::TopicTable (topic_table.hpp): topics
// created once and never removed, two-way membership kept consistent, a
// bounded replay cache evicting its oldest message, and replay handing out
// (and removing) "one" messages. check_invariants() must catch a broken state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prng.hpp"
#include "topic_table.hpp"

namespace {

using memq::CachedMessage;
using memq::Delivery;
using memq::Subscriber;
using memq::Topic;
using memq::TopicTable;

constexpr std::size_t kNoByteBudget = std::size_t{1} << 40;

memq::Frame frame_of(const std::string& text) { return memq::make_frame(text); }

// "prefix" followed by the number (spelled out to dodge GCC 12's false
// -Wrestrict on `"literal" + std::to_string(n)` at -O3).
std::string numbered(std::string_view prefix, std::int64_t n) {
    std::string out(prefix);
    out += std::to_string(n);
    return out;
}

// Caches a message the way the broker does: at the topic's next index, which then grows.
memq::Frame cache_next(TopicTable& table, Topic& topic, Delivery delivery) {
    const std::int64_t index = topic.next_index++;
    memq::Frame frame = frame_of(numbered("message ", index));
    table.cache(topic, CachedMessage{index, delivery, frame});
    return frame;
}

std::vector<std::int64_t> cached_indices(const Topic& topic) {
    return topic.cached_indices();
}

// What a replay after last_seen hands out, as the broker reads it: the "one"
// messages taken at once, the others by a cursor walking cached_after.
std::vector<std::string> replay_texts(TopicTable& table, Topic& topic, std::int64_t last_seen) {
    constexpr std::int64_t kNoEnd = std::numeric_limits<std::int64_t>::max();
    std::map<std::int64_t, std::string> by_index;
    table.take_one_messages(topic, last_seen, [&](const CachedMessage& taken) { by_index[taken.index] = *taken.frame; });
    for (const CachedMessage* next = table.cached_after(topic, last_seen, kNoEnd); next != nullptr;
         next = table.cached_after(topic, next->index, kNoEnd)) {
        by_index[next->index] = *next->frame;
    }
    std::vector<std::string> out;
    for (auto& [index, text] : by_index) out.push_back(std::move(text));
    return out;
}

// Every subscriber of `topic` knows its own position in it.
void expect_positions_consistent(Topic& topic) {
    for (std::size_t i = 0; i < topic.subscribers().size(); ++i) {
        Subscriber* subscriber = topic.subscribers()[i];
        ASSERT_TRUE(subscriber->positions.contains(&topic)) << "subscriber " << subscriber->id;
        EXPECT_EQ(subscriber->positions.at(&topic), i) << "subscriber " << subscriber->id;
    }
}

std::vector<memq::ConnId> subscriber_ids(const Topic& topic) {
    std::vector<memq::ConnId> ids;
    for (const Subscriber* subscriber : topic.subscribers()) ids.push_back(subscriber->id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

TEST(TopicTable, starts_empty_and_finds_nothing) {
    const TopicTable table(10, kNoByteBudget);
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.find("t"), nullptr);
    table.check_invariants();
}

TEST(TopicTable, find_or_create_creates_a_fresh_topic_once) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    EXPECT_EQ(topic.next_index, 0);
    EXPECT_TRUE(topic.subscribers().empty());
    EXPECT_TRUE(topic.cached_count() == 0);
    EXPECT_EQ(&table.find_or_create("t"), &topic);
    EXPECT_EQ(table.find("t"), &topic);
    EXPECT_EQ(table.size(), 1u);
    table.check_invariants();
}

TEST(TopicTable, topic_names_match_exactly) {
    TopicTable table(10, kNoByteBudget);
    Topic& lower = table.find_or_create("t");
    EXPECT_EQ(table.find("T"), nullptr);
    EXPECT_EQ(table.find("t "), nullptr);
    EXPECT_EQ(table.find(""), nullptr);
    EXPECT_NE(&table.find_or_create(std::string("t\0", 2)), &lower);
    EXPECT_EQ(table.size(), 2u);
}

TEST(TopicTable, topics_keep_their_address_as_the_table_grows) {
    // Subscribers key their positions by Topic*: a rehash must not move topics.
    TopicTable table(10, kNoByteBudget);
    Topic* first = &table.find_or_create("first");
    first->next_index = 5;
    for (int i = 0; i < 5000; ++i) table.find_or_create(numbered("topic ", i));
    EXPECT_EQ(table.find("first"), first);
    EXPECT_EQ(first->next_index, 5);
    EXPECT_EQ(table.size(), 5001u);
}

TEST(TopicTable, join_adds_the_subscriber_on_both_sides) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber subscriber(1);
    EXPECT_TRUE(table.join(topic, subscriber));
    EXPECT_EQ(subscriber_ids(topic), (std::vector<memq::ConnId>{1}));
    EXPECT_EQ(subscriber.positions.size(), 1u);
    expect_positions_consistent(topic);
    table.check_invariants();
}

TEST(TopicTable, joining_twice_is_refused_and_changes_nothing) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber subscriber(1);
    ASSERT_TRUE(table.join(topic, subscriber));
    EXPECT_FALSE(table.join(topic, subscriber));
    EXPECT_EQ(topic.subscribers().size(), 1u);
    EXPECT_EQ(subscriber.positions.size(), 1u);
    table.check_invariants();
}

TEST(TopicTable, leaving_when_not_a_member_is_refused_and_changes_nothing) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber member(1);
    Subscriber stranger(2);
    ASSERT_TRUE(table.join(topic, member));
    EXPECT_FALSE(table.leave(topic, stranger));
    EXPECT_EQ(subscriber_ids(topic), (std::vector<memq::ConnId>{1}));
    EXPECT_TRUE(stranger.positions.empty());
    table.check_invariants();
}

TEST(TopicTable, leave_removes_the_subscriber_on_both_sides) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber subscriber(1);
    ASSERT_TRUE(table.join(topic, subscriber));
    EXPECT_TRUE(table.leave(topic, subscriber));
    EXPECT_TRUE(topic.subscribers().empty());
    EXPECT_TRUE(subscriber.positions.empty());
    EXPECT_FALSE(table.leave(topic, subscriber));
    table.check_invariants();
}

TEST(TopicTable, leaving_from_the_middle_keeps_every_other_position_right) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    std::vector<std::unique_ptr<Subscriber>> subscribers;
    for (memq::ConnId id = 0; id < 6; ++id) {
        subscribers.push_back(std::make_unique<Subscriber>(id));
        ASSERT_TRUE(table.join(topic, *subscribers.back()));
    }
    ASSERT_TRUE(table.leave(topic, *subscribers[2]));
    expect_positions_consistent(topic);
    ASSERT_TRUE(table.leave(topic, *subscribers[0]));
    expect_positions_consistent(topic);
    ASSERT_TRUE(table.leave(topic, *subscribers[5]));
    expect_positions_consistent(topic);
    EXPECT_EQ(subscriber_ids(topic), (std::vector<memq::ConnId>{1, 3, 4}));
    table.check_invariants();
}

TEST(TopicTable, leave_all_leaves_every_topic_and_keeps_the_topics) {
    TopicTable table(10, kNoByteBudget);
    Topic& a = table.find_or_create("a");
    Topic& b = table.find_or_create("b");
    Topic& c = table.find_or_create("c");
    Subscriber leaving(1);
    Subscriber staying(2);
    for (Topic* topic : {&a, &b, &c}) ASSERT_TRUE(table.join(*topic, leaving));
    ASSERT_TRUE(table.join(b, staying));
    b.next_index = 3;
    table.leave_all(leaving);
    EXPECT_TRUE(leaving.positions.empty());
    EXPECT_TRUE(a.subscribers().empty());
    EXPECT_EQ(subscriber_ids(b), (std::vector<memq::ConnId>{2}));
    EXPECT_TRUE(c.subscribers().empty());
    EXPECT_EQ(table.size(), 3u);
    EXPECT_EQ(b.next_index, 3);
    expect_positions_consistent(b);
    table.check_invariants();
}

TEST(TopicTable, leave_all_of_a_subscriber_without_topics_is_harmless) {
    TopicTable table(10, kNoByteBudget);
    Subscriber subscriber(1);
    table.leave_all(subscriber);
    EXPECT_TRUE(subscriber.positions.empty());
    table.check_invariants();
}

TEST(TopicTable, membership_never_touches_index_or_cache) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    cache_next(table, topic, Delivery::all);
    cache_next(table, topic, Delivery::one);
    Subscriber subscriber(1);
    table.join(topic, subscriber);
    table.leave(topic, subscriber);
    table.join(topic, subscriber);
    table.leave_all(subscriber);
    EXPECT_EQ(topic.next_index, 2);
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{0, 1}));
}

TEST(TopicTable, cache_evicts_the_oldest_past_the_limit) {
    TopicTable table(3, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    for (int i = 0; i < 3; ++i) cache_next(table, topic, Delivery::all);
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{0, 1, 2}));
    cache_next(table, topic, Delivery::all);
    cache_next(table, topic, Delivery::one);
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{2, 3, 4}));
    table.check_invariants();
}

TEST(TopicTable, cache_limit_zero_keeps_nothing) {
    TopicTable table(0, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    cache_next(table, topic, Delivery::all);
    cache_next(table, topic, Delivery::one);
    EXPECT_TRUE(topic.cached_count() == 0);
    EXPECT_TRUE(replay_texts(table, topic, -1).empty());
    table.check_invariants();
}

TEST(TopicTable, cache_limit_one_keeps_the_latest) {
    TopicTable table(1, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    for (int i = 0; i < 4; ++i) cache_next(table, topic, Delivery::all);
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{3}));
    table.check_invariants();
}

TEST(TopicTable, caches_of_different_topics_are_independent) {
    TopicTable table(2, kNoByteBudget);
    Topic& a = table.find_or_create("a");
    Topic& b = table.find_or_create("b");
    for (int i = 0; i < 3; ++i) cache_next(table, a, Delivery::all);
    cache_next(table, b, Delivery::all);
    EXPECT_EQ(cached_indices(a), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(cached_indices(b), (std::vector<std::int64_t>{0}));
}

TEST(TopicTable, replay_hands_out_messages_after_last_seen_oldest_first) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    for (int i = 0; i < 5; ++i) cache_next(table, topic, Delivery::all);
    EXPECT_EQ(replay_texts(table, topic, 2), (std::vector<std::string>{"message 3", "message 4"}));
    EXPECT_EQ(replay_texts(table, topic, -1).size(), 5u);
    EXPECT_TRUE(replay_texts(table, topic, 4).empty());
    EXPECT_TRUE(replay_texts(table, topic, 1000).empty());
    EXPECT_EQ(replay_texts(table, topic, INT64_MIN).size(), 5u);
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));  // "all" messages stay
}

TEST(TopicTable, replay_removes_the_one_messages_it_hands_out) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    cache_next(table, topic, Delivery::one);  // 0
    cache_next(table, topic, Delivery::all);  // 1
    cache_next(table, topic, Delivery::one);  // 2
    cache_next(table, topic, Delivery::all);  // 3
    cache_next(table, topic, Delivery::one);  // 4
    EXPECT_EQ(replay_texts(table, topic, 1), (std::vector<std::string>{"message 2", "message 3", "message 4"}));
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{0, 1, 3}));  // 0 was not replayed: it stays
    EXPECT_EQ(replay_texts(table, topic, -1), (std::vector<std::string>{"message 0", "message 1", "message 3"}));
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{1, 3}));
    table.check_invariants();
}

TEST(TopicTable, cached_after_hands_out_the_cached_frame_itself) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    const memq::Frame frame = cache_next(table, topic, Delivery::all);
    const CachedMessage* found = table.cached_after(topic, -1, 1);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->frame.get(), frame.get());
}

TEST(TopicTable, cached_after_finds_the_first_index_above_last_seen_and_below_end) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    for (int i = 0; i < 6; ++i) cache_next(table, topic, Delivery::all);
    EXPECT_EQ(table.cached_after(topic, -1, 6)->index, 0);
    EXPECT_EQ(table.cached_after(topic, 2, 6)->index, 3);
    EXPECT_EQ(table.cached_after(topic, 4, 6)->index, 5);
    EXPECT_EQ(table.cached_after(topic, 5, 6), nullptr);   // nothing above the last
    EXPECT_EQ(table.cached_after(topic, 2, 3), nullptr);   // 3 is not below end 3
    EXPECT_EQ(table.cached_after(topic, 2, 4)->index, 3);  // end 4: 3 is in
}

TEST(TopicTable, take_one_messages_takes_only_one_messages_above_last_seen) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    cache_next(table, topic, Delivery::one);  // 0: at last_seen, stays
    cache_next(table, topic, Delivery::all);  // 1: stays
    cache_next(table, topic, Delivery::one);  // 2: taken
    std::vector<std::int64_t> taken;
    table.take_one_messages(topic, 0, [&](const CachedMessage& message) { taken.push_back(message.index); });
    EXPECT_EQ(taken, (std::vector<std::int64_t>{2}));
    EXPECT_EQ(cached_indices(topic), (std::vector<std::int64_t>{0, 1}));
    table.check_invariants();
}

TEST(TopicTable, check_invariants_holds_through_a_long_mixed_run) {
    TopicTable table(4, kNoByteBudget);
    std::vector<std::unique_ptr<Subscriber>> subscribers;
    for (memq::ConnId id = 0; id < 8; ++id) subscribers.push_back(std::make_unique<Subscriber>(id));
    std::vector<Topic*> topics;
    for (int i = 0; i < 5; ++i) topics.push_back(&table.find_or_create(numbered("t", i)));
    std::uint64_t state = 99;
    for (int step = 0; step < 3000; ++step) {
        const std::uint64_t r = memq::splitmix64(state);
        Topic& topic = *topics[r % topics.size()];
        Subscriber& subscriber = *subscribers[(r >> 8) % subscribers.size()];
        switch ((r >> 16) % 5) {
            case 0: table.join(topic, subscriber); break;
            case 1: table.leave(topic, subscriber); break;
            case 2: if ((r >> 24) % 8 == 0) table.leave_all(subscriber); break;
            case 3: cache_next(table, topic, (r >> 32) % 2 ? Delivery::one : Delivery::all); break;
            default: replay_texts(table, topic, static_cast<std::int64_t>((r >> 40) % 16) - 2); break;
        }
        table.check_invariants();
    }
    for (Topic* topic : topics) {
        expect_positions_consistent(*topic);
        EXPECT_LE(topic->cached_count(), 4u);
    }
}

// check_invariants() must be able to fail: it aborts on a corrupted state.

TEST(TopicTableDeathTest, check_invariants_catches_a_one_sided_membership) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber member(1);
    Subscriber stranger(2);
    table.join(topic, member);
    topic.state->subscribers.push_back(&stranger);  // the subscriber does not know
    EXPECT_DEATH(table.check_invariants(), "");
    topic.state->subscribers.pop_back();
}

TEST(TopicTableDeathTest, check_invariants_catches_a_wrong_position) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    Subscriber a(1);
    Subscriber b(2);
    table.join(topic, a);
    table.join(topic, b);
    std::swap(topic.state->subscribers[0], topic.state->subscribers[1]);
    EXPECT_DEATH(table.check_invariants(), "");
    std::swap(topic.state->subscribers[0], topic.state->subscribers[1]);
}

TEST(TopicTableDeathTest, check_invariants_catches_a_cache_index_not_below_next_index) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    EXPECT_DEATH(
        {
            table.cache(topic, CachedMessage{0, Delivery::all, frame_of("x")});  // next_index is still 0
            table.check_invariants();
        },
        "");
}

TEST(TopicTableDeathTest, check_invariants_catches_cache_indices_out_of_order) {
    TopicTable table(10, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    topic.next_index = 5;
    table.cache(topic, CachedMessage{3, Delivery::all, frame_of("x")});
    EXPECT_DEATH(
        {
            table.cache(topic, CachedMessage{1, Delivery::all, frame_of("y")});
            table.check_invariants();
        },
        "");
}

TEST(TopicTableDeathTest, check_invariants_catches_an_empty_state_kept) {
    TopicTable table(1, kNoByteBudget);
    Topic& topic = table.find_or_create("t");
    topic.state = std::make_unique<memq::TopicState>();  // neither subscriber nor cache, and not counted
    EXPECT_DEATH(table.check_invariants(), "");
    topic.state.reset();
}

}  // namespace
