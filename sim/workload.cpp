// workload.cpp — the request mix and the pools of hard strings (see workload.hpp).
#include "workload.hpp"

#include <cctype>

#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace memq::sim {
namespace {

using Kind = LineIntent::Kind;

LineIntent error_intent(LineError error) {
    LineIntent intent;
    intent.kind = Kind::error;
    intent.error = error;
    return intent;
}

// `text` as a JSON string literal; `ascii` spells non-ASCII as \u escapes.
std::string json_string(std::string_view text, bool ascii) {
    return nlohmann::json(std::string(text)).dump(-1, ' ', ascii);
}

// A JSON string literal with the hex digits of its \u escapes in upper case.
std::string upper_case_hex(std::string literal) {
    for (std::size_t i = 0; i + 1 < literal.size(); ++i) {
        if (literal[i] != '\\') continue;
        if (literal[++i] != 'u') continue;  // another escape: its letter is skipped with it
        for (std::size_t digit = i + 1; digit <= i + 4 && digit < literal.size(); ++digit) {
            literal[digit] = static_cast<char>(std::toupper(static_cast<unsigned char>(literal[digit])));
        }
    }
    return literal;
}

}  // namespace

Workload::Workload(const SwarmOptions& options, std::uint64_t seed) : options_(options) {
    Prng prng(seed);
    build_topics(prng);
    build_messages(prng);
    build_raw_lines();
    build_limit_lines(prng);
    std::uint32_t rough = 0, clean = 0;
    for (std::size_t i = 0; i < kOpKinds; ++i) {
        const auto kind = static_cast<OpKind>(i);
        const bool rough_only =
            kind == OpKind::garbage || kind == OpKind::blank || kind == OpKind::quit || kind == OpKind::too_long;
        std::uint32_t weight = options.weights[i];
        if (kind == OpKind::too_long && limit_lines_.empty()) weight = 0;
        rough += weight;
        clean += rough_only ? 0 : weight;
        cumulative_rough_.push_back(rough);
        cumulative_clean_.push_back(clean);
    }
}

void Workload::build_topics(Prng& prng) {
    const std::vector<std::string> odd = {
        "",
        "a b",
        "quo\"te",
        "back\\slash",
        "\xc3\xbcn\xc3\xaf"
        "c\xc3\xb6"
        "d\xc3\xa9",
        "\xe4\xb8\xad\xe6\x96\x87",
        "\xf0\x9f\x8e\x89",
        "tab\there",
        "new\nline",
        std::string("nul\0byte", 8),
        "\xe2\x80\xa8",
        "{\"json\": 1}",
        "quit",
        // Longer names, for the topic_bytes_max the swarm draws (1 to 40 now and then).
        "sensor/42/tmp",                 // 13 bytes
        "orders/eu-west/2026/december",  // 28
        "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
        "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc",  // 40, 20 characters
    };
    std::set<std::string> seen;
    for (std::uint32_t i = 0; i < options_.topics; ++i) {
        std::string name = std::string("t").append(std::to_string(i));
        if (prng.below(3) == 0) name = odd[prng.below(odd.size())];
        if (!seen.insert(name).second) name = std::string("t").append(std::to_string(i)).append("'");
        seen.insert(name);
        topics_.push_back(std::move(name));
    }
    for (std::size_t i = 0; i < topics_.size(); ++i) topic_index_[topics_[i]] = i;
}

void Workload::build_messages(Prng& prng) {
    messages_ = {
        "",
        "x",
        "hello",
        "42",
        "with \"quotes\"",
        "back\\slash",
        "line\nbreak\r\n",
        "\t\b\f\x01\x1f",
        "\xc3\xbcn\xc3\xaf"
        "c\xc3\xb6"
        "d\xc3\xa9 \xe2\x9c\x93",
        "\xe4\xb8\xad\xe6\x96\x87",
        "\xf0\x9f\x8e\x89\xf0\x9f\x9a\x80",
        "\xe2\x80\xa8",
        std::string("nul\0in", 6),
        "{\"command\": \"send\"}",
        "a longer message that goes on for a while, though not for long",
    };
    // Long messages: patterned text, now and then a character that needs escaping.
    const std::size_t count = options_.long_message_max == 0 ? 0 : 4;
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t size = 16 + prng.below(options_.long_message_max);
        std::string text;
        text.reserve(size);
        for (std::size_t j = 0; j < size; ++j) {
            const std::uint64_t r = prng.below(64);
            text.push_back(r == 0 ? '"' : r == 1 ? '\\' : r == 2 ? '\n' : static_cast<char>('a' + r % 26));
        }
        long_messages_.push_back(std::move(text));
    }
    raw_messages_ = {"dup", "", "esc\xc3\xa9\xf0\x9f\x8e\x89", "sl/ash \b\f\n\r\t \"q\" \\ \xc3\xa9\x1f" "A", "a/b"};
}

void Workload::build_raw_lines() {
    // Hand-written valid commands: what each must mean is spelled out here.
    for (std::size_t t = 0; t < topics_.size() && t < 8; ++t) {
        const std::string_view topic = topics_[t];
        const std::string plain = json_string(topic, false);
        const std::string ascii = json_string(topic, true);
        const auto add = [&](std::string line, Kind kind, auto&& shape) {
            RawLine raw;
            raw.bytes = std::move(line);
            raw.intent.kind = kind;
            raw.intent.topic = topic;
            shape(raw.intent);
            raw_commands_.push_back(std::move(raw));
        };
        add("{\"topic\": " + plain + ", \"command\": \"subscribe\"}\n", Kind::subscribe, [](LineIntent&) {});
        add("  {\"command\":\"unsubscribe\",\"topic\":" + ascii + "}  \r\n", Kind::unsubscribe, [](LineIntent&) {});
        add("{\"command\": \"send\", \"topic\": \"decoy\", \"topic\": " + plain +
                ", \"msg\": \"dup\", \"delivery\": \"one\", \"cache\": false}\n",
            Kind::send, [&](LineIntent& intent) {
                intent.msg = raw_messages_[0];
                intent.delivery = Delivery::one;
                intent.cache = false;
            });
        add("{\"command\": \"subscribe\", \"topic\": " + ascii + ", \"last_seen\": -1, \"cache\": true}\r\n",
            Kind::subscribe, [](LineIntent& intent) { intent.cache = true; });
        add("{\"delivery\": \"all\", \"msg\": \"\", \"topic\": " + plain + ", \"command\": \"send\"}\n", Kind::send,
            [&](LineIntent& intent) { intent.msg = raw_messages_[1]; });
        add("{\"command\": \"subscribe\", \"topic\": " + plain + ", \"last_seen\": 9223372036854775807}\n",
            Kind::subscribe, [](LineIntent& intent) { intent.last_seen = std::numeric_limits<std::int64_t>::max(); });
        add("{\"command\": \"subscribe\", \"topic\": " + plain +
                ", \"last_seen\": -9223372036854775808, \"cache\": false}\n",
            Kind::subscribe, [](LineIntent& intent) {
                intent.last_seen = std::numeric_limits<std::int64_t>::min();
                intent.cache = false;
            });
        // Every escape JSON has, spelled the way no encoder here writes it
        // (\/, upper-case hex, \u for a printable character): the frame must
        // be re-encoded from the decoded text, not copied from the line.
        add("{\"command\": \"subscribe\", \"topic\": " + upper_case_hex(ascii) + "}\n", Kind::subscribe,
            [](LineIntent&) {});
        add("{\"command\": \"send\", \"topic\": " + upper_case_hex(ascii) +
                ", \"msg\": \"sl\\/ash \\b\\f\\n\\r\\t \\\"q\\\" \\\\ \\u00E9\\u001F\\u0041\", \"delivery\": \"all\"}\n",
            Kind::send, [&](LineIntent& intent) { intent.msg = raw_messages_[3]; });
        add("{\"command\": \"send\", \"topic\": " + plain + ", \"msg\": \"a\\/b\", \"delivery\": \"all\"}\n", Kind::send,
            [&](LineIntent& intent) { intent.msg = raw_messages_[4]; });  // \/ the only escape
        add("\t{\"command\": \"send\", \"topic\": " + ascii +
                ", \"msg\": \"esc\\u00e9\\ud83c\\udf89\", \"delivery\": \"all\", \"cache\": true}\n",
            Kind::send, [&](LineIntent& intent) {
                intent.msg = raw_messages_[2];
                intent.cache = true;
            });
    }

    // Lines that must be refused, each with the reason PROTOCOL.md gives it.
    const auto refuse = [&](std::string line, LineError error) {
        garbage_.push_back(RawLine{std::move(line) + "\n", error_intent(error), true});
    };
    refuse("\xff", LineError::bad_utf8);
    refuse("{\"command\": \"subscribe\", \"topic\": \"\xc0\xaf\"}", LineError::bad_utf8);  // overlong '/'
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"\xed\xa0\x80\", \"delivery\": \"all\"}",
           LineError::bad_utf8);                               // a surrogate
    refuse("\xf4\x90\x80\x80", LineError::bad_utf8);           // past U+10FFFF
    refuse("{\"topic\": \"\xe2\x82\"}", LineError::bad_utf8);  // truncated sequence
    refuse("\x80{}", LineError::bad_utf8);
    refuse("{\"command\": \"subscribe\", \"topic\": \"\xf5\x80\x80\x80\"}", LineError::bad_utf8);
    refuse("quit\xff", LineError::bad_utf8);
    refuse("{", LineError::bad_json);
    refuse("not json", LineError::bad_json);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\"} trailing", LineError::bad_json);
    refuse("{\"command\": \"subscribe\" \"topic\": \"t\"}", LineError::bad_json);
    refuse("NaN", LineError::bad_json);
    refuse("[1, 2", LineError::bad_json);
    refuse("{\"command\": 'subscribe', \"topic\": \"t\"}", LineError::bad_json);
    refuse("{\"last_seen\": Infinity}", LineError::bad_json);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\",}", LineError::bad_json);
    refuse("\"unterminated", LineError::bad_json);
    refuse("QUIT", LineError::bad_json);
    refuse("{\"msg\": \"\\x41\"}", LineError::bad_json);
    refuse("{\"topic\": \"a\tb\"}", LineError::bad_json);  // a raw control character inside a string
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\"}\r{}", LineError::bad_json);
    refuse("[]", LineError::malformed);
    refuse("42", LineError::malformed);
    refuse("\"subscribe\"", LineError::malformed);
    refuse("null", LineError::malformed);
    refuse("{}", LineError::malformed);
    refuse("{\"command\": \"subscribe\"}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": 5}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": true}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 2.0}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": \"2\"}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"last_seen\": 9223372036854775808}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"cache\": 1}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"extra\": 1}", LineError::malformed);
    refuse("{\"command\": \"unsubscribe\", \"topic\": \"t\", \"cache\": true}", LineError::malformed);
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"m\"}", LineError::malformed);
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"m\", \"delivery\": \"some\"}", LineError::malformed);
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": 1, \"delivery\": \"all\"}", LineError::malformed);
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"m\", \"delivery\": \"all\", \"last_seen\": 1}",
           LineError::malformed);
    refuse("{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"m\", \"delivery\": \"all\", \"cache\": null}",
           LineError::malformed);
    refuse("{\"command\": \"publish\", \"topic\": \"t\"}", LineError::malformed);
    refuse("{\"command\": 1, \"topic\": \"t\"}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": [\"t\"]}", LineError::malformed);
    refuse("{\"command\": \"subscribe\", \"topic\": \"t\", \"nested\": {\"a\": [1, 2]}}", LineError::malformed);
    refuse("{\"command\": \"SUBSCRIBE\", \"topic\": \"t\"}", LineError::malformed);

    for (const char* blank : {"\n", "   \n", "\r\n", "\t \f\v\r\n"}) {
        blanks_.push_back(RawLine{blank, LineIntent{}, false});
    }
    for (const char* quit : {"quit\n", "  quit\r\n"}) {
        LineIntent intent;
        intent.kind = Kind::quit;
        quits_.push_back(RawLine{quit, intent, false});
    }
}

void Workload::build_limit_lines(Prng& prng) {
    const std::size_t limit = options_.limits.line_bytes_max;
    if (limit > 64 * kKiB) return;  // too costly to send often; such runs skip the kind
    // Garbage past the limit.
    std::string line(limit + 1 + prng.below(64), 'x');
    line.push_back('\n');
    limit_lines_.push_back(RawLine{std::move(line), error_intent(LineError::bad_json), true});
    // A valid send of exactly line_bytes_max bytes (not counting '\n'), and
    // the same one byte longer: the first is a send, the second too long.
    const std::string prefix = "{\"command\": \"send\", \"topic\": \"" + std::string("pad") + "\", \"msg\": \"";
    const std::string suffix = "\", \"delivery\": \"all\"}";
    if (prefix.size() + suffix.size() + 1 > limit) return;
    const std::size_t pad = limit - prefix.size() - suffix.size();
    // The intents view these two strings, which never change after this.
    pad_messages_[0] = std::string(pad, 'p');
    pad_messages_[1] = std::string(pad + 1, 'p');
    for (std::size_t i = 0; i < 2; ++i) {
        RawLine raw;
        raw.bytes = prefix + pad_messages_[i] + suffix + "\n";
        raw.intent.kind = Kind::send;
        raw.intent.topic = kPadTopic;
        raw.intent.msg = pad_messages_[i];
        limit_lines_.push_back(std::move(raw));
    }
}

OpKind Workload::pick_kind(Prng& prng, bool rough) const {
    const std::vector<std::uint32_t>& cumulative = rough ? cumulative_rough_ : cumulative_clean_;
    const std::uint64_t roll = prng.below(cumulative.back());
    for (std::size_t i = 0; i < cumulative.size(); ++i) {
        if (roll < cumulative[i]) return static_cast<OpKind>(i);
    }
    return OpKind::send_all;
}

std::string_view Workload::pick_topic(Prng& prng) const { return topics_[prng.below(topics_.size())]; }

std::string_view Workload::pick_message(Prng& prng) const {
    if (!long_messages_.empty() && options_.long_message.hit(prng)) {
        return long_messages_[prng.below(long_messages_.size())];
    }
    // Mostly short and plain; the odd ones now and then.
    const std::uint64_t roll = prng.below(16);
    return messages_[roll < 8 ? 2 + roll % 2 : prng.below(messages_.size())];
}

LineIntent Workload::issue_raw(ClientCore& core, const RawLine& raw) const {
    LineIntent intent = raw.intent;
    intent.request_kind = RequestKind::raw;
    const std::optional<RequestId> id = core.send_raw(raw.bytes, raw.expect_reply);
    intent.request = id.value_or(0);
    intent.bytes = raw.bytes.size();
    return intent;
}

LineIntent Workload::issue(Prng& prng, ClientCore& core, bool rough, OpKind& kind) {
    kind = pick_kind(prng, rough);
    LineIntent intent;
    const std::size_t before = core.output_bytes();
    switch (kind) {
        case OpKind::subscribe: {
            intent.kind = Kind::subscribe;
            intent.request_kind = RequestKind::subscribe;
            intent.topic = pick_topic(prng);
            std::optional<std::int64_t> last_seen;
            if (options_.explicit_last_seen.hit(prng)) {
                switch (prng.below(8)) {
                    case 0: last_seen = std::numeric_limits<std::int64_t>::min(); break;
                    case 1: last_seen = std::numeric_limits<std::int64_t>::max(); break;
                    case 2: last_seen = -1; break;
                    default: last_seen = static_cast<std::int64_t>(prng.below(64)) - 2; break;
                }
            }
            if (options_.explicit_cache.hit(prng)) intent.cache = prng.below(2) == 0;
            intent.last_seen = last_seen.value_or(-1);
            intent.request = core.subscribe(intent.topic, last_seen, intent.cache);
            break;
        }
        case OpKind::unsubscribe:
            intent.kind = Kind::unsubscribe;
            intent.request_kind = RequestKind::unsubscribe;
            intent.topic = pick_topic(prng);
            intent.request = core.unsubscribe(intent.topic);
            break;
        case OpKind::send_all:
        case OpKind::send_one:
            intent.kind = Kind::send;
            intent.request_kind = RequestKind::send;
            intent.delivery = kind == OpKind::send_all ? Delivery::all : Delivery::one;
            intent.topic = pick_topic(prng);
            intent.msg = pick_message(prng);
            if (options_.explicit_cache.hit(prng)) intent.cache = prng.below(2) == 0;
            intent.request = core.send(intent.topic, intent.msg, intent.delivery, intent.cache);
            break;
        case OpKind::raw_command: return issue_raw(core, raw_commands_[prng.below(raw_commands_.size())]);
        case OpKind::garbage: return issue_raw(core, garbage_[prng.below(garbage_.size())]);
        case OpKind::blank: return issue_raw(core, blanks_[prng.below(blanks_.size())]);
        case OpKind::quit: return issue_raw(core, quits_[prng.below(quits_.size())]);
        case OpKind::too_long: return issue_raw(core, limit_lines_[prng.below(limit_lines_.size())]);
    }
    intent.bytes = core.output_bytes() - before;
    return intent;
}

void Workload::resubscribe_intents(std::string_view output, RequestId first_request,
                                   std::vector<LineIntent>& out) const {
    RequestId request = first_request;
    while (!output.empty()) {
        const std::size_t end = output.find('\n');
        if (end == std::string_view::npos) throw CheckFailure("simulator bug: resubscribe_all wrote half a line");
        const std::string_view line = output.substr(0, end);
        const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
        if (!object.is_object() || !object.contains("topic") || !object["topic"].is_string()) {
            throw CheckFailure("resubscribe_all wrote a line that is no subscribe: " + std::string(line));
        }
        const auto topic = topic_index_.find(object["topic"].get<std::string>());
        if (topic == topic_index_.end())
            throw CheckFailure("resubscribe_all named a topic never used: " + std::string(line));
        LineIntent intent;
        intent.topic = topics_[topic->second];
        if (object.value("command", "") == "holes") {  // a resume from a last index asks for holes first
            intent.kind = Kind::holes;
            intent.request_kind = RequestKind::holes;
            intent.last_seen = object["after"].get<std::int64_t>();
            intent.request = request++;
            intent.bytes = end + 1;
            out.push_back(intent);
            output.remove_prefix(end + 1);
            continue;
        }
        intent.kind = Kind::subscribe;
        intent.request_kind = RequestKind::resubscribe;
        if (object.contains("last_seen")) intent.last_seen = object["last_seen"].get<std::int64_t>();
        if (object.contains("cache")) intent.cache = object["cache"].get<bool>();
        intent.request = request++;
        intent.bytes = end + 1;
        out.push_back(intent);
        output.remove_prefix(end + 1);
    }
}

}  // namespace memq::sim
