// broker.cpp — the core state machine: lines to commands, commands to frames.
#include "broker.hpp"

#include <algorithm>
#include <utility>

#include "check.hpp"

namespace memq {

std::string_view to_string(CloseReason reason) {
    switch (reason) {
        case CloseReason::quit: return "quit";
        case CloseReason::line_too_long: return "line too long";
        case CloseReason::slow_consumer: return "slow consumer";
        case CloseReason::too_many_connections: return "too many connections";
    }
    return "unknown";
}

Broker::Broker(const Limits& limits, std::uint64_t seed, std::uint64_t incarnation)
    : limits_(limits),
      incarnation_(incarnation),
      prng_(seed),
      topics_(limits.cache_messages_max, limits.cache_bytes_max),
      ack_frame_(make_frame(encode_ack())),
      hello_frame_(make_frame(encode_hello(incarnation))) {
    MEMQ_CHECK(limits.replay_window_bytes > 0);  // else a replay would never start
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
        connected.refused = true;
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
    if (receiver.closing) return;  // a closing connection's input is dropped
    const LineReader::Status status =
        receiver.reader.feed(bytes, [&](std::string_view line) { return process_line(receiver, line); });
    if (status == LineReader::Status::too_long && !receiver.closing) {
        enqueue(receiver, error_frames_[static_cast<std::size_t>(LineError::line_too_long)]);
        ++stats_.errors_replied;
        ++stats_.line_too_long_closes;
        // The reply itself may have closed it as a slow consumer; that close stands.
        if (!receiver.closing) begin_close(receiver, CloseReason::line_too_long);
    }
    settle_closes();
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
        return !sender.closing;
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
    settle_closes();
    return !sender.closing;
}

void Broker::execute(Connection& sender, const CommandRef& command) {
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
    }
}

bool Broker::topic_allowed(const Topic* found, bool needs_state) const {
    if (found == nullptr && topics_.size() >= limits_.indexed_topics_max) return false;
    const bool new_state = needs_state && (found == nullptr || found->state == nullptr);
    return !new_state || topics_.stateful_count() < limits_.topics_max;
}

void Broker::refuse(Connection& sender, LineError error) {
    enqueue(sender, error_frames_[static_cast<std::size_t>(error)]);
    ++stats_.errors_replied;
    if (error == LineError::too_many_topics) ++stats_.topics_refused;
}

void Broker::publish(Connection& sender, const SendRef& send) {
    Topic* found = topics_.find(send.topic.text);
    const std::int64_t index = found != nullptr ? found->next_index : 0;
    const Frame frame = frame_pool_.make([&](std::string& out) { append_message(out, send, index); });
    const bool has_subscribers = found != nullptr && !found->subscribers().empty();
    // Cached: asked to be (the default), not handed to a "one" subscriber, and within the budget.
    const bool cache_it = send.cache.value_or(true) && (send.delivery == Delivery::all || !has_subscribers) &&
                          topics_.cacheable(frame->size());
    if (!topic_allowed(found, cache_it)) return refuse(sender, LineError::too_many_topics);

    Topic& topic = found != nullptr ? *found : topics_.find_or_create(send.topic.text);
    ++topic.next_index;
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
        if (deliver(chosen, topic, index, frame, false)) ++stats_.messages_delivered;
    }
    if (cache_it) {
        stats_.cache_evictions += topics_.cache(topic, CachedMessage{index, send.delivery, frame}).evicted_for_bytes;
    }
    enqueue(sender, ack_frame_);
}

void Broker::subscribe(Connection& subscriber, const SubscribeRef& subscribe) {
    Topic* found = topics_.find(subscribe.topic);
    if (!topic_allowed(found, true)) return refuse(subscriber, LineError::too_many_topics);
    Topic& topic = found != nullptr ? *found : topics_.find_or_create(subscribe.topic);
    topics_.join(topic, subscriber);
    freeze_replay(subscriber, topic);  // a replay of this topic already running ends where the topic is now
    enqueue(subscriber, ack_frame_);
    if (subscribe.cache && !subscriber.closing) start_replay(subscriber, topic, subscribe.last_seen);
}

void Broker::start_replay(Connection& subscriber, Topic& topic, std::int64_t last_seen) {
    MEMQ_CHECK(!subscriber.closing);
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
    if (recipient.closing) return false;
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
    if (recipient.closing) return false;
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
    if (closing.closing && reason == CloseReason::slow_consumer && closing.close_reason != reason) {
        // A graceful close whose replay cannot fit what waits behind it: it
        // becomes a slow consumer's close, due at once.
        MEMQ_CHECK(!closing.close_emitted && !closing.refused);
        closing.close_reason = reason;
        closing.queued.clear();
        closing.queued_bytes = 0;
        closing.replays.clear();
        closing.parked_bytes = 0;
        closes_due_.push_back(closing.id);
        return;
    }
    MEMQ_CHECK(!closing.closing);
    closing.closing = true;
    closing.close_reason = reason;
    if (reason == CloseReason::slow_consumer) {
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
        if (const auto found = connections_.find(id); found != connections_.end()) topics_.leave_all(*found->second);
    }
    leaving_.clear();
}

void Broker::handle_written(ConnId conn, std::size_t bytes) {
    Connection& written = connection(conn);
    MEMQ_CHECK(bytes <= written.in_flight_bytes);
    written.in_flight_bytes -= bytes;
    if (written.in_flight_bytes != 0) return;
    if (!written.replays.empty() && written.close_reason != CloseReason::slow_consumer) [[unlikely]] {
        refill(written);
        settle_closes();  // the refill may have closed it as a slow consumer
    }
    if (!written.queued.empty()) {
        mark_ready(written);
    } else if (written.closing && !written.close_emitted) {
        closes_due_.push_back(conn);  // everything is written: a graceful close is due
    }
}

void Broker::handle_disconnect(ConnId conn) {
    const auto found = connections_.find(conn);
    MEMQ_CHECK(found != connections_.end());
    topics_.leave_all(*found->second);
    if (!found->second->refused) --admitted_;
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
        if (ready.closing && ready.close_reason == CloseReason::slow_consumer) continue;
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
        if (!closing.closing || closing.close_emitted) continue;
        const bool flushed = closing.queued_bytes == 0 && closing.in_flight_bytes == 0 && closing.replays.empty();
        if (closing.close_reason != CloseReason::slow_consumer && !flushed) continue;  // handle_written re-lists it
        closing.close_emitted = true;
        return Close{conn, *closing.close_reason};
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
        if (!connection->refused) ++admitted;
        if (connection->refused) MEMQ_CHECK(connection->close_reason == CloseReason::too_many_connections);
        MEMQ_CHECK(connection->id == id);
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
        MEMQ_CHECK(connection->closing == connection->close_reason.has_value());
        MEMQ_CHECK(!connection->close_emitted || connection->closing);
        if (connection->closing) MEMQ_CHECK(connection->positions.empty());
        if (connection->close_reason == CloseReason::slow_consumer) {
            MEMQ_CHECK(connection->queued.empty() && connection->replays.empty());
        }
        if (connection->closing) MEMQ_CHECK(connection->open_replays == 0);
        for (const auto& [topic, position] : connection->positions) {
            const std::span<Subscriber* const> subscribers = topic->subscribers();
            MEMQ_CHECK(position < subscribers.size() && subscribers[position] == connection.get());
        }
    }
    MEMQ_CHECK(admitted == admitted_);
}

}  // namespace memq
