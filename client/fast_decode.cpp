// fast_decode.cpp — decodes a delivered message of the common shape with the
// shared JSON cursor (broker/wire/json_cursor.hpp): one pass over a flat
// object, the six keys a message has captured, any other key's scalar value
// read and dropped. Strings with escapes are decoded straight into the
// Message's own strings.
#include "fast_decode.hpp"

#include "json_cursor.hpp"

namespace memq::detail {
namespace {

// What one of the message's keys held, the last time it occurred.
struct Seen {
    enum class Kind : std::uint8_t { absent, string, integer, boolean, other };
    Kind kind = Kind::absent;
    JsonString string;
    std::int64_t integer = 0;
    bool boolean = false;
};

// One scalar value at the cursor into `seen` (a string decoded into `scratch`
// when it has escapes); null counts as `other`. False for anything else.
bool read_value(JsonCursor& cursor, Seen& seen, std::string& scratch) {
    switch (cursor.peek()) {
        case '"':
            seen.kind = Seen::Kind::string;
            return cursor.read_string(seen.string, scratch);
        case 't':
        case 'f':
            seen.kind = Seen::Kind::boolean;
            return cursor.read_boolean(seen.boolean);
        case 'n':
            seen.kind = Seen::Kind::other;
            return cursor.read_null();
        default:
            seen.kind = Seen::Kind::integer;
            return cursor.read_integer(seen.integer);
    }
}

// The string value into `into`, unless it is there already (decoded into it
// as its scratch buffer, because it had escapes).
void keep_string(const Seen& seen, std::string& into) {
    if (seen.string.text.data() != into.data() || seen.string.text.size() != into.size()) into.assign(seen.string.text);
}

}  // namespace

bool fast_decode_message(std::string_view line, Message& message) {
    JsonCursor cursor(line);
    Seen command, topic, msg, delivery, index, cache, other;
    std::string key_scratch, command_scratch, delivery_scratch, other_scratch;
    cursor.skip_whitespace();
    if (!cursor.take('{')) return false;
    for (;;) {
        cursor.skip_whitespace();
        JsonString key;
        if (!cursor.read_string(key, key_scratch)) return false;  // also declines the empty object
        Seen* seen = &other;
        std::string* scratch = &other_scratch;
        if (key.text == "command") {
            seen = &command, scratch = &command_scratch;
        } else if (key.text == "topic") {
            seen = &topic, scratch = &message.topic;
        } else if (key.text == "msg") {
            seen = &msg, scratch = &message.msg;
        } else if (key.text == "delivery") {
            seen = &delivery, scratch = &delivery_scratch;
        } else if (key.text == "index") {
            seen = &index;
        } else if (key.text == "cache") {
            seen = &cache;
        }
        cursor.skip_whitespace();
        if (!cursor.take(':')) return false;
        cursor.skip_whitespace();
        if (!read_value(cursor, *seen, *scratch)) return false;
        cursor.skip_whitespace();
        if (cursor.take(',')) continue;
        if (cursor.take('}')) break;
        return false;
    }
    cursor.skip_whitespace();
    if (!cursor.at_end()) return false;

    using Kind = Seen::Kind;
    if (command.kind != Kind::string || command.string.text != "send" || topic.kind != Kind::string ||
        msg.kind != Kind::string || delivery.kind != Kind::string || index.kind != Kind::integer) {
        return false;
    }
    if (delivery.string.text == "all") {
        message.delivery = Delivery::all;
    } else if (delivery.string.text == "one") {
        message.delivery = Delivery::one;
    } else {
        return false;
    }
    if (cache.kind == Kind::boolean) {
        message.cache = cache.boolean;
    } else if (cache.kind == Kind::absent) {
        message.cache.reset();
    } else {
        return false;
    }
    keep_string(topic, message.topic);
    keep_string(msg, message.msg);
    message.index = index.integer;
    return true;
}

}  // namespace memq::detail
