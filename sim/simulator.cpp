// simulator.cpp — the run loop: clients, links, faults, the two phases, the
// digest, the trace and the failure report (see simulator.hpp).
#include "simulator.hpp"

#include "disk.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <variant>
#include <vector>

#include "checker.hpp"
#include "client_core.hpp"
#include "digest.hpp"
#include "network.hpp"
#include "prng.hpp"
#include "swarm.hpp"
#include "workload.hpp"

namespace memq::sim {
namespace {

// What the trace and the failure report show, one record per event.
enum class TraceKind : std::uint8_t {
    connect,
    resume,
    issue,
    receive,
    written,
    transmit,
    close,
    read,
    event,
    stall,
    unstall,
    drop,
    finish,
    restart,
    discard,
    take
};

// What a client got, in a TraceKind::event record.
enum class Got : std::uint8_t { ack, failure, message, gap, reset };

struct TraceRecord {
    std::uint64_t tick = 0;
    TraceKind kind = TraceKind::connect;
    std::uint32_t client = 0;
    ConnId conn = 0;
    std::uint64_t a = 0;
    std::uint64_t b = 0;
};

std::string format(const TraceRecord& r) {
    char text[240];
    const auto tick = static_cast<unsigned long long>(r.tick);
    const auto conn = static_cast<unsigned long long>(r.conn);
    const auto a = static_cast<unsigned long long>(r.a);
    const auto b = static_cast<unsigned long long>(r.b);
    const std::string who =
        "t" + std::to_string(tick) + " client " + std::to_string(r.client) + " conn " + std::to_string(conn) + ": ";
    const std::string broker = "t" + std::to_string(tick) + " conn " + std::to_string(conn) + ": ";
    switch (r.kind) {
        case TraceKind::connect:
            std::snprintf(text, sizeof text, "%sconnects (socket buffer %llu bytes)", who.c_str(), a);
            break;
        case TraceKind::resume:
            std::snprintf(text, sizeof text, "%sstart_session: hello (request #%llu), then %llu topics to resume",
                          who.c_str(), b, a);
            break;
        case TraceKind::issue:
            if (b == 0) {
                std::snprintf(text, sizeof text, "%swrites %s (no reply expected)", who.c_str(),
                              std::string(to_string(static_cast<OpKind>(a))).c_str());
            } else {
                std::snprintf(text, sizeof text, "%swrites %s (request #%llu)", who.c_str(),
                              std::string(to_string(static_cast<OpKind>(a))).c_str(), b);
            }
            break;
        case TraceKind::receive:
            std::snprintf(text, sizeof text, "%shandle_receive %llu bytes", broker.c_str(), a);
            break;
        case TraceKind::written:
            std::snprintf(text, sizeof text, "%shandle_written %llu bytes", broker.c_str(), a);
            break;
        case TraceKind::transmit:
            std::snprintf(text, sizeof text, "%sTransmit of %llu frames, %llu bytes", broker.c_str(), a, b);
            break;
        case TraceKind::close:
            std::snprintf(text, sizeof text, "%sClose (%s)", broker.c_str(),
                          std::string(to_string(static_cast<CloseReason>(a))).c_str());
            break;
        case TraceKind::read: std::snprintf(text, sizeof text, "%sreads %llu bytes", who.c_str(), a); break;
        case TraceKind::event:
            switch (static_cast<Got>(a)) {
                case Got::ack:
                    std::snprintf(text, sizeof text, "%sgets the ack of request #%llu", who.c_str(), b);
                    break;
                case Got::failure:
                    std::snprintf(text, sizeof text, "%sgets a failure for request #%llu", who.c_str(), b);
                    break;
                case Got::message: std::snprintf(text, sizeof text, "%sgets message index %llu", who.c_str(), b); break;
                case Got::gap:
                    std::snprintf(text, sizeof text, "%sgets a gap before index %llu", who.c_str(), b);
                    break;
                case Got::reset:
                    std::snprintf(text, sizeof text, "%sgets a Reset after index %llu", who.c_str(), b);
                    break;
            }
            break;
        case TraceKind::stall: std::snprintf(text, sizeof text, "%sstops reading", who.c_str()); break;
        case TraceKind::take:
            std::snprintf(text, sizeof text, "%sthe application takes %llu messages from the inbox (%llu bytes held)",
                          who.c_str(), a, b);
            break;
        case TraceKind::unstall: std::snprintf(text, sizeof text, "%sreads again", who.c_str()); break;
        case TraceKind::drop:
            std::snprintf(text, sizeof text, "%sdrops the connection (%llu more bytes reach the broker first)",
                          who.c_str(), a);
            break;
        case TraceKind::finish:
            std::snprintf(text, sizeof text, "%sconnection gone (handle_disconnect)", who.c_str());
            break;
        case TraceKind::discard:
            std::snprintf(text, sizeof text, "%s%llu bytes written after the Close are read and discarded", who.c_str(),
                          a);
            break;
        case TraceKind::restart:
            std::snprintf(text, sizeof text, "t%llu the broker restarts: incarnation %016llx, every connection gone",
                          tick, a);
            break;
    }
    return text;
}

struct SimClient {
    enum class State : std::uint8_t { offline, online, closed_by_server };

    ClientCore core;
    State state = State::offline;
    ConnId conn = 0;
    bool rough = false;     // may send garbage, blank, quit and over-long lines
    bool stalled = false;   // does not read: its socket buffer fills, the broker's queue grows
    // The application takes messages from a bounded inbox only now and then
    // (its core's max_inbox_messages is small): at the bound the client reads
    // nothing (backpressure). Unbounded, it takes each message at once.
    bool bounded_inbox = false;
    bool quitting = false;  // wrote "quit": writes nothing more on this connection
    RequestId last_request = 0;
    UpLink up;
    DownLink down;
    std::deque<Expected> owed;  // what the frames handed over to this connection are, in order
    std::string scratch;
    // A session started (start_session) whose hello is not answered yet.
    bool session_pending = false;
    // The Resets that session owes: topic -> the last index the client had,
    // when the broker it knew restarted; topics it (un)subscribed meanwhile
    // are taken out of it (they are not resumed).
    std::map<std::string, std::int64_t, std::less<>> resets_owed;
    bool resets_expected = false;
    // Where the session must resume each topic: the last index received
    // (-1: none), or -1 after a Reset (the new broker's whole cache).
    std::map<std::string, std::int64_t, std::less<>> resume_from;
    // Nothing missed silently: per topic, the last index of the stream this
    // client follows since a resume subscribed it with its last index (the
    // SDK asks for holes then), and the Gaps it was told since its last
    // subscribe of its own. Absent: a stream the check does not follow.
    std::map<std::string, std::int64_t, std::less<>> stream_last;
    std::map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>, std::less<>> gaps_told;
    // A resume's resubscribes with a last index, by request: the stream is
    // followed from their ack on (every frame before it is the old stream's).
    std::map<RequestId, std::string> follow_on_ack;
};

class Simulation {
public:
    Simulation(std::uint64_t seed, const RunConfig& config);
    RunResult run();

private:
    bool faults() const { return faulty_; }
    void tick();
    void step(std::uint32_t index);
    void drain(std::uint32_t index);
    void connect(std::uint32_t index);
    void issue(std::uint32_t index);
    void deliver(SimClient& client);
    void write(SimClient& client);
    void discard(SimClient& client);
    void read(std::uint32_t index);
    void take_inbox(std::uint32_t index, std::size_t count);
    void take_events(std::uint32_t index);
    void drop(std::uint32_t index);
    void finish(std::uint32_t index);
    void go_offline(SimClient& client);
    void take_core_output(std::uint32_t index);
    void check_session(std::uint32_t index);
    void restart_broker();
    void on_write(storage::StorageWrite& write);
    void storage_tick();
    void check_event(std::uint32_t index, const Event& event);
    Expected take_owed(std::uint32_t index, std::string_view got);
    bool quiet() const;
    void check_liveness();
    void check_invariants_when_paid();
    void check_state(bool full);
    std::size_t cut(std::size_t available);
    void record(TraceKind kind, std::uint32_t client, ConnId conn, std::uint64_t a = 0, std::uint64_t b = 0);
    std::string recent() const;

    std::uint64_t seed_;
    RunConfig config_;
    SwarmOptions options_;
    std::unique_ptr<Workload> workload_;
    std::unique_ptr<Checker> checker_;
    // Per topic: indices of "all" messages a crash lost after they were
    // cached (above the topic's highest recovered index), in this broker life.
    std::map<std::string, std::set<std::int64_t>, std::less<>> lost_;
    void note_lost(const std::map<std::string, std::vector<std::int64_t>, std::less<>>& cached_before,
                   std::uint64_t incarnation_before, const std::set<std::string>& damaged);
    void check_nothing_missed(std::uint32_t index, const Message& message);
    // A resume's resubscribe is acknowledged: the stream from there is checked.
    void follow_stream(SimClient& client, RequestId acked);
    Prng ops_prng_;    // what clients ask
    Prng net_prng_;    // when and how many bytes move
    Prng fault_prng_;  // stalls, drops, reconnects
    Prng inbox_prng_;  // which seeds bound the clients' inboxes, and when applications take messages
    std::vector<SimClient> clients_;
    std::vector<std::int32_t> owner_;  // conn -> client index, -1 when free
    std::vector<ConnId> free_ids_;
    ConnId next_id_ = 1;
    bool faulty_ = true;
    std::uint64_t tick_ = 0;
    std::uint64_t invariant_credit_ = 0;    // see check_invariants_when_paid
    std::uint64_t calls_at_last_check_ = 0;
    RunStats stats_;
    Digest digest_;
    std::array<TraceRecord, 48> ring_{};
    std::uint64_t ring_count_ = 0;
    std::vector<LineIntent> scratch_intents_;
    std::size_t inbox_bound_ = 0;  // the clients' max_inbox_messages, when bounded
    // Durable topics.
    SimDisk disk_;
    std::optional<std::uint64_t> sync_due_;  // the tick a sync completes
    bool write_failed_ = false;              // a write failed since the last sync: it reports so
};

std::uint64_t child_seed(std::uint64_t& state) { return splitmix64(state); }

// The broker's topics are compared with the model's every this many ticks
// (and in full after the drain).
constexpr std::uint64_t kStateCheckTicks = 32;

// One seed in this many bounds every client's inbox, at 1 .. kSimInboxMessagesMax messages.
constexpr std::uint64_t kBoundedInboxOneIn = 4;
constexpr std::uint64_t kSimInboxMessagesMax = 8;

// Faults off means a fast network: readers keep up and socket buffers are ample.
constexpr std::size_t kDrainSocketBuffer = 1 << 20;

Simulation::Simulation(std::uint64_t seed, const RunConfig& config)
    : seed_(seed), config_(config), ops_prng_(0), net_prng_(0), fault_prng_(0), inbox_prng_(0) {
    std::uint64_t state = seed;
    options_ = draw_swarm(child_seed(state));
    workload_ = std::make_unique<Workload>(options_, child_seed(state));
    checker_ = std::make_unique<Checker>(options_.limits, child_seed(state), 0, options_.durability);
    ops_prng_ = Prng(child_seed(state));
    net_prng_ = Prng(child_seed(state));
    fault_prng_ = Prng(child_seed(state));
    inbox_prng_ = Prng(child_seed(state));  // drawn last: the other streams are as before
    if (config_.trace_out == nullptr) config_.trace_out = stdout;
    checker_->set_invariants_every(config_.invariants_every);

    clients_.resize(options_.clients);
    for (std::uint32_t i = 0; i < options_.clients; ++i) clients_[i].rough = i < options_.garbage_clients;
    if (inbox_prng_.below(kBoundedInboxOneIn) == 0) {
        ClientCoreOptions core_options;
        core_options.max_inbox_messages = 1 + inbox_prng_.below(kSimInboxMessagesMax);
        inbox_bound_ = core_options.max_inbox_messages;
        for (SimClient& client : clients_) {
            client.core = ClientCore(core_options);
            client.bounded_inbox = true;
        }
    }

    checker_->on_transmit([this](Transmit& transmit, std::vector<Expected>& expected) {
        const ConnId conn = transmit.conn;
        SimClient& client = clients_[static_cast<std::size_t>(owner_[conn])];
        record(TraceKind::transmit, static_cast<std::uint32_t>(owner_[conn]), conn, transmit.frames.size(),
               transmit.bytes);
        if (config_.trace) {
            for (const Frame& frame : transmit.frames) {
                std::fprintf(config_.trace_out, "    < %s\n", printable(*frame).c_str());
            }
        }
        digest_.mix(5, conn, transmit.bytes);
        // The shell's cursor takes it, and hands its drained vector back to the core.
        if (!client.down.take(transmit)) {
            throw CheckFailure("simulator bug: conn " + std::to_string(conn) + "'s write cursor dropped a Transmit");
        }
        for (Expected& owed : expected) {
            // A hello's reply teaches the core who the broker is, a holes reply
            // which gaps to report; neither is an event.
            if (owed.request_kind != RequestKind::hello && owed.request_kind != RequestKind::holes) {
                client.owed.push_back(std::move(owed));
            }
        }
    });
    checker_->on_storage([this](storage::StorageWrite& write) { on_write(write); });
    checker_->on_close([this](ConnId conn, CloseReason reason) {
        const auto index = static_cast<std::uint32_t>(owner_[conn]);
        SimClient& client = clients_[index];
        record(TraceKind::close, index, conn, static_cast<std::uint64_t>(reason));
        digest_.mix(6, conn, static_cast<std::uint64_t>(reason));
        ++stats_.closes[static_cast<std::size_t>(reason)];
        client.state = SimClient::State::closed_by_server;  // its unread input is dropped when it goes offline
        const std::size_t unsent = client.down.unsent();
        // The shell's cursor decides: abrupt drops the unsent output, graceful
        // must find it all written (the core flushed first).
        if (client.down.cursor().close(reason) != WriteCursor::Next::shut_down) {
            throw CheckFailure("a graceful Close of conn " + std::to_string(conn) + " came with " +
                               std::to_string(unsent) + " bytes not yet written");
        }
        // Our sending side is shut down; the peer's EOF has not come: linger.
        if (client.down.cursor().shut_down_done() != WriteCursor::Next::linger) {
            throw CheckFailure("simulator bug: conn " + std::to_string(conn) + " does not linger after its Close");
        }
        if (WriteCursor::is_abrupt(reason)) {
            // Of what sits in the socket buffer only a prefix may still reach the client.
            client.down.truncate(fault_prng_.below(client.down.buffered() + 1));
        }
    });
}

void Simulation::record(TraceKind kind, std::uint32_t client, ConnId conn, std::uint64_t a, std::uint64_t b) {
    TraceRecord& r = ring_[ring_count_++ % ring_.size()];
    r = TraceRecord{tick_, kind, client, conn, a, b};
    if (config_.trace) std::fprintf(config_.trace_out, "%s\n", format(r).c_str());
}

std::string Simulation::recent() const {
    std::string out;
    const std::uint64_t first = ring_count_ > ring_.size() ? ring_count_ - ring_.size() : 0;
    for (std::uint64_t i = first; i < ring_count_; ++i) out += "  " + format(ring_[i % ring_.size()]) + "\n";
    return out;
}

std::size_t Simulation::cut(std::size_t available) {
    if (!faults() || options_.whole.hit(net_prng_)) return available;
    return 1 + net_prng_.below(available);
}

void Simulation::connect(std::uint32_t index) {
    SimClient& client = clients_[index];
    ConnId conn;
    if (!free_ids_.empty() && fault_prng_.below(2) == 0) {
        // Reuse a freed id: the core must not confuse the new connection with the old one.
        const std::size_t pick = fault_prng_.below(free_ids_.size());
        conn = free_ids_[pick];
        free_ids_[pick] = free_ids_.back();
        free_ids_.pop_back();
    } else {
        conn = next_id_++;
        owner_.resize(next_id_, -1);
    }
    owner_[conn] = static_cast<std::int32_t>(index);
    client.conn = conn;
    client.state = SimClient::State::online;
    client.stalled = false;
    client.quitting = false;
    const std::size_t capacity =
        options_.socket_buffer_min + net_prng_.below(options_.socket_buffer_max - options_.socket_buffer_min + 1);
    client.down.set_capacity(capacity);
    // The broker side's writes: a gather buffer from the least the cursor
    // takes up to four times that, and from one piece per write up to
    // memqd's IOV_MAX (a quarter of the connections).
    const std::size_t gather_bytes =
        WriteCursor::kGatheredFrameBytesMax + net_prng_.below(3 * WriteCursor::kGatheredFrameBytesMax + 1);
    const std::size_t pieces = net_prng_.below(4) == 0 ? WriteCursor::kPiecesPerWriteMax : 1 + net_prng_.below(4);
    client.down.set_write_shape(gather_bytes, pieces);
    ++stats_.connects;
    record(TraceKind::connect, index, conn, capacity);
    digest_.mix(1, conn, capacity);
    digest_.mix(13, gather_bytes, pieces);
    checker_->connect(conn);

    if (options_.resume.hit(fault_prng_)) {
        // Resume as the SDK does: a hello first; once it is answered the core
        // re-subscribes every topic, where it stopped if the broker is the
        // one it knew, from the new cache with a Reset each if not.
        const std::optional<std::string> known = client.core.broker_incarnation();
        client.resets_owed.clear();
        client.resume_from.clear();
        client.resets_expected = known.has_value() && *known != incarnation_text(checker_->model().incarnation());
        for (const std::string& topic : workload_->topics()) {
            if (!client.core.is_subscribed(topic)) continue;
            const std::optional<std::int64_t> last = client.core.last_index(topic);
            client.resume_from.emplace(topic, last.value_or(-1));
            if (client.resets_expected && last) client.resets_owed.emplace(topic, *last);
        }
        const RequestId hello = client.core.start_session();
        client.session_pending = true;
        client.core.take_output(client.scratch);
        LineIntent intent;
        intent.kind = LineIntent::Kind::hello;
        intent.request_kind = RequestKind::hello;
        intent.request = hello;
        intent.bytes = client.scratch.size();
        checker_->add_line(conn, intent);
        client.up.write(client.scratch);
        client.last_request = hello;
        ++stats_.ops;
        ++stats_.resumes;
        record(TraceKind::resume, index, conn, client.core.subscriptions(), hello);
        digest_.mix(9, client.core.subscriptions());
    }
}

// What the core wrote on its own in answer to a read: the re-subscribes of a
// resume once its hello is answered. They go on the wire like any request.
void Simulation::take_core_output(std::uint32_t index) {
    SimClient& client = clients_[index];
    if (!client.core.has_output()) return;
    client.core.take_output(client.scratch);
    if (client.state != SimClient::State::online) return;  // closing: the broker reads no more from it
    scratch_intents_.clear();
    workload_->resubscribe_intents(client.scratch, client.last_request + 1, scratch_intents_);
    for (const LineIntent& intent : scratch_intents_) {
        if (intent.kind == LineIntent::Kind::holes) {  // asked before a resumed topic's subscribe
            checker_->add_line(client.conn, intent);
            continue;
        }
        const auto from = client.resume_from.find(intent.topic);
        if (from == client.resume_from.end()) {
            throw CheckFailure("client " + std::to_string(index) + " resumed topic \"" + printable(intent.topic, 40) +
                               "\", which it was not subscribed to when its session began");
        }
        if (intent.last_seen != from->second) {
            throw CheckFailure("client " + std::to_string(index) + " resumed topic \"" + printable(intent.topic, 40) +
                               "\" with last_seen " + std::to_string(intent.last_seen) + ", expected " +
                               std::to_string(from->second));
        }
        client.resume_from.erase(from);  // once per session
        if (intent.last_seen >= 0) client.follow_on_ack[intent.request] = std::string(intent.topic);
        checker_->add_line(client.conn, intent);
    }
    client.last_request += scratch_intents_.size();
    client.up.write(client.scratch);
    stats_.ops += scratch_intents_.size();
    if (config_.trace) std::fprintf(config_.trace_out, "    > %s\n", printable(client.scratch).c_str());
    digest_.mix(12, scratch_intents_.size());
}

// Once a session's hello is answered: the client knows the broker it talks
// to, and got every Reset it was owed.
void Simulation::check_session(std::uint32_t index) {
    SimClient& client = clients_[index];
    if (!client.session_pending || client.core.hello_pending()) return;
    client.session_pending = false;
    const std::string who = "client " + std::to_string(index) + " (conn " + std::to_string(client.conn) + ")";
    const std::string incarnation = incarnation_text(checker_->model().incarnation());
    if (client.core.broker_incarnation() != incarnation) {
        throw CheckFailure(who + " learned incarnation " + client.core.broker_incarnation().value_or("(none)") +
                           ", the broker's is " + incarnation);
    }
    if (!client.resets_owed.empty()) {
        throw CheckFailure(who + " was owed a Reset of topic \"" + printable(client.resets_owed.begin()->first, 40) +
                           "\" after index " + std::to_string(client.resets_owed.begin()->second) +
                           " (the broker restarted), and got none");
    }
    client.resets_expected = false;
}

namespace {
constexpr std::string_view kHolesLineStart = "{\"command\": \"holes\"";
}  // namespace

void Simulation::issue(std::uint32_t index) {
    SimClient& client = clients_[index];
    const std::uint64_t burst = 1 + ops_prng_.below(options_.burst_max);
    for (std::uint64_t i = 0; i < burst && stats_.ops < config_.ops && !client.quitting; ++i) {
        OpKind kind;
        const LineIntent intent = workload_->issue(ops_prng_, client.core, client.rough, kind);
        client.core.take_output(client.scratch);
        if (client.scratch.size() != intent.bytes)
            throw CheckFailure("simulator bug: a request wrote an unexpected line length");
        client.up.write(client.scratch);
        if (intent.kind == LineIntent::Kind::subscribe && client.scratch.starts_with(kHolesLineStart)) {
            // A subscribe with last_seen after a hello asks for the topic's holes first.
            const std::size_t first_line = client.scratch.find('\n') + 1;
            scratch_intents_.clear();
            workload_->resubscribe_intents(std::string_view(client.scratch).substr(0, first_line), intent.request - 1,
                                           scratch_intents_);
            checker_->add_line(client.conn, scratch_intents_.front());
            LineIntent subscribe = intent;
            subscribe.bytes -= first_line;
            checker_->add_line(client.conn, subscribe);
        } else {
            checker_->add_line(client.conn, intent);
        }
        if (intent.request != 0) client.last_request = intent.request;
        if (intent.request_kind == RequestKind::subscribe || intent.request_kind == RequestKind::unsubscribe) {
            // (Un)subscribed anew: not resumed, so no Reset.
            if (const auto owed = client.resets_owed.find(intent.topic); owed != client.resets_owed.end()) {
                client.resets_owed.erase(owed);
            }
            if (const auto from = client.resume_from.find(intent.topic); from != client.resume_from.end()) {
                client.resume_from.erase(from);
            }
        }
        const bool subscribes = intent.kind == LineIntent::Kind::subscribe || intent.kind == LineIntent::Kind::unsubscribe;
        if (subscribes) {
            // A stream of its own choosing starts here (a raw line's too: the SDK does not know it).
            // One with last_seen is not followed: the replay of an earlier
            // subscribe may still be arriving and move the SDK's last index
            // before the holes reply comes (see docs/testing.md).
            client.stream_last.erase(std::string(intent.topic));
            client.gaps_told.erase(std::string(intent.topic));
            std::erase_if(client.follow_on_ack, [&](const auto& entry) { return entry.second == intent.topic; });
        }
        if (kind == OpKind::quit) client.quitting = true;
        ++stats_.ops;
        record(TraceKind::issue, index, client.conn, static_cast<std::uint64_t>(kind), intent.request);
        if (config_.trace) std::fprintf(config_.trace_out, "    > %s\n", printable(client.scratch).c_str());
        digest_.mix(8, static_cast<std::uint64_t>(kind), intent.bytes);
    }
}

void Simulation::deliver(SimClient& client) {
    const std::size_t n = cut(client.up.size());
    const ConnId conn = client.conn;
    record(TraceKind::receive, static_cast<std::uint32_t>(owner_[conn]), conn, n);
    digest_.mix(2, conn, n);
    checker_->receive(conn, client.up.peek(n));
    if (client.state == SimClient::State::online) client.up.consume(n);
}

// One gather write of the broker side: the socket takes a seeded share of
// the planned bytes, none when the peer's window (the socket buffer) is full.
void Simulation::write(SimClient& client) {
    const std::size_t planned = client.down.plan();
    const std::size_t room = client.down.room();
    const std::size_t n = room == 0 ? 0 : cut(std::min(planned, room));
    client.down.send(n);
    record(TraceKind::written, static_cast<std::uint32_t>(owner_[client.conn]), client.conn, n);
    digest_.mix(3, client.conn, n);
    if (n != 0) checker_->written(client.conn, n);  // as the shell: a write of nothing is not reported
}

// After the Close the shell reads what the client still wrote and throws it
// away (the core reads no more): the cursor says so.
void Simulation::discard(SimClient& client) {
    if (!client.down.cursor().discards_input()) {
        throw CheckFailure("simulator bug: conn " + std::to_string(client.conn) + " discards input while not closing");
    }
    const std::size_t n = cut(client.up.size());
    record(TraceKind::discard, static_cast<std::uint32_t>(owner_[client.conn]), client.conn, n);
    digest_.mix(14, client.conn, n);
    client.up.consume(n);
}

void Simulation::read(std::uint32_t index) {
    SimClient& client = clients_[index];
    const std::size_t n = cut(client.down.buffered());
    const std::string_view bytes = client.down.peek(n);
    record(TraceKind::read, index, client.conn, n);
    digest_.bytes(bytes);
    stats_.bytes_received += n;
    client.core.receive(bytes);
    client.down.consume(n);
    take_events(index);
}

void Simulation::take_events(std::uint32_t index) {
    SimClient& client = clients_[index];
    while (std::optional<Event> event = client.core.poll_event()) check_event(index, *event);
    if (!client.bounded_inbox) client.core.mark_delivered(client.core.undelivered_messages());
    check_session(index);
    take_core_output(index);
}

// The application takes `count` messages from the inbox: below the bound, the
// core decodes what it held, and the client reads again.
void Simulation::take_inbox(std::uint32_t index, std::size_t count) {
    SimClient& client = clients_[index];
    record(TraceKind::take, index, client.conn, count, client.core.held_input_bytes());
    digest_.mix(14, client.conn, count);
    client.core.mark_delivered(count);
    take_events(index);
}

Expected Simulation::take_owed(std::uint32_t index, std::string_view got) {
    SimClient& client = clients_[index];
    if (client.owed.empty()) {
        throw CheckFailure("client " + std::to_string(index) + " (conn " + std::to_string(client.conn) + ") got " +
                           std::string(got) + ", but it was owed nothing more");
    }
    Expected owed = std::move(client.owed.front());
    client.owed.pop_front();
    return owed;
}

void Simulation::check_event(std::uint32_t index, const Event& event) {
    SimClient& client = clients_[index];
    const auto wrong = [&](const std::string& got, const Expected& owed) {
        return CheckFailure("client " + std::to_string(index) + " (conn " + std::to_string(client.conn) + ") got " +
                            got + ", expected " + describe(owed));
    };
    if (const auto* ack = std::get_if<Ack>(&event)) {
        ++stats_.acks;
        record(TraceKind::event, index, client.conn, static_cast<std::uint64_t>(Got::ack), ack->request);
        digest_.mix(7, 0, ack->request);
        const std::string got = "ack of request #" + std::to_string(ack->request);
        const Expected owed = take_owed(index, got);
        if (owed.kind != Expected::Kind::ack || owed.request != ack->request || owed.request_kind != ack->kind) {
            throw wrong(got, owed);
        }
        follow_stream(client, ack->request);
    } else if (const auto* refused = std::get_if<memq::Failure>(&event)) {
        ++stats_.failures;
        record(TraceKind::event, index, client.conn, static_cast<std::uint64_t>(Got::failure), refused->request);
        digest_.mix(7, 1, refused->request);
        const std::string got = "failure \"" + refused->reason + "\" of request #" + std::to_string(refused->request);
        const Expected owed = take_owed(index, got);
        if (owed.kind != Expected::Kind::failure || owed.request != refused->request ||
            owed.request_kind != refused->kind || refused->reason != protocol_reason(owed.error)) {
            throw wrong(got, owed);
        }
    } else if (const auto* message = std::get_if<Message>(&event)) {
        ++stats_.messages;
        record(TraceKind::event, index, client.conn, static_cast<std::uint64_t>(Got::message),
               static_cast<std::uint64_t>(message->index));
        digest_.mix(7, 2, static_cast<std::uint64_t>(message->index));
        const Expected owed = take_owed(index, message->raw);
        const ModelMessage* m = owed.message.get();
        if (owed.kind != Expected::Kind::message || m->topic != message->topic || m->msg != message->msg ||
            m->index != message->index || m->delivery != message->delivery || m->cache != message->cache) {
            throw wrong("message \"" + printable(message->raw) + "\"", owed);
        }
        check_nothing_missed(index, *message);
    } else if (const auto* gap = std::get_if<Gap>(&event)) {
        ++stats_.gaps;  // a resumed subscriber learns what it missed: informative, not an error
        client.gaps_told[gap->topic].emplace_back(gap->expected_index, gap->got_index);
        record(TraceKind::event, index, client.conn, static_cast<std::uint64_t>(Got::gap),
               static_cast<std::uint64_t>(gap->got_index));
        digest_.mix(7, 4, static_cast<std::uint64_t>(gap->got_index));
    } else if (const auto* reset = std::get_if<Reset>(&event)) {
        ++stats_.resets;
        record(TraceKind::event, index, client.conn, static_cast<std::uint64_t>(Got::reset),
               static_cast<std::uint64_t>(reset->last_index));
        digest_.mix(7, 5, static_cast<std::uint64_t>(reset->last_index));
        const std::string who = "client " + std::to_string(index) + " (conn " + std::to_string(client.conn) + ")";
        if (!client.resets_expected) {
            throw CheckFailure(who + " got a Reset of topic \"" + printable(reset->topic, 40) +
                               "\", but the broker it knew has not restarted");
        }
        const auto owed = client.resets_owed.find(reset->topic);
        if (owed == client.resets_owed.end() || owed->second != reset->last_index) {
            throw CheckFailure(who + " got a Reset of topic \"" + printable(reset->topic, 40) + "\" after index " +
                               std::to_string(reset->last_index) + ", which it was not owed");
        }
        client.resets_owed.erase(owed);
        client.resume_from[reset->topic] = -1;  // the new broker's whole cache
        client.stream_last.erase(reset->topic);
        client.gaps_told.erase(reset->topic);
    } else if (const auto* error = std::get_if<ProtocolError>(&event)) {
        throw CheckFailure("client " + std::to_string(index) + " (conn " + std::to_string(client.conn) +
                           ") could not read what the broker sent: " + error->description + ": \"" +
                           printable(error->raw) + "\"");
    }
}

void Simulation::go_offline(SimClient& client) {
    client.core.reset();  // pending requests are lost with the connection; subscriptions stay for a resume
    client.up.clear();
    client.down.clear();
    client.owed.clear();
    client.session_pending = false;  // an unanswered hello is lost with its connection
    client.resets_owed.clear();
    client.resets_expected = false;
    client.resume_from.clear();
    client.follow_on_ack.clear();
    owner_[client.conn] = -1;
    free_ids_.push_back(client.conn);
    client.state = SimClient::State::offline;
    client.stalled = false;
}

void Simulation::drop(std::uint32_t index) {
    SimClient& client = clients_[index];
    // Bytes already on their way may still reach the broker before it sees the connection go.
    const std::size_t n = fault_prng_.below(client.up.size() + 1);
    ++stats_.drops;
    record(TraceKind::drop, index, client.conn, n);
    digest_.mix(10, client.conn, n);
    if (n > 0) checker_->receive(client.conn, client.up.peek(n));
    checker_->disconnect(client.conn);
    go_offline(client);
}

void Simulation::finish(std::uint32_t index) {
    SimClient& client = clients_[index];
    if (client.state == SimClient::State::closed_by_server) {
        // The client closes once it has read all (the shell sees its EOF), or
        // the shell's linger ends first: either way the cursor says close.
        WriteCursor& cursor = client.down.cursor();
        const WriteCursor::Next next = client.down.buffered() == 0 ? cursor.peer_eof() : cursor.timer_expired();
        if (next != WriteCursor::Next::close) {
            throw CheckFailure("simulator bug: conn " + std::to_string(client.conn) +
                               " lingers on after the peer's EOF or the linger's end");
        }
        cursor.closed();
    }
    record(TraceKind::finish, index, client.conn);
    digest_.mix(4, client.conn);
    checker_->disconnect(client.conn);
    go_offline(client);
}

void Simulation::step(std::uint32_t index) {
    SimClient& client = clients_[index];
    using State = SimClient::State;
    if (client.state == State::offline) {
        if (faults() && options_.reconnect.hit(fault_prng_)) connect(index);
        return;
    }
    if (client.state == State::online && faults()) {
        if (options_.disconnect.hit(fault_prng_)) return drop(index);
        if (client.stalled ? options_.unstall.hit(fault_prng_) : options_.stall.hit(fault_prng_)) {
            client.stalled = !client.stalled;
            record(client.stalled ? TraceKind::stall : TraceKind::unstall, index, client.conn);
        }
        if (!client.quitting && stats_.ops < config_.ops && options_.issue.hit(ops_prng_)) issue(index);
    }
    if (!faults()) return drain(index);
    if (client.state == State::online && !client.up.empty() && options_.deliver.hit(net_prng_)) deliver(client);
    if (client.state == State::closed_by_server && !client.up.empty() && options_.deliver.hit(net_prng_)) {
        discard(client);
    }
    if (client.state == State::online && client.down.unsent() != 0 && options_.write.hit(net_prng_)) write(client);
    if (client.bounded_inbox && client.core.undelivered_messages() != 0 && inbox_prng_.below(4) == 0) {
        take_inbox(index, 1 + inbox_prng_.below(client.core.undelivered_messages()));
    }
    if (client.state != State::offline && client.down.buffered() != 0 && !client.stalled &&
        !client.core.inbox_full() && options_.read.hit(net_prng_)) {
        read(index);
    }
    if (client.state == State::closed_by_server &&
        (client.down.buffered() == 0 || (faults() && !options_.linger.hit(fault_prng_)))) {
        finish(index);
    }
}

// Faults off: a fast network. Every byte moves as far as it can this tick.
void Simulation::drain(std::uint32_t index) {
    SimClient& client = clients_[index];
    using State = SimClient::State;
    if (client.state == State::online && !client.up.empty()) deliver(client);
    for (;;) {
        if (client.state == State::online && client.down.unsent() != 0 && client.down.room() != 0) write(client);
        // The application keeps up too: it takes everything in its inbox.
        if (client.core.undelivered_messages() != 0) take_inbox(index, client.core.undelivered_messages());
        if (client.state == State::offline) break;
        if (client.down.buffered() == 0) {
            if (client.core.held_input_bytes() == 0) break;
            continue;  // the inbox filled again from what the core held
        }
        read(index);
    }
    if (client.state == State::closed_by_server) finish(index);
}

// The broker process dies and comes back: every connection is gone at once
// (nobody calls handle_disconnect: the old core is gone), and the new core
// and model know nothing, under a new incarnation.
void Simulation::restart_broker() {
    const std::uint64_t broker_seed = fault_prng_.next();
    const std::uint64_t incarnation = fault_prng_.next();
    for (SimClient& client : clients_) {
        if (client.state != SimClient::State::offline) go_offline(client);
    }
    if (options_.durability.enabled) {
        // A crash: the new core recovers what the disk kept, under the same
        // incarnation (a new one only if it had to salvage).
        Damage damage;
        const bool rot = options_.rot.hit(fault_prng_);
        const std::string file = disk_.crash(fault_prng_, rot, damage);
        sync_due_.reset();
        write_failed_ = false;
        std::set<std::string> damaged;
        if (damage.hit) damaged.insert(damage.topic);
        std::map<std::string, std::vector<std::int64_t>, std::less<>> cached_before;
        for (const auto& [name, topic] : checker_->model().topics()) {
            for (const ModelCached& cached : topic.cache) {
                if (cached.message->delivery == Delivery::all) cached_before[name].push_back(cached.message->index);
            }
        }
        const std::uint64_t incarnation_before = checker_->model().incarnation();
        const Checker::Recovery recovery =
            checker_->crash(file, broker_seed, incarnation, damaged, !damage.take, disk_.holds_rot());
        if (recovery.salvaged) ++stats_.salvages;
        if (recovery.appended_at) {
            disk_.cut(*recovery.appended_at);  // as memqd cuts a torn tail
            ++stats_.logs_continued;
            stats_.holes_appended += recovery.holes_appended;
        }
        note_lost(cached_before, incarnation_before, damaged);
        ++stats_.restarts;
        record(TraceKind::restart, 0, 0, checker_->model().incarnation(), file.size());
        digest_.mix(11, checker_->model().incarnation(), file.size());
        return;
    }
    checker_->restart(broker_seed, incarnation);
    ++stats_.restarts;
    record(TraceKind::restart, 0, 0, incarnation);
    digest_.mix(11, incarnation);
}

void Simulation::note_lost(const std::map<std::string, std::vector<std::int64_t>, std::less<>>& cached_before,
                           std::uint64_t incarnation_before, const std::set<std::string>& damaged) {
    if (checker_->model().incarnation() != incarnation_before) {
        lost_.clear();  // a new broker life: its indices start over, and its clients are told by a Reset
        return;
    }
    const auto& topics = checker_->model().topics();
    for (const auto& [name, indices] : cached_before) {
        if (damaged.contains(name)) continue;  // rot: what it dropped is not a crash's loss
        const auto found = topics.find(name);
        const std::int64_t highest =
            found == topics.end() || found->second.cache.empty() ? -1 : found->second.cache.back().message->index;
        for (const std::int64_t index : indices) {
            if (index > highest) lost_[name].insert(index);
        }
    }
}

void Simulation::follow_stream(SimClient& client, RequestId acked) {
    const auto found = client.follow_on_ack.find(acked);
    if (found == client.follow_on_ack.end()) return;
    // From where the SDK stands now: what came before the ack (an earlier
    // subscribe's replay, even a raw one's) is the old stream's. The Gaps
    // told so far stay.
    if (const std::optional<std::int64_t> last = client.core.last_index(found->second)) {
        client.stream_last[found->second] = *last;
    }
    client.follow_on_ack.erase(found);
}

// A message on a stream the client follows: every index between it and the
// one before that a crash lost after caching it must be covered by a Gap
// the client was told (it was owed that message: the cache held it after
// the client's last index, and other subscribers may have received it).
void Simulation::check_nothing_missed(std::uint32_t index, const Message& message) {
    SimClient& client = clients_[index];
    const auto last = client.stream_last.find(message.topic);
    if (last == client.stream_last.end()) return;  // a stream that claims no continuity
    if (message.index <= last->second) return;  // a duplicate
    if (const auto lost = lost_.find(message.topic); lost != lost_.end()) {
        const auto& told = client.gaps_told[message.topic];
        for (auto missed = lost->second.upper_bound(last->second);
             missed != lost->second.end() && *missed < message.index; ++missed) {
            const bool covered = std::any_of(told.begin(), told.end(), [&](const auto& gap) {
                return gap.first <= *missed && *missed < gap.second;
            });
            if (!covered) {
                throw CheckFailure("client " + std::to_string(index) + " (conn " + std::to_string(client.conn) +
                                   ") went from index " + std::to_string(last->second) + " to " +
                                   std::to_string(message.index) + " of \"" + printable(message.topic, 40) +
                                   "\" without a Gap for index " + std::to_string(*missed) +
                                   ", which a crash lost after it was cached");
            }
        }
    }
    last->second = message.index;
}

void Simulation::on_write(storage::StorageWrite& write) {
    const bool sync_now = write.sync_now;
    if (faults() && options_.write_fails.hit(fault_prng_)) {
        write_failed_ = true;  // reported when the next sync completes
    } else {
        disk_.write(std::move(write));
    }
    if (sync_now && !sync_due_) {
        sync_due_ = tick_ + options_.sync_latency_min +
                    fault_prng_.below(options_.sync_latency_max - options_.sync_latency_min + 1);
    }
}

// The shell's side of the disk: syncs when asked and every sync_interval,
// failures reported, and snapshots asked for while the storage is failed.
void Simulation::storage_tick() {
    if (tick_ % options_.sync_interval == 0 && (disk_.has_unsynced() || write_failed_) && !sync_due_) sync_due_ = tick_;
    if (sync_due_ && tick_ >= *sync_due_) {
        sync_due_.reset();
        if (write_failed_ || (faults() && options_.sync_fails.hit(fault_prng_))) {
            write_failed_ = false;
            disk_.lose_unsynced();
            ++stats_.storage_failures;
            digest_.mix(13, tick_);
            checker_->storage_failed();
        } else if (const std::uint64_t seq = disk_.sync(); seq != 0) {
            ++stats_.syncs;
            digest_.mix(12, seq);
            checker_->synced(seq);
        }
    }
    if (!checker_->model().storage_healthy() && !disk_.has_unsynced() && !sync_due_ &&
        tick_ % options_.retry_interval == 0) {
        checker_->request_snapshot();
    }
}

void Simulation::tick() {
    ++tick_;
    if (faults() && options_.restart.hit(fault_prng_)) restart_broker();
    if (options_.durability.enabled) storage_tick();
    const auto count = static_cast<std::uint32_t>(clients_.size());
    const auto start = static_cast<std::uint32_t>(net_prng_.below(count));
    for (std::uint32_t i = 0; i < count; ++i) step((start + i) % count);
    if (config_.invariants_every == 0) check_invariants_when_paid();
    if (tick_ % kStateCheckTicks == 0) check_state(false);
}

// The core's check_invariants() walks all of its state, every queued frame
// included, so it costs more the longer the queues. It runs at the end of a
// tick once the core calls since the last check have paid for it: every tick
// while the core is small, every few ticks while readers stall behind long
// queues. Cost is counted in state, never in time, so a seed still replays.
void Simulation::check_invariants_when_paid() {
    constexpr std::uint64_t kCreditPerCall = 64;
    constexpr std::size_t kBytesPerCostUnit = 256;
    invariant_credit_ += (checker_->calls() - calls_at_last_check_) * kCreditPerCall;
    calls_at_last_check_ = checker_->calls();
    const Broker& broker = checker_->broker();
    std::uint64_t cost = broker.connection_count() + broker.topics().size() + broker.topics().cached_messages();
    for (const SimClient& client : clients_) {
        if (client.state != SimClient::State::offline) cost += broker.pending_bytes(client.conn) / kBytesPerCostUnit;
    }
    if (invariant_credit_ < cost) return;
    checker_->check_invariants();
    invariant_credit_ = 0;
}

bool Simulation::quiet() const {
    if (options_.durability.enabled &&
        (disk_.has_unsynced() || sync_due_ || write_failed_ || !checker_->model().storage_healthy())) {
        return false;
    }
    for (const SimClient& client : clients_) {
        if (client.state == SimClient::State::closed_by_server) return false;
        if (client.state == SimClient::State::online &&
            (!client.up.empty() || client.down.unsent() != 0 || client.down.buffered() != 0 ||
             client.core.held_input_bytes() != 0)) {
            return false;
        }
    }
    return true;
}

void Simulation::check_liveness() {
    const Model& model = checker_->model();
    for (std::uint32_t i = 0; i < clients_.size(); ++i) {
        const SimClient& client = clients_[i];
        if (client.state != SimClient::State::online) continue;
        const std::string who = "liveness: client " + std::to_string(i) + " (conn " + std::to_string(client.conn) + ")";
        if (!client.owed.empty()) throw CheckFailure(who + " never got " + describe(client.owed.front()));
        const ModelConn& conn = model.conn(client.conn);
        if (!conn.queued.empty()) throw CheckFailure(who + " is still owed " + describe(conn.queued.front()));
        if (!conn.replays.empty()) throw CheckFailure(who + " still has a replay of \"" + conn.replays.front().topic + "\"");
        if (conn.in_flight_bytes != 0) throw CheckFailure(who + " has bytes in flight after the drain");
        if (client.core.pending_requests() != 0) {
            throw CheckFailure(who + " has " + std::to_string(client.core.pending_requests()) +
                               " requests never answered");
        }
    }
}

// The broker's topics against the model's: same topics, same next index,
// same number of subscribers and of cached messages; with `full`, the same
// cached indices too. Cheap without `full`: it runs every kStateCheckTicks.
void Simulation::check_state(bool full) {
    const TopicTable& table = checker_->broker().topics();
    const auto& topics = checker_->model().topics();
    if (table.size() != topics.size()) {
        throw CheckFailure("the broker has " + std::to_string(table.size()) + " topics, the model " +
                           std::to_string(topics.size()));
    }
    for (const auto& [name, topic] : topics) {
        const Topic* real = table.find(name);
        const std::string which = "topic \"" + printable(name, 40) + "\": ";
        if (real == nullptr) throw CheckFailure(which + "missing in the broker");
        if (real->next_index != topic.next_index) {
            throw CheckFailure(which + "next index " + std::to_string(real->next_index) + ", expected " +
                               std::to_string(topic.next_index));
        }
        if (real->subscribers().size() != topic.subscribers.size()) {
            throw CheckFailure(which + std::to_string(real->subscribers().size()) + " subscribers, expected " +
                               std::to_string(topic.subscribers.size()));
        }
        if ((real->state != nullptr) != topic.holds_state()) {
            throw CheckFailure(which + (topic.holds_state() ? "has no state in the broker" : "still has state"));
        }
        bool same = real->cached_count() == topic.cache.size();
        for (std::size_t i = 0; full && same && i < topic.cache.size(); ++i) {
            const CachedMessage& cached = real->state->cache[i]->message;
            same = cached.index == topic.cache[i].message->index && cached.delivery == topic.cache[i].message->delivery;
        }
        if (!same) {
            std::string what = which + "cache holds indices";
            for (const std::int64_t index : real->cached_indices()) what.append(" ").append(std::to_string(index));
            what += ", expected";
            for (const ModelCached& cached : topic.cache) what.append(" ").append(std::to_string(cached.message->index));
            throw CheckFailure(what);
        }
    }
}

RunResult Simulation::run() {
    RunResult result;
    result.seed = seed_;
    result.options = describe(options_);
    if (inbox_bound_ != 0) result.options += " max_inbox_messages=" + std::to_string(inbox_bound_);
    result.replay = replay_command(seed_, config_);
    try {
        for (std::uint32_t i = 0; i < clients_.size(); ++i) connect(i);
        // Phase 1: faults on.
        while (stats_.ops < config_.ops && (config_.ticks == 0 || tick_ < config_.ticks)) tick();
        stats_.ticks = tick_;
        // Phase 2: faults off until every queue drains.
        faulty_ = false;
        for (SimClient& client : clients_) {
            client.stalled = false;
            client.down.set_capacity(std::max<std::size_t>(client.down.capacity(), kDrainSocketBuffer));
        }
        while (!quiet()) {
            if (stats_.drain_ticks++ >= config_.drain_ticks_max) {
                throw CheckFailure("liveness: the run did not drain in " + std::to_string(config_.drain_ticks_max) +
                                   " ticks");
            }
            tick();
        }
        check_liveness();
        check_state(true);
    } catch (const CheckFailure& failure) {
        result.ok = false;
        result.failure = failure.what();
    } catch (const std::exception& exception) {
        result.ok = false;
        result.failure = std::string("exception: ") + exception.what();
    }
    if (!result.ok) {
        result.failure = "at tick " + std::to_string(tick_) + " after " + std::to_string(stats_.ops) +
                         " requests: " + result.failure;
        result.recent = recent();
    }
    stats_.core_calls = checker_->calls();
    stats_.model = checker_->model().stats();
    digest_.mix(stats_.ops, stats_.ticks, stats_.drain_ticks);
    result.digest = digest_.value();
    result.stats = stats_;
    return result;
}

}  // namespace

RunResult simulate(std::uint64_t seed, const RunConfig& config) {
    Simulation simulation(seed, config);
    return simulation.run();
}

std::string replay_command(std::uint64_t seed, const RunConfig& config) {
    std::string command = "memq-sim --seed " + std::to_string(seed);
    if (config.ops != RunConfig{}.ops) command += " --ops " + std::to_string(config.ops);
    if (config.ticks != RunConfig{}.ticks) command += " --ticks " + std::to_string(config.ticks);
    return command;
}

}  // namespace memq::sim
