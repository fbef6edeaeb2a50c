// client_core.hpp — the client side of the memq protocol, with no IO at all.
//
// ClientCore owns: the encoding of commands into one outgoing byte buffer that
// the caller drains and writes; the FIFO of requests still waiting for their
// reply; the decoding of incoming bytes (cut anywhere) into events; and, per
// subscribed topic, the last index received, so that a resumed connection can
// re-subscribe where it stopped, drop duplicates and report gaps; and the
// broker's identity (the memq hello extension), so that a resume can tell a
// broker that lost its state from one that kept it (start_session()); and the
// inbox bound: how many messages it has handed out that the application has
// not taken yet (undelivered_messages()), past which it decodes no further
// and holds the input it was given (receive(), mark_delivered()).
//
// Rules: no sockets, no clocks, no threads, no randomness; every input is a
// call, every output is a buffer or a polled event. Replies come in request
// order, so the oldest pending request owns the next line that is not a
// message; an object with "command": "send" is always a message. Bad input
// from the broker (garbage, a reply nobody asked for) becomes a ProtocolError
// event, never a crash and never an exception.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "protocol.hpp"

namespace memq {

// Every request gets an id, counting up from 1 for the life of the core.
using RequestId = std::uint64_t;

// hello, resubscribe and holes are the core's own requests (start_session(),
// resubscribe_all(), a resume from a last index); hello and holes make no Ack event.
enum class RequestKind : std::uint8_t { subscribe, unsubscribe, send, raw, resubscribe, hello, holes };

// The broker's {"success": true} for `request`.
struct Ack {
    RequestId request = 0;
    RequestKind kind = RequestKind::send;
    // The line as received, without its line ending, when it is anything but
    // exactly {"success": true} (e.g. a hello reply, or other spacing); else empty.
    std::string raw;
};

// The broker's {"success": false, "reason": ...} for `request`.
struct Failure {
    RequestId request = 0;
    RequestKind kind = RequestKind::send;
    std::string reason;
    std::string raw;  // the line as received, without its line ending
};

// A delivered message: {"command": "send", ..., "index": N}.
struct Message {
    std::string topic;
    std::string msg;
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    std::optional<bool> cache;  // present only when the sender gave it
    std::string raw;            // the JSON object as received, without its line ending
};

// A line the core could not make sense of. When it stood where a reply was
// due, it answers (and ends) the oldest pending request, named in `request`.
struct ProtocolError {
    std::string description;
    std::string raw;
    std::optional<RequestId> request;
    std::optional<RequestKind> kind;
};

// After a resume, the first message on `topic` was not the one right after
// the last one received: indices [expected_index, got_index) were missed
// (gone from the broker's cache, or never owed to this subscriber: a "one"
// message handed to someone else, or a message sent with "cache": false).
// Also, later in a resumed stream, a hole the broker named (the memq holes
// extension: indices a crash of memqd --data-dir lost after they may have
// been delivered) that the stream passed: then [expected_index, got_index)
// is that hole's part above the last index received, and got_index is one
// past the hole, not the index of a message.
struct Gap {
    std::string topic;
    std::int64_t expected_index = 0;
    std::int64_t got_index = 0;
};

// After a resume, the broker on the other end has lost the state this
// subscriber resumed from: its identity changed (a memqd restart), or, with a
// broker that has none (aiomemq), the first index after the resume was at or
// below last_index. The old broker's messages after `last_index` that this
// subscriber did not receive may be lost, and how many cannot be known; the
// topic is re-subscribed from the start of the new broker's cache, its last
// index forgotten. A later Gap with expected_index 0 says the new broker's
// cache had already dropped its first messages.
struct Reset {
    std::string topic;
    std::int64_t last_index = 0;
};

using Event = std::variant<Ack, Failure, Message, ProtocolError, Gap, Reset>;

struct ClientCoreOptions {
    // Longest incoming line accepted, in bytes; a longer one is reported as a
    // ProtocolError and the stream is unusable until reset().
    std::size_t line_bytes_max = 64 * 1024 * 1024;
    // Drop a message whose index is not above the last index received on its
    // topic. Off by default so that the client shows exactly what the broker
    // sent (conformance tests depend on it); resuming clients turn it on.
    bool drop_duplicates = false;
    // The inbox bound: at most this many messages undelivered (queued as
    // events, or polled and not yet given back with mark_delivered()). At
    // the bound the core decodes no further line: what receive() is given
    // past it is held, undecoded, until mark_delivered() makes room, and the
    // caller reads no more from the socket (inbox_full()), so the broker
    // queues for this client instead (TCP backpressure). 65536 messages: at
    // about 1 KiB a message, memqd's default --max-pending-bytes (64 MiB), so
    // the client stops reading at about the point where the broker would
    // close it anyway, and its memory is bounded to the same order.
    // At least 1 (0 is taken as 1).
    std::size_t max_inbox_messages = 65536;
};

class ClientCore {
public:
    explicit ClientCore(ClientCoreOptions options = {});

    // --- Requests: each appends one line to the output and returns its id. ---

    // Subscribes; the topic is remembered for resubscribe_all() until unsubscribed
    // (or until the broker refuses this subscribe). With last_seen >= 0 on a
    // connection that sent a hello (start_session()), unless the broker said
    // it has no identity, the topic's holes after last_seen are asked for
    // first (a RequestKind::holes request, no Ack event; a failure reply, as
    // from aiomemq, means none), and each hole the stream then passes is
    // reported as a Gap (client/README.md, "Resume"); so is a first message
    // that is not last_seen + 1.
    RequestId subscribe(std::string_view topic, std::optional<std::int64_t> last_seen = std::nullopt,
                        std::optional<bool> cache = std::nullopt);
    RequestId unsubscribe(std::string_view topic);
    RequestId send(std::string_view topic, std::string_view msg, Delivery delivery = Delivery::all,
                   std::optional<bool> cache = std::nullopt);
    // Appends `bytes` as they are (the caller adds any '\n'). With expect_reply
    // it becomes one pending request that owns the next reply; the broker
    // replies to every non-empty line except "quit", and never to an empty or
    // whitespace-only line, so those must say expect_reply = false.
    std::optional<RequestId> send_raw(std::string_view bytes, bool expect_reply);

    // --- Output: the bytes to write, in order. ---

    bool has_output() const { return !output_.empty(); }
    std::size_t output_bytes() const { return output_.size(); }
    std::string_view output() const { return output_; }
    // Moves every byte written so far into `into` (whose old content is
    // dropped, its capacity reused): the zero-copy hand-off to a writer.
    void take_output(std::string& into);

    // --- Input: bytes from the broker, cut anywhere; events come out in order. ---

    // Decodes lines while the inbox has room; with the inbox full, the rest
    // of `bytes` is held (not decoded) until mark_delivered() makes room.
    // Exactly max_inbox_messages messages get in; the line after the last one
    // stays undecoded, whatever it is (a reply too: replies come in order).
    void receive(std::string_view bytes);
    std::optional<Event> poll_event();
    std::size_t queued_events() const { return events_.size(); }

    // --- The inbox bound (ClientCoreOptions::max_inbox_messages). ---

    // The application took `count` messages that this core handed out (a
    // caller that hands each message on at once calls it right after
    // poll_event()). Decodes held input while there is room again, so new
    // events may be queued: poll them.
    void mark_delivered(std::size_t count = 1);
    // Messages handed out (as events) and not yet marked delivered.
    std::size_t undelivered_messages() const { return undelivered_; }
    // The bound is reached: read nothing more from the socket until it is not.
    bool inbox_full() const { return undelivered_ >= options_.max_inbox_messages; }
    // Input received and not decoded because the inbox is full.
    std::size_t held_input_bytes() const { return held_.size() - held_offset_; }
    // Counts `count` messages the caller already holds as undelivered: a
    // fresh core (a new session) under an inbox that kept messages.
    void count_undelivered(std::size_t count) { undelivered_ += count; }

    // --- Connection lifecycle. ---

    // The connection is gone: clears the output, the partial input line and
    // every pending request (returned, oldest first, so the caller can fail
    // them). Queued events stay. Subscriptions and their indices stay.
    // Held input (see receive()) is dropped: it came on the lost connection.
    std::deque<std::pair<RequestId, RequestKind>> reset();
    // A connection is up: puts a hello request (RequestKind::hello, no Ack
    // event) in front of everything not yet written, so call it before the
    // first take_output() of the connection. When its reply comes, the core
    // learns the broker's identity (broker_incarnation()) and re-subscribes
    // every topic remembered from before the last reset() (RequestKind::resubscribe):
    // - first identity, or the same as before: with last_seen = the last index
    //   received, as resubscribe_all() does;
    // - another identity (memqd restarted, or a switch between memqd and a
    //   server without identities): a Reset event per topic with a last
    //   index, then a subscribe without last_seen (the new broker's whole cache);
    // - no identity (the reply is a failure, as from an aiomemq server), as
    //   before: with last_seen; if the first message after it has an index at
    //   or below last_seen, a Reset event, that message and every later one on
    //   the topic dropped until a second subscribe without last_seen (which
    //   the core sends) is acknowledged, then the replay taken as new. A new
    //   broker that had already passed last_seen cannot be told apart.
    // A topic subscribed with subscribe() in the meantime is not resumed.
    // A topic resumed with last_seen from a broker with an identity is asked
    // for its holes first (RequestKind::holes, see subscribe_resuming()).
    // Returns the hello's id.
    RequestId start_session();
    // Re-subscribes every remembered topic (as RequestKind::resubscribe),
    // with last_seen = the last index received on it (or the last_seen it was
    // first subscribed with), and arms gap detection for each, without asking
    // who the broker is. Returns how many requests it made.
    std::size_t resubscribe_all();

    // --- Inspection. ---

    std::size_t pending_requests() const { return pending_.size(); }
    // An incoming line passed line_bytes_max: input is ignored until reset().
    bool input_spent() const { return input_spent_; }
    bool is_subscribed(std::string_view topic) const;
    // The last index received on `topic` (or the last_seen it was subscribed with).
    std::optional<std::int64_t> last_index(std::string_view topic) const;
    std::size_t subscriptions() const { return subscriptions_.size(); }
    // start_session()'s hello is not answered yet.
    bool hello_pending() const { return hello_pending_; }
    // The last broker incarnation learned; empty when the broker has no
    // identity (an aiomemq server) or none was learned yet.
    const std::optional<std::string>& broker_incarnation() const { return incarnation_; }

private:
    struct Pending {
        RequestId id;
        RequestKind kind;
        std::string topic;  // subscribe only: to forget it if refused
    };
    // Where a subscription stands in a resume.
    enum class Phase : std::uint8_t {
        live,         // nothing to check
        check_gap,    // the first message after the resume is checked against continues_after
        check_reset,  // no identity: the first message is checked against last_index first
        dropping,     // a Reset is reported: drop everything until fresh_subscribe is acknowledged
    };
    struct Hole {
        std::int64_t first = 0;
        std::int64_t last = 0;
    };
    struct Subscription {
        std::optional<std::int64_t> last_index;
        // The holes the broker named for the last resume, ascending; each is
        // consumed when a message above it arrives.
        std::vector<Hole> holes;
        std::optional<bool> cache;
        Phase phase = Phase::live;
        std::optional<std::int64_t> continues_after;  // check_gap: the index the next one should follow
        RequestId fresh_subscribe = 0;                // dropping: the subscribe that ends it
        // The connection (counted by reset()) it was last subscribed on: one
        // from before the last reset() is what start_session() resumes.
        std::uint64_t connection = 0;
    };

    RequestId push_pending(RequestKind kind, std::string_view topic = {});
    void encode_subscribe(std::string_view topic, std::optional<std::int64_t> last_seen, std::optional<bool> cache);
    std::string_view decode_while_room(std::string_view bytes);
    // Whether a resume from a last index on this connection asks for holes:
    // a hello went out on it, and the broker did not say it has no identity.
    bool asks_for_holes() const;
    void request_holes(std::string_view topic, std::int64_t after);
    void learn_holes(const std::string& topic, std::vector<Hole> holes);
    // Reports the holes below `index` the stream passed, above the last index received.
    void pass_holes(const std::string& topic, Subscription& subscription, std::int64_t index);
    void handle_line(std::string_view line);
    void handle_reply_line(std::string_view line);
    void handle_message(Message message);
    void acknowledge(std::string_view line, bool plain);
    void learn_identity(std::optional<std::string> incarnation);
    void report_reset(const std::string& topic, Subscription& subscription);
    void protocol_error(std::string description, std::string_view raw, bool takes_reply_slot);

    ClientCoreOptions options_;
    std::string output_;
    LineReader reader_;
    std::deque<Pending> pending_;
    std::deque<Event> events_;
    std::size_t undelivered_ = 0;
    std::string held_;  // input not decoded because the inbox is full, from held_offset_ on
    std::size_t held_offset_ = 0;
    std::unordered_map<std::string, Subscription> subscriptions_;
    RequestId next_id_ = 1;
    bool input_spent_ = false;
    std::uint64_t connection_ = 0;  // how many times reset() was called
    bool identity_known_ = false;  // a hello was answered, on this connection or an earlier one
    bool hello_pending_ = false;
    std::uint64_t hello_connection_ = 0;  // the connection start_session() last sent a hello on, plus one (0: none)
    std::optional<std::string> incarnation_;
};

}  // namespace memq
