// topic_table.hpp — topics and their subscribers, index and replay cache.
//
// Rules:
// - Membership is two-way and kept consistent in O(1): a Topic lists its
//   Subscribers in a vector (for uniform random choice and fan-out without
//   lookups), and each Subscriber maps its Topics to its position there.
// - A topic's next_index only grows, for the life of the table; a topic, once
//   created, is never removed (its index must not go back).
// - A cache holds at most cache_messages_max messages, indices strictly
//   increasing, each below next_index; a "one" message leaves it when replayed.
// - No IO, no frames built here: frames are made by the caller and shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
    std::unordered_map<Topic*, std::size_t> positions;  // topic -> index in topic->subscribers
};

struct CachedMessage {
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    Frame frame;
};

struct Topic {
    std::vector<Subscriber*> subscribers;
    std::int64_t next_index = 0;
    Ring<CachedMessage> cache;  // a ring: evicting and appending allocate nothing
};

class TopicTable {
public:
    explicit TopicTable(std::size_t cache_messages_max) : cache_messages_max_(cache_messages_max) {}

    Topic& find_or_create(std::string_view name);
    Topic* find(std::string_view name);
    const Topic* find(std::string_view name) const;
    std::size_t size() const { return topics_.size(); }

    // Returns false (and changes nothing) when already a member / not a member.
    bool join(Topic& topic, Subscriber& subscriber);
    bool leave(Topic& topic, Subscriber& subscriber);
    void leave_all(Subscriber& subscriber);

    // Appends to the topic's cache, evicting the oldest past the limit.
    void cache(Topic& topic, CachedMessage message);

    // Calls on_frame(const Frame&) for every cached message with index >
    // last_seen, oldest first; the "one" messages among them leave the cache.
    template <typename OnFrame>
    void replay(Topic& topic, std::int64_t last_seen, OnFrame&& on_frame);

    void check_invariants() const;

private:
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
    };

    std::size_t cache_messages_max_;
    std::unordered_map<std::string, Topic, NameHash, std::equal_to<>> topics_;
};

template <typename OnFrame>
void TopicTable::replay(Topic& topic, std::int64_t last_seen, OnFrame&& on_frame) {
    auto& cache = topic.cache;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < cache.size(); ++i) {
        CachedMessage& message = cache[i];
        const bool replayed = message.index > last_seen;
        if (replayed) on_frame(message.frame);
        if (replayed && message.delivery == Delivery::one) continue;  // handed out: gone
        if (kept != i) cache[kept] = std::move(message);
        ++kept;
    }
    cache.resize(kept);
}

}  // namespace memq
