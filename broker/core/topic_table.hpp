// topic_table.hpp — topics and their subscribers, index and replay cache, and
// the bounds on all three (stateful topics, known topics, cached bytes).
//
// Rules:
// - Membership is two-way and kept consistent in O(1): a topic's state lists
//   its Subscribers in a vector (for uniform random choice and fan-out without
//   lookups), and each Subscriber maps its Topics to its position there.
// - A topic's next_index only grows, for the life of the table; a topic, once
//   known, is never removed (its index must not go back). A topic with no
//   subscriber and nothing cached keeps only that index: its TopicState is
//   allocated when it gains a subscriber or a cached message and freed as
//   soon as it has neither ("stateful" topics are the ones with a state).
// - A topic's cache holds at most cache_messages_max messages, indices
//   strictly increasing, each below next_index; a "one" message leaves it when
//   a replay takes it. All caches together hold at most cache_bytes_max frame bytes:
//   every cached message is also in one global list, oldest first, so the
//   globally oldest is evicted in O(1) when a new one needs room.
// - Durable topics: a topic's holes (index ranges a crash lost after they may
//   have been delivered, docs/architecture.md "Durable topics") are kept only
//   while its cache holds a message below them, and two holes with no cached
//   message between them are one: so a topic has at most as many holes as
//   cached messages, and every removal from a cache keeps this so.
// - No IO, no frames built here: frames are made by the caller and shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "frame.hpp"
#include "name_index.hpp"
#include "protocol.hpp"
#include "ring.hpp"

namespace memq {

using ConnId = std::uint64_t;

struct Topic;

// One connection's side of the membership relation. The broker's Connection
// derives from it.
struct Subscriber {
    explicit Subscriber(ConnId id_) : id(id_) {}
    Subscriber(const Subscriber&) = delete;
    Subscriber& operator=(const Subscriber&) = delete;

    ConnId id;
    std::unordered_map<Topic*, std::size_t> positions;  // topic -> index in its subscribers
};

struct CachedMessage {
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    Frame frame;
};

// A cached message in the global order of caching, with the topic holding it.
struct CacheEntry {
    Topic* topic = nullptr;
    CachedMessage message;
};
using CacheOrder = std::list<CacheEntry>;

// Indices first..last (inclusive) that a crash lost after they may have been
// handed out (durable topics only).
struct Hole {
    std::int64_t first = 0;
    std::int64_t last = 0;
    friend bool operator==(const Hole&, const Hole&) = default;
};

// What a topic holds besides its index; exists only while it is not empty.
struct TopicState {
    std::vector<Subscriber*> subscribers;
    Ring<CacheOrder::iterator> cache;  // this topic's entries of the global order, oldest first
    // Ascending and disjoint; each above the oldest cached message, with a
    // cached message between any two (see the rules above).
    std::vector<Hole> holes;
};

struct Topic {
    std::int64_t next_index = 0;
    std::unique_ptr<TopicState> state;  // null: index only
    std::string_view name;              // set by the table: stable while the table lives
    // Durable topics only (the broker's Durability): indices below
    // reserved_until are reserved by a record in the log, and those below
    // durable_until by one that is synced. An index is handed out only below
    // durable_until, so after a crash the topic goes on past every index that
    // may have reached a subscriber. Both only grow; durable_until <= reserved_until.
    std::int64_t reserved_until = 0;
    std::int64_t durable_until = 0;
    std::int64_t reserve_step = 0;  // how far the next reservation reaches (0: not set yet)

    std::span<Subscriber* const> subscribers() const {
        return state ? std::span<Subscriber* const>(state->subscribers) : std::span<Subscriber* const>();
    }
    std::size_t cached_count() const { return state ? state->cache.size() : 0; }
    std::span<const Hole> holes() const { return state ? std::span<const Hole>(state->holes) : std::span<const Hole>(); }
    // The cached messages' indices, oldest first (for tests and checks).
    std::vector<std::int64_t> cached_indices() const;
};

struct CacheResult {
    bool cached = false;
    std::size_t evicted_for_bytes = 0;  // other messages evicted to stay within cache_bytes_max
};

class TopicTable {
public:
    TopicTable(std::size_t cache_messages_max, std::size_t cache_bytes_max)
        : cache_messages_max_(cache_messages_max), cache_bytes_max_(cache_bytes_max) {}
    TopicTable(const TopicTable&) = delete;
    TopicTable& operator=(const TopicTable&) = delete;

    Topic& find_or_create(std::string_view name);
    Topic* find(std::string_view name);
    const Topic* find(std::string_view name) const;
    std::size_t size() const { return topics_.size(); }  // known topics, index-only ones included
    // Room for `topics` known topics without a rehash (a recovery's count).
    void reserve(std::size_t topics) { topics_.reserve(topics); }
    std::size_t stateful_count() const { return stateful_count_; }
    std::size_t cached_bytes() const { return cached_bytes_; }
    std::size_t cached_messages() const { return order_.size(); }

    // Returns false (and changes nothing) when already a member / not a member.
    bool join(Topic& topic, Subscriber& subscriber);
    bool leave(Topic& topic, Subscriber& subscriber);
    void leave_all(Subscriber& subscriber);

    // Whether cache() would keep a frame of this size (caching on, frame within budget).
    bool cacheable(std::size_t frame_bytes) const {
        return cache_messages_max_ != 0 && frame_bytes <= cache_bytes_max_;
    }
    // Appends to the topic's cache: first the topic's oldest leaves if it is
    // full, then the globally oldest leave until the frame fits the byte budget.
    CacheResult cache(Topic& topic, CachedMessage message);

    // The oldest cached message of `topic` with last_seen < index < end, or
    // null: where a replay's cursor goes next. O(log cached).
    const CachedMessage* cached_after(const Topic& topic, std::int64_t last_seen, std::int64_t end) const;
    // Takes every cached "one" message with index > last_seen out of the
    // cache, oldest first, handing each to on_taken(const CachedMessage&): a
    // replay hands them out at once, so no other replay can take them too.
    template <typename OnTaken>
    void take_one_messages(Topic& topic, std::int64_t last_seen, OnTaken&& on_taken);
    // Removes the cached message of `topic` with this index, if cached (a
    // recovered "take" record: a replay handed it out). Returns whether it was.
    bool remove_cached(Topic& topic, std::int64_t index);
    // Evicts the globally oldest cached message; false when nothing is cached.
    bool evict_oldest();
    // Durable topics: adds holes to the topic's (any order, overlapping or
    // not), then keeps only what the rules above allow: merged, pruned below
    // the oldest cached message, nothing for a topic with no cache.
    void add_holes(Topic& topic, std::span<const Hole> holes);

    // Every known topic, in the order they became known: on_topic(const Topic&).
    template <typename OnTopic>
    void for_each_topic(OnTopic&& on_topic) const {
        topics_.for_each(on_topic);
    }
    template <typename OnTopic>
    void for_each_topic(OnTopic&& on_topic) {
        topics_.for_each(on_topic);
    }
    // Every cached message in the global order of caching, oldest first:
    // on_cached(const Topic&, const CachedMessage&).
    template <typename OnCached>
    void for_each_cached(OnCached&& on_cached) const {
        for (const CacheEntry& entry : order_) on_cached(*entry.topic, entry.message);
    }

    void check_invariants() const;

private:
    TopicState& state_of(Topic& topic);
    // Frees the topic's state once it has no subscriber and no cached message.
    void release_if_empty(Topic& topic);
    // Removes the topic's oldest cached message (from both orders).
    void pop_oldest(Topic& topic);
    void forget(CacheOrder::iterator entry);
    // Restores the holes' rules after messages left the topic's cache.
    void settle_holes(Topic& topic);

    std::size_t cache_messages_max_;
    std::size_t cache_bytes_max_;
    NameIndex<Topic> topics_;  // every known topic, in the order they became known
    CacheOrder order_;  // every cached message, oldest first
    // Nodes of order_ that held messages no longer cached, kept for reuse, so
    // that caching in steady state allocates nothing (splice moves a node).
    CacheOrder spare_;
    std::size_t cached_bytes_ = 0;
    std::size_t stateful_count_ = 0;
};

template <typename OnTaken>
void TopicTable::take_one_messages(Topic& topic, std::int64_t last_seen, OnTaken&& on_taken) {
    if (!topic.state) return;
    auto& cache = topic.state->cache;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < cache.size(); ++i) {
        const CacheOrder::iterator entry = cache[i];
        if (entry->message.index > last_seen && entry->message.delivery == Delivery::one) {
            on_taken(entry->message);
            forget(entry);  // handed out: gone
            continue;
        }
        cache[kept++] = entry;
    }
    cache.resize(kept);
    settle_holes(topic);
    release_if_empty(topic);
}

}  // namespace memq
