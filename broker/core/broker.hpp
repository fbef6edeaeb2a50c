// broker.hpp — the memq broker core: a pure, IO-free state machine.
//
// Rules:
// - Inputs are handle_* calls, outputs are poll_* calls; the core never calls
//   out, never reads a clock, owns no socket and holds no global state. The
//   only randomness is a Prng seeded by the caller (delivery "one").
// - Every output frame is serialized once and shared (Frame) by all of its
//   recipients; per connection the core queues frames and counts their bytes.
// - A connection whose pending bytes would pass Limits::pending_bytes_max is
//   closed as a slow consumer at once: its output is dropped, nobody waits.
// - The limits on a command are checked before it does anything, in this
//   order: topic_bytes_max (subscribe, unsubscribe, send: "Topic too long"),
//   subscriptions_max (a subscribe to a topic the connection has not got:
//   "Too many subscriptions"), then topics_max and indexed_topics_max
//   (subscribe, send: "Too many topics"). A refused command changes nothing
//   (no topic made known, no index consumed, no delivery, no cache, no
//   subscription).
// - A connection past Limits::connections_max is refused: handle_connect
//   queues its Close (too_many_connections) at once, it takes no input, and
//   it does not count against the limit.
// - Replies on one connection keep request order; a send's deliveries are
//   queued before the sender's ack; a subscribe's ack before its replay.
//
// Driving it (a shell or the simulator):
//   handle_connect(id) once, then any number of handle_receive(id, bytes);
//   after each handle_* call drain poll_close() and poll_transmit(). A
//   Transmit hands over all of a connection's queued frames (at most one
//   Transmit per connection is outstanding); report progress with
//   handle_written(id, n) — the next Transmit for that connection comes once
//   all of its bytes are written. A Close says: shut this connection's socket
//   down; the core has stopped reading it and delivering to it. Whenever the
//   connection is gone (closed by the core or by the peer) call
//   handle_disconnect(id), exactly once; after it the id is free again.
//
// Replays are lazy: a subscribe's replay is a cursor into the topic's cache,
// turned into frames only while the connection's queued and in-flight output
// is below Limits::replay_window_bytes (after the subscribe, and each time a
// Transmit is fully written). Frames queued meanwhile wait behind it, and
// the topic's live messages join it in index order, so the connection sees
// what an eager replay would have sent, except that cached messages evicted
// before the cursor reaches them are skipped (a gap in the indices).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "command_parser.hpp"
#include "durability.hpp"
#include "frame.hpp"
#include "limits.hpp"
#include "prng.hpp"
#include "protocol.hpp"
#include "ring.hpp"
#include "topic_table.hpp"
#include "log_format.hpp"
#include "storage_write.hpp"

namespace memq {

struct Transmit {
    ConnId conn = 0;
    std::vector<Frame> frames;  // write them in order, as one gather write
    std::size_t bytes = 0;      // total size of `frames`
};

enum class CloseReason : std::uint8_t {
    quit,           // the client sent "quit"; its earlier replies were flushed first
    line_too_long,  // "Line too long" was sent and flushed first
    slow_consumer,  // pending output passed pending_bytes_max; output dropped
    too_many_connections,  // refused on connect: connections_max were open already
    storage_failed,  // durable topics: a send it was owed an ack for could not be stored; output dropped
};
inline constexpr std::size_t kCloseReasonCount = static_cast<std::size_t>(CloseReason::storage_failed) + 1;
std::string_view to_string(CloseReason reason);

struct Close {
    ConnId conn = 0;
    CloseReason reason = CloseReason::quit;
};

// Counters for logs and tests; they only ever grow.
struct BrokerStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t lines_processed = 0;
    std::uint64_t errors_replied = 0;
    std::uint64_t messages_published = 0;
    std::uint64_t messages_delivered = 0;  // frames queued to subscribers, replays included
    std::uint64_t slow_consumer_closes = 0;
    std::uint64_t line_too_long_closes = 0;
    std::uint64_t connections_refused = 0;  // past connections_max
    std::uint64_t topics_refused = 0;       // commands answered "Too many topics"
    std::uint64_t topic_too_long_refused = 0;  // commands answered "Topic too long"
    std::uint64_t subscriptions_refused = 0;   // subscribes answered "Too many subscriptions"
    std::uint64_t cache_evictions = 0;      // cached messages evicted to stay within cache_bytes_max
    // Durable topics only.
    std::uint64_t storage_refused = 0;      // sends answered "Storage unavailable"
    std::uint64_t storage_failures = 0;     // handle_storage_failed calls
    std::uint64_t storage_closes = 0;       // connections closed as storage_failed
    std::uint64_t sends_stalled = 0;        // sends that waited for a reservation to be synced
    std::uint64_t compactions = 0;          // snapshots that replace the log
    std::uint64_t records_recovered = 0;
};

class Broker {
public:
    // `incarnation` names this broker's life in hello replies: the shell draws
    // a fresh one at each start unless the topics outlive the process.
    Broker(const Limits& limits, std::uint64_t seed, std::uint64_t incarnation = 0, const Durability& durability = {});

    void handle_connect(ConnId conn);
    void handle_receive(ConnId conn, std::string_view bytes);
    void handle_written(ConnId conn, std::size_t bytes);
    void handle_disconnect(ConnId conn);

    std::optional<Transmit> poll_transmit();
    // The same into `out`, whose frames vector must be empty: its capacity
    // goes to the connection's next queue, so a shell that hands every
    // Transmit back this way (drained) allocates no vectors in steady state.
    bool poll_transmit(Transmit& out);
    std::optional<Close> poll_close();

    // Durable topics (Durability::enabled; none of this is called otherwise).
    //
    // Recovery, before the first connection: hand every record the log scan
    // yields to recover(), in order, then call finish_recovery() once (also
    // for an empty or new log). Returns an error text when the stored state
    // does not fit the limits (more known or stateful topics than they allow).
    // `appendable_log_bytes`: the log's size when it may go on as it is (a
    // header of this version, no salvage, a torn tail cut to there); the first
    // write then appends only the holes recovery found that no hole record
    // names. Without it, the first write is a snapshot that replaces the log.
    void recover(const storage::LogRecord& record);
    std::optional<std::string> finish_recovery(std::optional<std::size_t> appendable_log_bytes = std::nullopt);
    // Optional, before the first recover(): the log names about `topics`
    // topics (its reserve records), so the topic table is sized once rather
    // than grown record by record. Capped at the known-topics limit.
    void expect_recovered_topics(std::size_t topics);
    // The next write for the log; at most one is pending at a time in the core
    // (it holds everything recorded since the last poll). Write them in seq
    // order; `replace` ones replace the whole log (a snapshot: compaction).
    // `sync_now` asks for a sync as soon as possible: someone waits for it.
    bool poll_storage(storage::StorageWrite& out);
    // Every write up to `seq` is on stable storage.
    void handle_synced(std::uint64_t seq);
    // A write or a sync after the last one reported synced failed: what it
    // held may be lost. Until a snapshot is synced, sends are refused with
    // "Storage unavailable"; connections owed an ack under SyncPolicy::always
    // that is not synced are closed (storage_failed). The shell retries with
    // request_snapshot().
    void handle_storage_failed();
    // Queues a snapshot of the whole state as the next write (replace). With
    // `exact`, each topic is reserved only up to its next index: for a
    // graceful stop, after which no send is taken, so a restart shows no gap.
    void request_snapshot(bool exact = false);
    bool storage_healthy() const { return !storage_failed_; }
    // For the simulator's checker: every subscriber the core picks for a
    // "one" message among two or more is appended to `log` (null: none is kept).
    void log_one_choices(std::vector<ConnId>* log) { one_choices_ = log; }
    std::uint64_t synced_seq() const { return synced_seq_; }
    std::size_t log_bytes() const { return log_bytes_; }
    const Durability& durability() const { return durability_; }

    // A full sweep of every invariant; aborts (always, release builds too) on
    // the first that does not hold. O(state): for tests and the simulator.
    void check_invariants() const;

    const Limits& limits() const { return limits_; }
    std::uint64_t incarnation() const { return incarnation_; }
    const BrokerStats& stats() const { return stats_; }
    std::size_t connection_count() const { return connections_.size(); }  // refused ones included
    std::size_t admitted_count() const { return admitted_; }               // what connections_max bounds
    bool is_connected(ConnId conn) const { return connections_.contains(conn); }
    // Bytes queued, held behind a replay or being written for `conn` (0 for
    // an unknown connection): what pending_bytes_max bounds.
    std::size_t pending_bytes(ConnId conn) const;
    const TopicTable& topics() const { return topics_; }

private:
    // A subscribe's replay, expanded into frames as the connection drains
    // (refill). Open, it follows the cache as it grows: a live message of its
    // topic that is cached is not queued, the cursor reaches it; one that is
    // not cached waits in `held`. Frozen (unsubscribe, a new subscribe to the
    // topic, a close), it ends before `end`.
    struct Replay {
        static constexpr std::int64_t kOpen = std::numeric_limits<std::int64_t>::max();
        Topic* topic = nullptr;  // topics are never removed: the pointer stays valid
        std::int64_t after = -1;      // every message of the topic up to here is queued or not owed
        std::int64_t end = kOpen;     // frozen: the indices from here on are not this replay's
        std::deque<std::pair<std::int64_t, Frame>> held;  // owed, not in the cache; indices ascending, > after
        std::vector<Frame> behind;    // frames queued after this replay began; they follow it
        bool open() const { return end == kOpen; }
    };

    // Where a connection is in its life. It only moves down this list, and
    // skips at most one step: open goes to draining or dropping, draining
    // may still become dropping, either ends in closed.
    enum class Lifecycle : std::uint8_t {
        open,      // takes input, gets deliveries
        draining,  // a graceful close: its output and replays are written, then its Close is due
        dropping,  // an abrupt close (slow consumer, storage failed): output dropped, its Close due at once
        closed,    // its Close was handed to the shell by poll_close; gone at handle_disconnect
    };
    // A close that drops the connection's output rather than flushing it.
    static bool abrupt_close(CloseReason reason) {
        return reason == CloseReason::slow_consumer || reason == CloseReason::storage_failed;
    }

    struct Connection : Subscriber {
        Connection(ConnId id_, const Limits& limits) : Subscriber(id_), reader(limits.line_bytes_max) {}
        LineReader reader;
        std::vector<Frame> queued;        // not yet handed to the shell
        std::size_t queued_bytes = 0;
        std::size_t in_flight_bytes = 0;  // handed over in a Transmit, not yet written
        std::size_t parked_bytes = 0;     // the replays' held and behind frames
        std::size_t open_replays = 0;     // replays still open: 0 is the fan-out's fast path
        bool in_ready_list = false;
        Lifecycle lifecycle = Lifecycle::open;
        CloseReason close_reason{};  // why it closes: meaningful once past open
        // Takes no input, gets no deliveries, is in no topic (once settled).
        bool closing() const { return lifecycle != Lifecycle::open; }
        // Its Close is not handed out yet.
        bool close_pending() const { return lifecycle == Lifecycle::draining || lifecycle == Lifecycle::dropping; }
        // Closed without flushing: what it had not taken is gone.
        bool dropped() const { return closing() && abrupt_close(close_reason); }
        // Past connections_max: closed on connect, never counted as admitted.
        bool refused() const { return closing() && close_reason == CloseReason::too_many_connections; }
        // In order of their subscribes; the front one is expanded. Last, and a
        // vector (few, and nothing allocated while empty): the fan-out reads
        // only the fields above.
        std::vector<Replay> replays;
        // Durable topics: input taken while a send waits for its topic's
        // reservation to be synced, whole lines with their '\n', not yet processed.
        std::string stalled_input;
        bool stalled = false;
        bool line_too_long_held = false;  // a line past line_bytes_max came after them
        // SyncPolicy::always: output is held until this write is synced (it
        // holds the record of a send acknowledged in `queued`); 0: none.
        std::uint64_t hold_until_seq = 0;
        bool in_held_list = false;
    };

    Connection& connection(ConnId conn);
    // Feeds lines to process_line, or keeps them while the connection is stalled.
    void take_line(Connection& sender, std::string_view raw_line);
    // Keeps a line of a stalled connection, with its '\n', to run once it resumes.
    void hold_line(Connection& sender, std::string_view raw_line);
    bool process_line(Connection& sender, std::string_view raw_line);
    // Durable topics: whether a send to `topic` at `index` may go on now;
    // when not, it reserves what the send needs and stalls the sender.
    bool index_durable(Connection& sender, Topic& topic, std::int64_t index);
    void reserve(Topic& topic, std::int64_t until);
    void resume_stalled();
    void refuse_line_too_long(Connection& receiver);
    void append_snapshot(std::string& out, bool exact) const;
    std::size_t live_log_bytes() const;
    void execute(Connection& sender, const CommandRef& command);
    void publish(Connection& sender, const SendRef& send);
    void subscribe(Connection& subscriber, const SubscribeRef& subscribe);
    // Whether a command naming `name` may go on: false when it would make a
    // new topic known past indexed_topics_max, or give one more topic state
    // (when `needs_state`) past topics_max. `found` is the topic, if known.
    bool topic_allowed(const Topic* found, bool needs_state) const;
    // Whether a subscribe to `found` (null: an unknown topic) would give the
    // connection one more topic past subscriptions_max.
    bool subscription_allowed(const Connection& subscriber, Topic* found) const;
    void refuse(Connection& sender, LineError error);
    // Queues `frame` for `recipient` and returns true; returns false when the
    // recipient is closing, or is closed by this frame as a slow consumer.
    bool enqueue(Connection& recipient, const Frame& frame);
    // Queues a live message of `topic` for `recipient`: through its open
    // replay of that topic if it has one (not at all when the message is
    // cached, the replay reaches it there), else as enqueue() does.
    bool deliver(Connection& recipient, Topic& topic, std::int64_t index, const Frame& frame, bool cached);
    // Starts the replay of `topic` after last_seen, if there is anything to replay.
    void start_replay(Connection& subscriber, Topic& topic, std::int64_t last_seen);
    // Ends the connection's open replay of `topic`, if any, where the topic is now.
    void freeze_replay(Connection& connection, Topic& topic);
    // Expands the front replays into frames while the connection's output is
    // below replay_window_bytes; finished replays give way to their `behind`.
    void refill(Connection& connection);
    void finish_front_replay(Connection& connection);
    void mark_ready(Connection& connection);
    // Out of line, so that enqueue stays small enough to inline in the fan-out.
    [[gnu::noinline]] void park_behind(Connection& recipient, const Frame& frame);
    void begin_close(Connection& closing, CloseReason reason);
    // Takes condemned connections out of their topics; deferred so that a
    // fan-out loop never sees its subscriber vector change under it.
    void settle_closes();

    Limits limits_;
    Durability durability_;
    std::uint64_t incarnation_;
    Prng prng_;
    FramePool frame_pool_;  // message frames, recycled once the cache and every queue let go; outlives them
    TopicTable topics_;
    std::unordered_map<ConnId, std::unique_ptr<Connection>> connections_;
    // Work lists; they may name connections that are gone or changed since,
    // so each entry is re-checked against the connection's flags when read.
    Ring<ConnId> ready_;             // connections with queued output
    Ring<ConnId> closes_due_;        // connections whose Close may be due
    std::vector<ConnId> leaving_;    // closing connections still in topics
    LineParser parser_;  // its views live until the next line
    Frame ack_frame_;
    Frame hello_frame_;
    std::array<Frame, kLineErrorCount> error_frames_;  // one per LineError
    std::size_t admitted_ = 0;  // connections not refused
    BrokerStats stats_;

    // Durable topics. Records go to log_pending_, the write that seq
    // next_write_seq_ will carry; a snapshot request replaces them all.
    std::string log_pending_;
    bool log_sync_wanted_ = false;
    bool snapshot_wanted_ = false;
    bool snapshot_exact_ = false;
    std::uint64_t next_write_seq_ = 1;
    std::uint64_t synced_seq_ = 0;
    std::uint64_t recovery_snapshot_seq_ = 0;  // storage failed: the first snapshot polled since (0: none yet)
    std::size_t last_snapshot_bytes_ = 0;
    bool storage_failed_ = false;       // until a snapshot written after the failure is synced
    std::size_t log_bytes_ = 0;         // the log's size once every polled write is written
    // Reserve records not yet synced, in write order: (seq, topic, until).
    std::deque<std::tuple<std::uint64_t, Topic*, std::int64_t>> unsynced_reservations_;
    std::vector<ConnId> stalled_;       // connections stalled on a reservation
    std::vector<ConnId> held_;          // connections whose output waits for a sync (always)
    std::vector<ConnId>* one_choices_ = nullptr;
    // Recovery only: the hole records read back, for finish_recovery().
    std::vector<std::pair<Topic*, Hole>> recovered_holes_;
};

}  // namespace memq
