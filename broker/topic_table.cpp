// topic_table.cpp — membership bookkeeping, the cache ring, and their invariants.
#include "topic_table.hpp"

#include "check.hpp"

namespace memq {

Topic& TopicTable::find_or_create(std::string_view name) {
    if (auto found = topics_.find(name); found != topics_.end()) return found->second;
    return topics_.try_emplace(std::string(name)).first->second;
}

Topic* TopicTable::find(std::string_view name) {
    auto found = topics_.find(name);
    return found == topics_.end() ? nullptr : &found->second;
}

const Topic* TopicTable::find(std::string_view name) const {
    auto found = topics_.find(name);
    return found == topics_.end() ? nullptr : &found->second;
}

bool TopicTable::join(Topic& topic, Subscriber& subscriber) {
    const auto [entry, inserted] = subscriber.positions.try_emplace(&topic, topic.subscribers.size());
    if (inserted) topic.subscribers.push_back(&subscriber);
    return inserted;
}

bool TopicTable::leave(Topic& topic, Subscriber& subscriber) {
    const auto entry = subscriber.positions.find(&topic);
    if (entry == subscriber.positions.end()) return false;
    const std::size_t position = entry->second;
    subscriber.positions.erase(entry);
    MEMQ_CHECK(position < topic.subscribers.size() && topic.subscribers[position] == &subscriber);
    // Swap-remove: the last subscriber takes the freed slot and learns its new position.
    Subscriber* const last = topic.subscribers.back();
    topic.subscribers.pop_back();
    if (last != &subscriber) {
        topic.subscribers[position] = last;
        last->positions.at(&topic) = position;
    }
    return true;
}

void TopicTable::leave_all(Subscriber& subscriber) {
    while (!subscriber.positions.empty()) leave(*subscriber.positions.begin()->first, subscriber);
}

void TopicTable::cache(Topic& topic, CachedMessage message) {
    if (cache_messages_max_ == 0) return;
    MEMQ_CHECK(message.index < topic.next_index);
    MEMQ_CHECK(topic.cache.empty() || topic.cache.back().index < message.index);
    if (topic.cache.size() == cache_messages_max_) topic.cache.pop_front();
    topic.cache.push_back(std::move(message));
}

void TopicTable::check_invariants() const {
    for (const auto& [name, topic] : topics_) {
        MEMQ_CHECK(topic.next_index >= 0);
        MEMQ_CHECK(topic.cache.size() <= cache_messages_max_);
        std::int64_t previous = -1;
        for (const CachedMessage& message : topic.cache) {
            MEMQ_CHECK(message.index > previous && message.index < topic.next_index);
            MEMQ_CHECK(message.frame != nullptr);
            previous = message.index;
        }
        for (std::size_t position = 0; position < topic.subscribers.size(); ++position) {
            const Subscriber* subscriber = topic.subscribers[position];
            const auto entry = subscriber->positions.find(const_cast<Topic*>(&topic));
            MEMQ_CHECK(entry != subscriber->positions.end() && entry->second == position);
        }
    }
}

}  // namespace memq
