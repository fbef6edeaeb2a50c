// wire.cpp — encoders and incremental stream parsers for memq, NATS, Redis
// pub/sub, Redis Streams and NATS JetStream, written for speed: memchr to
// frame, no copies, no allocation (but a stream cursor's id).
#include "wire.hpp"

#include <cstring>

namespace bench {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

const char* find_byte(const char* from, const char* end, char byte) {
    return static_cast<const char*>(std::memchr(from, byte, static_cast<std::size_t>(end - from)));
}

bool starts_with(const char* from, const char* end, std::string_view prefix) {
    return static_cast<std::size_t>(end - from) >= prefix.size() &&
           std::memcmp(from, prefix.data(), prefix.size()) == 0;
}

bool contains(const char* from, const char* end, std::string_view needle) {
    return std::string_view(from, static_cast<std::size_t>(end - from)).find(needle) != std::string_view::npos;
}

void record_stamp(const char* mark, const char* end, Histogram* latency, std::uint64_t now_ns) {
    std::uint64_t stamp = 0;
    if (latency == nullptr || !read_stamp(mark, end, stamp)) return;
    latency->record(now_ns > stamp ? now_ns - stamp : 0);
}

std::string payload_of(std::size_t size) {
    std::string payload(size < kMinPayload ? kMinPayload : size, 'x');
    payload[0] = kStampMark;
    write_stamp(payload.data() + 1, 0);
    return payload;
}

// ---- memq: one JSON object per line -----------------------------------------

// The N of a delivery line's closing `"index": N}` (memqd writes index last),
// read backwards from its end; -1 when the line does not end that way.
std::int64_t trailing_index(const char* line, const char* newline) {
    const char* p = newline;
    if (p > line && p[-1] == '\r') --p;
    if (p == line || *--p != '}') return -1;
    std::int64_t value = 0;
    std::int64_t scale = 1;
    const char* const last_digit = p;
    while (p > line && p[-1] >= '0' && p[-1] <= '9' && last_digit - p < 18) {
        --p;
        value += (*p - '0') * scale;
        scale *= 10;
    }
    constexpr std::string_view kKey = "\"index\": ";
    if (p == last_digit || p - line < static_cast<std::ptrdiff_t>(kKey.size())) return -1;
    if (std::memcmp(p - kKey.size(), kKey.data(), kKey.size()) != 0) return -1;
    return value;
}

std::size_t parse_memq(const char* data, std::size_t size, Tally& tally, Histogram* latency, std::uint64_t now_ns,
                       IndexCheck* indices) {
    const char* p = data;
    const char* const end = data + size;
    while (p < end) {
        const char* const newline = find_byte(p, end, '\n');
        if (newline == nullptr) break;
        // The publisher's acks, one per message, are all the same line: one
        // comparison instead of three searches.
        constexpr std::string_view kAck = "{\"success\": true}\r";
        if (newline - p == static_cast<std::ptrdiff_t>(kAck.size()) && std::memcmp(p, kAck.data(), kAck.size()) == 0) {
            ++tally.replies;
            p = newline + 1;
            continue;
        }
        // Only deliveries carry a stamp mark: topics and replies never hold '~'.
        if (const char* mark = find_byte(p, newline, kStampMark)) {
            ++tally.messages;
            record_stamp(mark, newline, latency, now_ns);
            if (indices != nullptr) {
                const std::int64_t index = trailing_index(p, newline);
                if (index < 0 || (indices->next >= 0 && index != indices->next)) ++indices->breaks;
                indices->next = index < 0 ? -1 : index + 1;
            }
        } else if (contains(p, newline, "false")) {
            ++tally.errors;
        } else if (contains(p, newline, "true")) {
            ++tally.replies;
        }
        p = newline + 1;
    }
    return static_cast<std::size_t>(p - data);
}

// ---- NATS: control lines, MSG carries a sized payload -------------------------

// With `acks_in_messages` (JetStream), a MSG whose payload carries no stamp is
// an answer from the JetStream API (a publish ack, a stream created): an
// error when it holds an "error" member, a reply otherwise.
std::size_t parse_nats(const char* data, std::size_t size, Tally& tally, Histogram* latency, std::uint64_t now_ns,
                       bool acks_in_messages) {
    const char* p = data;
    const char* const end = data + size;
    while (p < end) {
        const char* const newline = find_byte(p, end, '\n');
        if (newline == nullptr) break;
        if (starts_with(p, newline, "MSG ")) {
            // MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n: the size is the last token.
            const char* digits_end = newline;
            if (digits_end > p && digits_end[-1] == '\r') --digits_end;
            const char* digit = digits_end;
            while (digit > p && digit[-1] >= '0' && digit[-1] <= '9') --digit;
            std::size_t payload_size = 0;
            for (const char* d = digit; d < digits_end; ++d) payload_size = payload_size * 10 + static_cast<std::size_t>(*d - '0');
            const char* const payload = newline + 1;
            if (static_cast<std::size_t>(end - payload) < payload_size + 2) break;  // payload not all here yet
            const bool stamped = payload_size > 0 && *payload == kStampMark;
            if (acks_in_messages && !stamped) {
                if (contains(payload, payload + payload_size, "\"error\"")) {
                    ++tally.errors;
                } else {
                    ++tally.replies;
                }
                p = payload + payload_size + 2;
                continue;
            }
            ++tally.messages;
            if (stamped) record_stamp(payload, payload + payload_size, latency, now_ns);
            p = payload + payload_size + 2;
            continue;
        }
        if (starts_with(p, newline, "PING")) {
            ++tally.pings;
        } else if (starts_with(p, newline, "PONG")) {
            ++tally.replies;
        } else if (starts_with(p, newline, "-ERR")) {
            ++tally.errors;
        }  // INFO and +OK need nothing
        p = newline + 1;
    }
    return static_cast<std::size_t>(p - data);
}

// ---- Redis: RESP2 -------------------------------------------------------------

// Reads "<integer>\r\n" at p; returns the byte after it, or null when the
// line is not all there yet. A malformed line sets `bad`.
const char* resp_integer(const char* p, const char* end, long long& value, bool& bad) {
    const char* const newline = find_byte(p, end, '\n');
    if (newline == nullptr) return nullptr;
    bool negative = false;
    if (p < newline && *p == '-') negative = true, ++p;
    value = 0;
    for (; p < newline && *p != '\r'; ++p) {
        if (*p < '0' || *p > '9') {
            bad = true;
            break;
        }
        value = value * 10 + (*p - '0');
    }
    if (negative) value = -value;
    return newline + 1;
}

struct RespItem {
    const char* data = nullptr;
    std::size_t size = 0;
};

std::size_t parse_redis(const char* data, std::size_t size, Tally& tally, Histogram* latency, std::uint64_t now_ns) {
    const char* p = data;
    const char* const end = data + size;
    while (p < end) {
        const char type = *p;
        if (type == '*') {
            bool bad = false;
            long long count = 0;
            const char* q = resp_integer(p + 1, end, count, bad);
            if (q == nullptr) break;
            RespItem items[4];
            bool complete = true;
            for (long long i = 0; i < count && !bad; ++i) {
                if (q >= end) {
                    complete = false;
                    break;
                }
                long long value = 0;
                const char* const after = resp_integer(q + 1, end, value, bad);
                if (after == nullptr) {
                    complete = false;
                    break;
                }
                if (*q == '$') {
                    if (value < 0) {  // a null bulk string
                        q = after;
                        continue;
                    }
                    const auto length = static_cast<std::size_t>(value);
                    if (static_cast<std::size_t>(end - after) < length + 2) {
                        complete = false;
                        break;
                    }
                    if (i < 4) items[i] = RespItem{after, length};
                    q = after + length + 2;
                } else if (*q == ':') {
                    q = after;
                } else {
                    bad = true;
                }
            }
            if (!complete) break;
            if (bad) {
                ++tally.errors;
                p = end;  // lost framing; the caller sees the error
                break;
            }
            const std::string_view kind = items[0].data ? std::string_view(items[0].data, items[0].size) : std::string_view();
            if (kind == "message" && count >= 3) {
                ++tally.messages;
                if (items[2].size > 0 && *items[2].data == kStampMark) {
                    record_stamp(items[2].data, items[2].data + items[2].size, latency, now_ns);
                }
            } else if (kind == "pmessage" && count >= 4) {
                ++tally.messages;
                if (items[3].size > 0 && *items[3].data == kStampMark) {
                    record_stamp(items[3].data, items[3].data + items[3].size, latency, now_ns);
                }
            } else {
                ++tally.replies;  // subscribe / unsubscribe confirmations
            }
            p = q;
            continue;
        }
        const char* const newline = find_byte(p, end, '\n');
        if (newline == nullptr) break;
        if (type == '-') {
            ++tally.errors;
        } else if (type == ':' || type == '+') {
            ++tally.replies;  // PUBLISH's receiver count, +PONG
        } else if (type == '$') {
            // A bulk reply outside an array (not expected here): skip its body.
            bool bad = false;
            long long length = 0;
            resp_integer(p + 1, end, length, bad);
            ++tally.replies;
            if (length >= 0) {
                if (static_cast<std::size_t>(end - (newline + 1)) < static_cast<std::size_t>(length) + 2) {
                    --tally.replies;
                    break;
                }
                p = newline + 1 + length + 2;
                continue;
            }
        } else {
            ++tally.errors;
        }
        p = newline + 1;
    }
    return static_cast<std::size_t>(p - data);
}

// ---- Redis Streams: XADD answers a bulk id; XREAD a nested array ---------------

// The header line "<type><integer>\r\n" at p: the byte after it, or null when
// it is not all there yet (then `type` and `value` mean nothing).
const char* resp_header(const char* p, const char* end, char& type, long long& value, bool& bad) {
    if (p >= end) return nullptr;
    type = *p;
    return resp_integer(p + 1, end, value, bad);
}

// A bulk string at p: its bytes, and the byte after it; null when incomplete.
const char* resp_bulk_at(const char* p, const char* end, RespItem& item, bool& bad) {
    char type = 0;
    long long length = 0;
    const char* const body = resp_header(p, end, type, length, bad);
    if (body == nullptr) return nullptr;
    if (type != '$' || length < 0) {
        bad = true;
        return body;
    }
    if (static_cast<std::size_t>(end - body) < static_cast<std::size_t>(length) + 2) return nullptr;
    item = RespItem{body, static_cast<std::size_t>(length)};
    return body + length + 2;
}

// An array header of the expected type at p; null when incomplete.
const char* resp_array_at(const char* p, const char* end, long long& count, bool& bad) {
    char type = 0;
    const char* const after = resp_header(p, end, type, count, bad);
    if (after != nullptr && type != '*') bad = true;
    return after;
}

// One XREAD answer at p: *streams [ *2 [ name, *entries [ *2 [ id, *fields [ f, payload ] ] ] ] ],
// or a null array. Returns the byte after it, or null when it is incomplete.
// Only when `commit` are messages counted, stamps recorded and the cursor moved.
const char* parse_xread_answer(const char* p, const char* end, bool commit, Tally& tally, Histogram* latency,
                               std::uint64_t now_ns, StreamCursor* cursor, bool& bad) {
    long long streams = 0;
    p = resp_array_at(p, end, streams, bad);
    if (p == nullptr || bad) return p;
    RespItem last_id;
    for (long long s = 0; s < streams; ++s) {
        long long pair = 0;
        RespItem name;
        long long entries = 0;
        if ((p = resp_array_at(p, end, pair, bad)) == nullptr || bad) return p;
        if ((p = resp_bulk_at(p, end, name, bad)) == nullptr || bad) return p;
        if ((p = resp_array_at(p, end, entries, bad)) == nullptr || bad) return p;
        for (long long e = 0; e < entries; ++e) {
            long long entry = 0;
            long long fields = 0;
            if ((p = resp_array_at(p, end, entry, bad)) == nullptr || bad) return p;
            if ((p = resp_bulk_at(p, end, last_id, bad)) == nullptr || bad) return p;
            if ((p = resp_array_at(p, end, fields, bad)) == nullptr || bad) return p;
            for (long long f = 0; f < fields; ++f) {
                RespItem value;
                if ((p = resp_bulk_at(p, end, value, bad)) == nullptr || bad) return p;
                if (commit && value.size > 0 && *value.data == kStampMark) {
                    ++tally.messages;
                    record_stamp(value.data, value.data + value.size, latency, now_ns);
                }
            }
        }
    }
    if (commit && cursor != nullptr) {
        if (last_id.data != nullptr) cursor->last_id.assign(last_id.data, last_id.size);
        ++cursor->reads_answered;
    }
    return p;
}

std::size_t parse_redis_streams(const char* data, std::size_t size, Tally& tally, Histogram* latency,
                                std::uint64_t now_ns, StreamCursor* cursor) {
    const char* p = data;
    const char* const end = data + size;
    while (p < end) {
        if (*p == '*') {
            bool bad = false;
            const char* const after = parse_xread_answer(p, end, false, tally, latency, now_ns, cursor, bad);
            if (bad) {
                ++tally.errors;
                return size;  // lost framing; the caller sees the error
            }
            if (after == nullptr) break;
            parse_xread_answer(p, end, true, tally, latency, now_ns, cursor, bad);
            p = after;
            continue;
        }
        const char* const newline = find_byte(p, end, '\n');
        if (newline == nullptr) break;
        if (*p == '$') {  // XADD's id
            RespItem id;
            bool bad = false;
            const char* const after = resp_bulk_at(p, end, id, bad);
            if (bad) {
                ++tally.errors;
                return size;
            }
            if (after == nullptr) break;
            ++tally.replies;
            p = after;
            continue;
        }
        if (*p == '+' || *p == ':') {
            ++tally.replies;  // +PONG
        } else {
            ++tally.errors;  // -ERR and anything unexpected
        }
        p = newline + 1;
    }
    return static_cast<std::size_t>(p - data);
}

std::string resp_bulk(std::string_view text) {
    std::string out = "$";
    out.append(std::to_string(text.size()));
    out.append("\r\n");
    out.append(text);
    out.append("\r\n");
    return out;
}

// Ends a RESP command with `payload` as a bulk string, its stamp's place noted.
void append_stamped_bulk(PublishTemplate& command, const std::string& payload) {
    std::string& out = command.bytes;
    out.push_back('$');
    out.append(std::to_string(payload.size()));
    out.append("\r\n");
    command.stamp_offset = out.size() + 1;
    out.append(payload);
    out.append("\r\n");
}

}  // namespace

std::optional<Proto> parse_proto(std::string_view name) {
    if (name == "memq") return Proto::memq;
    if (name == "nats") return Proto::nats;
    if (name == "redis") return Proto::redis;
    if (name == "redis-streams") return Proto::redis_streams;
    if (name == "jetstream") return Proto::jetstream;
    return std::nullopt;
}

bool acks_every_publish(Proto proto) { return proto != Proto::nats; }

std::string stream_read(std::string_view stream, std::string_view last_id) {
    std::string out = "*8\r\n";
    out.append(resp_bulk("XREAD")).append(resp_bulk("COUNT")).append(resp_bulk(std::to_string(kStreamReadCount)));
    out.append(resp_bulk("BLOCK")).append(resp_bulk("0")).append(resp_bulk("STREAMS"));
    out.append(resp_bulk(stream)).append(resp_bulk(last_id));
    return out;
}

std::string jetstream_stream_name(std::string_view subject) {
    std::string name(subject);
    for (char& c : name) {
        if (c == '.') c = '_';
    }
    return name;
}

std::string jetstream_inbox(std::string_view subject) { return "_INBOX.acks." + std::string(subject); }

std::string_view proto_name(Proto proto) {
    switch (proto) {
        case Proto::memq: return "memq";
        case Proto::nats: return "nats";
        case Proto::redis: return "redis";
        case Proto::redis_streams: return "redis-streams";
        case Proto::jetstream: return "jetstream";
    }
    return "?";
}

void write_stamp(char* digits, std::uint64_t ns) {
    for (std::size_t i = kStampDigits; i-- > 0;) {
        digits[i] = kHexDigits[ns & 0xF];
        ns >>= 4;
    }
}

bool read_stamp(const char* mark, const char* end, std::uint64_t& ns) {
    if (static_cast<std::size_t>(end - mark) < kMinPayload) return false;
    std::uint64_t value = 0;
    for (std::size_t i = 1; i <= kStampDigits; ++i) {
        const char c = mark[i];
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<unsigned>(c - 'a' + 10);
        } else {
            return false;
        }
        value = value << 4 | digit;
    }
    ns = value;
    return true;
}

PublishTemplate make_publish(Proto proto, std::string_view topic, std::size_t payload_bytes) {
    const std::string payload = payload_of(payload_bytes);
    PublishTemplate result;
    std::string& out = result.bytes;
    switch (proto) {
        case Proto::memq:
            out = "{\"command\": \"send\", \"topic\": \"";
            out.append(topic);
            out.append("\", \"msg\": \"");
            result.stamp_offset = out.size() + 1;
            out.append(payload);
            out.append("\", \"delivery\": \"all\"}\n");
            break;
        case Proto::nats:
        case Proto::jetstream:
            out = "PUB ";
            out.append(topic);
            out.push_back(' ');
            if (proto == Proto::jetstream) out.append(jetstream_inbox(topic)).push_back(' ');
            out.append(std::to_string(payload.size()));
            out.append("\r\n");
            result.stamp_offset = out.size() + 1;
            out.append(payload);
            out.append("\r\n");
            break;
        case Proto::redis:
            out = "*3\r\n";
            out.append(resp_bulk("PUBLISH"));
            out.append(resp_bulk(topic));
            append_stamped_bulk(result, payload);
            break;
        case Proto::redis_streams:
            out = "*5\r\n";
            out.append(resp_bulk("XADD"));
            out.append(resp_bulk(topic));
            out.append(resp_bulk("*"));
            out.append(resp_bulk("f"));
            append_stamped_bulk(result, payload);
            break;
    }
    return result;
}

std::string hello(Proto proto, Role role, std::string_view topic) {
    constexpr std::string_view kNatsConnect = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
    switch (proto) {
        case Proto::memq:
            // Subscribers skip the replay cache: an earlier run's messages must not count.
            if (role == Role::subscriber) {
                return "{\"command\": \"subscribe\", \"topic\": \"" + std::string(topic) + "\", \"cache\": false}\n";
            }
            if (role == Role::idle) return "{\"command\": \"unsubscribe\", \"topic\": \"" + std::string(topic) + "\"}\n";
            return "";
        case Proto::nats:
            if (role == Role::subscriber) return std::string(kNatsConnect) + "SUB " + std::string(topic) + " 1\r\nPING\r\n";
            return std::string(kNatsConnect) + "PING\r\n";
        case Proto::jetstream: {
            if (role != Role::publisher) return hello(Proto::nats, role, topic);
            // Acks come to the inbox; the stream's creation is answered there too
            // (the handshake's reply; creating an existing one alike is no error).
            const std::string inbox = jetstream_inbox(topic);
            const std::string config = "{\"name\":\"" + jetstream_stream_name(topic) + "\",\"subjects\":[\"" +
                                       std::string(topic) + "\"],\"storage\":\"file\"}";
            return std::string(kNatsConnect) + "SUB " + inbox + " 1\r\nPUB $JS.API.STREAM.CREATE." +
                   jetstream_stream_name(topic) + " " + inbox + " " + std::to_string(config.size()) + "\r\n" + config +
                   "\r\n";
        }
        case Proto::redis_streams: {
            const std::string ping = std::string("*1\r\n").append(resp_bulk("PING"));
            // PING's answer confirms the connection; the XREAD behind it waits for entries.
            if (role == Role::subscriber) return ping + stream_read(topic, StreamCursor{}.last_id);
            return ping;
        }
        case Proto::redis:
            if (role == Role::subscriber) return std::string("*2\r\n").append(resp_bulk("SUBSCRIBE")).append(resp_bulk(topic));
            if (role == Role::idle) return std::string("*1\r\n").append(resp_bulk("PING"));
            return "";
    }
    return "";
}

std::ptrdiff_t hello_reply_size(Proto proto, Role, std::string_view received) {
    Tally tally;
    const std::size_t used = parse_stream(proto, received.data(), received.size(), tally, nullptr, 0);
    if (tally.errors != 0) return -1;
    return tally.replies != 0 ? static_cast<std::ptrdiff_t>(used) : 0;
}

std::string_view pong(Proto proto) { return proto == Proto::nats || proto == Proto::jetstream ? "PONG\r\n" : ""; }

std::size_t parse_stream(Proto proto, const char* data, std::size_t size, Tally& tally, Histogram* latency,
                         std::uint64_t now_ns, IndexCheck* indices, StreamCursor* cursor) {
    switch (proto) {
        case Proto::memq: return parse_memq(data, size, tally, latency, now_ns, indices);
        case Proto::nats: return parse_nats(data, size, tally, latency, now_ns, false);
        case Proto::jetstream: return parse_nats(data, size, tally, latency, now_ns, true);
        case Proto::redis: return parse_redis(data, size, tally, latency, now_ns);
        case Proto::redis_streams: return parse_redis_streams(data, size, tally, latency, now_ns, cursor);
    }
    return 0;
}

}  // namespace bench
