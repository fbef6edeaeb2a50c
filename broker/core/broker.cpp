// broker.cpp — the core state machine: lines to commands, commands to frames.
#include "broker.hpp"

#include <algorithm>
#include <span>
#include <string>
#include <utility>

#include "check.hpp"

namespace memq {

std::string_view to_string(CloseReason reason) {
    switch (reason) {
        case CloseReason::quit: return "quit";
        case CloseReason::line_too_long: return "line too long";
        case CloseReason::slow_consumer: return "slow consumer";
        case CloseReason::too_many_connections: return "too many connections";
        case CloseReason::storage_failed: return "storage failed";
    }
    return "unknown";
}

Broker::Broker(const Limits& limits, std::uint64_t seed, std::uint64_t incarnation, const Durability& durability)
    : limits_(limits),
      durability_(durability),
      incarnation_(incarnation),
      prng_(seed),
      topics_(limits.cache_messages_max, limits.cache_bytes_max),
      ack_frame_(make_frame(encode_ack())),
      hello_frame_(make_frame(encode_hello(incarnation))) {
    MEMQ_CHECK(limits.replay_window_bytes > 0);  // else a replay would never start
    MEMQ_CHECK(durability.index_reserve_ahead >= 2 && durability.compaction_factor >= 2 &&
               durability.index_reserve_ahead_max >= durability.index_reserve_ahead);
    for (std::size_t i = 0; i < error_frames_.size(); ++i) {
        error_frames_[i] = make_frame(encode_error(static_cast<LineError>(i)));
    }
}

Broker::Connection& Broker::connection(ConnId conn) {
    const auto found = connections_.find(conn);
    MEMQ_CHECK(found != connections_.end());
    return *found->second;
}

std::size_t Broker::pending_bytes(ConnId conn) const {
    const auto found = connections_.find(conn);
    if (found == connections_.end()) return 0;
    const Connection& connection = *found->second;
    return connection.queued_bytes + connection.parked_bytes + connection.in_flight_bytes;
}

void Broker::handle_connect(ConnId conn) {
    const auto [entry, inserted] = connections_.try_emplace(conn, std::make_unique<Connection>(conn, limits_));
    MEMQ_CHECK(inserted);
    Connection& connected = *entry->second;
    if (admitted_ >= limits_.connections_max) {
        ++stats_.connections_refused;
        begin_close(connected, CloseReason::too_many_connections);
        settle_closes();
        return;
    }
    ++admitted_;
    ++stats_.connections_accepted;
}

void Broker::handle_receive(ConnId conn, std::string_view bytes) {
    Connection& receiver = connection(conn);
    if (receiver.closing()) return;  // a closing connection's input is dropped
    const LineReader::Status status = receiver.reader.feed(bytes, [&](std::string_view line) {
        if (receiver.stalled) [[unlikely]] {
            take_line(receiver, line);
            return !receiver.closing();
        }
        return process_line(receiver, line);
    });
    if (status == LineReader::Status::too_long && !receiver.closing()) {
        if (receiver.stalled) {
            receiver.line_too_long_held = true;  // answered after the lines held before it
        } else {
            refuse_line_too_long(receiver);
        }
    }
    settle_closes();
}

void Broker::refuse_line_too_long(Connection& receiver) {
    enqueue(receiver, error_frames_[static_cast<std::size_t>(LineError::line_too_long)]);
    ++stats_.errors_replied;
    ++stats_.line_too_long_closes;
    // The reply itself may have closed it as a slow consumer; that close stands.
    if (!receiver.closing()) begin_close(receiver, CloseReason::line_too_long);
}

void Broker::take_line(Connection& sender, std::string_view raw_line) {
    if (sender.closing()) return;
    if (!sender.stalled) {
        process_line(sender, raw_line);
        return;
    }
    // Held input counts against the same bound as held output: a client that
    // keeps sending while its send waits for a sync is a slow consumer.
    if (sender.stalled_input.size() + raw_line.size() + 1 > limits_.pending_bytes_max) {
        ++stats_.slow_consumer_closes;
        begin_close(sender, CloseReason::slow_consumer);
        return;
    }
    hold_line(sender, raw_line);
}

void Broker::hold_line(Connection& sender, std::string_view raw_line) {
    sender.stalled_input.append(raw_line);
    sender.stalled_input += '\n';
}

// Returns whether the connection takes more lines.
bool Broker::process_line(Connection& sender, std::string_view raw_line) {
    const std::string_view line = trim_line(raw_line);
    if (line.empty()) return true;
    ++stats_.lines_processed;
    const ParseRefResult parsed = parser_.parse(line);
    if (const auto* error = std::get_if<LineError>(&parsed)) {
        enqueue(sender, error_frames_[static_cast<std::size_t>(*error)]);
        ++stats_.errors_replied;
        return !sender.closing();
    }
    const CommandRef& command = std::get<CommandRef>(parsed);
    if (std::holds_alternative<Quit>(command)) {
        begin_close(sender, CloseReason::quit);
        return false;
    }
    // No try/catch here, on purpose. The only thing execute() can throw is
    // std::bad_alloc, and it can throw it part-way: a publish may have taken
    // its index and queued some deliveries. Replying "Internal exception"
    // then would tell the sender that nothing happened when half of it did,
    // and leave the core's bookkeeping unproven. Like TigerBeetle on
    // allocation failure, the process stops instead (docs/architecture.md,
    // "Failure inside a command"); a supervisor restarts it and resuming
    // clients learn of the restart from the new incarnation.
    execute(sender, command);
    if (sender.stalled) [[unlikely]] {
        // The send waits for its topic's reservation to be synced: it is
        // kept, as it came, to run again then (and counted then).
        --stats_.lines_processed;
        MEMQ_CHECK(sender.stalled_input.empty());
        hold_line(sender, raw_line);
    }
    settle_closes();
    return !sender.closing();
}

namespace {

// The topic a command names, if it names one.
std::optional<std::string_view> named_topic(const CommandRef& command) {
    if (const auto* send = std::get_if<SendRef>(&command)) return send->topic.text;
    if (const auto* subscribe = std::get_if<SubscribeRef>(&command)) return subscribe->topic;
    if (const auto* unsubscribe = std::get_if<UnsubscribeRef>(&command)) return unsubscribe->topic;
    if (const auto* holes = std::get_if<HolesRef>(&command)) return holes->topic;
    return std::nullopt;
}

// {"success": true, "holes": [[first, last], ...]}: the holes with last > after,
// each clipped to first >= after + 1.
std::string encode_holes_reply(std::span<const Hole> holes, std::int64_t after) {
    std::string out = R"({"success": true, "holes": [)";
    bool first_one = true;
    for (const Hole& hole : holes) {
        if (hole.last <= after) continue;  // also keeps after + 1 from overflowing below
        out += first_one ? "[" : ", [";
        first_one = false;
        out += std::to_string(std::max(hole.first, after + 1));
        out += ", ";
        out += std::to_string(hole.last);
        out += ']';
    }
    out += "]}\r\n";
    return out;
}

}  // namespace

void Broker::execute(Connection& sender, const CommandRef& command) {
    // The first limit of every command naming a topic (see broker.hpp for the order).
    if (const auto topic = named_topic(command); topic && topic->size() > limits_.topic_bytes_max) {
        return refuse(sender, LineError::topic_too_long);
    }
    if (const auto* send = std::get_if<SendRef>(&command)) {
        publish(sender, *send);
    } else if (const auto* subscribe = std::get_if<SubscribeRef>(&command)) {
        this->subscribe(sender, *subscribe);
    } else if (const auto* unsubscribe = std::get_if<UnsubscribeRef>(&command)) {
        if (Topic* topic = topics_.find(unsubscribe->topic)) {
            topics_.leave(*topic, sender);
            freeze_replay(sender, *topic);
        }
        enqueue(sender, ack_frame_);
    } else if (std::holds_alternative<Hello>(command)) {
        enqueue(sender, hello_frame_);
    } else if (const auto* holes = std::get_if<HolesRef>(&command)) {
        // Changes nothing: an unknown topic stays unknown.
        const Topic* topic = topics_.find(holes->topic);
        const std::span<const Hole> known = topic != nullptr ? topic->holes() : std::span<const Hole>();
        enqueue(sender, make_frame(encode_holes_reply(known, holes->after)));
    }
}

bool Broker::topic_allowed(const Topic* found, bool needs_state) const {
    if (found == nullptr && topics_.size() >= limits_.indexed_topics_max) return false;
    const bool new_state = needs_state && (found == nullptr || found->state == nullptr);
    return !new_state || topics_.stateful_count() < limits_.topics_max;
}

bool Broker::subscription_allowed(const Connection& subscriber, Topic* found) const {
    if (found != nullptr && subscriber.positions.contains(found)) return true;  // subscribed already
    return subscriber.positions.size() < limits_.subscriptions_max;
}

void Broker::refuse(Connection& sender, LineError error) {
    enqueue(sender, error_frames_[static_cast<std::size_t>(error)]);
    ++stats_.errors_replied;
    if (error == LineError::too_many_topics) ++stats_.topics_refused;
    if (error == LineError::topic_too_long) ++stats_.topic_too_long_refused;
    if (error == LineError::too_many_subscriptions) ++stats_.subscriptions_refused;
}

void Broker::publish(Connection& sender, const SendRef& send) {
    MEMQ_CHECK(!sender.closing() && !sender.stalled);  // its lines are neither dropped nor held
    if (durability_.enabled && storage_failed_) [[unlikely]] {
        ++stats_.storage_refused;
        return refuse(sender, LineError::storage_unavailable);
    }
    Topic* found = topics_.find(send.topic.text);
    const std::int64_t index = found != nullptr ? found->next_index : 0;
    const Frame frame = frame_pool_.make([&](std::string& out) { append_message(out, send, index); });
    const bool has_subscribers = found != nullptr && !found->subscribers().empty();
    // Cached: asked to be (the default), not handed to a "one" subscriber, and within the budget.
    const bool cache_it = send.cache.value_or(true) && (send.delivery == Delivery::all || !has_subscribers) &&
                          topics_.cacheable(frame->size());
    if (!topic_allowed(found, cache_it)) return refuse(sender, LineError::too_many_topics);

    Topic& topic = found != nullptr ? *found : topics_.find_or_create(send.topic.text);
    if (durability_.enabled && !index_durable(sender, topic, index)) [[unlikely]] return;
    MEMQ_CHECK(topic.next_index == index);
    ++topic.next_index;
    // Handed out only under a synced reservation: no crash can hand it out again.
    MEMQ_CHECK(!durability_.enabled || topic.next_index <= topic.durable_until);
    ++stats_.messages_published;
    if (send.delivery == Delivery::all) {
        // enqueue() may condemn a slow consumer, but it only leaves its topics
        // in settle_closes(), so this vector does not change under the loop.
        for (Subscriber* subscriber : topic.subscribers()) {
            Connection& recipient = static_cast<Connection&>(*subscriber);
            bool delivered;
            if (recipient.open_replays == 0) [[likely]] {
                delivered = enqueue(recipient, frame);
            } else {
                delivered = deliver(recipient, topic, index, frame, cache_it);
            }
            if (delivered) ++stats_.messages_delivered;
        }
    } else if (has_subscribers) {
        const std::span<Subscriber* const> subscribers = topic.subscribers();
        Connection& chosen = static_cast<Connection&>(*subscribers[prng_.below(subscribers.size())]);
        if (one_choices_ != nullptr && subscribers.size() >= 2) [[unlikely]] one_choices_->push_back(chosen.id);
        if (deliver(chosen, topic, index, frame, false)) ++stats_.messages_delivered;
    }
    if (cache_it) {
        const CacheResult cached = topics_.cache(topic, CachedMessage{index, send.delivery, frame});
        stats_.cache_evictions += cached.evicted_for_bytes;
        if (durability_.enabled && cached.cached) {
            // The record holds the msg's literal, not the frame (rebuilt at
            // recovery): the sender's literal when the frame copied it.
            std::string_view msg_json = send.msg.json;
            if (msg_json.empty()) {
                const std::optional<MessageFrameFields> fields = message_frame_fields(*frame, index, send.delivery);
                MEMQ_CHECK(fields.has_value());  // the frame append_message just wrote
                msg_json = fields->msg_json;
            }
            storage::append_message(log_pending_, topic.name, index, send.delivery, send.cache.value_or(false),
                                    msg_json, storage::Sealing::deferred);
            if (durability_.policy == SyncPolicy::always) {
                sender.hold_until_seq = next_write_seq_;  // its ack, queued next, waits for this write
                log_sync_wanted_ = true;
            }
        }
        MEMQ_CHECK(!cached.cached || topic.state->cache.back()->message.index == index);  // the newest cached
    }
    enqueue(sender, ack_frame_);
}

bool Broker::index_durable(Connection& sender, Topic& topic, std::int64_t index) {
    if (topic.reserve_step == 0) topic.reserve_step = durability_.index_reserve_ahead;
    // The topic outruns the syncs (a reservation runs out, or is renewed
    // before the last renewal is synced): its reservations double, up to the
    // most a crash may skip.
    const auto grow = [&] { topic.reserve_step = std::min(topic.reserve_step * 2, durability_.index_reserve_ahead_max); };
    if (index < topic.durable_until) {
        // Half of the reservation used: the next one is written now, so that
        // it is synced before this one runs out.
        if (index + topic.reserve_step / 2 >= topic.reserved_until) {
            if (topic.reserved_until > topic.durable_until) grow();
            reserve(topic, std::max(index + topic.reserve_step, topic.reserved_until + 1));
        }
        return true;
    }
    if (topic.durable_until > 0) grow();  // not its first send: it ran out
    if (index >= topic.reserved_until) reserve(topic, index + topic.reserve_step);
    sender.stalled = true;
    stalled_.push_back(sender.id);
    ++stats_.sends_stalled;
    return false;
}

void Broker::reserve(Topic& topic, std::int64_t until) {
    MEMQ_CHECK(until > topic.reserved_until);
    topic.reserved_until = until;
    storage::append_reserve(log_pending_, topic.name, until, storage::Sealing::deferred);
    unsynced_reservations_.emplace_back(next_write_seq_, &topic, until);
    log_sync_wanted_ = true;  // a send may wait for it
}

void Broker::subscribe(Connection& subscriber, const SubscribeRef& subscribe) {
    MEMQ_CHECK(!subscriber.closing());
    Topic* found = topics_.find(subscribe.topic);
    if (!subscription_allowed(subscriber, found)) return refuse(subscriber, LineError::too_many_subscriptions);
    if (!topic_allowed(found, true)) return refuse(subscriber, LineError::too_many_topics);
    Topic& topic = found != nullptr ? *found : topics_.find_or_create(subscribe.topic);
    topics_.join(topic, subscriber);
    freeze_replay(subscriber, topic);  // a replay of this topic already running ends where the topic is now
    enqueue(subscriber, ack_frame_);
    if (subscribe.cache && !subscriber.closing()) start_replay(subscriber, topic, subscribe.last_seen);
    // Still in the topic (a close leaves it only in settle_closes), with no
    // more topics than allowed, and at most one replay of it open.
    MEMQ_CHECK(subscriber.positions.contains(&topic) && subscriber.positions.size() <= limits_.subscriptions_max);
    MEMQ_CHECK(std::count_if(subscriber.replays.begin(), subscriber.replays.end(), [&](const Replay& replay) {
                   return replay.open() && replay.topic == &topic;
               }) <= 1);
}

void Broker::start_replay(Connection& subscriber, Topic& topic, std::int64_t last_seen) {
    MEMQ_CHECK(!subscriber.closing());
    // Live messages have indices from next_index on, and are all owed,
    // whatever last_seen says: the cursor starts below them.
    Replay replay;
    replay.topic = &topic;
    replay.after = std::min(last_seen, topic.next_index - 1);
    // "one" messages are handed out now, as an eager replay would: no later
    // replay may take them too. (They are gone even if they close this
    // subscriber as a slow consumer: they were handed out.)
    std::size_t held_bytes = 0;
    topics_.take_one_messages(topic, replay.after, [&](const CachedMessage& taken) {
        replay.held.emplace_back(taken.index, taken.frame);
        held_bytes += taken.frame->size();
        // Not synced for anyone: a crash before the next sync may hand it out
        // again. Written also while the storage is failed: a snapshot not yet
        // polled replaces it, one polled already does not hold it.
        if (durability_.enabled) storage::append_take(log_pending_, topic.name, taken.index, storage::Sealing::deferred);
    });
    if (replay.held.empty() && topics_.cached_after(topic, replay.after, Replay::kOpen) == nullptr) return;
    if (!replay.held.empty() &&
           subscriber.queued_bytes + subscriber.parked_bytes + subscriber.in_flight_bytes + held_bytes >
               limits_.pending_bytes_max) {
        ++stats_.slow_consumer_closes;
        begin_close(subscriber, CloseReason::slow_consumer);
        return;
    }
    stats_.messages_delivered += replay.held.size();
    subscriber.parked_bytes += held_bytes;
    subscriber.replays.push_back(std::move(replay));
    ++subscriber.open_replays;
    refill(subscriber);
}

void Broker::freeze_replay(Connection& connection, Topic& topic) {
    if (connection.open_replays == 0) return;
    for (Replay& replay : connection.replays) {
        if (replay.open() && replay.topic == &topic) {
            replay.end = topic.next_index;
            --connection.open_replays;
            return;  // at most one replay of a topic is open
        }
    }
}

bool Broker::deliver(Connection& recipient, Topic& topic, std::int64_t index, const Frame& frame, bool cached) {
    Replay* open = nullptr;
    for (Replay& replay : recipient.replays) {
        if (replay.open() && replay.topic == &topic) open = &replay;
    }
    if (open == nullptr) return enqueue(recipient, frame);
    MEMQ_CHECK(index > open->after && (open->held.empty() || open->held.back().first < index));
    if (cached) return false;  // the replay's cursor reaches it in the cache
    if (recipient.closing()) return false;
    if (recipient.queued_bytes + recipient.parked_bytes + recipient.in_flight_bytes + frame->size() >
        limits_.pending_bytes_max) {
        ++stats_.slow_consumer_closes;
        begin_close(recipient, CloseReason::slow_consumer);
        return false;
    }
    open->held.emplace_back(index, frame);
    recipient.parked_bytes += frame->size();
    return true;
}

void Broker::park_behind(Connection& recipient, const Frame& frame) {
    recipient.replays.back().behind.push_back(frame);
    recipient.parked_bytes += frame->size();
}

void Broker::mark_ready(Connection& connection) {
    if (connection.in_ready_list) return;
    connection.in_ready_list = true;
    ready_.push_back(connection.id);
}

bool Broker::enqueue(Connection& recipient, const Frame& frame) {
    MEMQ_CHECK(frame && !frame->empty() && frame->back() == '\n');  // one whole line
    if (recipient.closing()) return false;
    const std::size_t pending = recipient.queued_bytes + recipient.parked_bytes + recipient.in_flight_bytes;
    if (pending + frame->size() > limits_.pending_bytes_max) [[unlikely]] {
        ++stats_.slow_consumer_closes;
        begin_close(recipient, CloseReason::slow_consumer);
        return false;
    }
    if (!recipient.replays.empty()) [[unlikely]] {  // it follows the replays queued before it
        park_behind(recipient, frame);
        return true;
    }
    recipient.queued.push_back(frame);
    recipient.queued_bytes += frame->size();
    mark_ready(recipient);
    MEMQ_CHECK(pending + frame->size() <= limits_.pending_bytes_max);  // what it took is within the bound
    return true;
}

void Broker::refill(Connection& connection) {
    while (!connection.replays.empty()) {
        if (connection.queued_bytes + connection.in_flight_bytes >= limits_.replay_window_bytes) return;
        Replay& replay = connection.replays.front();
        const CachedMessage* cached = topics_.cached_after(*replay.topic, replay.after, replay.end);
        const bool from_held = !replay.held.empty() && (cached == nullptr || replay.held.front().first < cached->index);
        if (!from_held && cached == nullptr) {
            finish_front_replay(connection);
            continue;
        }
        if (from_held) {  // counted already: it moves from parked to queued
            auto [index, frame] = std::move(replay.held.front());
            replay.held.pop_front();
            connection.parked_bytes -= frame->size();
            replay.after = index;
            connection.queued_bytes += frame->size();
            connection.queued.push_back(std::move(frame));
        } else {
            // Only "all" messages stay cached under a replay: the "one"
            // messages were taken when it began, and none is cached while the
            // topic has a subscriber (this one) or past a frozen end.
            MEMQ_CHECK(cached->delivery == Delivery::all && cached->index > replay.after);
            const std::size_t bytes = cached->frame->size();
            const std::size_t output = connection.queued_bytes + connection.in_flight_bytes;
            if (output + connection.parked_bytes + bytes > limits_.pending_bytes_max) {
                if (output != 0) return;  // it fits once the output drains
                // Nothing is draining and it cannot fit: what waits behind the
                // replay already takes the room it needs.
                ++stats_.slow_consumer_closes;
                begin_close(connection, CloseReason::slow_consumer);
                return;
            }
            replay.after = cached->index;
            connection.queued_bytes += bytes;
            connection.queued.push_back(cached->frame);
            ++stats_.messages_delivered;
        }
        mark_ready(connection);
    }
}

void Broker::finish_front_replay(Connection& connection) {
    Replay& finished = connection.replays.front();
    MEMQ_CHECK(finished.held.empty());
    if (finished.open()) --connection.open_replays;
    for (Frame& frame : finished.behind) {
        connection.parked_bytes -= frame->size();
        connection.queued_bytes += frame->size();
        connection.queued.push_back(std::move(frame));
    }
    if (!finished.behind.empty()) mark_ready(connection);
    connection.replays.erase(connection.replays.begin());
}

void Broker::begin_close(Connection& closing, CloseReason reason) {
    if (closing.lifecycle == Lifecycle::draining && abrupt_close(reason)) {
        // A graceful close whose replay cannot fit what waits behind it (or
        // whose held ack can no longer be stored): it becomes an abrupt
        // close, due at once.
        MEMQ_CHECK(!closing.refused());
        closing.lifecycle = Lifecycle::dropping;
        closing.close_reason = reason;
        closing.queued.clear();
        closing.queued_bytes = 0;
        closing.replays.clear();
        closing.parked_bytes = 0;
        closes_due_.push_back(closing.id);
        return;
    }
    MEMQ_CHECK(closing.lifecycle == Lifecycle::open);
    closing.lifecycle = abrupt_close(reason) ? Lifecycle::dropping : Lifecycle::draining;
    closing.close_reason = reason;
    closing.stalled = false;
    closing.line_too_long_held = false;
    std::string().swap(closing.stalled_input);
    if (closing.lifecycle == Lifecycle::dropping) {
        // Nobody waits for a slow consumer: what it has not taken is dropped.
        closing.queued.clear();
        closing.queued_bytes = 0;
        closing.replays.clear();
        closing.parked_bytes = 0;
        closing.open_replays = 0;
    } else {
        // A graceful close flushes its replays, as far as the topics were
        // when it closed: it leaves them now.
        for (Replay& replay : closing.replays) {
            if (replay.open()) replay.end = replay.topic->next_index;
        }
        closing.open_replays = 0;
    }
    leaving_.push_back(closing.id);
    closes_due_.push_back(closing.id);
}

void Broker::settle_closes() {
    for (const ConnId id : leaving_) {
        const auto found = connections_.find(id);
        if (found == connections_.end()) continue;
        Connection& leaving = *found->second;
        MEMQ_CHECK(leaving.closing() && leaving.open_replays == 0);
        topics_.leave_all(leaving);
        MEMQ_CHECK(leaving.positions.empty());  // no fan-out reaches it from now on
    }
    leaving_.clear();
}

void Broker::handle_written(ConnId conn, std::size_t bytes) {
    Connection& written = connection(conn);
    MEMQ_CHECK(bytes <= written.in_flight_bytes);
    written.in_flight_bytes -= bytes;
    if (written.in_flight_bytes != 0) return;
    if (!written.replays.empty() && !written.dropped()) [[unlikely]] {
        refill(written);
        settle_closes();  // the refill may have closed it as a slow consumer
    }
    if (!written.queued.empty()) {
        mark_ready(written);
    } else if (written.close_pending()) {
        closes_due_.push_back(conn);  // everything is written: a graceful close is due
    }
}

void Broker::handle_disconnect(ConnId conn) {
    const auto found = connections_.find(conn);
    MEMQ_CHECK(found != connections_.end());
    topics_.leave_all(*found->second);
    if (!found->second->refused()) --admitted_;
    connections_.erase(found);
    // ready_, closes_due_ and leaving_ may still name `conn`: they are checked
    // against connections_ when read, and a reused id is a new Connection that
    // the stale entries cannot harm (each pop re-checks the flags).
}

std::optional<Transmit> Broker::poll_transmit() {
    Transmit transmit;
    if (!poll_transmit(transmit)) return std::nullopt;
    return transmit;
}

bool Broker::poll_transmit(Transmit& out) {
    MEMQ_CHECK(out.frames.empty());
    while (!ready_.empty()) {
        const ConnId conn = ready_.front();
        ready_.pop_front();
        const auto found = connections_.find(conn);
        if (found == connections_.end()) continue;
        Connection& ready = *found->second;
        if (!ready.in_ready_list) continue;
        ready.in_ready_list = false;
        if (ready.in_flight_bytes != 0 || ready.queued.empty()) continue;  // re-listed by handle_written
        if (ready.dropped()) continue;
        if (ready.hold_until_seq > synced_seq_) [[unlikely]] {
            if (!ready.in_held_list) held_.push_back(conn);  // handle_synced lists it again
            ready.in_held_list = true;
            continue;
        }
        out.conn = conn;
        out.frames.swap(ready.queued);  // the queue goes on in out's old (empty) vector
        out.bytes = ready.queued_bytes;
        ready.in_flight_bytes = ready.queued_bytes;
        ready.queued_bytes = 0;
        return true;
    }
    return false;
}

std::optional<Close> Broker::poll_close() {
    while (!closes_due_.empty()) {
        const ConnId conn = closes_due_.front();
        closes_due_.pop_front();
        const auto found = connections_.find(conn);
        if (found == connections_.end()) continue;
        Connection& closing = *found->second;
        if (!closing.close_pending()) continue;
        const bool flushed = closing.queued_bytes == 0 && closing.in_flight_bytes == 0 && closing.replays.empty();
        if (closing.lifecycle == Lifecycle::draining && !flushed) continue;  // handle_written (or handle_synced) re-lists it
        closing.lifecycle = Lifecycle::closed;
        return Close{conn, closing.close_reason};
    }
    return std::nullopt;
}

void Broker::check_invariants() const {
    topics_.check_invariants();
    MEMQ_CHECK(leaving_.empty());
    MEMQ_CHECK(topics_.size() <= limits_.indexed_topics_max);
    MEMQ_CHECK(topics_.stateful_count() <= limits_.topics_max);
    MEMQ_CHECK(admitted_ <= limits_.connections_max);
    std::size_t admitted = 0;
    for (const auto& [id, connection] : connections_) {
        if (!connection->refused()) ++admitted;
        MEMQ_CHECK(connection->id == id);
        MEMQ_CHECK(connection->positions.size() <= limits_.subscriptions_max);
        std::size_t queued_bytes = 0;
        for (const Frame& frame : connection->queued) queued_bytes += frame->size();
        MEMQ_CHECK(queued_bytes == connection->queued_bytes);
        MEMQ_CHECK(connection->queued_bytes + connection->parked_bytes + connection->in_flight_bytes <=
                   limits_.pending_bytes_max);
        std::size_t parked_bytes = 0;
        std::size_t open_replays = 0;
        for (const Replay& replay : connection->replays) {
            MEMQ_CHECK(replay.topic != nullptr && replay.after < replay.topic->next_index);
            std::int64_t previous = replay.after;
            for (const auto& [index, frame] : replay.held) {
                MEMQ_CHECK(index > previous && index < replay.end);
                previous = index;
                parked_bytes += frame->size();
            }
            for (const Frame& frame : replay.behind) parked_bytes += frame->size();
            if (replay.open()) {
                ++open_replays;
                MEMQ_CHECK(connection->positions.contains(replay.topic));  // open: still subscribed
            }
        }
        MEMQ_CHECK(parked_bytes == connection->parked_bytes);
        MEMQ_CHECK(open_replays == connection->open_replays);
        // A replay waits only for output to drain; nothing stalls with nothing in the pipe.
        if (!connection->replays.empty()) MEMQ_CHECK(connection->queued_bytes + connection->in_flight_bytes > 0);
        if (connection->closing()) MEMQ_CHECK(connection->positions.empty());
        // Each close keeps to its kind: a dropping one keeps no output, a
        // draining one has a graceful reason.
        if (connection->lifecycle == Lifecycle::draining) MEMQ_CHECK(!abrupt_close(connection->close_reason));
        if (connection->lifecycle == Lifecycle::dropping) MEMQ_CHECK(abrupt_close(connection->close_reason));
        if (connection->dropped()) {
            MEMQ_CHECK(connection->queued.empty() && connection->replays.empty());
        }
        MEMQ_CHECK(connection->stalled == !connection->stalled_input.empty());
        MEMQ_CHECK(!connection->line_too_long_held || connection->stalled);
        MEMQ_CHECK(!connection->stalled || (durability_.enabled && !connection->closing()));
        MEMQ_CHECK(connection->hold_until_seq < next_write_seq_);
        MEMQ_CHECK(durability_.enabled || connection->hold_until_seq == 0);
        if (connection->closing()) MEMQ_CHECK(connection->open_replays == 0);
        for (const auto& [topic, position] : connection->positions) {
            const std::span<Subscriber* const> subscribers = topic->subscribers();
            MEMQ_CHECK(position < subscribers.size() && subscribers[position] == connection.get());
        }
    }
    MEMQ_CHECK(admitted == admitted_);
    if (!durability_.enabled) {
        MEMQ_CHECK(log_pending_.empty() && next_write_seq_ == 1 && unsynced_reservations_.empty());
        return;
    }
    // An index is handed out only under a synced reservation.
    topics_.for_each_topic([](const Topic& topic) { MEMQ_CHECK(topic.next_index <= topic.durable_until); });
    MEMQ_CHECK(synced_seq_ < next_write_seq_);
    std::uint64_t previous = 0;
    for (const auto& [seq, topic, until] : unsynced_reservations_) {
        MEMQ_CHECK(seq > synced_seq_ && seq >= previous && until <= topic->reserved_until);
        previous = seq;
    }
}

}  // namespace memq

// ---- Durable topics ---------------------------------------------------------

namespace memq {

void Broker::recover(const storage::LogRecord& record) {
    MEMQ_CHECK(durability_.enabled && connections_.empty());
    ++stats_.records_recovered;
    Topic& topic = topics_.find_or_create(record.topic);
    switch (record.kind) {
        case storage::RecordKind::message:
        case storage::RecordKind::framed_message: {
            topic.next_index = std::max(topic.next_index, record.index + 1);
            if (topic.cached_count() != 0 && topic.state->cache.back()->message.index >= record.index) {
                break;  // not after the topic's cached messages (a salvaged log): not kept
            }
            if (record.kind == storage::RecordKind::framed_message) {
                // A version 1 record's frame is cached only if a message
                // record can say it again (the next snapshot writes one): of
                // memqd's shape for its index and delivery, without "cache": false.
                const std::optional<MessageFrameFields> fields =
                    message_frame_fields(record.frame, record.index, record.delivery);
                if (!fields.has_value() || !fields->cache.value_or(true)) break;
            }
            const Frame frame = frame_pool_.make([&](std::string& out) { storage::append_message_frame(out, record); });
            stats_.cache_evictions += topics_.cache(topic, CachedMessage{record.index, record.delivery, frame}).evicted_for_bytes;
            break;
        }
        case storage::RecordKind::take:
            // The index was handed out and is accounted for: no hole below it.
            topic.next_index = std::max(topic.next_index, record.index + 1);
            topics_.remove_cached(topic, record.index);
            break;
        case storage::RecordKind::reserve:
            topic.reserved_until = std::max(topic.reserved_until, record.index);
            topic.durable_until = topic.reserved_until;
            break;
        case storage::RecordKind::hole:
            // Its indices may have been handed out: the topic goes on past
            // them even if a salvage lost the reservation that covered them.
            topic.reserved_until = std::max(topic.reserved_until, record.last + 1);
            topic.durable_until = topic.reserved_until;
            recovered_holes_.emplace_back(&topic, Hole{record.index, record.last});
            break;
    }
}

void Broker::expect_recovered_topics(std::size_t topics) {
    MEMQ_CHECK(durability_.enabled && connections_.empty());
    topics_.reserve(std::min(topics, limits_.indexed_topics_max));
}

std::optional<std::string> Broker::finish_recovery(std::optional<std::size_t> appendable_log_bytes) {
    MEMQ_CHECK(durability_.enabled && connections_.empty());
    // A recovered index may have reached a subscriber up to the topic's
    // reservation: the topic goes on from there, and what lies between its
    // highest recovered index and there is a hole (kept only while its cache
    // holds a message below it: TopicTable::add_holes).
    std::vector<std::pair<Topic*, Hole>> recorded;  // the hole records read back, by topic
    recorded.swap(recovered_holes_);
    const auto by_topic = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::stable_sort(recorded.begin(), recorded.end(), by_topic);
    std::vector<std::pair<Topic*, Hole>> holes = recorded;
    topics_.for_each_topic([&](Topic& topic) {
        const std::int64_t recovered_next = topic.next_index;
        topic.next_index = std::max(topic.next_index, topic.durable_until);
        topic.reserved_until = topic.durable_until = topic.next_index;
        if (topic.next_index > recovered_next && topic.state) {
            holes.emplace_back(&topic, Hole{recovered_next, topic.next_index - 1});
        }
    });
    std::stable_sort(holes.begin(), holes.end(), by_topic);
    std::vector<Hole> of_topic;
    for (std::size_t i = 0; i < holes.size();) {
        Topic* const topic = holes[i].first;
        of_topic.clear();
        for (; i < holes.size() && holes[i].first == topic; ++i) of_topic.push_back(holes[i].second);
        topics_.add_holes(*topic, of_topic);
    }
    if (topics_.size() > limits_.indexed_topics_max) {
        return "the data dir holds " + std::to_string(topics_.size()) +
               " known topics, more than --max-indexed-topics " + std::to_string(limits_.indexed_topics_max);
    }
    // More topics with cached messages than topics_max: a smaller limit than
    // the data dir was written under, or "one" messages whose takes were not
    // synced. The oldest cached messages go until the rest fit.
    while (topics_.stateful_count() > limits_.topics_max && topics_.evict_oldest()) ++stats_.cache_evictions;
    if (!appendable_log_bytes.has_value()) {
        request_snapshot();  // the first write replaces the log: a clean file of this version
        return std::nullopt;
    }
    // The log goes on as it is: the first write appends the holes the log
    // does not name yet (a hole record that covers one names it), so that a
    // crash keeping any later record keeps them too (the log is a prefix).
    log_bytes_ = *appendable_log_bytes;
    topics_.for_each_topic([&](Topic& topic) {
        const auto [first, last] =
            std::equal_range(recorded.begin(), recorded.end(), std::pair<Topic*, Hole>(&topic, Hole{}), by_topic);
        for (const Hole& hole : topic.holes()) {
            const bool named = std::any_of(first, last, [&](const auto& entry) {
                return entry.second.first <= hole.first && hole.last <= entry.second.last;
            });
            if (!named) storage::append_hole(log_pending_, topic.name, hole.first, hole.last, storage::Sealing::deferred);
        }
    });
    return std::nullopt;
}

std::size_t Broker::live_log_bytes() const {
    MEMQ_CHECK(topics_.cached_bytes() >= topics_.cached_messages() * kFrameBytesBeyondRecord);
    return topics_.cached_bytes() - topics_.cached_messages() * kFrameBytesBeyondRecord +
           topics_.size() * kReserveRecordOverhead;
}

void Broker::append_snapshot(std::string& out, bool exact) const {
    out.reserve(out.size() + storage::kHeaderBytes + live_log_bytes());  // one allocation, not a doubling series
    storage::append_header(out, incarnation_);
    // Records are sealed a batch behind, not one by one (storage::Sealing).
    std::size_t sealed = out.size();
    const auto seal_batch = [&] {
        if (out.size() - sealed < kSnapshotSealBatchBytes) return;
        storage::seal_records(out, sealed, out.size());
        sealed = out.size();
    };
    constexpr auto deferred = storage::Sealing::deferred;
    topics_.for_each_topic([&](const Topic& topic) {
        const std::int64_t until = exact ? topic.next_index : topic.reserved_until;
        if (until > 0) storage::append_reserve(out, topic.name, until, deferred);
        seal_batch();
    });
    topics_.for_each_cached([&](const Topic& topic, const CachedMessage& message) {
        // Every cached frame has the shape (recover() caches no other).
        const std::optional<MessageFrameFields> fields =
            message_frame_fields(*message.frame, message.index, message.delivery);
        MEMQ_CHECK(fields.has_value() && fields->cache.value_or(true));  // "cache": false is never cached
        storage::append_message(out, topic.name, message.index, message.delivery, fields->cache.has_value(),
                                fields->msg_json, deferred);
        seal_batch();
    });
    topics_.for_each_topic([&](const Topic& topic) {
        for (const Hole& hole : topic.holes()) storage::append_hole(out, topic.name, hole.first, hole.last, deferred);
        // Exact: every index below next_index is accounted for, so that the
        // restart finds no hole above the last cached one (a take of an
        // uncached index removes nothing and says just that). A topic with
        // nothing cached keeps no hole, and needs none.
        if (exact && topic.cached_count() != 0 && topic.state->cache.back()->message.index < topic.next_index - 1) {
            storage::append_take(out, topic.name, topic.next_index - 1, deferred);
        }
        seal_batch();
    });
    storage::seal_records(out, sealed, out.size());
}

void Broker::request_snapshot(bool exact) {
    MEMQ_CHECK(durability_.enabled);
    snapshot_wanted_ = true;
    snapshot_exact_ = snapshot_exact_ || exact;
}

bool Broker::poll_storage(storage::StorageWrite& out) {
    if (!durability_.enabled || (!snapshot_wanted_ && log_pending_.empty())) return false;
    // Failed, and no snapshot written since: the records wait for it (it will
    // hold what they say), so that every write after a failure follows it.
    if (storage_failed_ && recovery_snapshot_seq_ == 0 && !snapshot_wanted_) return false;
    out.seq = next_write_seq_++;
    out.bytes.clear();
    if (snapshot_wanted_) {
        append_snapshot(out.bytes, snapshot_exact_);
        if (snapshot_exact_) {
            // Nothing above next_index is reserved any more, in the log or here.
            topics_.for_each_topic([](Topic& topic) { topic.reserved_until = topic.durable_until = topic.next_index; });
            unsynced_reservations_.clear();
        }
        out.replace = true;
        out.sync_now = true;
        log_pending_.clear();  // the snapshot holds what they said
        snapshot_wanted_ = snapshot_exact_ = false;
        log_bytes_ = last_snapshot_bytes_ = out.bytes.size();
        if (storage_failed_ && recovery_snapshot_seq_ == 0) recovery_snapshot_seq_ = out.seq;
        ++stats_.compactions;
    } else {
        storage::seal_records(log_pending_, 0, log_pending_.size());
        // Copied out, not handed over: log_pending_ stays this thread's, hot
        // in its cache for the next turn's records. Records built into a
        // buffer the writer thread last read cost a cross-core miss per
        // cache line, far more than this one bulk copy (docs/architecture.md).
        out.bytes.assign(log_pending_);
        log_pending_.clear();
        if (log_pending_.capacity() > kPendingLogCapacityKept) log_pending_ = std::string();
        out.replace = false;
        out.sync_now = log_sync_wanted_;
        log_bytes_ += out.bytes.size();
        const std::size_t live = std::max(last_snapshot_bytes_, live_log_bytes());
        if (log_bytes_ > durability_.compaction_floor_bytes && log_bytes_ > durability_.compaction_factor * live) {
            snapshot_wanted_ = true;  // the next write
        }
    }
    log_sync_wanted_ = false;
    return true;
}

void Broker::handle_synced(std::uint64_t seq) {
    MEMQ_CHECK(durability_.enabled && seq >= synced_seq_ && seq < next_write_seq_);
    synced_seq_ = seq;
    while (!unsynced_reservations_.empty() && std::get<0>(unsynced_reservations_.front()) <= seq) {
        const auto [written, topic, until] = unsynced_reservations_.front();
        topic->durable_until = std::max(topic->durable_until, until);
        unsynced_reservations_.pop_front();
    }
    if (storage_failed_ && recovery_snapshot_seq_ != 0 && seq >= recovery_snapshot_seq_) {
        storage_failed_ = false;
        recovery_snapshot_seq_ = 0;
    }
    std::vector<ConnId> held;
    held.swap(held_);
    for (const ConnId id : held) {
        const auto found = connections_.find(id);
        if (found == connections_.end()) continue;
        Connection& connection = *found->second;
        if (connection.hold_until_seq > synced_seq_) {
            held_.push_back(id);
            continue;
        }
        connection.in_held_list = false;
        connection.hold_until_seq = 0;
        if (!connection.queued.empty()) {
            mark_ready(connection);
        } else if (connection.close_pending()) {
            closes_due_.push_back(id);
        }
    }
    resume_stalled();
    settle_closes();
}

void Broker::handle_storage_failed() {
    MEMQ_CHECK(durability_.enabled);
    ++stats_.storage_failures;
    storage_failed_ = true;
    recovery_snapshot_seq_ = 0;
    log_pending_.clear();  // what the file holds is unknown now: a snapshot will say it all again
    log_sync_wanted_ = false;
    // An ack that waits for a write that may be lost is never sent.
    for (const auto& [id, connection] : connections_) {
        if (connection->hold_until_seq > synced_seq_ && !connection->dropped()) {
            ++stats_.storage_closes;
            begin_close(*connection, CloseReason::storage_failed);
        }
    }
    resume_stalled();  // their sends are refused now, rather than wait
    settle_closes();
}

void Broker::resume_stalled() {
    std::vector<ConnId> stalled;
    stalled.swap(stalled_);
    for (const ConnId id : stalled) {
        const auto found = connections_.find(id);
        if (found == connections_.end() || !found->second->stalled) continue;
        Connection& connection = *found->second;
        std::string input;
        input.swap(connection.stalled_input);
        connection.stalled = false;
        std::string_view rest = input;
        while (!rest.empty()) {
            if (connection.closing()) break;  // what it sent after closing is dropped
            if (connection.stalled) {
                // Waiting again: the rest waits as it is, in one copy (line by
                // line it would be quadratic in a long pipeline). It fitted
                // the bound before, and it is a part of what was held.
                connection.stalled_input.append(rest);
                break;
            }
            const std::size_t newline = rest.find('\n');
            MEMQ_CHECK(newline != std::string_view::npos);
            take_line(connection, rest.substr(0, newline));  // stalls again, or keeps it, as needed
            settle_closes();  // a "quit" among them: it leaves its topics before the next line
            rest.remove_prefix(newline + 1);
        }
        if (connection.line_too_long_held && !connection.stalled) {
            connection.line_too_long_held = false;
            if (!connection.closing()) refuse_line_too_long(connection);
            settle_closes();
        }
    }
}

}  // namespace memq
