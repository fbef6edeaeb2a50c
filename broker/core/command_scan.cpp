// command_scan.cpp — one pass over a command line with the JSON cursor: the
// object's punctuation, key dispatch among the six known keys and value
// capture; a send line laid out as clients write it is compared as fixed text.
#include "command_scan.hpp"

#include "json_cursor.hpp"

namespace memq::detail {
namespace {

class CommandScanner {
public:
    explicit CommandScanner(std::string_view line) : cursor_(line) {}

    bool scan(CommandRefFields& fields, CommandScratch& scratch) {
        cursor_.skip_whitespace();
        if (!cursor_.take('{')) return false;
        for (;;) {
            cursor_.skip_whitespace();
            RefField* field = nullptr;
            std::string* buffer = nullptr;
            if (!key(fields, scratch, field, buffer)) return false;  // also declines the empty object
            cursor_.skip_whitespace();
            if (!cursor_.take(':')) return false;
            cursor_.skip_whitespace();
            if (!value(*field, *buffer)) return false;
            cursor_.skip_whitespace();
            if (cursor_.take(',')) continue;
            if (cursor_.take('}')) break;
            return false;
        }
        cursor_.skip_whitespace();
        return cursor_.at_end();
    }

    // The send line exactly as ClientCore::send writes it (what clients
    // send): fixed text compared at once instead of token by token. Declines
    // anything else, for the general scan to read from the start.
    bool canonical_send(CommandRefFields& fields, CommandScratch& scratch) {
        if (!cursor_.take_literal(R"({"command": "send", "topic": )")) return false;
        fields.command.kind = RefField::Kind::string;
        fields.command.text = "send";
        if (!string(fields.topic, scratch.topic)) return false;
        if (!cursor_.take_literal(R"(, "msg": )")) return false;
        if (!string(fields.msg, scratch.msg)) return false;
        if (cursor_.take_literal(R"(, "delivery": "all")")) {
            fields.delivery.text = "all";
        } else if (cursor_.take_literal(R"(, "delivery": "one")")) {
            fields.delivery.text = "one";
        } else {
            return false;
        }
        fields.delivery.kind = RefField::Kind::string;
        if (cursor_.take_literal(R"(, "cache": true)")) {
            fields.cache.kind = RefField::Kind::boolean;
            fields.cache.boolean = true;
        } else if (cursor_.take_literal(R"(, "cache": false)")) {
            fields.cache.kind = RefField::Kind::boolean;
            fields.cache.boolean = false;
        }
        return cursor_.take('}') && cursor_.at_end();
    }

private:
    // A key among the six, written as plain ASCII; anything else (another
    // key, or one of these written with an escape) declines. The name is
    // matched with its closing quote, so a match is the whole key.
    bool key(CommandRefFields& fields, CommandScratch& scratch, RefField*& field, std::string*& buffer) {
        if (!cursor_.take('"')) return false;
        buffer = &scratch.other;
        // Tested in the order a send line has them; an if chain, not a jump
        // table (an indirect branch that varies from key to key).
        if (cursor_.take_literal("command\"")) {
            field = &fields.command, buffer = &scratch.command;
        } else if (cursor_.take_literal("topic\"")) {
            field = &fields.topic, buffer = &scratch.topic;
        } else if (cursor_.take_literal("msg\"")) {
            field = &fields.msg, buffer = &scratch.msg;
        } else if (cursor_.take_literal("delivery\"")) {
            field = &fields.delivery, buffer = &scratch.delivery;
        } else if (cursor_.take_literal("cache\"")) {
            field = &fields.cache;
        } else if (cursor_.take_literal("last_seen\"")) {
            field = &fields.last_seen;
        } else {
            return false;
        }
        return true;
    }

    bool value(RefField& field, std::string& buffer) {
        const char c = cursor_.peek();
        if (c == '"') return string(field, buffer);
        if (c == 't' || c == 'f') {
            if (!cursor_.read_boolean(field.boolean)) return false;
            field.kind = RefField::Kind::boolean;
            return true;
        }
        if (!cursor_.read_integer(field.integer)) return false;
        field.kind = RefField::Kind::integer;
        return true;
    }

    bool string(RefField& field, std::string& buffer) {
        JsonString read;
        if (!cursor_.read_string(read, buffer)) return false;
        field.kind = RefField::Kind::string;
        field.text = read.text;
        field.json = read.json;
        return true;
    }

    JsonCursor cursor_;
};

}  // namespace

bool scan_command(std::string_view line, CommandRefFields& fields, CommandScratch& scratch) {
    // Only the kinds: nothing reads a field's other members while it is absent.
    const auto reset = [&fields] {
        for (RefField* field :
             {&fields.command, &fields.topic, &fields.msg, &fields.delivery, &fields.last_seen, &fields.cache}) {
            field->kind = RefField::Kind::absent;
        }
    };
    reset();
    if (CommandScanner(line).canonical_send(fields, scratch)) return true;
    reset();
    return CommandScanner(line).scan(fields, scratch);
}

}  // namespace memq::detail
