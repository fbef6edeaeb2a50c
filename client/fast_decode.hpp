// fast_decode.hpp — the fast path for decoding a delivered message line.
//
// Rules: accepts only the common shape, a flat JSON object whose values are
// strings, integers, booleans (and null, for keys a message does not have),
// with "command": "send" and every field a message needs; anything else
// (nesting, floats, integers past int64, invalid UTF-8 or escapes) returns
// false without judging it, and the caller takes the complete,
// slower path, which has the last word. So this can make decoding faster but
// never different. Internal to the client library (not installed).
#pragma once

#include <string_view>

#include "client_core.hpp"

namespace memq::detail {

// Fills topic, msg, delivery, index and cache of `message` (not raw) and
// returns true when `line` (trimmed) is a message of the common shape.
bool fast_decode_message(std::string_view line, Message& message);

}  // namespace memq::detail
