// checker.cpp — drives the broker core and checks each of its outputs
// against the model (see checker.hpp).
#include "checker.hpp"

#include <algorithm>
#include <tuple>
#include <cstdio>
#include <utility>

namespace memq::sim {

std::string printable(std::string_view bytes, std::size_t max_bytes) {
    std::string out;
    const std::size_t shown = std::min(bytes.size(), max_bytes);
    for (std::size_t i = 0; i < shown; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c >= 0x7F) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (shown < bytes.size()) out += "...(" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

std::string describe(const Expected& expected) {
    switch (expected.kind) {
        case Expected::Kind::ack: return "ack of request #" + std::to_string(expected.request);
        case Expected::Kind::failure:
            return "failure \"" + std::string(protocol_reason(expected.error)) + "\" of request #" +
                   std::to_string(expected.request);
        case Expected::Kind::message:
            return "message index " + std::to_string(expected.message->index) + " on topic \"" +
                   printable(expected.message->topic, 40) + "\" (" + printable(expected.frame) + ")";
    }
    return "?";
}

Checker::Checker(const Limits& limits, std::uint64_t broker_seed, std::uint64_t incarnation,
                 const Durability& durability)
    : broker_(std::make_unique<Broker>(limits, broker_seed, incarnation, durability)),
      model_(limits, incarnation, durability) {
    broker_->log_one_choices(&one_choices_);
    if (durability.enabled) {  // a new data dir: nothing to recover
        if (broker_->finish_recovery()) fail("a new data dir does not recover");
        model_.request_snapshot();
    }
}

void Checker::restart(std::uint64_t broker_seed, std::uint64_t incarnation) {
    const Limits limits = model_.limits();
    const Durability durability = model_.durability();
    broker_ = std::make_unique<Broker>(limits, broker_seed, incarnation, durability);
    broker_->log_one_choices(&one_choices_);
    model_ = Model(limits, incarnation, durability);
    inputs_.clear();
    closes_.clear();
}

void Checker::fail(const std::string& what) const { throw CheckFailure(what); }

void Checker::connect(ConnId conn) {
    model_.connect(conn);
    inputs_[conn] = InputStream{};
    broker_->handle_connect(conn);
    settle();
}

void Checker::add_line(ConnId conn, const LineIntent& line) {
    const auto found = inputs_.find(conn);
    if (found == inputs_.end()) fail("simulator bug: a line for connection " + std::to_string(conn) + " not open");
    if (line.bytes == 0) fail("simulator bug: a line of 0 bytes");
    found->second.lines.push_back(line);
    found->second.unread += line.bytes;
}

std::size_t Checker::unread_input(ConnId conn) const {
    const auto found = inputs_.find(conn);
    return found == inputs_.end() ? 0 : found->second.unread;
}

void Checker::receive(ConnId conn, std::string_view bytes) {
    const auto found = inputs_.find(conn);
    if (found == inputs_.end()) fail("simulator bug: bytes for connection " + std::to_string(conn) + " not open");
    InputStream& in = found->second;
    if (bytes.size() > in.unread) fail("simulator bug: more bytes received than written");
    const std::size_t limit = model_.limits().line_bytes_max;
    while (!bytes.empty()) {
        // Walk the lines these bytes finish, applying each to the model; stop
        // early right after a "one" delivery the broker has to choose for.
        std::size_t take = 0;
        while (take < bytes.size()) {
            const LineIntent& line = in.lines.front();
            const std::size_t before = in.front_received;
            const std::size_t here = std::min(line.bytes - before, bytes.size() - take);
            in.front_received += here;
            take += here;
            const std::size_t content = line.bytes - 1;  // what the line limit counts: all but the '\n'
            if (content > limit && std::min(before, content) <= limit && std::min(in.front_received, content) > limit) {
                model_.apply_line_too_long(conn, line);  // as soon as the limit is passed, '\n' or not
            }
            if (in.front_received < line.bytes) break;
            const bool settled = content > limit || model_.apply_line(conn, line);
            in.lines.pop_front();
            in.front_received = 0;
            if (!settled) break;
        }
        in.unread -= take;
        broker_->handle_receive(conn, bytes.substr(0, take));
        bytes.remove_prefix(take);
        settle();
    }
}

void Checker::written(ConnId conn, std::size_t bytes) {
    model_.written(conn, bytes);
    broker_->handle_written(conn, bytes);
    settle();
}

void Checker::disconnect(ConnId conn) {
    model_.disconnect(conn);
    inputs_.erase(conn);
    broker_->handle_disconnect(conn);
    settle();
}

void Checker::settle() {
    ++calls_;
    closes_.clear();
    while (std::optional<Close> close = broker_->poll_close()) closes_.push_back(*close);
    if (model_.pending_one()) resolve_one();

    for (const Close& close : closes_) {
        if (!model_.close_due(close.conn)) {
            std::string what = "unexpected Close of connection " + std::to_string(close.conn) + " (" +
                               std::string(to_string(close.reason)) + ")";
            if (model_.exists(close.conn)) {
                const ModelConn& closed = model_.conn(close.conn);
                what += ": the model has " + std::to_string(closed.pending_bytes()) + " bytes pending (limit " +
                        std::to_string(model_.limits().pending_bytes_max) + ")";
                if (closed.closing) what += ", closing as " + std::string(to_string(*closed.closing));
                if (closed.close_emitted) what += ", Close already emitted";
                if (!closed.closing) what += ", not closing";
            } else {
                what += ": the connection is not open";
            }
            fail(what);
        }
        const CloseReason expected = *model_.conn(close.conn).closing;
        if (close.reason != expected) {
            fail("connection " + std::to_string(close.conn) + " closed as \"" + std::string(to_string(close.reason)) +
                 "\", expected \"" + std::string(to_string(expected)) + "\"");
        }
        model_.close_emitted(close.conn);
    }
    for (const ConnId conn : model_.touched()) {
        if (model_.close_due(conn)) {
            const ModelConn& closing = model_.conn(conn);
            fail("expected a Close of connection " + std::to_string(conn) + " (" +
                 std::string(to_string(*closing.closing)) + ") now; the model has " +
                 std::to_string(closing.pending_bytes()) + " bytes pending (limit " +
                 std::to_string(model_.limits().pending_bytes_max) + ")");
        }
    }
    while (broker_->poll_transmit(transmit_)) {
        check_transmit(transmit_);
        transmit_.frames.clear();  // empty already if the handler took the frames
    }
    for (const ConnId conn : model_.touched()) check_connection(conn);
    check_storage();
    one_choices_.clear();
    choices_used_ = 0;
    if (invariants_every_ != 0 && calls_ % invariants_every_ == 0) broker_->check_invariants();
    model_.clear_touched();
    if (on_close_) {
        for (const Close& close : closes_) on_close_(close.conn, close.reason);
    }
}

void Checker::resolve_one() {
    const PendingOne& pending = *model_.pending_one();
    const std::size_t limit = model_.limits().pending_bytes_max;
    const std::size_t frame_bytes = pending.message->frame.size();
    const std::size_t ack_bytes = pending.ack.bytes();
    const auto closed_now = [&](ConnId conn) {
        return std::any_of(closes_.begin(), closes_.end(), [&](const Close& close) {
            return close.conn == conn && close.reason == CloseReason::slow_consumer;
        });
    };
    // Does what the broker shows fit "it gave the message to `chosen`"?
    const auto fits = [&](ConnId chosen) {
        const auto fits_one = [&](ConnId conn) {
            std::size_t pending_bytes = model_.conn(conn).pending_bytes();
            bool closed = false;
            if (conn == chosen) {
                if (pending_bytes + frame_bytes > limit) {
                    closed = true;
                } else {
                    pending_bytes += frame_bytes;
                }
            }
            if (conn == pending.sender && !closed) {
                if (pending_bytes + ack_bytes > limit) {
                    closed = true;
                } else {
                    pending_bytes += ack_bytes;
                }
            }
            if (closed != closed_now(conn)) return false;
            return closed || broker_->pending_bytes(conn) == pending_bytes;
        };
        for (const ConnId candidate : pending.candidates) {
            if (!fits_one(candidate)) return false;
        }
        const bool sender_is_candidate =
            std::binary_search(pending.candidates.begin(), pending.candidates.end(), pending.sender);
        return sender_is_candidate || fits_one(pending.sender);
    };
    std::size_t fitting = 0;
    ConnId chosen = 0;
    for (const ConnId candidate : pending.candidates) {
        if (fits(candidate)) ++fitting, chosen = candidate;
    }
    if (fitting != 1) {
        std::string what = "delivery \"one\" of index " + std::to_string(pending.message->index) + " on topic \"" +
                           printable(pending.message->topic, 40) + "\" (frame " + std::to_string(frame_bytes) +
                           " bytes) must reach exactly one of " + std::to_string(pending.candidates.size()) +
                           " subscribers; what the broker shows fits " + std::to_string(fitting) +
                           " choices. Per candidate (model pending / broker pending / closed now):";
        for (const ConnId candidate : pending.candidates) {
            what += " conn " + std::to_string(candidate) + ": " +
                    std::to_string(model_.conn(candidate).pending_bytes()) + "/" +
                    std::to_string(broker_->pending_bytes(candidate)) + "/" + (closed_now(candidate) ? "yes" : "no") +
                    ";";
        }
        what += " sender conn " + std::to_string(pending.sender);
        fail(what);
    }
    model_.resolve_one(chosen);
}

void Checker::check_transmit(Transmit& transmit) {
    const ConnId conn = transmit.conn;
    if (!model_.exists(conn)) fail("Transmit for connection " + std::to_string(conn) + ", which is not open");
    const ModelConn& to = model_.conn(conn);
    if (to.close_emitted || (to.closing && (*to.closing == CloseReason::slow_consumer ||
                                             *to.closing == CloseReason::storage_failed))) {
        fail("Transmit for connection " + std::to_string(conn) + " after it was closed");
    }
    if (to.hold_until_seq > model_.synced_seq()) {
        fail("Transmit for connection " + std::to_string(conn) + " while its ack waits for write " +
             std::to_string(to.hold_until_seq) + " to be synced (synced: " + std::to_string(model_.synced_seq()) + ")");
    }
    if (to.in_flight_bytes != 0) {
        fail("a second Transmit for connection " + std::to_string(conn) + " while " +
             std::to_string(to.in_flight_bytes) + " bytes of the last one are not written");
    }
    const std::size_t count = std::max(transmit.frames.size(), to.queued.size());
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string where =
            "connection " + std::to_string(conn) + ", frame " + std::to_string(i + 1) + " of a Transmit";
        if (i >= to.queued.size()) {
            fail(where + ": expected nothing more, got \"" + printable(*transmit.frames[i]) + "\"");
        }
        const Expected& expected = to.queued[i];
        if (i >= transmit.frames.size()) fail(where + ": expected " + describe(expected) + ", got nothing");
        if (transmit.frames[i] == nullptr) fail(where + ": a null frame");
        const std::string& got = *transmit.frames[i];
        if (got != expected.frame) {
            fail(where + ": expected " + describe(expected) + " \"" + printable(expected.frame) + "\", got \"" +
                 printable(got) + "\"");
        }
        bytes += got.size();
    }
    if (transmit.bytes != bytes) {
        fail("Transmit for connection " + std::to_string(conn) + " says " + std::to_string(transmit.bytes) +
             " bytes, its frames hold " + std::to_string(bytes));
    }
    model_.transmit(conn, scratch_expected_);
    if (on_transmit_) on_transmit_(transmit, scratch_expected_);
}

void Checker::check_connection(ConnId conn) {
    const bool open = model_.exists(conn);
    if (broker_->is_connected(conn) != open) {
        fail("connection " + std::to_string(conn) + (open ? " is open" : " is gone") +
             " in the model but not in the broker");
    }
    if (!open) return;
    const ModelConn& state = model_.conn(conn);
    if (broker_->pending_bytes(conn) != state.pending_bytes()) {
        fail("connection " + std::to_string(conn) + ": the broker has " + std::to_string(broker_->pending_bytes(conn)) +
             " bytes pending, the model " + std::to_string(state.pending_bytes()) + " (" +
             std::to_string(state.queued.size()) + " frames queued, " + std::to_string(state.in_flight_bytes) +
             " bytes in flight)");
    }
    if (!state.queued.empty() && state.in_flight_bytes == 0 && !state.close_emitted &&
        state.hold_until_seq <= model_.synced_seq()) {
        fail("connection " + std::to_string(conn) + ": a Transmit of " + std::to_string(state.queued.size()) +
             " frames was due (nothing in flight), none came; first owed: " + describe(state.queued.front()));
    }
}


// ---- Durable topics --------------------------------------------------------

ConnId Checker::next_choice(const PendingOne& pending) {
    if (choices_used_ >= one_choices_.size()) {
        fail("delivery \"one\" of index " + std::to_string(pending.message->index) + " on topic \"" +
             printable(pending.message->topic, 40) + "\": the broker picked nobody");
    }
    const ConnId chosen = one_choices_[choices_used_++];
    if (!std::binary_search(pending.candidates.begin(), pending.candidates.end(), chosen)) {
        fail("delivery \"one\" of index " + std::to_string(pending.message->index) + " went to connection " +
             std::to_string(chosen) + ", which is no subscriber of \"" + printable(pending.message->topic, 40) + "\"");
    }
    return chosen;
}

void Checker::synced(std::uint64_t seq) {
    one_choices_.clear();
    choices_used_ = 0;
    broker_->handle_synced(seq);
    model_.synced(seq, [this](const PendingOne& pending) { return next_choice(pending); });
    settle();
}

void Checker::storage_failed() {
    one_choices_.clear();
    choices_used_ = 0;
    broker_->handle_storage_failed();
    model_.storage_failed([this](const PendingOne& pending) { return next_choice(pending); });
    settle();
}

void Checker::request_snapshot() {
    broker_->request_snapshot();
    model_.request_snapshot();
    settle();
}

void Checker::check_storage() {
    for (;;) {
        const std::optional<ExpectedWrite> expected = model_.poll_storage();
        const bool got = broker_->poll_storage(write_);
        if (!got && !expected) return;
        if (!got) fail("expected write " + std::to_string(expected->seq) + " from the broker, got none");
        if (!expected) fail("write " + std::to_string(write_.seq) + " from the broker, the model expected none");
        check_write(write_, *expected);
        if (on_storage_) on_storage_(write_);
        write_ = {};
    }
}

namespace {

std::string describe(const ModelRecord& record) {
    const char* kinds[] = {"?", "framed message", "take", "reserve", "hole", "message"};
    return std::string(kinds[static_cast<int>(record.kind)]) + " \"" + printable(record.topic, 40) + "\" " +
           std::to_string(record.index);
}

bool same(const storage::LogRecord& got, const ModelRecord& expected) {
    if (got.kind != expected.kind || got.topic != expected.topic || got.index != expected.index) return false;
    if (got.kind == storage::RecordKind::hole) return got.last == expected.last;
    if (got.kind != storage::RecordKind::message) return true;
    const ModelMessage& message = *expected.message;
    return got.delivery == message.delivery && got.msg_json == message.msg_json &&
           got.cache_true == message.cache.value_or(false);
}

}  // namespace

void Checker::check_write(const storage::StorageWrite& got, const ExpectedWrite& expected) {
    const std::string which = "write " + std::to_string(got.seq) + ": ";
    if (got.seq != expected.seq) fail(which + "expected seq " + std::to_string(expected.seq));
    if (got.replace != expected.replace) fail(which + (expected.replace ? "expected a snapshot" : "expected an append"));
    if (got.sync_now != expected.sync_now) {
        fail(which + (expected.sync_now ? "expected a sync asked for" : "a sync asked for, none expected"));
    }
    std::string_view bytes = got.bytes;
    if (got.replace) {
        std::uint64_t incarnation = 0;
        if (storage::read_header(bytes, incarnation) != storage::HeaderStatus::ok ||
            incarnation != model_.incarnation()) {
            fail(which + "a snapshot without the header of this incarnation");
        }
        bytes.remove_prefix(storage::kHeaderBytes);
    }
    std::vector<storage::LogRecord> records;
    while (!bytes.empty()) {
        storage::DecodedRecord decoded;
        if (!storage::decode_record(bytes, decoded)) fail(which + "a bad record after " + std::to_string(records.size()));
        records.push_back(decoded.record);
        bytes.remove_prefix(decoded.bytes);
    }
    if (records.size() != expected.records.size()) {
        fail(which + std::to_string(records.size()) + " records, expected " + std::to_string(expected.records.size()));
    }
    // A snapshot's reserve records come in the core's hash order: compared as sets.
    std::size_t reserves = 0;
    if (got.replace) {
        while (reserves < expected.records.size() && expected.records[reserves].kind == storage::RecordKind::reserve) {
            ++reserves;
        }
        std::vector<std::pair<std::string_view, std::int64_t>> got_reserves, expected_reserves;
        for (std::size_t i = 0; i < reserves; ++i) {
            if (records[i].kind != storage::RecordKind::reserve) fail(which + "a snapshot's reserve records come first");
            got_reserves.emplace_back(records[i].topic, records[i].index);
            expected_reserves.emplace_back(expected.records[i].topic, expected.records[i].index);
        }
        std::sort(got_reserves.begin(), got_reserves.end());
        std::sort(expected_reserves.begin(), expected_reserves.end());
        if (got_reserves != expected_reserves) fail(which + "the snapshot's reservations differ from the model's");
    }
    // Its hole records, last, come in hash order too: compared as sets.
    std::size_t end = records.size();
    if (got.replace || expected.holes_in_any_order) {
        while (end > reserves && expected.records[end - 1].kind == storage::RecordKind::hole) --end;
        std::vector<std::tuple<std::string_view, std::int64_t, std::int64_t>> got_holes, expected_holes;
        for (std::size_t i = end; i < records.size(); ++i) {
            if (records[i].kind != storage::RecordKind::hole) fail(which + "hole records come last");
            got_holes.emplace_back(records[i].topic, records[i].index, records[i].last);
            expected_holes.emplace_back(expected.records[i].topic, expected.records[i].index, expected.records[i].last);
        }
        std::sort(got_holes.begin(), got_holes.end());
        std::sort(expected_holes.begin(), expected_holes.end());
        if (got_holes != expected_holes) fail(which + "the written holes differ from the model's");
    }
    for (std::size_t i = reserves; i < end; ++i) {
        if (!same(records[i], expected.records[i])) {
            fail(which + "record " + std::to_string(i + 1) + " is not the expected " + describe(expected.records[i]));
        }
    }
}

Checker::Recovery Checker::crash(std::string_view log, std::uint64_t broker_seed, std::uint64_t salvage_incarnation,
                                  const std::set<std::string>& damaged_topics, bool synced_messages_checked,
                                  bool rot_possible) {
    const Limits limits = model_.limits();
    const Durability durability = model_.durability();
    std::vector<storage::LogRecord> records;
    const auto keep = [&](const storage::LogRecord& record) { records.push_back(record); };
    storage::ScanResult scan = storage::scan_log(log, storage::ScanMode::strict, keep);
    const bool salvaged = scan.damage == storage::Damage::corrupt_middle;
    if (salvaged) {
        if (!rot_possible) {
            fail("crash: the log has a corrupt record at byte " + std::to_string(scan.damage_offset) +
                 " with good ones after it, and no rot hit it");
        }
        records.clear();
        scan = storage::scan_log(log, storage::ScanMode::salvage, keep);
    }
    if (!scan.header_accepted()) fail("crash: the log's header is refused: " + std::string(to_string(scan.header)));
    std::uint64_t incarnation = salvaged ? salvage_incarnation : model_.incarnation();
    if (scan.header == storage::HeaderStatus::missing) {
        if (!records.empty()) fail("crash: records without a header");
        incarnation = salvage_incarnation;  // nothing was ever synced: a new data dir
    } else if (!salvaged && scan.incarnation != model_.incarnation()) {
        fail("crash: the log names another incarnation");
    }
    auto recovered = std::make_unique<Broker>(limits, broker_seed, incarnation, durability);
    recovered->log_one_choices(&one_choices_);
    Model::RecordedHoles recorded_holes;
    for (const storage::LogRecord& record : records) {
        recovered->recover(record);
        if (record.kind == storage::RecordKind::hole) {
            recorded_holes.emplace(std::string(record.topic), std::make_pair(record.index, record.last));
        }
    }
    // As memqd's DurableStore: a clean log of this version goes on, cut to
    // its good prefix; any other is replaced by a snapshot.
    const std::optional<std::size_t> appendable_bytes = scan.appendable_bytes();
    if (const std::optional<std::string> problem = recovered->finish_recovery(appendable_bytes)) {
        fail("crash: recovery refused: " + *problem);
    }
    recovered->check_invariants();

    // Nothing corrupt, nothing invented: every cached message is one the model cached.
    const auto& history = model_.cached_history();
    std::string problem;
    recovered->topics().for_each_cached([&](const Topic& topic, const CachedMessage& message) {
        if (!problem.empty()) return;
        auto [found, end] = history.equal_range(std::make_pair(std::string(topic.name), message.index));
        const bool was_cached = found != end;
        while (found != end && (*message.frame != found->second->frame || message.delivery != found->second->delivery)) {
            ++found;
        }
        if (!was_cached) {
            problem = "recovered message " + std::to_string(message.index) + " of \"" + printable(topic.name, 40) +
                      "\" was never cached";
        } else if (found == end) {
            problem = "recovered message " + std::to_string(message.index) + " of \"" + printable(topic.name, 40) +
                      "\" differs from the one cached: " + printable(*message.frame);
        }
    });
    if (!problem.empty()) fail("crash: " + problem);
    // No index handed out twice, and every synced cached message back.
    const bool takes_synced = synced_messages_checked && model_.last_take_seq() <= model_.synced_seq();
    for (const auto& [name, topic] : model_.topics()) {
        if (damaged_topics.contains(name)) continue;
        const Topic* real = recovered->topics().find(name);
        const std::int64_t next = real == nullptr ? 0 : real->next_index;
        if (next < topic.next_index) {
            fail("crash: topic \"" + printable(name, 40) + "\" goes on at index " + std::to_string(next) +
                 ", but indices up to " + std::to_string(topic.next_index - 1) + " were handed out");
        }
        if (!takes_synced) continue;  // a lost take brings a message back, which may evict others
        const std::vector<std::int64_t> back = real == nullptr ? std::vector<std::int64_t>{} : real->cached_indices();
        for (const ModelCached& cached : topic.cache) {
            if (cached.seq > model_.synced_seq()) continue;
            if (!std::binary_search(back.begin(), back.end(), cached.message->index)) {
                fail("crash: message " + std::to_string(cached.message->index) + " of \"" + printable(name, 40) +
                     "\" was synced (write " + std::to_string(cached.seq) + ") and cached, and is not back");
            }
        }
    }

    Model adopted(limits, incarnation, durability);
    adopted.adopt_recovered(*recovered, history, appendable_bytes, recorded_holes);
    const std::size_t holes_appended = adopted.pending_record_count();
    broker_ = std::move(recovered);
    model_ = std::move(adopted);
    inputs_.clear();
    closes_.clear();
    settle();  // the first write: a snapshot, or the holes the log does not name
    return Recovery{salvaged, appendable_bytes, holes_appended};
}

}  // namespace memq::sim
