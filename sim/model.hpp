// model.hpp — the checker's model of PROTOCOL.md: what the broker must do,
// kept in plain, obviously correct data structures.
//
// Rules:
// - Independent of the core: it shares the core's types (Limits, Delivery,
//   LineError, CloseReason, ConnId) and trusts encode_message for the exact
//   bytes of a delivered message (the codec properties test that encoder),
//   nothing else — no TopicTable, no LineReader, no parser; the replies and
//   their reasons it spells out itself, from PROTOCOL.md.
//   What a line means comes from whoever wrote it (LineIntent), never from
//   parsing it.
// - Per topic: a std::set of subscribers, the next index, a std::deque cache
//   of at most cache_messages_max messages, each stamped with when it was
//   cached; all caches together hold at most cache_bytes_max frame bytes, and
//   room is made by evicting the message with the oldest stamp of any topic.
//   A topic "holds state" when it has a subscriber or a cached message; the
//   limits topic_bytes_max, subscriptions_max, topics_max, indexed_topics_max
//   and connections_max are checked by counting, before the command does
//   anything; a command's limits in the order docs/operations.md gives them:
//   the topic name's bytes, the connection's subscriptions, the topics. Per connection: the queue of
//   frames it is owed and its pending bytes, exactly as the core counts them,
//   so the slow-consumer rule is predicted, not guessed.
// - The model never chooses. When the broker must choose (delivery "one" with
//   two or more subscribers) the model records a PendingOne and stops until
//   the checker tells it which candidate the broker picked (resolve_one).
// - Anything that cannot happen in a correct run throws CheckFailure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <tuple>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker.hpp"
#include "client_core.hpp"

namespace memq::sim {

// A check failed: the message says what was expected and what happened.
class CheckFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What one line written by a simulated client means. The writer knows it, so
// the model needs no parser.
struct LineIntent {
    enum class Kind : std::uint8_t { subscribe, unsubscribe, send, error, blank, quit, hello, holes };
    Kind kind = Kind::blank;
    Delivery delivery = Delivery::all;            // send
    LineError error = LineError::internal;        // error: the reply it must get
    RequestKind request_kind = RequestKind::raw;  // what the client's ClientCore calls the request
    std::optional<bool> cache;                    // subscribe, send: absent is the default
    std::int64_t last_seen = -1;                  // subscribe; holes: its "after"
    RequestId request = 0;                        // the client's id for the reply; 0: no reply expected
    std::string_view topic;                       // must stay valid until the line is applied
    std::string_view msg;                         // send; same lifetime rule
    std::size_t bytes = 0;                        // on the wire, the '\n' included
};

// A published message, shared by every expectation and cache entry that holds it.
struct ModelMessage {
    std::string topic;
    std::string msg;
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    std::optional<bool> cache;
    std::string frame;     // the exact bytes the broker must send
    std::string msg_json;  // msg as the frame's JSON literal: what its log record stores
};
using MessagePtr = std::shared_ptr<const ModelMessage>;

// One frame a connection is owed.
struct Expected {
    enum class Kind : std::uint8_t { ack, failure, message };
    Kind kind = Kind::ack;
    LineError error = LineError::internal;        // failure
    RequestKind request_kind = RequestKind::raw;  // ack, failure
    RequestId request = 0;                        // ack, failure
    MessagePtr message;                           // message
    std::string_view frame;                       // owned by the model or by *message

    std::size_t bytes() const { return frame.size(); }
};

// A subscribe's replay, as the core's lazy replay must behave: the cached
// messages after `after` (and before `end` once frozen) are turned into owed
// frames only while the connection's queued and in-flight bytes are below
// replay_window_bytes; the topic's live messages that are not cached wait in
// `held`, every other frame owed meanwhile waits in `behind`.
struct ModelReplay {
    static constexpr std::int64_t kOpen = std::numeric_limits<std::int64_t>::max();
    std::string topic;
    std::int64_t after = -1;
    std::int64_t end = kOpen;
    std::deque<Expected> held;
    std::deque<Expected> behind;
    bool open() const { return end == kOpen; }
};

// A line kept while the connection waits for a sync (durable topics), with
// the strings its views point into.
struct HeldLine {
    HeldLine() = default;
    HeldLine(const HeldLine&) = delete;  // its views point into itself: it stays where it is
    HeldLine& operator=(const HeldLine&) = delete;
    LineIntent intent;
    std::string topic;
    std::string msg;
};

struct ModelConn {
    std::deque<Expected> queued;  // owed, not yet handed over in a Transmit
    std::size_t queued_bytes = 0;
    std::deque<ModelReplay> replays;  // in order of their subscribes
    std::size_t parked_bytes = 0;     // in the replays' held and behind
    std::size_t in_flight_bytes = 0;  // handed over, not yet written
    bool reading = true;              // false once it quit, overflowed a line, or is closing
    bool refused = false;             // connected past connections_max: closed at once, not counted
    std::optional<CloseReason> closing;
    bool close_emitted = false;
    // Durable topics: the lines taken since a send began to wait for its
    // topic's reservation (that send first), and their bytes.
    std::deque<HeldLine> stalled;
    std::size_t stalled_bytes = 0;
    std::optional<HeldLine> too_long_held;  // a line past line_bytes_max came after them
    // SyncPolicy::always: no Transmit until this write is synced (0: none).
    std::uint64_t hold_until_seq = 0;

    std::size_t pending_bytes() const { return queued_bytes + parked_bytes + in_flight_bytes; }
};

struct ModelCached {
    std::uint64_t stamp = 0;  // when it was cached: smaller is older, across all topics
    MessagePtr message;
    std::uint64_t seq = 0;    // durable topics: the write that holds its record (0: stored before)
};

struct ModelTopic {
    std::set<ConnId> subscribers;
    std::int64_t next_index = 0;
    std::deque<ModelCached> cache;  // oldest first
    // Durable topics: indices below reserved_until are reserved by a record
    // written, below durable_until by one synced.
    std::int64_t reserved_until = 0;
    std::int64_t durable_until = 0;
    std::int64_t reserve_step = 0;  // the next reservation's reach (0: not set yet)
    // Durable topics: the index ranges (first, last) a crash lost after they
    // may have been handed out, ascending; kept only while the cache holds a
    // message below them, and merged when no cached message lies between.
    std::vector<std::pair<std::int64_t, std::int64_t>> holes;

    bool holds_state() const { return !subscribers.empty() || !cache.empty(); }
};

// A "one" message with two or more candidates: the broker picked one of them.
struct PendingOne {
    ConnId sender = 0;
    MessagePtr message;
    std::vector<ConnId> candidates;  // ascending
    Expected ack;                    // the sender's, queued after the delivery
};

struct ModelStats {
    std::uint64_t lines_applied = 0;
    std::uint64_t messages_published = 0;
    std::uint64_t frames_owed = 0;
    std::uint64_t slow_consumer_closes = 0;
    std::uint64_t graceful_closes = 0;     // quit and line too long
    std::uint64_t one_choices = 0;         // PendingOnes resolved
    std::uint64_t too_long_overflows = 0;  // a "Line too long" reply that itself overflowed the connection
    std::uint64_t topics_refused = 0;      // "Too many topics" replies
    std::uint64_t topic_too_long_refused = 0;  // "Topic too long" replies
    std::uint64_t subscriptions_refused = 0;   // "Too many subscriptions" replies
    std::uint64_t cache_evictions = 0;     // messages evicted for cache_bytes_max
    std::uint64_t connections_refused = 0;
    std::uint64_t sends_stalled = 0;       // durable: sends that waited for a reservation
    std::uint64_t storage_refused = 0;     // durable: "Storage unavailable" replies
    std::uint64_t storage_closes = 0;      // durable: closed as storage_failed
    std::uint64_t writes = 0;              // durable: writes the broker handed out
    std::uint64_t snapshots = 0;
};

// Every message cached, by topic and index; an index may name more than one
// when a salvage or a lost data dir let it be reused.
using History = std::multimap<std::pair<std::string, std::int64_t>, MessagePtr>;

// One record the model expects in a write (durable topics).
struct ModelRecord {
    storage::RecordKind kind = storage::RecordKind::message;
    std::string topic;
    std::int64_t index = 0;  // reserve: the index reserved up to; hole: its first index
    MessagePtr message;      // message records
    std::int64_t last = 0;   // hole records: the last index
};

// The write the model expects next from poll_storage.
struct ExpectedWrite {
    std::uint64_t seq = 0;
    bool replace = false;
    bool sync_now = false;
    // Appends: the records in order. Snapshots: reserve records in any order
    // (the core walks a hash map), then the cached messages oldest first,
    // then the hole records in any order.
    std::vector<ModelRecord> records;
    // The first append after a recovery: only hole records, in any order.
    bool holes_in_any_order = false;
};

// The reason a client sees for `error`, as PROTOCOL.md words it.
std::string_view protocol_reason(LineError error);

class Model {
public:
    // `incarnation`: the broker's, as its hello replies must spell it.
    explicit Model(const Limits& limits, std::uint64_t incarnation = 0, const Durability& durability = {});

    const Limits& limits() const { return limits_; }
    const Durability& durability() const { return durability_; }
    std::uint64_t incarnation() const { return incarnation_; }

    void connect(ConnId conn);
    // Applies one complete line of `conn` (a no-op once the connection stopped
    // reading). Returns false when a PendingOne now waits for resolve_one.
    bool apply_line(ConnId conn, const LineIntent& line);
    // The current line of `conn` passed line_bytes_max: "Line too long", then
    // a graceful close. `request` is the line's request id, for the reply.
    void apply_line_too_long(ConnId conn, const LineIntent& line);
    const std::optional<PendingOne>& pending_one() const { return pending_one_; }
    void resolve_one(ConnId chosen);

    // The broker handed every queued frame of `conn` over; they move to `out`.
    void transmit(ConnId conn, std::vector<Expected>& out);
    void written(ConnId conn, std::size_t bytes);
    void close_emitted(ConnId conn);
    void disconnect(ConnId conn);

    bool exists(ConnId conn) const { return conns_.contains(conn); }
    const ModelConn& conn(ConnId conn) const;
    // A Close must come now: a slow consumer, or a graceful close whose output is all written.
    bool close_due(ConnId conn) const;
    const std::map<std::string, ModelTopic, std::less<>>& topics() const { return topics_; }
    std::size_t connection_count() const { return conns_.size(); }

    // Connections whose state changed since the last clear_touched(), once each.
    const std::vector<ConnId>& touched() const { return touched_; }
    void clear_touched();

    const ModelStats& stats() const { return stats_; }

    // Durable topics, as broker.hpp describes them.
    // Whether the broker must have a write to hand out now, and which.
    std::optional<ExpectedWrite> poll_storage();
    // Every write up to `seq` is synced: holds end, reservations count, and
    // the connections waiting for one go on (their lines applied in the order
    // the broker takes them); `choose` names the subscriber the broker picked
    // for each "one" message with two or more candidates among them.
    void synced(std::uint64_t seq, const std::function<ConnId(const PendingOne&)>& choose);
    void storage_failed(const std::function<ConnId(const PendingOne&)>& choose);
    void request_snapshot() { snapshot_wanted_ = true; }
    bool storage_healthy() const { return !storage_failed_; }
    std::uint64_t synced_seq() const { return synced_seq_; }
    // The highest write holding a take record (a "one" message handed out by
    // a replay), 0 if none: a crash that loses it may bring the message back.
    std::uint64_t last_take_seq() const { return last_take_seq_; }
    // Every message ever cached, by topic and index: what a recovered cache
    // must match byte for byte.
    const History& cached_history() const { return history_; }
    // After a crash: this (new) model takes the recovered broker's topics as
    // its own (checked beforehand by the checker), with `history` to name
    // the messages. With `appendable_log_bytes` (a clean log of this version,
    // cut to that size) the log goes on: the first write appends every hole
    // the broker keeps that none of `recorded_holes` (the hole records read
    // back) covers. Without it, the first write is a snapshot.
    using RecordedHoles = std::multimap<std::string, std::pair<std::int64_t, std::int64_t>, std::less<>>;
    void adopt_recovered(const Broker& broker, const History& history,
                         std::optional<std::size_t> appendable_log_bytes, const RecordedHoles& recorded_holes);
    // Records the next append will hold, as things stand.
    std::size_t pending_record_count() const { return pending_records_.size(); }
    std::string_view ack_frame() const { return ack_frame_; }
    std::string_view error_frame(LineError error) const;

private:
    ModelConn& find(ConnId conn);
    void touch(ConnId conn);
    // Queues `expected` for `conn`, or closes it as a slow consumer when the
    // frame would take its pending bytes past the limit.
    void deliver(ConnId conn, Expected expected);
    // A live message of its topic: through the connection's open replay of
    // that topic when it has one (not at all when the message is cached).
    void deliver_live(ConnId conn, const MessagePtr& message, bool cached);
    void close_slow(ConnId conn, CloseReason reason = CloseReason::slow_consumer);
    // Durable topics: whether the send may take `topic`'s next index now; if
    // not, it reserves what it needs and the connection stalls on `line`.
    bool index_durable(ConnId conn, ModelTopic& topic, const std::string& name, const LineIntent& line);
    void reserve(ModelTopic& topic, const std::string& name, std::int64_t until);
    void hold_line(ConnId conn, const LineIntent& line);
    static void hold(HeldLine& held, const LineIntent& line);
    void resume_stalled(const std::function<ConnId(const PendingOne&)>& choose);
    std::size_t live_log_bytes() const;
    void start_replay(ConnId conn, ModelTopic& topic, const LineIntent& line);
    void freeze_replay(ModelConn& conn, std::string_view topic);
    void refill(ConnId conn);
    void begin_close(ConnId conn, CloseReason reason);
    // Closing connections leave their topics after each command (the broker
    // takes them out after the command, never inside a fan-out).
    void settle();
    Expected reply(const LineIntent& line, bool success, LineError error = LineError::internal) const;
    Expected message_frame(const MessagePtr& message) const;
    void publish(ConnId sender, const LineIntent& line);
    void subscribe(ConnId subscriber, const LineIntent& line);
    void cache(ModelTopic& topic, const MessagePtr& message);
    // Whether a command on `line.topic` may go on (see the rules above);
    // `needs_state`: it would give the topic state if it has none.
    bool topic_allowed(std::string_view name, bool needs_state) const;
    std::size_t topics_holding_state() const;
    // Whether `line.topic` is within topic_bytes_max; if not, `conn` is
    // owed "Topic too long" and the command does nothing else.
    bool topic_fits(ConnId conn, const LineIntent& line);
    // Topics `conn` is subscribed to: what subscriptions_max bounds.
    std::size_t subscriptions_of(ConnId conn) const;
    void evict_globally_oldest();
    // Keeps the topic's holes to the rule above after messages left its cache.
    static void settle_holes(ModelTopic& topic);
    void answer_holes(ConnId conn, const LineIntent& line);

    Limits limits_;
    std::uint64_t incarnation_;
    std::string hello_frame_;
    std::map<std::string, ModelTopic, std::less<>> topics_;
    std::unordered_map<ConnId, ModelConn> conns_;
    std::vector<ConnId> leaving_;
    std::optional<PendingOne> pending_one_;
    std::vector<ConnId> touched_;
    std::size_t cached_bytes_ = 0;
    std::uint64_t next_stamp_ = 0;
    std::size_t admitted_ = 0;  // connections not refused
    std::string ack_frame_;
    std::vector<std::string> error_frames_;
    Send scratch_send_;  // reused to encode messages without fresh strings
    ModelStats stats_;

    Durability durability_;
    std::vector<ConnId> stalled_order_;  // as the broker lists them: in order of stalling
    std::vector<ModelRecord> pending_records_;
    bool sync_wanted_ = false;
    bool snapshot_wanted_ = false;
    bool recovery_holes_pending_ = false;  // pending_records_ are the holes a recovery appends
    bool storage_failed_ = false;
    std::uint64_t next_write_seq_ = 1;
    std::uint64_t synced_seq_ = 0;
    std::uint64_t recovery_snapshot_seq_ = 0;
    std::uint64_t last_take_seq_ = 0;
    std::size_t log_bytes_ = 0;
    std::size_t last_snapshot_bytes_ = 0;
    std::deque<std::tuple<std::uint64_t, std::string, std::int64_t>> unsynced_reservations_;
    History history_;
    // The holes replies' bytes, which Expected frames point into (a deque: they do not move).
    std::deque<std::string> holes_replies_;
};

}  // namespace memq::sim
