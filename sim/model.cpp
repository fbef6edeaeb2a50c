// model.cpp — the protocol model's rules (see model.hpp), one function per
// paragraph of PROTOCOL.md's "Semantics".
#include "model.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace memq::sim {

// The reasons PROTOCOL.md gives, written out here rather than taken from the
// core: a core that swapped two of them must not agree with its own checker.
std::string_view protocol_reason(LineError error) {
    switch (error) {
        case LineError::bad_utf8: return "Could not decode input as UTF-8";
        case LineError::bad_json: return "Could not parse json";
        case LineError::malformed: return "Malformed json message";
        case LineError::line_too_long: return "Line too long";
        case LineError::internal: return "Internal exception";
        case LineError::topic_too_long: return "Topic too long";
        case LineError::too_many_subscriptions: return "Too many subscriptions";
        case LineError::too_many_topics: return "Too many topics";
        case LineError::storage_unavailable: return "Storage unavailable";
    }
    return "Internal exception";
}

// The replies, byte for byte as PROTOCOL.md spells them, each ending in "\r\n".
Model::Model(const Limits& limits, std::uint64_t incarnation, const Durability& durability)
    : limits_(limits), incarnation_(incarnation), ack_frame_("{\"success\": true}\r\n") {
    durability_ = durability;
    // docs/protocol.md, "hello": the broker's name and 16 lowercase hex digits.
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(incarnation));
    hello_frame_ = std::string("{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"") + hex + "\"}\r\n";
    for (std::size_t i = 0; i < kLineErrorCount; ++i) {
        error_frames_.push_back("{\"success\": false, \"reason\": \"" +
                                std::string(protocol_reason(static_cast<LineError>(i))) + "\"}\r\n");
    }
}

std::string_view Model::error_frame(LineError error) const { return error_frames_[static_cast<std::size_t>(error)]; }

ModelConn& Model::find(ConnId conn) {
    const auto found = conns_.find(conn);
    if (found == conns_.end()) throw CheckFailure("simulator bug: model has no connection " + std::to_string(conn));
    return found->second;
}

const ModelConn& Model::conn(ConnId conn) const {
    const auto found = conns_.find(conn);
    if (found == conns_.end()) throw CheckFailure("simulator bug: model has no connection " + std::to_string(conn));
    return found->second;
}

void Model::touch(ConnId conn) {
    if (std::find(touched_.begin(), touched_.end(), conn) == touched_.end()) touched_.push_back(conn);
}

void Model::clear_touched() { touched_.clear(); }

void Model::connect(ConnId conn) {
    if (!conns_.try_emplace(conn).second)
        throw CheckFailure("simulator bug: connection " + std::to_string(conn) + " twice");
    touch(conn);
    if (admitted_ >= limits_.connections_max) {
        // Refused: closed at once with nothing to say, and not counted.
        find(conn).refused = true;
        ++stats_.connections_refused;
        begin_close(conn, CloseReason::too_many_connections);
        settle();
        return;
    }
    ++admitted_;
}

Expected Model::reply(const LineIntent& line, bool success, LineError error) const {
    Expected expected;
    expected.kind = success ? Expected::Kind::ack : Expected::Kind::failure;
    expected.error = error;
    expected.request = line.request;
    expected.request_kind = line.request_kind;
    expected.frame = success ? std::string_view(ack_frame_) : error_frame(error);
    return expected;
}

Expected Model::message_frame(const MessagePtr& message) const {
    Expected expected;
    expected.kind = Expected::Kind::message;
    expected.message = message;
    expected.frame = message->frame;
    return expected;
}

void Model::close_slow(ConnId conn, CloseReason reason) {
    // Slow consumer (or storage failed): closed at once, its queued output
    // and replays dropped (what is in flight stays in flight), and a Close is due now.
    ModelConn& to = find(conn);
    if (reason == CloseReason::slow_consumer) ++stats_.slow_consumer_closes;
    if (reason == CloseReason::storage_failed) ++stats_.storage_closes;
    to.queued.clear();
    to.queued_bytes = 0;
    to.replays.clear();
    to.parked_bytes = 0;
    if (to.closing) {  // a graceful close whose replay cannot fit: an abrupt close now
        to.closing = reason;
        touch(conn);
        return;
    }
    begin_close(conn, reason);
}

void Model::deliver(ConnId conn, Expected expected) {
    ModelConn& to = find(conn);
    if (to.closing) return;  // closing: it gets nothing more
    touch(conn);
    if (to.pending_bytes() + expected.bytes() > limits_.pending_bytes_max) return close_slow(conn);
    ++stats_.frames_owed;
    if (!to.replays.empty()) {  // it waits behind the replays owed before it
        to.parked_bytes += expected.bytes();
        to.replays.back().behind.push_back(std::move(expected));
        return;
    }
    to.queued_bytes += expected.bytes();
    to.queued.push_back(std::move(expected));
}

void Model::deliver_live(ConnId conn, const MessagePtr& message, bool cached) {
    ModelConn& to = find(conn);
    ModelReplay* open = nullptr;
    for (ModelReplay& replay : to.replays) {
        if (replay.open() && replay.topic == message->topic) open = &replay;
    }
    if (open == nullptr) return deliver(conn, message_frame(message));
    if (cached || to.closing) return;  // cached: the replay reaches it in the cache
    touch(conn);
    if (to.pending_bytes() + message->frame.size() > limits_.pending_bytes_max) return close_slow(conn);
    ++stats_.frames_owed;
    to.parked_bytes += message->frame.size();
    open->held.push_back(message_frame(message));
}

void Model::freeze_replay(ModelConn& conn, std::string_view topic) {
    for (ModelReplay& replay : conn.replays) {
        if (replay.open() && replay.topic == topic) replay.end = topics_.find(topic)->second.next_index;
    }
}

void Model::start_replay(ConnId conn, ModelTopic& topic, const LineIntent& line) {
    ModelReplay replay;
    replay.topic = std::string(line.topic);
    // Every live message is owed, whatever last_seen says.
    replay.after = std::min(line.last_seen, topic.next_index - 1);
    // The "one" messages after it are handed out at once, and leave the cache.
    std::deque<ModelCached> kept;
    std::size_t held_bytes = 0;
    bool later_cached = false;
    for (const ModelCached& cached : topic.cache) {
        const MessagePtr& message = cached.message;
        if (message->index > replay.after && message->delivery == Delivery::one) {
            replay.held.push_back(message_frame(message));
            held_bytes += message->frame.size();
            cached_bytes_ -= message->frame.size();
            if (durability_.enabled) {
                pending_records_.push_back(ModelRecord{storage::RecordKind::take, message->topic, message->index, nullptr});
                last_take_seq_ = next_write_seq_;
            }
            continue;
        }
        later_cached = later_cached || message->index > replay.after;
        kept.push_back(cached);
    }
    topic.cache = std::move(kept);
    settle_holes(topic);
    if (replay.held.empty() && !later_cached) return;  // nothing to replay
    ModelConn& to = find(conn);
    if (!replay.held.empty() && to.pending_bytes() + held_bytes > limits_.pending_bytes_max) return close_slow(conn);
    stats_.frames_owed += replay.held.size();
    to.parked_bytes += held_bytes;
    to.replays.push_back(std::move(replay));
    refill(conn);
}

void Model::refill(ConnId conn) {
    ModelConn& to = find(conn);
    touch(conn);
    while (!to.replays.empty()) {
        if (to.queued_bytes + to.in_flight_bytes >= limits_.replay_window_bytes) return;
        ModelReplay& replay = to.replays.front();
        const ModelCached* next_cached = nullptr;
        for (const ModelCached& cached : topics_.find(replay.topic)->second.cache) {
            if (cached.message->index > replay.after && cached.message->index < replay.end) {
                next_cached = &cached;
                break;
            }
        }
        const bool from_held =
            !replay.held.empty() && (next_cached == nullptr || replay.held.front().message->index < next_cached->message->index);
        if (from_held) {
            Expected expected = std::move(replay.held.front());
            replay.held.pop_front();
            replay.after = expected.message->index;
            to.parked_bytes -= expected.bytes();
            to.queued_bytes += expected.bytes();
            to.queued.push_back(std::move(expected));
        } else if (next_cached != nullptr) {
            const std::size_t bytes = next_cached->message->frame.size();
            const std::size_t output = to.queued_bytes + to.in_flight_bytes;
            if (output + to.parked_bytes + bytes > limits_.pending_bytes_max) {
                if (output == 0) close_slow(conn);  // nothing drains, and it cannot fit
                return;
            }
            if (next_cached->message->delivery != Delivery::all) {
                throw CheckFailure("simulator bug: a \"one\" message cached under an open replay");
            }
            replay.after = next_cached->message->index;
            to.queued_bytes += bytes;
            to.queued.push_back(message_frame(next_cached->message));
            ++stats_.frames_owed;
        } else {  // done: what waited behind it follows
            for (Expected& expected : replay.behind) {
                to.parked_bytes -= expected.bytes();
                to.queued_bytes += expected.bytes();
                to.queued.push_back(std::move(expected));
            }
            to.replays.pop_front();
        }
    }
}

void Model::begin_close(ConnId conn, CloseReason reason) {
    ModelConn& closing = find(conn);
    // A graceful close flushes its replays as far as their topics are now.
    for (ModelReplay& replay : closing.replays) {
        if (replay.open()) replay.end = topics_.find(replay.topic)->second.next_index;
    }
    closing.closing = reason;
    closing.reading = false;
    closing.stalled.clear();
    closing.stalled_bytes = 0;
    closing.too_long_held.reset();
    if (reason == CloseReason::quit || reason == CloseReason::line_too_long) ++stats_.graceful_closes;
    leaving_.push_back(conn);
    touch(conn);
}

void Model::settle() {
    for (const ConnId conn : leaving_) {
        for (auto& [name, topic] : topics_) topic.subscribers.erase(conn);
    }
    leaving_.clear();
}

bool Model::apply_line(ConnId conn, const LineIntent& line) {
    if (pending_one_) throw CheckFailure("simulator bug: a line applied while a \"one\" delivery is unresolved");
    ModelConn& sender = find(conn);
    touch(conn);
    if (!sender.reading) return true;
    if (!sender.stalled.empty()) {
        hold_line(conn, line);
        settle();
        return true;
    }
    ++stats_.lines_applied;
    switch (line.kind) {
        case LineIntent::Kind::blank: break;  // no reply, no change
        case LineIntent::Kind::quit:
            begin_close(conn, CloseReason::quit);  // no reply; what is queued is flushed first
            break;
        case LineIntent::Kind::error:
            deliver(conn, reply(line, false, line.error));  // an error changes nothing else
            break;
        case LineIntent::Kind::subscribe: subscribe(conn, line); break;
        case LineIntent::Kind::holes: answer_holes(conn, line); break;
        case LineIntent::Kind::hello: {  // who the broker is; nothing changes
            Expected expected = reply(line, true);
            expected.frame = hello_frame_;
            deliver(conn, std::move(expected));
            break;
        }
        case LineIntent::Kind::unsubscribe:
            if (!topic_fits(conn, line)) break;
            if (const auto topic = topics_.find(line.topic); topic != topics_.end()) {
                topic->second.subscribers.erase(conn);
                freeze_replay(sender, line.topic);
            }
            deliver(conn, reply(line, true));  // also when it was not subscribed
            break;
        case LineIntent::Kind::send:
            publish(conn, line);
            if (pending_one_) return false;
            break;
    }
    settle();
    return true;
}

void Model::apply_line_too_long(ConnId conn, const LineIntent& line) {
    ModelConn& sender = find(conn);
    touch(conn);
    if (!sender.reading) return;
    if (!sender.stalled.empty()) {  // answered once the lines before it are
        hold(sender.too_long_held.emplace(), line);
        sender.reading = false;  // nothing after it is read
        return;
    }
    deliver(conn, reply(line, false, LineError::line_too_long));
    // If that reply itself overflowed the connection, it is a slow consumer
    // now, and nothing more happens to it.
    if (sender.closing) {
        ++stats_.too_long_overflows;
    } else {
        begin_close(conn, CloseReason::line_too_long);
    }
    sender.reading = false;
    settle();
}

bool Model::topic_fits(ConnId conn, const LineIntent& line) {
    // Counted in bytes of the name as decoded, however the line spelled it.
    if (line.topic.size() <= limits_.topic_bytes_max) return true;
    ++stats_.topic_too_long_refused;
    deliver(conn, reply(line, false, LineError::topic_too_long));  // and nothing else happens
    return false;
}

std::size_t Model::subscriptions_of(ConnId conn) const {
    std::size_t count = 0;
    for (const auto& [name, topic] : topics_) count += topic.subscribers.contains(conn) ? 1 : 0;
    return count;
}

std::size_t Model::topics_holding_state() const {
    std::size_t count = 0;
    for (const auto& [name, topic] : topics_) count += topic.holds_state() ? 1 : 0;
    return count;
}

bool Model::topic_allowed(std::string_view name, bool needs_state) const {
    const auto found = topics_.find(name);
    if (found == topics_.end() && topics_.size() >= limits_.indexed_topics_max) return false;
    if (!needs_state || (found != topics_.end() && found->second.holds_state())) return true;
    return topics_holding_state() < limits_.topics_max;
}

void Model::evict_globally_oldest() {
    ModelTopic* oldest = nullptr;
    for (auto& [name, topic] : topics_) {
        if (!topic.cache.empty() && (oldest == nullptr || topic.cache.front().stamp < oldest->cache.front().stamp))
            oldest = &topic;
    }
    if (oldest == nullptr) throw CheckFailure("simulator bug: the cache is over its byte budget and empty");
    cached_bytes_ -= oldest->cache.front().message->frame.size();
    oldest->cache.pop_front();
    settle_holes(*oldest);
    ++stats_.cache_evictions;
}

void Model::settle_holes(ModelTopic& topic) {
    std::vector<std::pair<std::int64_t, std::int64_t>> kept;
    for (const auto& [first, last] : topic.holes) {
        // A hole with no cached message below it is not kept.
        const bool below = !topic.cache.empty() && topic.cache.front().message->index < first;
        if (!below) continue;
        if (!kept.empty()) {
            bool cached_between = false;
            for (const ModelCached& cached : topic.cache) {
                if (cached.message->index > kept.back().second && cached.message->index < first) cached_between = true;
            }
            if (first <= kept.back().second + 1 || !cached_between) {
                kept.back().second = std::max(kept.back().second, last);
                continue;
            }
        }
        kept.emplace_back(first, last);
    }
    topic.holes = std::move(kept);
}

void Model::answer_holes(ConnId conn, const LineIntent& line) {
    if (!topic_fits(conn, line)) return;
    std::string frame = "{\"success\": true, \"holes\": [";
    bool any = false;
    if (const auto found = topics_.find(line.topic); found != topics_.end()) {
        for (const auto& [first, last] : found->second.holes) {
            if (last <= line.last_seen) continue;
            frame += any ? ", [" : "[";
            any = true;
            frame += std::to_string(std::max(first, line.last_seen + 1)) + ", " + std::to_string(last) + "]";
        }
    }
    frame += "]}\r\n";
    holes_replies_.push_back(std::move(frame));
    Expected expected = reply(line, true);
    expected.frame = holes_replies_.back();
    deliver(conn, std::move(expected));
}

// The caller checked that the message is cacheable (caching on, frame within the budget).
void Model::cache(ModelTopic& topic, const MessagePtr& message) {
    if (topic.cache.size() == limits_.cache_messages_max) {
        cached_bytes_ -= topic.cache.front().message->frame.size();
        topic.cache.pop_front();
        settle_holes(topic);
    }
    while (cached_bytes_ + message->frame.size() > limits_.cache_bytes_max) evict_globally_oldest();
    cached_bytes_ += message->frame.size();
    std::uint64_t seq = 0;
    if (durability_.enabled) {
        history_.emplace(std::make_pair(message->topic, message->index), message);
        pending_records_.push_back(ModelRecord{storage::RecordKind::message, message->topic, message->index, message});
        seq = next_write_seq_;
    }
    topic.cache.push_back(ModelCached{next_stamp_++, message, seq});
}

void Model::publish(ConnId sender, const LineIntent& line) {
    if (!topic_fits(sender, line)) return;
    if (durability_.enabled && storage_failed_) {
        ++stats_.storage_refused;
        deliver(sender, reply(line, false, LineError::storage_unavailable));  // and nothing else happens
        return;
    }
    auto found = topics_.find(line.topic);
    const bool known = found != topics_.end();

    // The message is the command's fields plus the topic's next index, which
    // grows for every send whatever happens to the message.
    auto message = std::make_shared<ModelMessage>();
    message->topic = line.topic;
    message->msg = line.msg;
    message->index = known ? found->second.next_index : 0;
    message->delivery = line.delivery;
    message->cache = line.cache;
    scratch_send_.topic.assign(line.topic);
    scratch_send_.msg.assign(line.msg);
    scratch_send_.delivery = line.delivery;
    scratch_send_.cache = line.cache;
    message->frame = encode_message(scratch_send_, message->index);
    append_json_string(message->msg_json, message->msg);
    const MessagePtr shared = std::move(message);

    // It is cached when asked to be (the default), when no subscriber takes a
    // "one" message, when caching is on and the frame is within the budget.
    const bool has_subscribers = known && !found->second.subscribers.empty();
    const bool cache_it = line.cache.value_or(true) && (line.delivery == Delivery::all || !has_subscribers) &&
                          limits_.cache_messages_max != 0 && shared->frame.size() <= limits_.cache_bytes_max;
    if (!topic_allowed(line.topic, cache_it)) {
        ++stats_.topics_refused;
        deliver(sender, reply(line, false, LineError::too_many_topics));  // and nothing else happens
        return;
    }
    if (!known) found = topics_.emplace(std::string(line.topic), ModelTopic{}).first;
    ModelTopic& topic = found->second;
    if (durability_.enabled && !index_durable(sender, topic, found->first, line)) return;
    ++topic.next_index;
    ++stats_.messages_published;

    if (line.delivery == Delivery::all) {
        // Every subscriber of this moment (the sender too), then the cache.
        for (const ConnId subscriber : topic.subscribers) deliver_live(subscriber, shared, cache_it);
        if (cache_it) cache(topic, shared);
    } else if (topic.subscribers.size() >= 2) {
        // Exactly one of them, chosen by the broker: wait to learn which.
        PendingOne pending;
        pending.sender = sender;
        pending.message = shared;
        pending.candidates.assign(topic.subscribers.begin(), topic.subscribers.end());
        pending.ack = reply(line, true);
        pending_one_ = std::move(pending);
        return;
    } else if (topic.subscribers.size() == 1) {
        deliver_live(*topic.subscribers.begin(), shared, false);
    } else if (cache_it) {
        cache(topic, shared);  // nobody to take it: it waits for the first replay
    }
    if (cache_it && durability_.enabled && durability_.policy == SyncPolicy::always) {
        find(sender).hold_until_seq = next_write_seq_;  // the ack waits for the record's write
        sync_wanted_ = true;
    }
    deliver(sender, reply(line, true));  // deliveries come before the ack
}

void Model::resolve_one(ConnId chosen) {
    if (!pending_one_) throw CheckFailure("simulator bug: resolve_one without a pending \"one\" delivery");
    PendingOne pending = std::move(*pending_one_);
    pending_one_.reset();
    if (!std::binary_search(pending.candidates.begin(), pending.candidates.end(), chosen)) {
        throw CheckFailure("simulator bug: resolve_one with a connection that is no candidate");
    }
    ++stats_.one_choices;
    deliver_live(chosen, pending.message, false);
    deliver(pending.sender, std::move(pending.ack));
    settle();
}

void Model::subscribe(ConnId subscriber, const LineIntent& line) {
    // The limits in their order: the topic's name, the connection's
    // subscriptions (a topic it has already is no new one), the topics.
    if (!topic_fits(subscriber, line)) return;
    const auto known = topics_.find(line.topic);
    const bool has_it = known != topics_.end() && known->second.subscribers.contains(subscriber);
    if (!has_it && subscriptions_of(subscriber) >= limits_.subscriptions_max) {
        ++stats_.subscriptions_refused;
        deliver(subscriber, reply(line, false, LineError::too_many_subscriptions));  // and nothing else happens
        return;
    }
    if (!topic_allowed(line.topic, true)) {
        ++stats_.topics_refused;
        deliver(subscriber, reply(line, false, LineError::too_many_topics));  // and nothing else happens
        return;
    }
    auto found = topics_.find(line.topic);
    if (found == topics_.end()) found = topics_.emplace(std::string(line.topic), ModelTopic{}).first;
    ModelTopic& topic = found->second;
    topic.subscribers.insert(subscriber);  // twice is the same as once
    freeze_replay(find(subscriber), line.topic);  // a replay of the topic already running ends here
    deliver(subscriber, reply(line, true));
    if (!line.cache.value_or(true) || find(subscriber).closing) return;
    start_replay(subscriber, topic, line);
}

void Model::transmit(ConnId conn, std::vector<Expected>& out) {
    ModelConn& from = find(conn);
    touch(conn);
    out.clear();
    for (Expected& expected : from.queued) out.push_back(std::move(expected));
    from.queued.clear();
    from.in_flight_bytes += from.queued_bytes;
    from.queued_bytes = 0;
}

void Model::written(ConnId conn, std::size_t bytes) {
    ModelConn& to = find(conn);
    touch(conn);
    if (bytes > to.in_flight_bytes) {
        throw CheckFailure("simulator bug: " + std::to_string(bytes) + " bytes written to connection " +
                           std::to_string(conn) + " with only " + std::to_string(to.in_flight_bytes) + " in flight");
    }
    to.in_flight_bytes -= bytes;
    const bool abrupt = to.closing && (*to.closing == CloseReason::slow_consumer || *to.closing == CloseReason::storage_failed);
    if (to.in_flight_bytes == 0 && !abrupt) refill(conn);
    settle();  // the refill may have closed it as a slow consumer
}

bool Model::close_due(ConnId conn) const {
    const auto found = conns_.find(conn);
    if (found == conns_.end()) return false;
    const ModelConn& closing = found->second;
    if (!closing.closing || closing.close_emitted) return false;
    return *closing.closing == CloseReason::slow_consumer || *closing.closing == CloseReason::storage_failed ||
           (closing.pending_bytes() == 0 && closing.replays.empty());
}

void Model::close_emitted(ConnId conn) {
    find(conn).close_emitted = true;
    touch(conn);
}

void Model::disconnect(ConnId conn) {
    if (!find(conn).refused) --admitted_;
    for (auto& [name, topic] : topics_) topic.subscribers.erase(conn);  // it leaves every topic, nothing else changes
    conns_.erase(conn);
    touch(conn);
}


// ---- Durable topics ------------------------------------------------------

// Copies `line` into `held`, in place: its views point into held's own strings.
void Model::hold(HeldLine& held, const LineIntent& line) {
    held.topic.assign(line.topic);
    held.msg.assign(line.msg);
    held.intent = line;
    held.intent.topic = held.topic;
    held.intent.msg = held.msg;
}

bool Model::index_durable(ConnId conn, ModelTopic& topic, const std::string& name, const LineIntent& line) {
    const std::int64_t index = topic.next_index;
    if (topic.reserve_step == 0) topic.reserve_step = durability_.index_reserve_ahead;
    // Reservations double while the topic outruns the syncs, up to the maximum.
    const auto grow = [&] { topic.reserve_step = std::min(topic.reserve_step * 2, durability_.index_reserve_ahead_max); };
    if (index < topic.durable_until) {
        if (index + topic.reserve_step / 2 >= topic.reserved_until) {
            if (topic.reserved_until > topic.durable_until) grow();
            reserve(topic, name, std::max(index + topic.reserve_step, topic.reserved_until + 1));
        }
        return true;
    }
    if (topic.durable_until > 0) grow();
    if (index >= topic.reserved_until) reserve(topic, name, index + topic.reserve_step);
    ModelConn& sender = find(conn);
    ++stats_.sends_stalled;
    stalled_order_.push_back(conn);
    hold(sender.stalled.emplace_back(), line);
    sender.stalled_bytes = line.bytes;
    return false;
}

void Model::reserve(ModelTopic& topic, const std::string& name, std::int64_t until) {
    topic.reserved_until = until;
    pending_records_.push_back(ModelRecord{storage::RecordKind::reserve, name, until, nullptr});
    unsynced_reservations_.emplace_back(next_write_seq_, name, until);
    sync_wanted_ = true;
}

void Model::hold_line(ConnId conn, const LineIntent& line) {
    ModelConn& sender = find(conn);
    if (sender.stalled_bytes + line.bytes > limits_.pending_bytes_max) return close_slow(conn);
    hold(sender.stalled.emplace_back(), line);
    sender.stalled_bytes += line.bytes;
}

void Model::resume_stalled(const std::function<ConnId(const PendingOne&)>& choose) {
    std::vector<ConnId> order;
    order.swap(stalled_order_);
    for (const ConnId id : order) {
        const auto found = conns_.find(id);
        if (found == conns_.end() || found->second.stalled.empty()) continue;
        std::deque<HeldLine> lines;
        lines.swap(found->second.stalled);
        found->second.stalled_bytes = 0;
        const bool overflowed = found->second.too_long_held.has_value();
        if (overflowed) found->second.reading = !found->second.closing;  // it reads what it held
        for (const HeldLine& held : lines) {
            if (!apply_line(id, held.intent)) resolve_one(choose(*pending_one_));
        }
        ModelConn& after = find(id);
        // A line it resumed may have closed it (its own delivery made it a
        // slow consumer): begin_close dropped the held too-long line then.
        if (overflowed && !after.too_long_held) continue;
        if (overflowed && after.stalled.empty()) {
            HeldLine held;
            hold(held, after.too_long_held->intent);
            after.too_long_held.reset();
            if (!after.closing) apply_line_too_long(id, held.intent);
        } else if (overflowed) {
            after.reading = false;
        }
    }
}

std::size_t Model::live_log_bytes() const {
    std::size_t cached_messages = 0;
    for (const auto& [name, topic] : topics_) cached_messages += topic.cache.size();
    return cached_bytes_ - cached_messages * kFrameBytesBeyondRecord + topics_.size() * kReserveRecordOverhead;
}

std::optional<ExpectedWrite> Model::poll_storage() {
    if (!durability_.enabled || (!snapshot_wanted_ && pending_records_.empty())) return std::nullopt;
    if (storage_failed_ && recovery_snapshot_seq_ == 0 && !snapshot_wanted_) return std::nullopt;
    ExpectedWrite write;
    write.seq = next_write_seq_++;
    ++stats_.writes;
    if (snapshot_wanted_) {
        write.replace = true;
        write.sync_now = true;
        std::size_t bytes = storage::kHeaderBytes;
        for (const auto& [name, topic] : topics_) {
            if (topic.reserved_until == 0) continue;
            write.records.push_back(ModelRecord{storage::RecordKind::reserve, name, topic.reserved_until, nullptr});
            bytes += storage::reserve_record_bytes(name.size());
        }
        std::vector<const ModelCached*> cached;
        for (const auto& [name, topic] : topics_) {
            for (const ModelCached& entry : topic.cache) cached.push_back(&entry);
        }
        std::sort(cached.begin(), cached.end(), [](const ModelCached* a, const ModelCached* b) { return a->stamp < b->stamp; });
        for (const ModelCached* entry : cached) {
            const MessagePtr& message = entry->message;
            write.records.push_back(ModelRecord{storage::RecordKind::message, message->topic, message->index, message});
            bytes += storage::message_record_bytes(message->topic.size(), message->msg_json.size());
        }
        for (const auto& [name, topic] : topics_) {
            for (const auto& [first, last] : topic.holes) {
                write.records.push_back(ModelRecord{storage::RecordKind::hole, name, first, nullptr, last});
                bytes += storage::hole_record_bytes(name.size());
            }
        }
        pending_records_.clear();
        recovery_holes_pending_ = false;
        snapshot_wanted_ = false;
        log_bytes_ = last_snapshot_bytes_ = bytes;
        if (storage_failed_ && recovery_snapshot_seq_ == 0) recovery_snapshot_seq_ = write.seq;
        ++stats_.snapshots;
    } else {
        write.sync_now = sync_wanted_;
        write.holes_in_any_order = recovery_holes_pending_;
        for (const ModelRecord& record : pending_records_) {
            switch (record.kind) {
                case storage::RecordKind::message:
                    log_bytes_ += storage::message_record_bytes(record.topic.size(), record.message->msg_json.size());
                    break;
                case storage::RecordKind::framed_message: MEMQ_CHECK(!"the broker writes no framed message"); break;
                case storage::RecordKind::take: log_bytes_ += storage::take_record_bytes(record.topic.size()); break;
                case storage::RecordKind::reserve: log_bytes_ += storage::reserve_record_bytes(record.topic.size()); break;
                case storage::RecordKind::hole: log_bytes_ += storage::hole_record_bytes(record.topic.size()); break;
            }
        }
        write.records.swap(pending_records_);
        recovery_holes_pending_ = false;
        const std::size_t live = std::max(last_snapshot_bytes_, live_log_bytes());
        if (log_bytes_ > durability_.compaction_floor_bytes && log_bytes_ > durability_.compaction_factor * live) {
            snapshot_wanted_ = true;
        }
    }
    sync_wanted_ = false;
    return write;
}

void Model::synced(std::uint64_t seq, const std::function<ConnId(const PendingOne&)>& choose) {
    if (seq < synced_seq_ || seq >= next_write_seq_) {
        throw CheckFailure("simulator bug: write " + std::to_string(seq) + " synced, not in (" +
                           std::to_string(synced_seq_) + ", " + std::to_string(next_write_seq_) + ")");
    }
    synced_seq_ = seq;
    while (!unsynced_reservations_.empty() && std::get<0>(unsynced_reservations_.front()) <= seq) {
        const auto& [written, name, until] = unsynced_reservations_.front();
        ModelTopic& topic = topics_.find(name)->second;
        topic.durable_until = std::max(topic.durable_until, until);
        unsynced_reservations_.pop_front();
    }
    if (storage_failed_ && recovery_snapshot_seq_ != 0 && seq >= recovery_snapshot_seq_) {
        storage_failed_ = false;
        recovery_snapshot_seq_ = 0;
    }
    for (auto& [id, conn] : conns_) {
        if (conn.hold_until_seq != 0 && conn.hold_until_seq <= synced_seq_) {
            conn.hold_until_seq = 0;
            touch(id);
        }
    }
    resume_stalled(choose);
    settle();
}

void Model::storage_failed(const std::function<ConnId(const PendingOne&)>& choose) {
    storage_failed_ = true;
    recovery_snapshot_seq_ = 0;
    pending_records_.clear();
    sync_wanted_ = false;
    std::vector<ConnId> unstored;
    for (const auto& [id, conn] : conns_) {
        const bool abrupt = conn.closing && (*conn.closing == CloseReason::slow_consumer || *conn.closing == CloseReason::storage_failed);
        if (conn.hold_until_seq > synced_seq_ && !abrupt) unstored.push_back(id);
    }
    for (const ConnId id : unstored) close_slow(id, CloseReason::storage_failed);
    resume_stalled(choose);
    settle();
}

void Model::adopt_recovered(const Broker& broker, const History& history,
                            std::optional<std::size_t> appendable_log_bytes, const RecordedHoles& recorded_holes) {
    broker.topics().for_each_topic([&](const Topic& real) {
        ModelTopic& topic = topics_[std::string(real.name)];
        topic.next_index = real.next_index;
        topic.reserved_until = real.reserved_until;
        topic.durable_until = real.durable_until;
    });
    broker.topics().for_each_cached([&](const Topic& real, const CachedMessage& cached) {
        auto [found, end] = history.equal_range(std::make_pair(std::string(real.name), cached.index));
        while (found != end && found->second->frame != *cached.frame) ++found;
        if (found == end) throw CheckFailure("simulator bug: adopting a message the model never cached");
        topics_[std::string(real.name)].cache.push_back(ModelCached{next_stamp_++, found->second, 0});
        cached_bytes_ += found->second->frame.size();
    });
    broker.topics().for_each_topic([&](const Topic& real) {
        for (const Hole& hole : real.holes()) topics_[std::string(real.name)].holes.emplace_back(hole.first, hole.last);
    });
    // All of it: a later crash may bring back a message this recovery did not
    // (rot that hides a take record, say), and it is still one that was cached.
    history_ = history;
    if (!appendable_log_bytes.has_value()) {
        snapshot_wanted_ = true;  // finish_recovery asks for the first snapshot
        return;
    }
    log_bytes_ = *appendable_log_bytes;
    for (const auto& [name, topic] : topics_) {
        const auto [first, last] = recorded_holes.equal_range(name);
        for (const auto& [hole_first, hole_last] : topic.holes) {
            const bool named = std::any_of(first, last, [&](const auto& recorded) {
                return recorded.second.first <= hole_first && hole_last <= recorded.second.second;
            });
            if (named) continue;
            pending_records_.push_back(ModelRecord{storage::RecordKind::hole, name, hole_first, nullptr, hole_last});
            recovery_holes_pending_ = true;
        }
    }
}

}  // namespace memq::sim
