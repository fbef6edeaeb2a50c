// wire.cpp — encoders and incremental stream parsers for memq, NATS and Redis
// pub/sub, written for speed: memchr to frame, no copies, no allocation.
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

std::size_t parse_nats(const char* data, std::size_t size, Tally& tally, Histogram* latency, std::uint64_t now_ns) {
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
            ++tally.messages;
            if (payload_size > 0 && *payload == kStampMark) record_stamp(payload, payload + payload_size, latency, now_ns);
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

std::string resp_bulk(std::string_view text) {
    std::string out = "$";
    out.append(std::to_string(text.size()));
    out.append("\r\n");
    out.append(text);
    out.append("\r\n");
    return out;
}

}  // namespace

std::optional<Proto> parse_proto(std::string_view name) {
    if (name == "memq") return Proto::memq;
    if (name == "nats") return Proto::nats;
    if (name == "redis") return Proto::redis;
    return std::nullopt;
}

std::string_view proto_name(Proto proto) {
    switch (proto) {
        case Proto::memq: return "memq";
        case Proto::nats: return "nats";
        case Proto::redis: return "redis";
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
            out = "PUB ";
            out.append(topic);
            out.push_back(' ');
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
            out.push_back('$');
            out.append(std::to_string(payload.size()));
            out.append("\r\n");
            result.stamp_offset = out.size() + 1;
            out.append(payload);
            out.append("\r\n");
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

std::string_view pong(Proto proto) { return proto == Proto::nats ? "PONG\r\n" : ""; }

std::size_t parse_stream(Proto proto, const char* data, std::size_t size, Tally& tally, Histogram* latency,
                         std::uint64_t now_ns, IndexCheck* indices) {
    switch (proto) {
        case Proto::memq: return parse_memq(data, size, tally, latency, now_ns, indices);
        case Proto::nats: return parse_nats(data, size, tally, latency, now_ns);
        case Proto::redis: return parse_redis(data, size, tally, latency, now_ns);
    }
    return 0;
}

}  // namespace bench
