// wire.hpp — what memq-bench says and hears in each broker's protocol (memq's
// aiomemq lines, the NATS text protocol, Redis RESP2 pub/sub, Redis Streams
// XADD / XREAD, NATS JetStream publishes with acks): the bytes of a publish,
// of each kind of handshake, and incremental parsers that count deliveries
// and replies and read the send time carried in every payload.
// Pure functions over byte ranges: no sockets, no clocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "histogram.hpp"

namespace bench {

// redis_streams: XADD <stream> * f <payload> (acked by the entry's id), read
//   by XREAD COUNT kStreamReadCount BLOCK 0 STREAMS <stream> <last id>, one
//   read in flight, the next sent when one is answered.
// jetstream: PUB <subject> <inbox> (acked by {"stream":..,"seq":N} on the
//   inbox) into a file-storage stream the publisher creates over the subject
//   in its handshake; subscribers are plain core-NATS subscriptions.
enum class Proto : std::uint8_t { memq, nats, redis, redis_streams, jetstream };

std::optional<Proto> parse_proto(std::string_view name);  // memq nats redis redis-streams jetstream
std::string_view proto_name(Proto proto);

// Whether the broker answers every publish (memq's ack, PUBLISH's count,
// XADD's id, JetStream's ack); NATS core publishes are not answered.
bool acks_every_publish(Proto proto);

inline constexpr std::size_t kStreamReadCount = 1000;  // entries one XREAD returns at most

// A Redis Streams reader's place: the id of the last entry read, and how
// many XREADs were answered (each answer wants the next XREAD).
struct StreamCursor {
    std::string last_id = "0-0";  // streams are new each run: from the start
    std::uint64_t reads_answered = 0;
};

// The XREAD that reads `stream` after `last_id`.
std::string stream_read(std::string_view stream, std::string_view last_id);

// The JetStream stream created over `subject` ('.' made '_'), and the inbox its acks come to.
std::string jetstream_stream_name(std::string_view subject);
std::string jetstream_inbox(std::string_view subject);

// A payload is '~', the send time (CLOCK_MONOTONIC, ns) as kStampDigits
// lowercase hex digits, then 'x' up to its size. Plain ASCII: a JSON string,
// a NATS payload and a Redis bulk string carry it unchanged.
inline constexpr char kStampMark = '~';
inline constexpr std::size_t kStampDigits = 15;
inline constexpr std::size_t kMinPayload = 1 + kStampDigits;

void write_stamp(char* digits, std::uint64_t ns);
// `mark` points at the '~'; false when the digits do not fit before `end`.
bool read_stamp(const char* mark, const char* end, std::uint64_t& ns);

// One complete publish command; the stamp digits go at stamp_offset.
struct PublishTemplate {
    std::string bytes;
    std::size_t stamp_offset = 0;
};
PublishTemplate make_publish(Proto proto, std::string_view topic, std::size_t payload_bytes);

// What a connection is for; each kind has its own handshake.
enum class Role : std::uint8_t {
    publisher,   // only publishes
    subscriber,  // subscribed to one topic, only receives
    idle,        // one round trip, then holds the connection open
};

// Bytes to send right after connecting (may be empty: nothing to wait for).
// A Redis Streams subscriber's hello ends with its first XREAD; a JetStream
// publisher's subscribes to its inbox and creates the stream (file storage).
std::string hello(Proto proto, Role role, std::string_view topic);

// Whether `received` holds the whole reply to hello(): the bytes it takes up,
// 0 while incomplete, -1 if the server refused.
std::ptrdiff_t hello_reply_size(Proto proto, Role role, std::string_view received);

// The reply a server's PING asks for, and nothing for the other protocols.
std::string_view pong(Proto proto);

struct Tally {
    std::uint64_t messages = 0;  // deliveries (subscriber side)
    std::uint64_t replies = 0;   // acks / integer replies / PONGs (publisher side, handshakes)
    std::uint64_t errors = 0;    // refusals: memq success=false, NATS -ERR, RESP errors
    std::uint64_t pings = 0;     // server PINGs that want a PONG
};

// One memq subscriber's delivery indices: each must be the one before plus
// one (every message of its topic, in order), from the first one seen.
struct IndexCheck {
    std::int64_t next = -1;     // the index the next delivery must carry; -1 before the first
    std::uint64_t breaks = 0;   // deliveries that did not (or carried no readable index)
};

// Consumes the complete frames at the front of [data, data+size) and returns
// how many bytes they took; a partial frame is left for the next call.
// Deliveries whose stamp is readable are recorded as now_ns - stamp into
// `latency` when it is not null; memq deliveries' indices are checked into
// `indices` when it is not null. Redis Streams XREAD answers move `cursor`
// when it is not null.
std::size_t parse_stream(Proto proto, const char* data, std::size_t size, Tally& tally, Histogram* latency,
                         std::uint64_t now_ns, IndexCheck* indices = nullptr, StreamCursor* cursor = nullptr);

}  // namespace bench
