// topic_table.cpp — membership bookkeeping, per-topic and global cache order,
// topic state on demand, and their invariants.
#include "topic_table.hpp"

#include <algorithm>

#include "check.hpp"

namespace memq {

std::vector<std::int64_t> Topic::cached_indices() const {
    std::vector<std::int64_t> out;
    if (state) {
        for (const CacheOrder::iterator& entry : state->cache) out.push_back(entry->message.index);
    }
    return out;
}

Topic& TopicTable::find_or_create(std::string_view name) { return topics_.find_or_create(name); }

Topic* TopicTable::find(std::string_view name) { return topics_.find(name); }

const Topic* TopicTable::find(std::string_view name) const { return topics_.find(name); }

TopicState& TopicTable::state_of(Topic& topic) {
    if (!topic.state) {
        topic.state = std::make_unique<TopicState>();
        ++stateful_count_;
    }
    return *topic.state;
}

void TopicTable::release_if_empty(Topic& topic) {
    if (!topic.state || !topic.state->subscribers.empty() || !topic.state->cache.empty()) return;
    topic.state.reset();
    --stateful_count_;
}

bool TopicTable::join(Topic& topic, Subscriber& subscriber) {
    TopicState& state = state_of(topic);
    const auto [entry, inserted] = subscriber.positions.try_emplace(&topic, state.subscribers.size());
    if (inserted) state.subscribers.push_back(&subscriber);
    return inserted;
}

bool TopicTable::leave(Topic& topic, Subscriber& subscriber) {
    const auto entry = subscriber.positions.find(&topic);
    if (entry == subscriber.positions.end()) return false;
    const std::size_t position = entry->second;
    subscriber.positions.erase(entry);
    MEMQ_CHECK(topic.state != nullptr);
    std::vector<Subscriber*>& subscribers = topic.state->subscribers;
    MEMQ_CHECK(position < subscribers.size() && subscribers[position] == &subscriber);
    // Swap-remove: the last subscriber takes the freed slot and learns its new position.
    Subscriber* const last = subscribers.back();
    subscribers.pop_back();
    if (last != &subscriber) {
        subscribers[position] = last;
        last->positions.at(&topic) = position;
    }
    release_if_empty(topic);
    return true;
}

void TopicTable::leave_all(Subscriber& subscriber) {
    while (!subscriber.positions.empty()) leave(*subscriber.positions.begin()->first, subscriber);
}

void TopicTable::forget(CacheOrder::iterator entry) {
    cached_bytes_ -= entry->message.frame->size();
    *entry = CacheEntry{};  // lets the frame go
    spare_.splice(spare_.end(), order_, entry);
}

void TopicTable::pop_oldest(Topic& topic) {
    Ring<CacheOrder::iterator>& cache = topic.state->cache;
    forget(cache.front());
    cache.pop_front();
    if (!topic.state->holes.empty()) [[unlikely]] settle_holes(topic);
}

void TopicTable::settle_holes(Topic& topic) {
    if (!topic.state || topic.state->holes.empty()) return;
    std::vector<Hole>& holes = topic.state->holes;
    const Ring<CacheOrder::iterator>& cache = topic.state->cache;
    if (cache.empty()) {
        holes.clear();  // no cached message below any of them: a resume's first message shows the loss
        return;
    }
    const std::int64_t oldest = cache.front()->message.index;
    std::size_t kept = 0;
    for (const Hole& hole : holes) {
        if (hole.first <= oldest) continue;  // nothing cached below it any more
        if (kept != 0) {
            Hole& previous = holes[kept - 1];
            // Adjacent, overlapping, or nothing cached between: one hole.
            if (hole.first <= previous.last + 1 || cached_after(topic, previous.last, hole.first) == nullptr) {
                previous.last = std::max(previous.last, hole.last);
                continue;
            }
        }
        holes[kept++] = hole;
    }
    holes.resize(kept);
}

void TopicTable::add_holes(Topic& topic, std::span<const Hole> added) {
    if (added.empty() || !topic.state) return;  // no cache: no hole is needed
    std::vector<Hole>& holes = topic.state->holes;
    holes.insert(holes.end(), added.begin(), added.end());
    std::sort(holes.begin(), holes.end(), [](const Hole& a, const Hole& b) { return a.first < b.first; });
    settle_holes(topic);
}

bool TopicTable::remove_cached(Topic& topic, std::int64_t index) {
    if (!topic.state) return false;
    Ring<CacheOrder::iterator>& cache = topic.state->cache;
    std::size_t kept = 0;
    bool removed = false;
    for (std::size_t i = 0; i < cache.size(); ++i) {
        if (cache[i]->message.index == index) {
            forget(cache[i]);
            removed = true;
            continue;
        }
        cache[kept++] = cache[i];
    }
    cache.resize(kept);
    settle_holes(topic);
    release_if_empty(topic);
    return removed;
}

bool TopicTable::evict_oldest() {
    if (order_.empty()) return false;
    Topic& owner = *order_.front().topic;
    pop_oldest(owner);
    release_if_empty(owner);
    return true;
}

const CachedMessage* TopicTable::cached_after(const Topic& topic, std::int64_t last_seen, std::int64_t end) const {
    if (!topic.state) return nullptr;
    const Ring<CacheOrder::iterator>& cache = topic.state->cache;
    std::size_t low = 0;  // the first entry with index > last_seen is in [low, high]
    std::size_t high = cache.size();
    while (low < high) {
        const std::size_t middle = low + (high - low) / 2;
        if (cache[middle]->message.index > last_seen) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    if (low == cache.size() || cache[low]->message.index >= end) return nullptr;
    return &cache[low]->message;
}

CacheResult TopicTable::cache(Topic& topic, CachedMessage message) {
    CacheResult result;
    const std::size_t bytes = message.frame->size();
    if (!cacheable(bytes)) return result;
    MEMQ_CHECK(message.index < topic.next_index);
    TopicState& state = state_of(topic);
    MEMQ_CHECK(state.cache.empty() || state.cache.back()->message.index < message.index);
    if (state.cache.size() == cache_messages_max_) pop_oldest(topic);
    // The globally oldest entry is always the oldest of its own topic: both
    // orders are orders of caching, and every removal keeps them in step.
    while (cached_bytes_ + bytes > cache_bytes_max_) {
        Topic& owner = *order_.front().topic;
        MEMQ_CHECK(owner.state && !owner.state->cache.empty() && owner.state->cache.front() == order_.begin());
        pop_oldest(owner);
        if (&owner != &topic) release_if_empty(owner);
        ++result.evicted_for_bytes;
    }
    cached_bytes_ += bytes;
    if (spare_.empty()) spare_.emplace_back();
    const CacheOrder::iterator entry = spare_.begin();
    *entry = CacheEntry{&topic, std::move(message)};
    order_.splice(order_.end(), spare_, entry);
    state.cache.push_back(entry);
    result.cached = true;
    return result;
}

void TopicTable::check_invariants() const {
    std::size_t stateful = 0;
    std::size_t cached = 0;
    std::unordered_map<const Topic*, std::size_t> seen;  // per topic: its entries met in the global order
    topics_.for_each([&](const Topic& topic) {
        MEMQ_CHECK(topic.next_index >= 0);
        MEMQ_CHECK(topics_.find(topic.name) == &topic);
        MEMQ_CHECK(0 <= topic.durable_until && topic.durable_until <= topic.reserved_until);
        if (!topic.state) return;
        ++stateful;
        const TopicState& state = *topic.state;
        MEMQ_CHECK(!state.subscribers.empty() || !state.cache.empty());  // an empty state is freed
        MEMQ_CHECK(state.cache.size() <= cache_messages_max_);
        cached += state.cache.size();
        std::int64_t previous = -1;
        for (const CacheOrder::iterator& entry : state.cache) {
            MEMQ_CHECK(entry->topic == &topic);
            MEMQ_CHECK(entry->message.index > previous && entry->message.index < topic.next_index);
            MEMQ_CHECK(entry->message.frame != nullptr);
            previous = entry->message.index;
        }
        // Holes: ascending, disjoint, each above the oldest cached message and
        // below next_index, a cached message between any two; so at most one
        // a cached message.
        MEMQ_CHECK(state.holes.size() <= state.cache.size());
        for (std::size_t i = 0; i < state.holes.size(); ++i) {
            const Hole& hole = state.holes[i];
            MEMQ_CHECK(hole.first <= hole.last && hole.last < topic.next_index);
            MEMQ_CHECK(hole.first > state.cache.front()->message.index);
            if (i != 0) {
                const Hole& previous = state.holes[i - 1];
                MEMQ_CHECK(previous.last + 1 < hole.first);
                MEMQ_CHECK(cached_after(topic, previous.last, hole.first) != nullptr);
            }
        }
        for (std::size_t position = 0; position < state.subscribers.size(); ++position) {
            const Subscriber* subscriber = state.subscribers[position];
            const auto entry = subscriber->positions.find(const_cast<Topic*>(&topic));
            MEMQ_CHECK(entry != subscriber->positions.end() && entry->second == position);
        }
    });
    MEMQ_CHECK(stateful == stateful_count_);
    MEMQ_CHECK(cached == order_.size());
    // The global order lists each topic's entries in that topic's own order,
    // and its bytes are the budget's count.
    std::size_t bytes = 0;
    for (auto entry = order_.begin(); entry != order_.end(); ++entry) {
        MEMQ_CHECK(entry->topic != nullptr && entry->topic->state != nullptr);
        std::size_t& next = seen[entry->topic];
        MEMQ_CHECK(next < entry->topic->state->cache.size() && entry->topic->state->cache[next] == entry);
        ++next;
        bytes += entry->message.frame->size();
    }
    MEMQ_CHECK(bytes == cached_bytes_);
    MEMQ_CHECK(cached_bytes_ <= cache_bytes_max_);
}

}  // namespace memq
