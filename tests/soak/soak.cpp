// soak.cpp — memq-soak: starts memqd, then drives random clients at it over real
// TCP for a given time and checks every reply and every delivery by causality.
//
// Rules:
// - One thread, one epoll loop, real ClientCores over non-blocking sockets; the
//   requests come from the simulator's Workload (its topic and message pools,
//   its request mix), each send's message prefixed with a unique id
//   "<incarnation>.<sequence>|". Subscribes always say "cache": false, so
//   nothing is replayed and every delivery is a live one.
// - Time is a logical clock: every observed event (a line's last byte written,
//   a reply or message received, a connection closed) takes the next tick. With
//   one loop, "S's subscribe ack arrived before P wrote its send" is a plain
//   comparison of ticks, and it proves the broker processed them in that order.
// - For each (connection, topic) the checker keeps intervals in which the
//   connection was certainly subscribed ([subscribe ack, next unsubscribe
//   issued)) and certainly not ([unsubscribe ack or connect, next subscribe
//   issued)). A send written at tick w and acked at tick a was processed inside
//   (w, a): a connection certainly subscribed over all of it must get the
//   message, one certainly unsubscribed over all of it must not.
// - "Must get" is settled by the connection's next reply to a request written
//   after a: per-connection output is FIFO, so the message had to come first.
// - A connection that drops out is no longer checked; its reconnection is a new
//   incarnation, checked from its connect on. Any failure throws CheckFailure,
//   which main prints with the seed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client_core.hpp"
#include "memqd_process.hpp"
#include "model.hpp"
#include "swarm.hpp"
#include "workload.hpp"

namespace memq::soak {
namespace {

using sim::CheckFailure;
using Clock = std::chrono::steady_clock;
using Tick = std::uint64_t;
constexpr Tick kNever = ~Tick{0};

// --- What was published. ---

struct Published {
    std::string topic;
    Delivery delivery = Delivery::all;
    std::uint64_t publisher = 0;  // incarnation
    Tick written = kNever;        // the send line's last byte went out
    Tick acked = kNever;          // the publisher got its ack
    std::int64_t index = -1;      // learnt from the first delivery
    std::vector<std::uint64_t> receivers;  // incarnations
    // delivery "one" with only certain subscribers: how many have yet to settle.
    int one_candidates_left = 0;
    bool one_checked = false;
};

// [from, to): a span of ticks.
struct Span {
    Tick from = 0;
    Tick to = kNever;
};

// A connection's certain knowledge about one topic.
struct TopicState {
    std::deque<Span> subscribed;    // certainly subscribed
    std::deque<Span> unsubscribed;  // certainly not subscribed
    std::int64_t last_index = -1;

    static void open(std::deque<Span>& spans, Tick at) {
        if (!spans.empty() && spans.back().to == kNever) return;
        spans.push_back(Span{at, kNever});
        if (spans.size() > 16) spans.pop_front();  // older spans only matter to long-gone sends
    }
    static void close(std::deque<Span>& spans, Tick at) {
        if (!spans.empty() && spans.back().to == kNever) spans.back().to = at;
    }
    // Some span covers all of (from, to).
    static bool covers(const std::deque<Span>& spans, Tick from, Tick to) {
        for (const Span& span : spans) {
            if (span.from < from && span.to > to) return true;
        }
        return false;
    }
};

struct Request {
    RequestId id = 0;
    RequestKind kind = RequestKind::send;
    std::string topic;
    std::uint64_t message = 0;  // send: the published id
    std::uint64_t line_end = 0;  // offset of the line's end in this connection's output stream
    Tick written = kNever;
};

// A message a connection must have received before its next reply to a request written after `due_after`.
struct Owed {
    std::uint64_t message = 0;
    Tick due_after = 0;
    bool one = false;  // a candidate of an exactly-one check, not an obligation of its own
};

struct Client {
    std::size_t slot = 0;
    std::uint64_t incarnation = 0;
    int fd = -1;
    bool leaving = false;  // unsubscribing everything, closes once answered
    std::unique_ptr<ClientCore> core;
    std::string out;
    std::size_t out_offset = 0;
    std::uint64_t issued_bytes = 0;
    std::uint64_t written_bytes = 0;
    std::deque<Request> pending;
    std::unordered_map<std::string, TopicState> topics;
    std::deque<Owed> owed;
    std::uint64_t next_sequence = 0;
    Tick last_reply_written = 0;  // write tick of the request most recently answered

    bool up() const { return fd >= 0; }
};

// A connection we dropped while it may have been subscribed: until memqd has
// closed its end (inode gone from /proc/<memqd>/fd), memqd may still pick it
// for a "one" message; so may any send written before that was seen. With the
// inode unknown, a 5 s allowance stands in.
// A send written before `gone` (the tick memqd's end was first seen closed) may have met it.
struct Taint {
    std::uint64_t inode = 0;
    Clock::time_point until;
    Tick gone = kNever;
};

struct Counts {
    std::uint64_t requests = 0, acks = 0, deliveries = 0, must_checked = 0, must_not_checked = 0, one_checked = 0,
                  one_abandoned = 0, drops = 0, leaves = 0, reconnects = 0, published = 0;
};

struct Options {
    double seconds = 20;
    std::uint64_t seed = 0;
    bool seed_given = false;
};

class Soak {
public:
    Soak(const Options& options, std::uint16_t port, pid_t memqd_pid)
        : options_(options),
          port_(port),
          memqd_pid_(memqd_pid),
          swarm_(make_swarm(options.seed)),
          workload_(swarm_, options.seed ^ 0x5eed),
          prng_(options.seed),
          epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
        clients_.resize(swarm_.clients);
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            clients_[i].slot = i;
            connect(clients_[i]);
        }
    }
    ~Soak() {
        for (Client& client : clients_) {
            if (client.up()) ::close(client.fd);
        }
        ::close(epoll_fd_);
    }

    static sim::SwarmOptions make_swarm(std::uint64_t seed) {
        sim::SwarmOptions swarm = sim::draw_swarm(seed);
        swarm.clients = 3 + swarm.clients % 10;  // 3..12: enough to publish and subscribe at once
        for (sim::OpKind rough : {sim::OpKind::garbage, sim::OpKind::blank, sim::OpKind::quit, sim::OpKind::too_long}) {
            swarm.weights[static_cast<std::size_t>(rough)] = 0;
        }
        auto& subscribe = swarm.weights[static_cast<std::size_t>(sim::OpKind::subscribe)];
        subscribe = std::max<std::uint32_t>(subscribe, 1);
        swarm.long_message_max = std::min<std::size_t>(swarm.long_message_max, 16 * 1024);
        return swarm;
    }

    std::string describe() const {
        return "clients=" + std::to_string(swarm_.clients) + " topics=" + std::to_string(workload_.topics().size());
    }

    void run() {
        const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options_.seconds));
        for (std::uint64_t round = 1; Clock::now() < end; ++round) {
            for (Client& client : clients_) act(client);
            pump(0);
            if (round % 4096 == 0) prune();
        }
        drain();
    }

    const Counts& counts() const { return counts_; }

private:
    // --- Connections. ---

    void connect(Client& client) {
        client.fd = overload_connect();
        client.incarnation = ++incarnations_;
        client.core = std::make_unique<ClientCore>();
        client.out.clear();
        client.out_offset = 0;
        client.issued_bytes = client.written_bytes = 0;
        client.pending.clear();
        client.topics.clear();
        client.owed.clear();
        client.leaving = false;
        client.last_reply_written = 0;
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = client.slot;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, client.fd, &event) != 0) throw std::runtime_error("epoll_ctl");
    }

    int overload_connect() const {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port_);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
    }

    // We end the connection (abruptly unless it left cleanly first).
    void disconnect(Client& client, bool abrupt) {
        const Tick now = ++tick_;
        if (abrupt) {
            const Taint taint{memqd_socket_inode(client.fd), Clock::now() + std::chrono::seconds(5)};
            for (const auto& [topic, state] : client.topics) tainted_[topic].push_back(taint);
            const linger reset{1, 0};
            if (prng_.below(2) == 0) setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
        for (auto& [topic, state] : client.topics) TopicState::close(state.subscribed, now);
        for (const Owed& owed : client.owed) {
            if (!owed.one) continue;
            if (Published* message = find(owed.message); message && !message->one_checked) {
                message->one_checked = true;
                ++counts_.one_abandoned;
            }
        }
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, client.fd, nullptr);
        ::close(client.fd);
        client.fd = -1;
    }

    // --- Requests. ---

    // A connected client drops (or leaves) on one act in kFaultOdds: a few times a second in all.
    static constexpr std::uint64_t kFaultOdds = 2'000'000;

    void act(Client& client) {
        if (!client.up()) {
            if (prng_.below(200) == 0) {
                connect(client);
                ++counts_.reconnects;
            }
            return;
        }
        if (client.leaving) {
            if (client.pending.empty()) disconnect(client, false);
            return;
        }
        if (prng_.below(kFaultOdds) == 0) {
            ++counts_.drops;
            disconnect(client, true);
            return;
        }
        if (prng_.below(kFaultOdds) == 0) {
            ++counts_.leaves;
            client.leaving = true;
            std::vector<std::string> topics;
            for (const auto& entry : client.topics) topics.push_back(entry.first);
            for (const std::string& topic : topics) unsubscribe(client, topic);
            return;
        }
        const std::uint64_t burst = 1 + prng_.below(swarm_.burst_max);
        for (std::uint64_t i = 0; i < burst && client.pending.size() < 16; ++i) issue(client);
    }

    void issue(Client& client) {
        scratch_.reset();
        sim::OpKind kind{};
        const sim::LineIntent intent = workload_.issue(prng_, scratch_, false, kind);
        const std::string topic(intent.topic);
        switch (intent.kind) {
            case sim::LineIntent::Kind::subscribe: subscribe(client, topic); break;
            case sim::LineIntent::Kind::unsubscribe: unsubscribe(client, topic); break;
            case sim::LineIntent::Kind::send: send(client, topic, intent.msg, intent.delivery, intent.cache); break;
            default: break;  // the clean mix has nothing else
        }
    }

    Request& push(Client& client, RequestId id, RequestKind kind, const std::string& topic, std::size_t before) {
        client.issued_bytes += client.core->output_bytes() - before;
        client.pending.push_back(Request{id, kind, topic, 0, client.issued_bytes, kNever});
        ++counts_.requests;
        return client.pending.back();
    }

    // A connection's state for `topic`; a new one was certainly unsubscribed from the start.
    static TopicState& topic_state(Client& client, const std::string& topic) {
        auto [it, fresh] = client.topics.try_emplace(topic);
        if (fresh) TopicState::open(it->second.unsubscribed, 0);
        return it->second;
    }

    void subscribe(Client& client, const std::string& topic) {
        TopicState& state = topic_state(client, topic);
        TopicState::close(state.unsubscribed, ++tick_);
        const std::size_t before = client.core->output_bytes();
        push(client, client.core->subscribe(topic, std::nullopt, false), RequestKind::subscribe, topic, before);
    }

    void unsubscribe(Client& client, const std::string& topic) {
        TopicState& state = topic_state(client, topic);
        TopicState::close(state.subscribed, ++tick_);
        const std::size_t before = client.core->output_bytes();
        push(client, client.core->unsubscribe(topic), RequestKind::unsubscribe, topic, before);
    }

    void send(Client& client, const std::string& topic, std::string_view text, Delivery delivery,
              std::optional<bool> cache) {
        const std::uint64_t id = (client.incarnation << 32) | client.next_sequence++;
        char prefix[40];
        const int length = std::snprintf(prefix, sizeof prefix, "%llx|", static_cast<unsigned long long>(id));
        std::string msg(prefix, static_cast<std::size_t>(length));
        msg.append(text);
        Published& message = published_[id];
        message.topic = topic;
        message.delivery = delivery;
        message.publisher = client.incarnation;
        const std::size_t before = client.core->output_bytes();
        push(client, client.core->send(topic, msg, delivery, cache), RequestKind::send, topic, before).message = id;
        ++counts_.published;
    }

    // --- IO. ---

    // Writes what it can for every client, reads what arrived within `timeout_ms`.
    void pump(int timeout_ms) {
        for (Client& client : clients_) {
            if (client.up()) flush(client);
        }
        epoll_event events[64];
        const int ready = epoll_wait(epoll_fd_, events, 64, timeout_ms);
        for (int i = 0; i < ready; ++i) {
            Client& client = clients_[events[i].data.u64];
            if (client.up()) receive(client);
        }
    }

    void flush(Client& client) {
        if (client.core->has_output()) {
            client.core->take_output(taken_);
            client.out.append(taken_);
        }
        while (client.out_offset < client.out.size()) {
            const ssize_t wrote = ::send(client.fd, client.out.data() + client.out_offset,
                                         client.out.size() - client.out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (wrote <= 0) {
                if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) break;
                fail(client, std::string("send failed: ") + std::strerror(errno));
            }
            client.out_offset += static_cast<std::size_t>(wrote);
            client.written_bytes += static_cast<std::uint64_t>(wrote);
            const Tick now = ++tick_;
            for (Request& request : client.pending) {
                if (request.written == kNever && request.line_end <= client.written_bytes) request.written = now;
                if (request.kind == RequestKind::send && request.written == now) find(request.message)->written = now;
            }
        }
        if (client.out_offset == client.out.size()) {
            client.out.clear();
            client.out_offset = 0;
        }
    }

    void receive(Client& client) {
        char buffer[64 * 1024];
        for (;;) {
            const ssize_t got = ::recv(client.fd, buffer, sizeof buffer, 0);
            if (got > 0) {
                client.core->receive(std::string_view(buffer, static_cast<std::size_t>(got)));
                while (std::optional<Event> event = client.core->poll_event()) handle(client, *event);
                // Each message was handled as it came: none stays in the core's bounded inbox.
                client.core->mark_delivered(client.core->undelivered_messages());
                if (!client.up()) return;
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
            fail(client, got == 0 ? "memqd closed the connection" : std::string("recv: ") + std::strerror(errno));
        }
    }

    [[noreturn]] void fail(const Client& client, const std::string& what) const {
        throw CheckFailure("client " + std::to_string(client.slot) + " (incarnation " +
                           std::to_string(client.incarnation) + "): " + what);
    }

    // The inode of memqd's end of our connection `fd`, from /proc/net/tcp; 0 if not found.
    std::uint64_t memqd_socket_inode(int fd) const {
        sockaddr_in ours{};
        socklen_t length = sizeof ours;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&ours), &length) != 0) return 0;
        std::ifstream table("/proc/net/tcp");
        std::string line;
        std::getline(table, line);  // header
        while (std::getline(table, line)) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
            std::uint64_t inode = 0;
            fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
            const auto port_of = [](const std::string& address) {
                return static_cast<std::uint16_t>(std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
            };
            if (local.find(':') == std::string::npos || remote.find(':') == std::string::npos) continue;
            if (port_of(local) == port_ && port_of(remote) == ntohs(ours.sin_port) && inode != 0) return inode;
        }
        return 0;
    }

    // Marks the taints whose connection memqd has closed by now, as seen at this tick.
    void refresh_taints() {
        if (tainted_.empty()) return;
        std::unordered_set<std::uint64_t> open;
        const std::string directory = "/proc/" + std::to_string(memqd_pid_) + "/fd";
        std::error_code error;
        for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
            const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
            if (target.rfind("socket:[", 0) == 0) open.insert(std::stoull(target.substr(8)));
        }
        const auto wall = Clock::now();
        const Tick now = ++tick_;
        for (auto& [topic, taints] : tainted_) {
            for (Taint& taint : taints) {
                const bool gone = taint.inode != 0 ? !open.contains(taint.inode) : wall > taint.until;
                if (gone && taint.gone == kNever) taint.gone = now;
            }
        }
    }

    // A connection dropped from `topic` may have been registered in memqd when a
    // send written at `written` was processed.
    bool tainted(const std::string& topic, Tick written) {
        refresh_taints();
        const auto it = tainted_.find(topic);
        if (it == tainted_.end()) return false;
        return std::any_of(it->second.begin(), it->second.end(), [&](const Taint& taint) { return taint.gone > written; });
    }

    // Taints seen gone before `barrier` matter to no send still unacked.
    void forget_taints(Tick barrier) {
        for (auto it = tainted_.begin(); it != tainted_.end();) {
            std::erase_if(it->second, [&](const Taint& taint) { return taint.gone < barrier; });
            it = it->second.empty() ? tainted_.erase(it) : std::next(it);
        }
    }

    // Forgets messages nobody can still receive: acked before every connected
    // client's latest answered request was written (each such client has got,
    // or can no longer get, the message; later connections subscribed too late).
    void prune() {
        Tick barrier = kNever;
        for (const Client& client : clients_) {
            if (client.up()) barrier = std::min(barrier, client.last_reply_written);
        }
        forget_taints(barrier);
        for (auto it = published_.begin(); it != published_.end();) {
            const Published& message = it->second;
            if (message.acked != kNever && message.acked < barrier) {
                if (message.index >= 0) index_owner_[message.topic].erase(message.index);
                it = published_.erase(it);
            } else {
                ++it;
            }
        }
    }

    // --- Checks. ---

    Published* find(std::uint64_t id) {
        const auto it = published_.find(id);
        return it == published_.end() ? nullptr : &it->second;
    }

    void handle(Client& client, const Event& event) {
        if (const auto* ack = std::get_if<Ack>(&event)) return handle_ack(client, *ack);
        if (const auto* message = std::get_if<Message>(&event)) return handle_message(client, *message);
        if (const auto* failure = std::get_if<Failure>(&event)) fail(client, "request refused: " + failure->raw);
        if (const auto* error = std::get_if<ProtocolError>(&event)) {
            fail(client, "protocol error: " + error->description + ": " + error->raw);
        }
        if (std::get_if<Gap>(&event)) fail(client, "a gap reported, with no resume ever made");
    }

    void handle_ack(Client& client, const Ack& ack) {
        const Tick now = ++tick_;
        if (client.pending.empty()) fail(client, "an ack for no request");
        Request request = std::move(client.pending.front());
        client.pending.pop_front();
        if (request.id != ack.request || request.kind != ack.kind) {
            fail(client, "ack for request " + std::to_string(ack.request) + " while " + std::to_string(request.id) +
                             " was due");
        }
        if (request.written == kNever) fail(client, "an ack for a request not yet written");
        ++counts_.acks;
        const auto later_pending = [&](RequestKind kind) {
            return std::any_of(client.pending.begin(), client.pending.end(), [&](const Request& other) {
                return other.kind == kind && other.topic == request.topic;
            });
        };
        switch (request.kind) {
            case RequestKind::subscribe:
                if (!later_pending(RequestKind::unsubscribe)) {
                    TopicState::open(topic_state(client, request.topic).subscribed, now);
                }
                break;
            case RequestKind::unsubscribe:
                if (!later_pending(RequestKind::subscribe)) {
                    TopicState::open(topic_state(client, request.topic).unsubscribed, now);
                }
                break;
            case RequestKind::send: published(request.message, now); break;
            default: break;
        }
        // Every message owed for a send acked before this request was written has arrived.
        client.last_reply_written = request.written;
        while (!client.owed.empty() && client.owed.front().due_after < request.written) {
            const Owed owed = client.owed.front();
            client.owed.pop_front();
            Published* message = find(owed.message);
            const bool got = message && std::find(message->receivers.begin(), message->receivers.end(),
                                                  client.incarnation) != message->receivers.end();
            if (!owed.one) {
                if (!got) fail(client, "lost message " + id_text(owed.message) + " on topic '" + message->topic + "'");
                ++counts_.must_checked;
            } else if (message && !message->one_checked && !got && --message->one_candidates_left == 0) {
                message->one_checked = true;
                if (message->receivers.empty()) {
                    fail(client, "\"one\" message " + id_text(owed.message) + " reached none of its stable subscribers");
                }
                ++counts_.one_checked;
            }
        }
    }

    // The publisher got the ack of `id` at `now`: settle who must get it.
    void published(std::uint64_t id, Tick now) {
        Published& message = *find(id);
        message.acked = now;
        std::vector<Client*> certain;
        bool uncertain = false;
        for (Client& client : clients_) {
            if (!client.up()) continue;
            const auto state = client.topics.find(message.topic);
            if (state == client.topics.end()) continue;  // never named: certainly not subscribed
            if (TopicState::covers(state->second.subscribed, message.written, now)) {
                certain.push_back(&client);
            } else if (!TopicState::covers(state->second.unsubscribed, message.written, now)) {
                uncertain = true;
            }
        }
        if (message.delivery == Delivery::all) {
            for (Client* client : certain) client->owed.push_back(Owed{id, now, false});
            return;
        }
        if (certain.empty() || uncertain || tainted(message.topic, message.written)) return;  // the broker's choice cannot be checked
        message.one_candidates_left = static_cast<int>(certain.size());
        if (!message.receivers.empty()) {
            message.one_checked = true;
            ++counts_.one_checked;
            return;
        }
        for (Client* client : certain) client->owed.push_back(Owed{id, now, true});
    }

    static std::string id_text(std::uint64_t id) {
        return std::to_string(id >> 32) + "." + std::to_string(id & 0xffffffffu);
    }

    void handle_message(Client& client, const Message& delivered) {
        const Tick now = ++tick_;
        ++counts_.deliveries;
        const std::size_t bar = delivered.msg.find('|');
        std::uint64_t id = 0;
        if (bar == std::string::npos ||
            std::from_chars(delivered.msg.data(), delivered.msg.data() + bar, id, 16).ec != std::errc{}) {
            fail(client, "a message with no id: " + delivered.raw.substr(0, 200));
        }
        Published* message = find(id);
        if (!message) fail(client, "a message nobody sent: " + delivered.raw.substr(0, 200));
        const std::string where = "message " + id_text(id) + " (index " + std::to_string(delivered.index) + ")";
        if (message->written == kNever) fail(client, where + " arrived before it was written");
        if (delivered.topic != message->topic || delivered.delivery != message->delivery) {
            fail(client, where + " arrived changed: " + delivered.raw.substr(0, 200));
        }
        if (message->index >= 0 && message->index != delivered.index) {
            fail(client, where + " had index " + std::to_string(message->index) + " elsewhere");
        }
        message->index = delivered.index;
        auto [slot, fresh] = index_owner_[message->topic].try_emplace(delivered.index, id);
        if (!fresh && slot->second != id) fail(client, where + ": that index already named " + id_text(slot->second));
        if (std::find(message->receivers.begin(), message->receivers.end(), client.incarnation) !=
            message->receivers.end()) {
            fail(client, where + " arrived twice");
        }
        if (message->delivery == Delivery::one && !message->receivers.empty()) {
            fail(client, "\"one\" " + where + " reached a second subscriber");
        }
        message->receivers.push_back(client.incarnation);
        TopicState& state = topic_state(client, message->topic);
        if (TopicState::covers(state.unsubscribed, message->written, std::min(message->acked, now))) {
            fail(client, where + " arrived though the connection was certainly not subscribed");
        }
        ++counts_.must_not_checked;
        if (delivered.index <= state.last_index) {
            fail(client, where + " after index " + std::to_string(state.last_index) + " on the same topic");
        }
        state.last_index = delivered.index;
    }

    // Stops issuing; every connected client's requests must be answered, then a
    // last request each settles every obligation.
    void drain() {
        for (Client& client : clients_) {
            if (client.up() && client.leaving && client.pending.empty()) disconnect(client, false);
        }
        const auto answered = [&] {
            return std::all_of(clients_.begin(), clients_.end(),
                               [](const Client& client) { return !client.up() || client.pending.empty(); });
        };
        const auto wait = [&](const char* what) {
            const auto deadline = Clock::now() + std::chrono::seconds(30);
            while (!answered()) {
                if (Clock::now() > deadline) throw CheckFailure(std::string("requests unanswered after 30 s: ") + what);
                pump(10);
            }
        };
        wait("draining");
        for (Client& client : clients_) {
            if (client.up()) unsubscribe(client, "memq-soak barrier");
        }
        wait("barrier");
        for (const Client& client : clients_) {
            if (client.up() && !client.owed.empty()) fail(client, "obligations left after the barrier");
        }
    }

    Options options_;
    std::uint16_t port_;
    pid_t memqd_pid_;
    sim::SwarmOptions swarm_;
    sim::Workload workload_;
    Prng prng_;
    int epoll_fd_;
    std::vector<Client> clients_;
    ClientCore scratch_;  // the Workload writes here; only the request's meaning is kept
    std::string taken_;
    Tick tick_ = 0;
    std::uint64_t incarnations_ = 0;
    std::unordered_map<std::uint64_t, Published> published_;
    std::unordered_map<std::string, std::unordered_map<std::int64_t, std::uint64_t>> index_owner_;
    std::unordered_map<std::string, std::vector<Taint>> tainted_;
    Counts counts_;
};

bool parse(int argc, char** argv, Options& options) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) return false;
        const std::string_view value = argv[++i];
        if (arg == "--seconds") {
            options.seconds = std::stod(std::string(value));
        } else if (arg == "--seed") {
            options.seed = std::stoull(std::string(value), nullptr, 0);
            options.seed_given = true;
        } else {
            return false;
        }
    }
    return options.seconds > 0;
}

}  // namespace
}  // namespace memq::soak

int main(int argc, char** argv) {
    using namespace memq::soak;
    Options options;
    if (!parse(argc, argv, options)) {
        std::cerr << "usage: memq-soak [--seconds N] [--seed S]\n";
        return 2;
    }
    if (!options.seed_given) options.seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    std::cout << "memq-soak: seed " << options.seed << " (replay: memq-soak --seconds " << options.seconds
              << " --seed " << options.seed << ")" << std::endl;
    const auto started = Clock::now();
    try {
        memq::e2e::MemqdProcess memqd(memq::e2e::any_port({"--log-level", "warn"}));
        Counts counts;
        {
            Soak soak(options, memqd.port(), memqd.pid());
            std::cout << "options: " << soak.describe() << std::endl;
            try {
                soak.run();
            } catch (...) {
                counts = soak.counts();
                throw;
            }
            counts = soak.counts();
            const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
            std::printf(
                "requests %llu, acks %llu, messages published %llu, deliveries checked %llu, "
                "must-get obligations settled %llu, \"one\" exactly-once checked %llu (abandoned %llu), "
                "drops %llu, clean leaves %llu, reconnects %llu, in %.1f s\n",
                static_cast<unsigned long long>(counts.requests), static_cast<unsigned long long>(counts.acks),
                static_cast<unsigned long long>(counts.published), static_cast<unsigned long long>(counts.deliveries),
                static_cast<unsigned long long>(counts.must_checked),
                static_cast<unsigned long long>(counts.one_checked),
                static_cast<unsigned long long>(counts.one_abandoned), static_cast<unsigned long long>(counts.drops),
                static_cast<unsigned long long>(counts.leaves), static_cast<unsigned long long>(counts.reconnects),
                seconds);
        }
        const memq::e2e::ExitStatus status = memqd.stop();
        if (!status.is_clean()) {
            throw CheckFailure("memqd " + memq::e2e::describe(status) + "; stderr:\n" + memqd.stderr_text());
        }
    } catch (const std::exception& failure) {
        std::cout << "FAIL: " << failure.what() << "\nFAIL: seed " << options.seed
                  << " (replay: memq-soak --seconds " << options.seconds << " --seed " << options.seed << ")"
                  << std::endl;
        return 1;
    }
    std::cout << "ok" << std::endl;
    return 0;
}
