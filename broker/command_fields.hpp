// command_fields.hpp — what a reader found in one command object, before the
// templates are checked (internal to memq_protocol).
//
// Rules: both readers of a line (the fast scanner and the nlohmann SAX path)
// fill this same struct with the same meaning, so the template check that
// follows (protocol.cpp) cannot tell which one read the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace memq::detail {

// What one top-level key of the command object held (the last occurrence wins).
struct Field {
    enum class Kind : std::uint8_t { absent, string, integer, boolean, other };
    Kind kind = Kind::absent;
    std::string text;
    std::int64_t integer = 0;
    bool boolean = false;

    bool is(Kind k) const { return kind == k; }
};

struct CommandFields {
    Field command, topic, msg, delivery, last_seen, cache;
    bool top_level_is_object = false;
    bool unknown_key = false;

    // The field for a top-level key, or nullptr for a key no template has.
    Field* field_named(std::string_view name) {
        if (name == "command") return &command;
        if (name == "topic") return &topic;
        if (name == "msg") return &msg;
        if (name == "delivery") return &delivery;
        if (name == "last_seen") return &last_seen;
        if (name == "cache") return &cache;
        return nullptr;
    }
};

}  // namespace memq::detail
