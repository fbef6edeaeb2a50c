// client_core.cpp — encoding, reply matching and message decoding for ClientCore.
//
// Encoding writes straight into the one output buffer (no temporary string
// per command). Decoding fast-paths the exact ack line the broker sends and
// messages of the usual shape (fast_decode.hpp), and falls back to
// nlohmann/json for everything else.
#include "client_core.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "fast_decode.hpp"

namespace memq {
namespace {

constexpr std::string_view kAckLine = R"({"success": true})";
constexpr std::string_view kHelloLine = "{\"command\": \"hello\"}\n";
// No line shorter than this is a message: the least a message can say,
// {"command":"send","topic":"","msg":"","delivery":"all","index":0}, is 65
// bytes (escapes only make it longer), and its '\n' one more.
constexpr std::size_t kShortestMessageLine = 64;

void append_int(std::string& out, std::int64_t value) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

void append_bool(std::string& out, bool value) { out.append(value ? "true" : "false"); }

std::string_view delivery_text(Delivery delivery) { return delivery == Delivery::one ? "one" : "all"; }

// Fills `message` from a parsed object whose "command" is "send"; returns
// what is wrong with it, or an empty string when it is a proper message.
std::string decode_message(const nlohmann::json& object, Message& message) {
    const auto topic = object.find("topic");
    if (topic == object.end() || !topic->is_string()) return "message without a string \"topic\"";
    const auto msg = object.find("msg");
    if (msg == object.end() || !msg->is_string()) return "message without a string \"msg\"";
    const auto delivery = object.find("delivery");
    if (delivery == object.end() || !delivery->is_string()) return "message without a string \"delivery\"";
    const auto& delivery_name = delivery->get_ref<const std::string&>();
    if (delivery_name == "all") {
        message.delivery = Delivery::all;
    } else if (delivery_name == "one") {
        message.delivery = Delivery::one;
    } else {
        return "message with an unknown \"delivery\"";
    }
    const auto index = object.find("index");
    if (index == object.end() || !index->is_number_integer()) return "message without an integer \"index\"";
    if (index->is_number_unsigned() &&
        index->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return "message with an \"index\" past 64 bits";
    }
    message.index = index->get<std::int64_t>();
    const auto cache = object.find("cache");
    if (cache != object.end()) {
        if (!cache->is_boolean()) return "message with a non-boolean \"cache\"";
        message.cache = cache->get<bool>();
    }
    message.topic = topic->get<std::string>();
    message.msg = msg->get<std::string>();
    return {};
}

// An index as a JSON integer within signed 64 bits.
bool read_index(const nlohmann::json& value, std::int64_t& out) {
    if (!value.is_number_integer()) return false;
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return false;
    }
    out = value.get<std::int64_t>();
    return true;
}

}  // namespace

ClientCore::ClientCore(ClientCoreOptions options) : options_(options), reader_(options.line_bytes_max) {
    options_.max_inbox_messages = std::max<std::size_t>(options_.max_inbox_messages, 1);
}

RequestId ClientCore::push_pending(RequestKind kind, std::string_view topic) {
    const RequestId id = next_id_++;
    pending_.push_back(Pending{id, kind, std::string(topic)});
    return id;
}

void ClientCore::encode_subscribe(std::string_view topic, std::optional<std::int64_t> last_seen,
                                  std::optional<bool> cache) {
    output_.append(R"({"command": "subscribe", "topic": )");
    append_json_string(output_, topic);
    if (last_seen) {
        output_.append(R"(, "last_seen": )");
        append_int(output_, *last_seen);
    }
    if (cache) {
        output_.append(R"(, "cache": )");
        append_bool(output_, *cache);
    }
    output_.append("}\n");
}

bool ClientCore::asks_for_holes() const {
    return hello_connection_ == connection_ + 1 && (hello_pending_ || incarnation_.has_value());
}

void ClientCore::request_holes(std::string_view topic, std::int64_t after) {
    output_.append(R"({"command": "holes", "topic": )");
    append_json_string(output_, topic);
    output_.append(R"(, "after": )");
    append_int(output_, after);
    output_.append("}\n");
    push_pending(RequestKind::holes, topic);
}

RequestId ClientCore::subscribe(std::string_view topic, std::optional<std::int64_t> last_seen,
                                std::optional<bool> cache) {
    const bool asks_holes = last_seen && *last_seen >= 0 && asks_for_holes();
    if (asks_holes) request_holes(topic, *last_seen);
    encode_subscribe(topic, last_seen, cache);
    auto [entry, inserted] = subscriptions_.try_emplace(std::string(topic));
    Subscription& subscription = entry->second;
    subscription.cache = cache;
    subscription.holes.clear();  // a holes reply for this subscribe brings them
    subscription.phase = Phase::live;  // this subscribe says where it stands: nothing to resume or check
    if (asks_holes) {
        // Holes are kept only while the cache holds a message below them: the
        // first message after last_seen is checked too, or a pruned one would pass unseen.
        subscription.phase = Phase::check_gap;
        subscription.continues_after = last_seen;
    }
    subscription.connection = connection_;
    // An explicit last_seen says where this subscriber stands; without one a
    // re-subscribe keeps what it knew (a fresh one knows nothing yet).
    if (last_seen && *last_seen >= 0) {
        subscription.last_index = last_seen;
    } else if (inserted || last_seen) {
        subscription.last_index.reset();
    }
    return push_pending(RequestKind::subscribe, topic);
}

RequestId ClientCore::unsubscribe(std::string_view topic) {
    output_.append(R"({"command": "unsubscribe", "topic": )");
    append_json_string(output_, topic);
    output_.append("}\n");
    if (const auto found = subscriptions_.find(std::string(topic)); found != subscriptions_.end()) {
        subscriptions_.erase(found);
    }
    return push_pending(RequestKind::unsubscribe);
}

RequestId ClientCore::send(std::string_view topic, std::string_view msg, Delivery delivery,
                           std::optional<bool> cache) {
    output_.append(R"({"command": "send", "topic": )");
    append_json_string(output_, topic);
    output_.append(R"(, "msg": )");
    append_json_string(output_, msg);
    output_.append(R"(, "delivery": ")");
    output_.append(delivery_text(delivery));
    output_.push_back('"');
    if (cache) {
        output_.append(R"(, "cache": )");
        append_bool(output_, *cache);
    }
    output_.append("}\n");
    return push_pending(RequestKind::send);
}

std::optional<RequestId> ClientCore::send_raw(std::string_view bytes, bool expect_reply) {
    output_.append(bytes);
    if (!expect_reply) return std::nullopt;
    return push_pending(RequestKind::raw);
}

void ClientCore::take_output(std::string& into) {
    into.clear();
    into.swap(output_);
}

void ClientCore::receive(std::string_view bytes) {
    if (input_spent_) return;
    if (held_offset_ < held_.size()) {  // the inbox is full: behind what is held already
        held_.erase(0, held_offset_);
        held_offset_ = 0;
        held_.append(bytes);
        return;
    }
    const std::string_view rest = decode_while_room(bytes);
    held_.assign(rest.data(), rest.size());
    held_offset_ = 0;
}

void ClientCore::mark_delivered(std::size_t count) {
    undelivered_ -= std::min(count, undelivered_);
    if (held_offset_ == held_.size() || inbox_full()) return;
    // Decoded in place: the held bytes are not copied per message delivered.
    const std::string_view held = std::string_view(held_).substr(held_offset_);
    const std::string_view rest = decode_while_room(held);
    held_offset_ = held_.size() - rest.size();
    if (held_offset_ == held_.size()) {
        held_.clear();
        held_offset_ = 0;
    }
}

// Decodes `bytes` line by line until the inbox is full; returns what is left.
std::string_view ClientCore::decode_while_room(std::string_view bytes) {
    const auto feed = [this](std::string_view part) {
        const auto status = reader_.feed(part, [this](std::string_view line) {
            handle_line(line);
            return true;
        });
        if (status == LineReader::Status::too_long) {
            input_spent_ = true;
            protocol_error("incoming line longer than " + std::to_string(options_.line_bytes_max) + " bytes", {},
                           false);
        }
    };
    // The usual case, in one pass: `bytes` cannot hold enough messages to
    // fill the inbox (one may end in them, begun before; every other one
    // lies wholly inside, at least kShortestMessageLine bytes).
    const std::size_t room = inbox_full() ? 0 : options_.max_inbox_messages - undelivered_;
    if (room > 1 + bytes.size() / kShortestMessageLine) {
        feed(bytes);
        return {};
    }
    while (!bytes.empty() && !inbox_full() && !input_spent_) {
        const std::size_t newline = bytes.find('\n');
        const std::size_t line_end = newline == std::string_view::npos ? bytes.size() : newline + 1;
        feed(bytes.substr(0, line_end));
        bytes.remove_prefix(line_end);
    }
    return input_spent_ ? std::string_view() : bytes;
}

std::optional<Event> ClientCore::poll_event() {
    if (events_.empty()) return std::nullopt;
    Event event = std::move(events_.front());
    events_.pop_front();
    return event;
}

void ClientCore::handle_line(std::string_view line) {
    line = trim_line(line);
    if (line.empty()) return;  // the broker never sends one; like the broker, skip it
    if (line == kAckLine) {    // the fast path: almost every line of a publisher
        if (pending_.empty()) {
            protocol_error("reply with no pending request", line, false);
            return;
        }
        acknowledge(line, /*plain=*/true);
        return;
    }
    if (Message message; detail::fast_decode_message(line, message)) {  // the fast path of a subscriber
        message.raw = std::string(line);
        handle_message(std::move(message));
        return;
    }
    handle_reply_line(line);  // the complete path: replies, and anything unusual
}

void ClientCore::handle_reply_line(std::string_view line) {
    const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
        protocol_error("line is not JSON", line, true);
        return;
    }
    if (!parsed.is_object()) {
        protocol_error("line is not a JSON object", line, true);
        return;
    }
    if (const auto command = parsed.find("command"); command != parsed.end()) {
        if (command->is_string() && command->get_ref<const std::string&>() == "send") {
            Message message;
            std::string problem = decode_message(parsed, message);
            if (!problem.empty()) {
                protocol_error(std::move(problem), line, false);
                return;
            }
            message.raw = std::string(line);
            handle_message(std::move(message));
            return;
        }
    }
    if (pending_.empty()) {
        protocol_error("reply with no pending request", line, false);
        return;
    }
    const auto success = parsed.find("success");
    if (success == parsed.end() || !success->is_boolean()) {
        protocol_error("reply without a boolean \"success\"", line, true);
        return;
    }
    if (success->get<bool>()) {
        if (pending_.front().kind == RequestKind::holes) {
            const Pending request = std::move(pending_.front());
            pending_.pop_front();
            std::vector<Hole> holes;
            const auto named = parsed.find("holes");
            if (named == parsed.end() || !named->is_array()) {
                protocol_error("holes reply without a \"holes\" array", line, false);
                return;
            }
            for (const nlohmann::json& hole : *named) {
                Hole read;
                const bool pair = hole.is_array() && hole.size() == 2 && read_index(hole[0], read.first) &&
                                  read_index(hole[1], read.last);
                if (!pair || read.first > read.last || (!holes.empty() && read.first <= holes.back().last)) {
                    protocol_error("holes reply with a hole that is not [first, last], ascending", line, false);
                    return;
                }
                holes.push_back(read);
            }
            learn_holes(request.topic, std::move(holes));
            return;
        }
        if (pending_.front().kind == RequestKind::hello) {
            pending_.pop_front();
            const auto incarnation = parsed.find("incarnation");
            const bool has_one = incarnation != parsed.end() && incarnation->is_string();
            learn_identity(has_one ? std::optional<std::string>(incarnation->get<std::string>()) : std::nullopt);
            return;
        }
        acknowledge(line, /*plain=*/false);
        return;
    }
    const auto reason = parsed.find("reason");
    if (reason == parsed.end() || !reason->is_string()) {
        protocol_error("failure reply without a string \"reason\"", line, true);
        return;
    }
    const Pending oldest = std::move(pending_.front());
    pending_.pop_front();
    if (oldest.kind == RequestKind::hello) {  // an aiomemq server: "Malformed json message"
        learn_identity(std::nullopt);
        return;
    }
    if (oldest.kind == RequestKind::holes) return;  // a server without the extension: no holes known
    if (oldest.kind == RequestKind::subscribe || oldest.kind == RequestKind::resubscribe) {
        // Refused: there is nothing to resume, unless a later subscribe to the
        // same topic is still waiting for its own answer.
        bool another_pending = false;
        for (const Pending& pending : pending_) {
            const bool subscribes =
                pending.kind == RequestKind::subscribe || pending.kind == RequestKind::resubscribe;
            if (subscribes && pending.topic == oldest.topic) another_pending = true;
        }
        if (!another_pending) subscriptions_.erase(oldest.topic);
    }
    events_.emplace_back(Failure{oldest.id, oldest.kind, reason->get<std::string>(), std::string(line)});
}

void ClientCore::acknowledge(std::string_view line, bool plain) {
    const Pending oldest = std::move(pending_.front());
    pending_.pop_front();
    if (oldest.kind == RequestKind::hello) {  // {"success": true} and nothing else: no identity given
        learn_identity(std::nullopt);
        return;
    }
    if (oldest.kind == RequestKind::holes) {  // {"success": true} and nothing else: no holes named
        protocol_error("holes reply without a \"holes\" array", line, false);
        return;
    }
    if (oldest.kind == RequestKind::resubscribe) {
        // The fresh subscribe after a Reset: what follows is the new broker's cache.
        const auto found = subscriptions_.find(oldest.topic);
        if (found != subscriptions_.end() && found->second.phase == Phase::dropping &&
            found->second.fresh_subscribe == oldest.id) {
            found->second.phase = Phase::check_gap;
            found->second.continues_after = -1;
        }
    }
    events_.emplace_back(Ack{oldest.id, oldest.kind, plain ? std::string() : std::string(line)});
}

void ClientCore::report_reset(const std::string& topic, Subscription& subscription) {
    events_.emplace_back(Reset{topic, *subscription.last_index});
    subscription.last_index.reset();
}

void ClientCore::learn_identity(std::optional<std::string> incarnation) {
    hello_pending_ = false;
    const bool changed = identity_known_ && incarnation != incarnation_;
    identity_known_ = true;
    incarnation_ = std::move(incarnation);
    for (auto& [topic, subscription] : subscriptions_) {
        if (subscription.connection == connection_) continue;  // subscribed on this connection already
        subscription.connection = connection_;
        subscription.holes.clear();
        if (!changed) {
            // The same broker life, as far as can be told: continue where it stopped.
            subscription.continues_after = subscription.last_index;
            subscription.phase = !incarnation_ && subscription.last_index ? Phase::check_reset : Phase::check_gap;
            if (incarnation_ && subscription.last_index && *subscription.last_index >= 0) {
                request_holes(topic, *subscription.last_index);
            }
        } else if (subscription.last_index) {
            // A new broker life: from the start of its cache, which has no gap before index 0.
            report_reset(topic, subscription);
            subscription.continues_after = -1;
            subscription.phase = Phase::check_gap;
        } else {
            subscription.phase = Phase::live;  // nothing was received: the whole cache is owed, as at first
        }
        encode_subscribe(topic, subscription.last_index, subscription.cache);
        push_pending(RequestKind::resubscribe, topic);
    }
}

void ClientCore::learn_holes(const std::string& topic, std::vector<Hole> holes) {
    const auto found = subscriptions_.find(topic);
    if (found == subscriptions_.end()) return;  // unsubscribed meanwhile
    found->second.holes = std::move(holes);
}

void ClientCore::pass_holes(const std::string& topic, Subscription& subscription, std::int64_t index) {
    std::size_t passed = 0;
    for (const Hole& hole : subscription.holes) {
        if (hole.first >= index) break;  // ascending: the rest are above too
        ++passed;
        const std::int64_t last = std::min(hole.last, index - 1);
        if (subscription.last_index && *subscription.last_index >= last) continue;  // received past it (no overflow below)
        const std::int64_t from =
            subscription.last_index ? std::max(hole.first, *subscription.last_index + 1) : hole.first;
        if (from <= last) events_.emplace_back(Gap{topic, from, last + 1});
    }
    subscription.holes.erase(subscription.holes.begin(), subscription.holes.begin() + static_cast<std::ptrdiff_t>(passed));
}

void ClientCore::handle_message(Message message) {
    const auto found = subscriptions_.find(message.topic);
    if (found == subscriptions_.end()) {  // not (or no longer) tracked: pass it on as is
        events_.emplace_back(std::move(message));
        ++undelivered_;
        return;
    }
    Subscription& subscription = found->second;
    if (subscription.phase == Phase::dropping) return;  // the new broker's cache brings it again
    if (subscription.phase == Phase::check_reset && message.index <= *subscription.last_index) {
        // The broker without identity lost what this subscriber resumed from.
        report_reset(message.topic, subscription);
        subscription.phase = Phase::dropping;
        encode_subscribe(message.topic, std::nullopt, subscription.cache);
        subscription.fresh_subscribe = push_pending(RequestKind::resubscribe, message.topic);
        return;
    }
    if (options_.drop_duplicates && subscription.last_index && message.index <= *subscription.last_index) {
        return;
    }
    if (subscription.phase == Phase::check_gap || subscription.phase == Phase::check_reset) {
        subscription.phase = Phase::live;
        // A gap is a first index past previous + 1 (written so that previous = INT64_MAX cannot overflow).
        const std::optional<std::int64_t> previous = subscription.continues_after;
        if (previous && message.index > *previous && message.index - 1 != *previous) {
            events_.emplace_back(Gap{message.topic, *previous + 1, message.index});
            // That gap covers every hole below this message: none is reported twice.
            while (!subscription.holes.empty() && subscription.holes.front().first < message.index) {
                subscription.holes.erase(subscription.holes.begin());
            }
        }
    }
    if (!subscription.holes.empty()) pass_holes(message.topic, subscription, message.index);
    if (!subscription.last_index || message.index > *subscription.last_index) subscription.last_index = message.index;
    events_.emplace_back(std::move(message));
    ++undelivered_;
}

void ClientCore::protocol_error(std::string description, std::string_view raw, bool takes_reply_slot) {
    ProtocolError error{std::move(description), std::string(raw), std::nullopt, std::nullopt};
    bool answers_hello = false;
    if (takes_reply_slot && !pending_.empty()) {
        error.request = pending_.front().id;
        error.kind = pending_.front().kind;
        answers_hello = pending_.front().kind == RequestKind::hello;
        pending_.pop_front();
    }
    events_.emplace_back(std::move(error));
    if (answers_hello) learn_identity(std::nullopt);  // no identity to be had: resume as with aiomemq
}

std::deque<std::pair<RequestId, RequestKind>> ClientCore::reset() {
    std::deque<std::pair<RequestId, RequestKind>> lost;
    for (const Pending& pending : pending_) lost.emplace_back(pending.id, pending.kind);
    pending_.clear();
    output_.clear();
    std::string().swap(held_);
    held_offset_ = 0;
    reader_ = LineReader(options_.line_bytes_max);
    input_spent_ = false;
    hello_pending_ = false;
    ++connection_;
    for (auto& [topic, subscription] : subscriptions_) {
        // The fresh subscribe that would have ended the dropping is lost with
        // the connection; a resume subscribes again without last_seen anyway.
        if (subscription.phase == Phase::dropping) subscription.phase = Phase::live;
    }
    return lost;
}

RequestId ClientCore::start_session() {
    // In front of whatever was queued since the reset: nothing of it is written yet.
    output_.insert(0, kHelloLine);
    hello_connection_ = connection_ + 1;
    const RequestId id = next_id_++;
    pending_.push_front(Pending{id, RequestKind::hello, {}});
    hello_pending_ = true;
    return id;
}

std::size_t ClientCore::resubscribe_all() {
    for (auto& [topic, subscription] : subscriptions_) {
        encode_subscribe(topic, subscription.last_index, subscription.cache);
        subscription.phase = Phase::check_gap;
        subscription.continues_after = subscription.last_index;
        subscription.connection = connection_;
        push_pending(RequestKind::resubscribe, topic);
    }
    return subscriptions_.size();
}

bool ClientCore::is_subscribed(std::string_view topic) const {
    return subscriptions_.find(std::string(topic)) != subscriptions_.end();
}

std::optional<std::int64_t> ClientCore::last_index(std::string_view topic) const {
    const auto found = subscriptions_.find(std::string(topic));
    if (found == subscriptions_.end()) return std::nullopt;
    return found->second.last_index;
}

}  // namespace memq
