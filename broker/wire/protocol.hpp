// protocol.hpp — the aiomemq wire format that both ends share: the commands
// and their error reasons, strict UTF-8, JSON string literals, the encoders of
// every frame the broker writes (the client's lines are ClientCore's), and the
// line reader.
//
// Rules: pure functions and small value types only; no IO, no state beyond a
// line buffer, nothing of the broker's (the broker's reading of a command line
// is core/command_parser.hpp). This header is installed with the client SDK,
// so it includes only the standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace memq {

enum class Delivery : std::uint8_t { all, one };

struct Subscribe {
    std::string topic;
    std::int64_t last_seen = -1;
    bool cache = true;
};

struct Unsubscribe {
    std::string topic;
};

struct Send {
    std::string topic;
    std::string msg;
    Delivery delivery = Delivery::all;
    std::optional<bool> cache;  // absent: cached by default, and not echoed
};

// The connection asked to be closed (the line "quit"); it gets no reply.
struct Quit {};

// memq extension (docs/protocol.md): {"command": "hello"} asks the broker who
// it is; memqd answers with its incarnation, aiomemq servers with "Malformed
// json message".
struct Hello {};

// memq extension (docs/protocol.md): {"command": "holes", "topic": t, "after": n}
// asks which indices above n of topic t a crash of memqd --data-dir lost
// after they may have been delivered; aiomemq servers answer "Malformed json message".
struct Holes {
    std::string topic;
    std::int64_t after = -1;
};

// Why a line was refused, in the order the checks run. The last three are the
// broker's, not the parser's: a valid command that a limit refuses.
enum class LineError : std::uint8_t {
    bad_utf8,         // "Could not decode input as UTF-8"
    bad_json,         // "Could not parse json"
    malformed,        // "Malformed json message"
    line_too_long,    // "Line too long" (then the connection is closed)
    internal,         // "Internal exception": in PROTOCOL.md, never sent by memqd (docs/architecture.md)
    // The broker's limits (docs/operations.md), checked in this order, after
    // the parser: the line's own topic, then the connection, then the broker.
    topic_too_long,          // "Topic too long" (topic_bytes_max)
    too_many_subscriptions,  // "Too many subscriptions" (subscriptions_max)
    too_many_topics,         // "Too many topics" (topics_max or indexed_topics_max)
    storage_unavailable,     // "Storage unavailable": a durable broker cannot write its log (sends only)
};
// Derived from the last enumerator: a new reason goes before this line's anchor.
inline constexpr std::size_t kLineErrorCount = static_cast<std::size_t>(LineError::storage_unavailable) + 1;

using Command = std::variant<Subscribe, Unsubscribe, Send, Quit, Hello, Holes>;
using ParseResult = std::variant<Command, LineError>;

// The same commands as views, for the broker's hot path: no copies. The views
// point into the parsed line or into the LineParser, and stay valid until the
// parser's next call (and while the line's bytes do).
struct StringRef {
    std::string_view text;  // the decoded value
    std::string_view json;  // its JSON literal as the line had it, if append_json_string writes just that; else empty
};

struct SubscribeRef {
    std::string_view topic;
    std::int64_t last_seen = -1;
    bool cache = true;
};

struct UnsubscribeRef {
    std::string_view topic;
};

struct SendRef {
    StringRef topic;
    StringRef msg;
    Delivery delivery = Delivery::all;
    std::optional<bool> cache;
};

struct HolesRef {
    std::string_view topic;
    std::int64_t after = -1;
};

using CommandRef = std::variant<SubscribeRef, UnsubscribeRef, SendRef, Quit, Hello, HolesRef>;
using ParseRefResult = std::variant<CommandRef, LineError>;

// The reason string a client sees for `error`.
std::string_view reason_text(LineError error);

// ASCII whitespace trimmed from both ends (space, \t, \r, \n, \f, \v).
std::string_view trim_line(std::string_view line);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
bool is_valid_utf8(std::string_view bytes);

// Appends `text` as a JSON string literal (quotes included). `text` must be
// valid UTF-8; it is copied raw, only '"', '\\' and controls are escaped.
void append_json_string(std::string& out, std::string_view text);

// Wire frames, each one JSON object terminated by "\r\n".
std::string encode_ack();
std::string encode_error(LineError error);
// The reply to hello: {"success": true, "broker": "memqd", "incarnation": "<16 hex digits>"}.
// The incarnation is drawn when a broker starts; a new one means the topics'
// indices and caches may have started over.
std::string encode_hello(std::uint64_t incarnation);
// The reply's incarnation as the wire spells it: 16 lowercase hex digits.
std::string incarnation_text(std::uint64_t incarnation);
// A delivered message: the sender's fields (cache only if it gave one) + index.
std::string encode_message(const Send& send, std::int64_t index);
// The same frame appended to `out`; a string with its canonical literal in
// hand is copied as it is, byte for byte what append_json_string would write.
void append_message(std::string& out, const SendRef& send, std::int64_t index);
// The same frame, from a topic and the msg's JSON literal as a frame holds
// it (a durable broker's log record keeps no more): the bytes append_message
// writes for that send.
void append_message_frame(std::string& out, std::string_view topic, std::string_view msg_json, Delivery delivery,
                          std::optional<bool> cache, std::int64_t index);
// The sender's fields inside a frame append_message wrote for `index` and
// `delivery`: the msg's JSON literal (a view into frame) and the cache field.
// O(topic literal): the fields around the msg have known sizes. Nothing for
// a frame not of that shape (a version 1 log's frame, read back, may be any
// bytes its checksum vouches for).
struct MessageFrameFields {
    std::string_view msg_json;
    std::optional<bool> cache;
};
std::optional<MessageFrameFields> message_frame_fields(std::string_view frame, std::int64_t index, Delivery delivery);

// Splits a byte stream into lines at '\n', whatever the segment boundaries,
// holding at most `line_bytes_max` bytes of an unfinished line.
class LineReader {
public:
    enum class Status : std::uint8_t { more, stopped, too_long };

    explicit LineReader(std::size_t line_bytes_max) : line_bytes_max_(line_bytes_max) {}

    // Calls `on_line(std::string_view line) -> bool` for each complete line
    // (without its '\n') in `bytes`, in order, while it returns true.
    // Returns `stopped` when on_line returned false (the rest is dropped), and
    // `too_long` as soon as a line is known to pass the limit; after either
    // the reader is spent and takes nothing more.
    template <typename OnLine>
    Status feed(std::string_view bytes, OnLine&& on_line);

    std::size_t buffered_bytes() const { return partial_.size(); }

private:
    Status spend(Status status) {
        spent_ = true;
        std::string().swap(partial_);
        return status;
    }

    std::size_t line_bytes_max_;
    std::string partial_;
    bool spent_ = false;
};

template <typename OnLine>
LineReader::Status LineReader::feed(std::string_view bytes, OnLine&& on_line) {
    if (spent_) return Status::stopped;
    while (!bytes.empty()) {
        const std::size_t newline = bytes.find('\n');
        const std::string_view head = bytes.substr(0, newline);
        if (partial_.size() + head.size() > line_bytes_max_) return spend(Status::too_long);
        if (newline == std::string_view::npos) {
            partial_.append(head);
            return Status::more;
        }
        bytes.remove_prefix(newline + 1);
        bool keep_going;
        if (partial_.empty()) {
            keep_going = on_line(head);  // the common case: the whole line is in this segment
        } else {
            partial_.append(head);
            keep_going = on_line(std::string_view(partial_));
            partial_.clear();
        }
        if (!keep_going) return spend(Status::stopped);
    }
    return Status::more;
}

}  // namespace memq
