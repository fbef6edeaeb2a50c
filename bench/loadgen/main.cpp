// main.cpp — memq-bench, the load generator: runs one workload against one
// broker (memq, NATS, Redis pub/sub, Redis Streams or NATS JetStream) on
// loopback and prints one JSON line.
//
// Workloads:
//   pubsub  P publishers, S subscribers, T topics (publisher i sends to topic
//           i % T, subscriber j listens on topic j % T). Saturating by default:
//           publishers pipeline big batches and stop only at an end-to-end
//           window of deliveries in flight, which keeps every broker under its
//           slow-consumer limit; --rate paces them instead (open loop).
//           Every payload carries its send time, so each delivery gives a
//           latency sample. With --acked, a publish stays in the window
//           until its ack came back too (what a durable broker's ack costs).
//   conns   N idle connections, each after one round trip; the broker's VmRSS
//           before and after, per connection.
//   fill    (memq) one connection sends --fill-bytes of payload round-robin
//           over --topics topics, acks awaited within a window: fills a
//           broker's caches (and data dir) before a recovery measurement.
//
// Threads: one epoll loop per worker thread; by default one for all the
// publishers and one for all the subscribers. Every loop is bounded in time.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "histogram.hpp"
#include "net.hpp"
#include "wire.hpp"

namespace bench {
namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr std::size_t kReadBufferBytes = 256 * kKiB;
constexpr int kReadsPerWakeup = 8;
constexpr int kBatchesPerPump = 4;
constexpr int kIdleWaitMillis = 5;

struct Options {
    Proto proto = Proto::memq;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::string workload = "pubsub";
    int pubs = 1;
    int subs = 1;
    int topics = 1;
    std::size_t payload = 64;
    double rate = 0;  // messages/s over all publishers; 0 = saturate
    double warmup = 0.5;
    double duration = 2;
    double drain = 5;
    std::size_t window_bytes = 8 * kMiB;
    std::size_t batch_bytes = 64 * kKiB;
    int pub_threads = 1;
    int sub_threads = 1;
    bool single_thread = false;
    int conns = 10000;
    long pid = 0;
    double settle = 1.0;
    double setup_timeout = 30;
    std::string label;
    std::string topic_prefix;
    bool acked = false;
    std::uint64_t fill_bytes = 0;
    std::string tls_ca;  // --tls: speak TLS, verifying the server against this PEM CA
};

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "memq-bench: %s\n", message.c_str());
    std::exit(2);
}

void usage() {
    std::puts(
        "usage: memq-bench --port N [options]\n"
        "  --proto memq|nats|redis|redis-streams|jetstream   protocol of the broker (memq)\n"
        "  --host ADDR               loopback address (127.0.0.1)\n"
        "  --workload pubsub|conns|fill   (pubsub)\n"
        "  --acked                   a publish stays in flight until acked too\n"
        "  --fill-bytes B            fill: payload bytes to send over --topics topics\n"
        "  --pubs N --subs N --topics N   connections and topics (1 1 1)\n"
        "  --payload BYTES           payload size, at least 16 (64)\n"
        "  --rate MSGS_PER_S         paced total publish rate; 0 saturates (0)\n"
        "  --warmup S --duration S   phases in seconds (0.5 2)\n"
        "  --drain S                 longest wait for what is in flight at the end (5)\n"
        "  --window-bytes B          deliveries in flight, in bytes (8 MiB)\n"
        "  --batch-bytes B           bytes per pipelined write (64 KiB)\n"
        "  --pub-threads N --sub-threads N | --single-thread\n"
        "  --conns N --pid PID --settle S   idle connections and the broker's pid (conns)\n"
        "  --label TEXT              copied into the JSON result\n"
        "  --tls CA_FILE             speak TLS (memqd --tls-port, nats-server --tls), verifying\n"
        "                            the server against the PEM CA_FILE\n"
        "Prints one JSON object on stdout; exit 0 when the run had no errors.");
}

template <typename Number>
Number number_of(std::string_view name, std::string_view text) {
    Number value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        fail("bad value '" + std::string(text) + "' for " + std::string(name));
    }
    return value;
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string_view name = argv[i];
        std::optional<std::string_view> inline_value;
        if (const auto equals = name.find('='); equals != std::string_view::npos) {
            inline_value = name.substr(equals + 1);
            name = name.substr(0, equals);
        }
        if (name == "--help" || name == "-h") {
            usage();
            std::exit(0);
        }
        if (name == "--single-thread") {
            options.single_thread = true;
            continue;
        }
        if (name == "--acked") {
            options.acked = true;
            continue;
        }
        std::string_view value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fail("option " + std::string(name) + " needs a value");
        }
        if (name == "--proto") {
            const auto proto = parse_proto(value);
            if (!proto) fail("unknown protocol " + std::string(value));
            options.proto = *proto;
        } else if (name == "--host") {
            options.host = value;
        } else if (name == "--port") {
            options.port = number_of<std::uint16_t>(name, value);
        } else if (name == "--workload") {
            options.workload = value;
        } else if (name == "--pubs") {
            options.pubs = number_of<int>(name, value);
        } else if (name == "--subs") {
            options.subs = number_of<int>(name, value);
        } else if (name == "--topics") {
            options.topics = number_of<int>(name, value);
        } else if (name == "--payload") {
            options.payload = number_of<std::size_t>(name, value);
        } else if (name == "--rate") {
            options.rate = number_of<double>(name, value);
        } else if (name == "--warmup") {
            options.warmup = number_of<double>(name, value);
        } else if (name == "--duration") {
            options.duration = number_of<double>(name, value);
        } else if (name == "--drain") {
            options.drain = number_of<double>(name, value);
        } else if (name == "--window-bytes") {
            options.window_bytes = number_of<std::size_t>(name, value);
        } else if (name == "--batch-bytes") {
            options.batch_bytes = number_of<std::size_t>(name, value);
        } else if (name == "--pub-threads") {
            options.pub_threads = number_of<int>(name, value);
        } else if (name == "--sub-threads") {
            options.sub_threads = number_of<int>(name, value);
        } else if (name == "--conns") {
            options.conns = number_of<int>(name, value);
        } else if (name == "--pid") {
            options.pid = number_of<long>(name, value);
        } else if (name == "--settle") {
            options.settle = number_of<double>(name, value);
        } else if (name == "--setup-timeout") {
            options.setup_timeout = number_of<double>(name, value);
        } else if (name == "--label") {
            options.label = value;
        } else if (name == "--tls") {
            options.tls_ca = std::string(value);
        } else if (name == "--topic-prefix") {
            options.topic_prefix = value;
        } else if (name == "--fill-bytes") {
            options.fill_bytes = number_of<std::uint64_t>(name, value);
        } else {
            fail("unknown option " + std::string(name) + " (see --help)");
        }
    }
    if (options.port == 0) fail("--port is required");
    if (!is_loopback(options.host)) fail("only loopback addresses are allowed: " + options.host);
    if (options.workload != "pubsub" && options.workload != "conns" && options.workload != "fill") {
        fail("unknown workload " + options.workload);
    }
    if (options.workload == "fill" && (options.proto != Proto::memq || options.fill_bytes == 0)) {
        fail("--workload fill is for --proto memq, with --fill-bytes above 0");
    }
    if (options.acked && !acks_every_publish(options.proto)) fail("--acked: this protocol does not ack publishes");
    // Every JetStream publisher on a topic would hear every ack of that topic's inbox.
    if (options.proto == Proto::jetstream && options.pubs > options.topics) fail("--proto jetstream: --pubs at most --topics");
    if (options.pubs < 1 || options.subs < 1 || options.topics < 1 || options.pubs > 5000 || options.subs > 5000) {
        fail("--pubs and --subs must be in 1..5000, --topics at least 1");
    }
    if (options.workload == "pubsub" && options.subs % options.topics != 0) fail("--subs must be a multiple of --topics");
    if (options.payload < kMinPayload || options.payload > 16 * kMiB) fail("--payload must be in 16..16777216");
    if (options.rate < 0 || options.rate > 1e8) fail("--rate must be in 0..1e8");
    if (options.warmup < 0 || options.duration <= 0 || options.drain < 0 ||
        options.warmup + options.duration + options.drain > 600) {
        fail("--warmup + --duration + --drain must be at most 600 seconds, --duration above 0");
    }
    if (options.conns < 1 || options.conns > 100000) fail("--conns must be in 1..100000");
    if (options.pub_threads < 1 || options.sub_threads < 1 || options.pub_threads > 64 || options.sub_threads > 64) {
        fail("--pub-threads and --sub-threads must be in 1..64");
    }
    if (options.batch_bytes < 1 || options.window_bytes < 1) fail("--batch-bytes and --window-bytes must be positive");
    if (options.topic_prefix.empty()) {
        options.topic_prefix = "bench." + std::to_string(::getpid()) + "." + std::to_string(now_ns() % 1000000007ULL);
    }
    return options;
}

void sleep_seconds(double seconds) {
    if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

// ---- the pub/sub run ----------------------------------------------------------

enum Phase : int { kWarmup, kMeasure, kDrain, kStop };

struct Conn {
    int fd = -1;
    Role role = Role::publisher;
    int number = 0;
    std::string topic;
    bool closed = false;
    std::vector<char> in = std::vector<char>(kReadBufferBytes);
    std::size_t in_len = 0;
    IndexCheck indices;  // memq subscribers: each delivery's index is the last one plus one
    StreamCursor cursor;  // Redis Streams subscribers: where the next XREAD starts
    std::string control;  // PONGs owed to the server
    // Publisher side: `out` holds batch_messages copies of the template;
    // a batch only rewrites the stamps of the copies it sends.
    const PublishTemplate* publish = nullptr;
    std::vector<char> out;
    std::size_t batch_messages = 0;
    std::size_t out_off = 0;
    std::size_t out_len = 0;
    bool want_write = false;  // EPOLLOUT armed: the socket buffer is full
    std::uint64_t sent = 0;
};

class Worker;

struct Shared {
    Options options;
    std::atomic<int> phase{kWarmup};
    std::uint64_t fanout = 1;       // deliveries per publish
    std::uint64_t window = 0;       // deliveries in flight, at most
    std::uint64_t resume_room = 0;  // free deliveries a waiting publisher needs to go on
    double rate_per_pub = 0;
    std::uint64_t start_ns = 0;
    std::vector<std::unique_ptr<Worker>> workers;

    std::uint64_t delivered() const;
    std::uint64_t sent() const;
    std::uint64_t acked() const;
    // Deliveries that may still be put in flight; with --acked, a publish
    // not yet acked holds its fanout's worth of the window too.
    std::uint64_t room() const {
        const std::uint64_t done = delivered();  // read before sent: sent * fanout >= done then
        const std::uint64_t acks = options.acked ? acked() : 0;
        const std::uint64_t published = sent();
        const std::uint64_t expected = published * fanout;
        std::uint64_t in_flight = expected - std::min(done, expected);
        if (options.acked) in_flight = std::max(in_flight, (published - std::min(acks, published)) * fanout);
        return in_flight >= window ? 0 : window - in_flight;
    }
};

class Worker {
public:
    explicit Worker(Shared& shared) : shared_(shared), proto_(shared.options.proto) {
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (epoll_ < 0 || wake_fd_ < 0 || timer_fd_ < 0) fail(std::string("epoll/eventfd/timerfd: ") + std::strerror(errno));
        watch(wake_fd_, &wake_fd_);
        watch(timer_fd_, &timer_fd_);
    }
    ~Worker() {
        for (const auto& conn : conns_) {
            if (!conn->closed) ::close(conn->fd);
        }
        ::close(epoll_);
        ::close(wake_fd_);
        ::close(timer_fd_);
    }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void add(std::unique_ptr<Conn> conn) {
        watch(conn->fd, conn.get());
        if (conn->role == Role::publisher) publishers_.push_back(conn.get());
        conns_.push_back(std::move(conn));
    }

    void run();

    // Publish bytes filled into batches but not yet written (read after join).
    std::uint64_t unwritten_bytes() const {
        std::uint64_t total = 0;
        for (const Conn* conn : publishers_) total += conn->out_len - conn->out_off;
        return total;
    }

    // Called by any thread after deliveries grew: wakes this worker if it
    // waits for window room and there is enough now.
    void wake_if_room() {
        if (!waiting_.load() || shared_.room() < shared_.resume_room) return;
        if (waiting_.exchange(false)) {
            const std::uint64_t one = 1;
            [[maybe_unused]] const ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
        }
    }

    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> acked{0};  // replies to publishes, counted once the run started
    // Times a publisher worker slept through kIdleWaitMillis while it waited
    // for window room: each is a wake-up that came late (should stay ~0).
    std::uint64_t late_wakeups = 0;
    // Read after the thread is joined.
    Histogram latency;
    Tally tally;
    std::vector<std::string> errors;

private:
    // `tag` comes back with each event: a Conn*, or the address of one of our own fds.
    void watch(int fd, void* tag) {
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = tag;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) fail(std::string("epoll_ctl: ") + std::strerror(errno));
    }

    void want_write(Conn& conn, bool want) {
        if (conn.want_write == want) return;
        conn.want_write = want;
        epoll_event event{};
        event.events = EPOLLIN | (want ? EPOLLOUT : 0u);
        event.data.ptr = &conn;
        ::epoll_ctl(epoll_, EPOLL_CTL_MOD, conn.fd, &event);
    }

    void drop(Conn& conn, const std::string& why) {
        if (conn.closed) return;
        if (shared_.phase.load() < kStop) {
            errors.push_back(std::string(conn.role == Role::publisher ? "publisher " : "subscriber ") +
                             std::to_string(conn.number) + ": " + why);
        }
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, conn.fd, nullptr);
        ::close(conn.fd);
        conn.closed = true;
    }

    bool pump();
    std::size_t allowance(Conn& conn, std::uint64_t now);
    void fill(Conn& conn, std::size_t messages);
    void on_readable(Conn& conn);
    bool flush_control(Conn& conn);

    Shared& shared_;
    Proto proto_;
    int epoll_ = -1;
    int wake_fd_ = -1;
    int timer_fd_ = -1;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<Conn*> publishers_;
    std::atomic<bool> waiting_{false};
    std::uint64_t next_due_ns_ = 0;  // paced: the earliest time a publisher may send again
};

std::uint64_t Shared::delivered() const {
    std::uint64_t total = 0;
    for (const auto& worker : workers) total += worker->delivered.load();
    return total;
}

std::uint64_t Shared::sent() const {
    std::uint64_t total = 0;
    for (const auto& worker : workers) total += worker->sent.load();
    return total;
}

std::uint64_t Shared::acked() const {
    std::uint64_t total = 0;
    for (const auto& worker : workers) total += worker->acked.load();
    return total;
}

void Worker::run() {
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // paced sends wake on time
    epoll_event events[512];
    while (shared_.phase.load() != kStop) {
        next_due_ns_ = 0;
        const bool more = pump();
        if (next_due_ns_ != 0 && !more) {
            itimerspec due{};
            due.it_value.tv_sec = static_cast<time_t>(next_due_ns_ / 1000000000ULL);
            due.it_value.tv_nsec = static_cast<long>(next_due_ns_ % 1000000000ULL);
            ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &due, nullptr);
        }
        const int ready = ::epoll_wait(epoll_, events, 512, more ? 0 : kIdleWaitMillis);
        if (ready == 0 && !more && waiting_.load()) ++late_wakeups;
        for (int i = 0; i < ready; ++i) {
            void* const tag = events[i].data.ptr;
            if (tag == &wake_fd_ || tag == &timer_fd_) {
                std::uint64_t count = 0;
                [[maybe_unused]] const ssize_t ignored = ::read(*static_cast<int*>(tag), &count, sizeof(count));
                continue;
            }
            Conn* const conn = static_cast<Conn*>(tag);
            if (conn->closed) continue;
            if (events[i].events & EPOLLOUT) want_write(*conn, false);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(*conn);
        }
    }
}

// Writes what the publishers may send now; true when some publisher stopped
// only because of its per-call budget (so the loop should come back at once).
bool Worker::pump() {
    if (publishers_.empty()) return false;
    const int phase = shared_.phase.load();
    bool more = false;
    for (Conn* conn : publishers_) {
        if (conn->closed || conn->want_write) continue;
        int batches = 0;
        while (true) {
            if (conn->out_off == conn->out_len) {
                if (!flush_control(*conn)) break;
                if (phase >= kDrain) break;
                if (batches == kBatchesPerPump) {
                    more = true;
                    break;
                }
                const std::size_t messages = allowance(*conn, now_ns());
                if (messages == 0) break;
                fill(*conn, messages);
                ++batches;
            }
            const ssize_t wrote =
                send_some(conn->fd, conn->out.data() + conn->out_off, conn->out_len - conn->out_off);
            if (wrote > 0) {
                conn->out_off += static_cast<std::size_t>(wrote);
                if (conn->out_off == conn->out_len) conn->out_off = conn->out_len = 0;
                continue;
            }
            if (wrote < 0 && errno == EINTR) continue;
            if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                want_write(*conn, true);
                break;
            }
            drop(*conn, std::string("send: ") + std::strerror(errno));
            break;
        }
    }
    return more;
}

// How many messages `conn` may send now: paced by the rate, bounded by the window.
std::size_t Worker::allowance(Conn& conn, std::uint64_t now) {
    std::uint64_t allowed = conn.batch_messages;
    const bool paced = shared_.rate_per_pub > 0;
    if (paced) {
        const double elapsed = static_cast<double>(now - shared_.start_ns) / 1e9;
        const auto due = static_cast<std::uint64_t>(elapsed * shared_.rate_per_pub) + 1;
        if (due <= conn.sent) {
            const auto next = shared_.start_ns +
                              static_cast<std::uint64_t>(static_cast<double>(conn.sent) / shared_.rate_per_pub * 1e9);
            if (next_due_ns_ == 0 || next < next_due_ns_) next_due_ns_ = next;
            return 0;
        }
        allowed = std::min(allowed, due - conn.sent);
    }
    // Saturating publishers wait for a good slice of the window, so that
    // their writes stay big; paced ones send whatever fits.
    const std::uint64_t fanout = shared_.fanout;
    const std::uint64_t needed = paced ? 1 : std::max<std::uint64_t>(1, shared_.resume_room / fanout);
    std::uint64_t room = shared_.room() / fanout;
    if (room < needed) {
        waiting_.store(true);
        room = shared_.room() / fanout;  // deliveries may have grown before the flag was seen
        if (room < needed) return 0;
        waiting_.store(false);
    }
    return static_cast<std::size_t>(std::min(allowed, room));
}

void Worker::fill(Conn& conn, std::size_t messages) {
    const std::size_t size = conn.publish->bytes.size();
    char digits[kStampDigits];
    write_stamp(digits, now_ns());
    for (std::size_t i = 0; i < messages; ++i) {
        std::memcpy(conn.out.data() + i * size + conn.publish->stamp_offset, digits, kStampDigits);
    }
    conn.out_off = 0;
    conn.out_len = messages * size;
    conn.sent += messages;
    sent.fetch_add(messages);
}

// Sends owed PONGs; false while some are still waiting for socket room.
bool Worker::flush_control(Conn& conn) {
    while (!conn.control.empty()) {
        const ssize_t wrote = send_some(conn.fd, conn.control.data(), conn.control.size());
        if (wrote > 0) {
            conn.control.erase(0, static_cast<std::size_t>(wrote));
            continue;
        }
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_write(conn, true);
            return false;
        }
        drop(conn, std::string("send: ") + std::strerror(errno));
        return false;
    }
    return true;
}

void Worker::on_readable(Conn& conn) {
    for (int reads = 0; reads < kReadsPerWakeup; ++reads) {
        if (conn.in.size() - conn.in_len < 64 * kKiB) conn.in.resize(conn.in.size() * 2);  // a frame bigger than the buffer
        const std::size_t space = conn.in.size() - conn.in_len;
        const ssize_t got = receive_some(conn.fd, conn.in.data() + conn.in_len, space);
        if (got > 0) {
            conn.in_len += static_cast<std::size_t>(got);
            Tally found;
            Histogram* samples = shared_.phase.load() == kMeasure ? &latency : nullptr;
            const std::uint64_t breaks_before = conn.indices.breaks;
            const std::uint64_t reads_answered = conn.cursor.reads_answered;
            const bool subscriber = conn.role == Role::subscriber;
            const std::size_t used = parse_stream(proto_, conn.in.data(), conn.in_len, found, samples, now_ns(),
                                                  subscriber ? &conn.indices : nullptr,
                                                  subscriber ? &conn.cursor : nullptr);
            if (conn.cursor.reads_answered != reads_answered) {
                conn.control.append(stream_read(conn.topic, conn.cursor.last_id));  // the next XREAD
                flush_control(conn);
            }
            if (conn.indices.breaks != breaks_before && breaks_before == 0 && errors.size() < 8) {
                errors.push_back("a delivery out of index order (lost, repeated or reordered) on connection " +
                                 std::to_string(conn.number));
            }
            if (used != 0) {
                std::memmove(conn.in.data(), conn.in.data() + used, conn.in_len - used);
                conn.in_len -= used;
            }
            tally.messages += found.messages;
            tally.replies += found.replies;
            if (conn.role == Role::publisher && found.replies != 0) {
                acked.fetch_add(found.replies);
                if (shared_.options.acked) {
                    for (const auto& worker : shared_.workers) worker->wake_if_room();
                }
            }
            tally.errors += found.errors;
            tally.pings += found.pings;
            if (found.errors != 0 && errors.size() < 8) {
                errors.push_back("the server refused a command on connection " + std::to_string(conn.number));
            }
            if (found.pings != 0) {
                for (std::uint64_t i = 0; i < found.pings; ++i) conn.control.append(pong(proto_));
                if (conn.role != Role::publisher || conn.out_off == conn.out_len) flush_control(conn);
            }
            if (found.messages != 0) {
                delivered.fetch_add(found.messages);
                for (const auto& worker : shared_.workers) worker->wake_if_room();
            }
            if (static_cast<std::size_t>(got) < space) return;  // most likely drained
            continue;
        }
        if (got == 0) {
            drop(conn, "closed by the server");
            return;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) drop(conn, std::string("recv: ") + std::strerror(errno));
        return;
    }
}

std::string topic_name(const Options& options, int number) {
    return options.topic_prefix + "." + std::to_string(number);
}

int run_pubsub(const Options& options) {
    Shared shared;
    shared.options = options;
    shared.fanout = static_cast<std::uint64_t>(options.subs / options.topics);
    std::vector<PublishTemplate> templates;
    templates.reserve(static_cast<std::size_t>(options.topics));
    for (int t = 0; t < options.topics; ++t) templates.push_back(make_publish(options.proto, topic_name(options, t), options.payload));
    const std::size_t message_bytes = templates.front().bytes.size();
    // The window counts deliveries: ~frame size each on the subscriber side.
    shared.window = std::max<std::uint64_t>(options.window_bytes / (message_bytes + 64), 2 * shared.fanout);
    shared.resume_room = shared.window / 4;
    shared.rate_per_pub = options.rate / options.pubs;

    const int pub_workers = options.single_thread ? 0 : std::min(options.pub_threads, options.pubs);
    const int sub_workers = options.single_thread ? 1 : std::min(options.sub_threads, options.subs);
    for (int i = 0; i < pub_workers + sub_workers; ++i) shared.workers.push_back(std::make_unique<Worker>(shared));

    // Subscribers first, each confirmed by the broker; then the publishers.
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options.setup_timeout));
    std::string error;
    std::string leftover;
    auto open = [&](Role role, int number, int topic) {
        const int fd = connect_tcp(options.host, options.port, deadline, error);
        if (fd < 0) fail("connecting to " + options.host + ":" + std::to_string(options.port) + ": " + error);
        if (!handshake(fd, options.proto, role, topic_name(options, topic), deadline, leftover, error)) {
            fail(std::string(role == Role::publisher ? "publisher " : "subscriber ") + std::to_string(number) + ": " + error);
        }
        auto conn = std::make_unique<Conn>();
        conn->fd = fd;
        conn->role = role;
        conn->number = number;
        conn->topic = topic_name(options, topic);
        std::memcpy(conn->in.data(), leftover.data(), std::min(leftover.size(), conn->in.size()));
        conn->in_len = std::min(leftover.size(), conn->in.size());
        return conn;
    };
    for (int j = 0; j < options.subs; ++j) {
        auto conn = open(Role::subscriber, j, j % options.topics);
        const int worker = pub_workers + j % sub_workers;
        shared.workers[static_cast<std::size_t>(worker)]->add(std::move(conn));
    }
    for (int i = 0; i < options.pubs; ++i) {
        auto conn = open(Role::publisher, i, i % options.topics);
        conn->publish = &templates[static_cast<std::size_t>(i % options.topics)];
        const std::size_t size = conn->publish->bytes.size();
        conn->batch_messages = std::max<std::size_t>(1, options.batch_bytes / size);
        if (shared.rate_per_pub == 0) conn->batch_messages = std::min<std::size_t>(conn->batch_messages, shared.window / shared.fanout);
        conn->batch_messages = std::max<std::size_t>(1, conn->batch_messages);
        conn->out.resize(conn->batch_messages * size);
        for (std::size_t m = 0; m < conn->batch_messages; ++m) std::memcpy(conn->out.data() + m * size, conn->publish->bytes.data(), size);
        const int worker = options.single_thread ? 0 : i % pub_workers;
        shared.workers[static_cast<std::size_t>(worker)]->add(std::move(conn));
    }

    shared.start_ns = now_ns();
    std::vector<std::thread> threads;
    for (const auto& worker : shared.workers) threads.emplace_back([&w = *worker] { w.run(); });

    const auto server_pid = static_cast<pid_t>(options.pid);
    sleep_seconds(options.warmup);
    const double server_cpu0 = server_pid > 0 ? cpu_seconds(server_pid) : -1;
    const double own_cpu0 = cpu_seconds(0);
    const std::uint64_t t0 = now_ns();
    const std::uint64_t delivered0 = shared.delivered();
    const std::uint64_t sent0 = shared.sent();
    const std::uint64_t acked0 = shared.acked();
    shared.phase.store(kMeasure);
    sleep_seconds(options.duration);
    const std::uint64_t t1 = now_ns();
    const std::uint64_t delivered1 = shared.delivered();
    const std::uint64_t sent1 = shared.sent();
    const std::uint64_t acked1 = shared.acked();
    const double server_cpu1 = server_pid > 0 ? cpu_seconds(server_pid) : -1;
    const double own_cpu1 = cpu_seconds(0);
    shared.phase.store(kDrain);
    // Let what is in flight arrive, so lost deliveries can be told apart.
    const std::uint64_t drain_end = now_ns() + static_cast<std::uint64_t>(options.drain * 1e9);
    const auto all_in = [&] {
        const std::uint64_t published = shared.sent();
        return shared.delivered() >= published * shared.fanout && (!options.acked || shared.acked() >= published);
    };
    while (now_ns() < drain_end && !all_in()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    shared.phase.store(kStop);
    for (auto& thread : threads) thread.join();

    Histogram latency;
    Tally tally;
    std::vector<std::string> errors;
    std::uint64_t late_wakeups = 0;
    std::uint64_t unwritten = 0;
    for (const auto& worker : shared.workers) {
        unwritten += worker->unwritten_bytes();
        late_wakeups += worker->late_wakeups;
        latency.merge(worker->latency);
        tally.replies += worker->tally.replies;
        tally.errors += worker->tally.errors;
        for (const auto& text : worker->errors) {
            if (errors.size() < 10) errors.push_back(text);
        }
    }
    const double seconds = static_cast<double>(t1 - t0) / 1e9;
    const double deliveries_per_s = static_cast<double>(delivered1 - delivered0) / seconds;
    const std::uint64_t expected = shared.sent() * shared.fanout;
    const std::uint64_t delivered = shared.delivered();
    auto micros = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    // CPU time per delivery, of the broker and of this generator, in microseconds.
    const double measured = static_cast<double>(std::max<std::uint64_t>(1, delivered1 - delivered0));
    const double server_cpu_us = server_cpu0 >= 0 && server_cpu1 >= 0 ? (server_cpu1 - server_cpu0) * 1e6 / measured : -1;
    const double bench_cpu_us = (own_cpu1 - own_cpu0) * 1e6 / measured;

    nlohmann::json result = {
        {"workload", "pubsub"},
        {"label", options.label},
        {"proto", std::string(proto_name(options.proto))},
        {"pubs", options.pubs},
        {"subs", options.subs},
        {"topics", options.topics},
        {"payload", options.payload},
        {"rate", options.rate},
        {"seconds", seconds},
        {"published_per_s", static_cast<double>(sent1 - sent0) / seconds},
        {"acked_per_s", static_cast<double>(acked1 - acked0) / seconds},
        {"deliveries_per_s", deliveries_per_s},
        {"msgs_per_s", deliveries_per_s / static_cast<double>(shared.fanout)},
        {"payload_mb_per_s", deliveries_per_s * static_cast<double>(options.payload) / 1e6},
        {"latency_samples", latency.count()},
        {"p50_us", micros(latency.quantile(0.50))},
        {"p99_us", micros(latency.quantile(0.99))},
        {"p999_us", micros(latency.quantile(0.999))},
        {"max_us", micros(latency.max())},
        {"server_cpu_us_per_delivery", server_cpu_us},
        {"server_cpu_util", server_cpu0 >= 0 ? (server_cpu1 - server_cpu0) / seconds : -1},
        {"bench_cpu_us_per_delivery", bench_cpu_us},
        {"bench_cpu_util", (own_cpu1 - own_cpu0) / seconds},
        {"window_deliveries", shared.window},
        {"late_wakeups", late_wakeups},
        {"unwritten_bytes", unwritten},
        {"sent", shared.sent()},
        {"delivered", delivered},
        {"lost", expected > delivered ? expected - delivered : 0},
        {"replies", tally.replies},
        {"acked_window", options.acked},
        {"unacked", options.acked && shared.acked() < shared.sent() ? shared.sent() - shared.acked() : 0},
        {"refusals", tally.errors},
        {"errors", errors},
    };
    std::cout << result.dump() << std::endl;
    const bool acks_complete = !options.acked || shared.acked() == shared.sent();
    return errors.empty() && expected == delivered && acks_complete ? 0 : 1;
}

// ---- idle connections -----------------------------------------------------------

// Two readings per run: after the connections are accepted (nothing said on
// them yet), and after each has made one round trip (what a client that
// greeted the broker and then went quiet costs).
int run_conns(const Options& options) {
    const long fd_limit = raise_fd_limit();
    if (fd_limit >= 0 && fd_limit < options.conns + 64) {
        fail("open file limit " + std::to_string(fd_limit) + " is too low for " + std::to_string(options.conns) + " connections");
    }
    const auto pid = static_cast<pid_t>(options.pid);
    const long rss_before = pid > 0 ? vm_rss_kib(pid) : -1;
    const long fds_before = pid > 0 ? open_fds(pid) : -1;
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.setup_timeout));
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(options.conns));
    std::string error;
    constexpr int kChunk = 200;  // connections per step: stays within any listen backlog

    // Waits (bounded) until the broker holds a descriptor for each connection made.
    auto wait_accepted = [&] {
        if (pid <= 0 || fds_before < 0) return;
        const auto wanted = fds_before + static_cast<long>(fds.size());
        const auto give_up = std::min(deadline, Clock::now() + std::chrono::seconds(5));
        while (open_fds(pid) < wanted && Clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    };
    while (static_cast<int>(fds.size()) < options.conns && error.empty()) {
        const int chunk_end = std::min(options.conns, static_cast<int>(fds.size()) + kChunk);
        while (static_cast<int>(fds.size()) < chunk_end) {
            const int fd = connect_tcp(options.host, options.port, deadline, error);
            if (fd < 0) break;
            fds.push_back(fd);
        }
        wait_accepted();
    }
    const double connect_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    sleep_seconds(options.settle);
    const long rss_connected = pid > 0 ? vm_rss_kib(pid) : -1;
    const long fds_connected = pid > 0 ? open_fds(pid) : -1;

    std::string leftover;
    const std::string topic = options.topic_prefix + ".idle";
    const std::string greeting = hello(options.proto, Role::idle, topic);
    std::size_t greeted = 0;
    for (std::size_t first = 0; first < fds.size() && error.empty(); first += kChunk) {
        const std::size_t last = std::min(fds.size(), first + kChunk);
        for (std::size_t k = first; k < last && error.empty(); ++k) send_all(fds[k], greeting, deadline, error);
        for (std::size_t k = first; k < last && error.empty(); ++k) {
            if (await_hello_reply(fds[k], options.proto, Role::idle, deadline, leftover, error)) ++greeted;
        }
    }
    sleep_seconds(options.settle);
    const long rss_greeted = pid > 0 ? vm_rss_kib(pid) : -1;
    for (const int fd : fds) ::close(fd);

    const auto established = static_cast<long>(fds.size());
    auto per_conn = [&](long after, long count) {
        if (rss_before < 0 || after < 0 || count <= 0) return -1.0;
        return static_cast<double>(after - rss_before) * 1024.0 / static_cast<double>(count);
    };
    nlohmann::json result = {
        {"workload", "conns"},
        {"label", options.label},
        {"proto", std::string(proto_name(options.proto))},
        {"conns", options.conns},
        {"established", established},
        {"greeted", greeted},
        {"broker_fds_before", fds_before},
        {"broker_fds_connected", fds_connected},
        {"connect_seconds", connect_seconds},
        {"rss_before_kib", rss_before},
        {"rss_connected_kib", rss_connected},
        {"rss_greeted_kib", rss_greeted},
        {"bytes_per_conn", per_conn(rss_connected, established)},
        {"bytes_per_conn_greeted", per_conn(rss_greeted, static_cast<long>(greeted))},
        {"errors", error.empty() ? nlohmann::json::array() : nlohmann::json::array({error})},
    };
    std::cout << result.dump() << std::endl;
    return error.empty() && established == options.conns ? 0 : 1;
}

// ---- filling a broker ---------------------------------------------------------------

// Sends --fill-bytes of payload (at least one message per topic) over
// --topics topics, round-robin, on one connection, keeping at most
// kFillWindow sends unacked; done when every send is acked.
int run_fill(const Options& options) {
    constexpr std::uint64_t kFillWindow = 20000;
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.setup_timeout));
    std::string error;
    const int fd = connect_tcp(options.host, options.port, deadline, error);
    if (fd < 0) fail("connecting to " + options.host + ":" + std::to_string(options.port) + ": " + error);
    const auto topics = static_cast<std::uint64_t>(options.topics);
    const std::uint64_t messages = std::max<std::uint64_t>(topics, (options.fill_bytes + options.payload - 1) / options.payload);
    const std::string head = "{\"command\": \"send\", \"topic\": \"" + options.topic_prefix + ".";
    const std::string payload(options.payload, 'x');
    const std::string tail = "\", \"msg\": \"" + payload + "\", \"delivery\": \"all\"}\n";
    std::string out;
    std::vector<char> in(kReadBufferBytes);
    std::size_t in_len = 0;
    std::uint64_t sent = 0;
    Tally tally;
    while (tally.replies < messages && tally.errors == 0) {
        out.clear();
        while (sent < messages && sent - tally.replies < kFillWindow && out.size() < options.batch_bytes) {
            out.append(head).append(std::to_string(sent % topics)).append(tail);
            ++sent;
        }
        if (!out.empty() && !send_all(fd, out, deadline, error)) fail("fill: " + error);
        pollfd readable{fd, POLLIN, 0};
        const bool must_wait = sent == messages || sent - tally.replies >= kFillWindow;
        if (::poll(&readable, 1, must_wait ? 100 : 0) < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
        if (Clock::now() > deadline) fail("fill: not every send was acked within --setup-timeout");
        while (true) {
            const ssize_t got = ::recv(fd, in.data() + in_len, in.size() - in_len, 0);
            if (got == 0) fail("fill: the server closed the connection");
            if (got < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                fail(std::string("fill: recv: ") + std::strerror(errno));
            }
            in_len += static_cast<std::size_t>(got);
            const std::size_t used = parse_stream(Proto::memq, in.data(), in_len, tally, nullptr, 0);
            std::memmove(in.data(), in.data() + used, in_len - used);
            in_len -= used;
        }
    }
    ::close(fd);
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    nlohmann::json result = {
        {"workload", "fill"},
        {"label", options.label},
        {"topics", options.topics},
        {"payload", options.payload},
        {"messages", messages},
        {"payload_bytes", messages * options.payload},
        {"acked", tally.replies},
        {"refusals", tally.errors},
        {"seconds", seconds},
        {"msgs_per_s", static_cast<double>(tally.replies) / seconds},
    };
    std::cout << result.dump() << std::endl;
    return tally.errors == 0 && tally.replies == messages ? 0 : 1;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const bench::Options options = bench::parse_options(argc, argv);
    if (!options.tls_ca.empty()) {
        if (options.proto != bench::Proto::memq && options.proto != bench::Proto::nats) {
            bench::fail("--tls is for memq and nats");
        }
        bench::enable_tls(options.tls_ca, options.proto);
    }
    if (options.workload == "conns") return bench::run_conns(options);
    if (options.workload == "fill") return bench::run_fill(options);
    return bench::run_pubsub(options);
}
