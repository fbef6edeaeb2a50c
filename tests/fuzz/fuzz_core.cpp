// tests/fuzz/fuzz_core.cpp — owns the core fuzz target (fuzz_core).
//
// The input is a program for a Broker, played the way a shell would drive
// it, honouring the API contract (handle_connect only for a free id;
// handle_disconnect exactly once, after a Close or at will; handle_written
// never more than the outstanding Transmit), with check_invariants() after
// every operation and these checks of our own:
// - a Transmit: only for a live connection with nothing outstanding, never
//   after its Close, bytes == the sum of its frames, every frame one
//   "\r\n"-terminated line that is an ack, a known error or a message whose
//   topic exists and whose index is below the topic's next index;
// - a Close: once per connection; quit and line_too_long only once every
//   byte is written, slow_consumer with its queued output dropped;
// - pending_bytes(id) never below what is outstanding, never past the limit;
// - one reply (ack or error) per non-empty line, counted against a model of
//   the line splitting, exact whenever nothing is left queued (not checked
//   for slow consumers, whose output is dropped);
// - stats only grow; connection_count() and is_connected() match.
//
// Program layout:
//   header, 6 bytes (missing bytes read as 0):
//     [0..1] line_bytes_max    = 64 + u16 % 4033      (64..4096)
//     [2..3] pending_bytes_max = 256 + u16 % 65281    (256..65536)
//     [4]    cache_messages_max = byte % 9            (0..8)
//     [5]    Prng seed
//   then operations, one opcode byte each: id = op & 7, kind = op >> 3:
//     0-1   connect id (auto: disconnect first if it is live)
//     2     disconnect id
//     3-10  receive on id: 1 length byte, then that many bytes
//     11-12 receive on id: 2 length bytes (little endian), then that many bytes
//     13-20 receive a canned command line on id: 2 bytes (selector, argument)
//     21-24 drain: write everything outstanding, for every connection not stalled
//     25-27 partial write on id: 1 byte n, writes outstanding * n / 255 bytes
//     28-29 stall id (toggle): drain skips it, so it fills up
//     30    reconnect id: disconnect it (if live), connect it again
//     31    hold (toggle): while held, handle_* calls are not followed by
//           draining poll_close/poll_transmit, so a batch of calls (a
//           disconnect, a reused id) meets stale entries in the core's work
//           lists; releasing the hold drains at once. This batches more than
//           the letter of broker.hpp ("after each handle_* call drain"), which
//           handle_disconnect's comment says the core tolerates.
//   receive on a free id connects it first. At the end the hold is released,
//   every connection drained once more, then disconnected, and the broker
//   must be empty.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker.hpp"
#include "fuzz_check.hpp"
#include "protocol.hpp"

namespace {

using namespace memq;

constexpr const char* kTarget = "fuzz_core";
constexpr std::size_t kConnections = 8;

// The program's bytes, read front to back; past the end everything is 0.
class Program {
public:
    explicit Program(std::string_view bytes) : bytes_(bytes) {}
    bool done() const { return pos_ >= bytes_.size(); }
    std::uint8_t byte() { return done() ? 0 : static_cast<std::uint8_t>(bytes_[pos_++]); }
    std::uint16_t u16() {
        const std::uint16_t low = byte();
        return static_cast<std::uint16_t>(low | (byte() << 8));
    }
    std::string_view take(std::size_t n) {
        const std::string_view out = bytes_.substr(pos_ < bytes_.size() ? pos_ : bytes_.size(), n);
        pos_ += out.size();
        return out;
    }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

// What the harness, standing in for the shell, knows about one id.
struct ConnModel {
    bool live = false;           // handle_connect called, handle_disconnect not yet
    bool close_seen = false;     // the core emitted a Close for it
    bool slow_consumer = false;  // closed as a slow consumer: replies are not counted
    bool stalled = false;        // its peer does not read: drain skips it
    std::size_t outstanding = 0; // bytes of the current Transmit not yet reported written
    // The model of its input, for the reply count.
    std::string partial;         // unfinished line
    bool input_spent = false;    // after "quit" or a line past the limit
    std::uint64_t replies_due = 0;
    std::uint64_t replies_seen = 0;
};

std::string canned_line(std::uint8_t selector, std::uint8_t argument) {
    static constexpr std::string_view kTopics[] = {"a", "b", "c", "\\u00fc \\\"x\\\""};
    const std::string topic(kTopics[(selector >> 3) % 4]);
    const std::string cache[] = {"", ", \"cache\": true", ", \"cache\": false"};
    const std::string& cache_field = cache[(selector >> 5) % 3];
    const std::size_t msg_bytes = static_cast<std::size_t>(argument & 63) * 32;
    const std::size_t repeat = 1 + (argument >> 6);
    std::string line;
    switch (selector % 8) {
        case 0: line = "{\"command\": \"subscribe\", \"topic\": \"" + topic + "\"}"; break;
        case 1:
            line = "{\"command\": \"subscribe\", \"topic\": \"" + topic +
                   "\", \"last_seen\": " + std::to_string(static_cast<int>(argument % 8) - 2) + cache_field + "}";
            break;
        case 2: line = "{\"command\": \"unsubscribe\", \"topic\": \"" + topic + "\"}"; break;
        case 3:
        case 4:
            line = "{\"command\": \"send\", \"topic\": \"" + topic + "\", \"msg\": \"" + std::string(msg_bytes, 'm') +
                   "\", \"delivery\": \"" + (selector % 8 == 3 ? "all" : "one") + "\"" + cache_field + "}";
            break;
        case 5: line = "{\"command\": \"send\", \"topic\": \"" + topic +
                       "\", \"msg\": \"caf\xC3\xA9 \\n\\t\\u0000 \\ud83d\\ude00\", \"delivery\": \"all\"}";
            break;
        case 6: {
            static constexpr std::string_view kBad[] = {
                "{\"command\": \"subscribe\"}", "{\"command\": \"send\", \"topic\": \"a\"", "\xC0\xAF",
                "[1, 2]", "{\"command\": \"subscribe\", \"topic\": \"a\", \"last_seen\": true}", "   ",
                "{\"command\": \"publish\", \"topic\": \"a\"}", "quit "};
            line = std::string(kBad[(selector >> 3) % 8]);
            break;
        }
        default:
            line = "{\"command\":\"send\",\"topic\":\"" + topic + "\",\"msg\":\"" + std::string(msg_bytes, '\\') +
                   std::string(argument & 1, '\\') + "\",\"delivery\":\"one\"" + cache_field + "}";
            break;
    }
    std::string out;
    for (std::size_t i = 0; i < repeat; ++i) out += line + (i % 2 == 0 ? "\n" : "\r\n");
    return out;
}

class Harness {
public:
    Harness(const Limits& limits, std::uint64_t seed, std::string_view input)
        : limits_(limits), broker_(limits, seed), input_(input) {}

    void run(Program& program) {
        while (!program.done()) {
            const std::uint8_t op = program.byte();
            const ConnId id = op & 7;
            const unsigned kind = op >> 3;
            if (kind <= 1) {
                if (conns_[id].live) disconnect(id);
                connect(id);
            } else if (kind == 2) {
                if (conns_[id].live) disconnect(id);
            } else if (kind <= 10) {
                receive(id, program.take(program.byte()));
            } else if (kind <= 12) {
                receive(id, program.take(program.u16()));
            } else if (kind <= 20) {
                const std::uint8_t selector = program.byte();
                const std::uint8_t argument = program.byte();
                const std::string line = canned_line(selector, argument);
                receive(id, line);
            } else if (kind <= 24) {
                drain(/*include_stalled=*/false);
            } else if (kind <= 27) {
                const std::uint8_t n = program.byte();
                ConnModel& model = conns_[id];
                if (model.live) write(id, model.outstanding * n / 255);
            } else if (kind <= 29) {
                conns_[id].stalled = !conns_[id].stalled;
            } else if (kind == 30) {
                if (conns_[id].live) disconnect(id);
                connect(id);
            } else {
                hold_ = !hold_;
                pump();
            }
            check();
        }
        hold_ = false;
        pump();
        drain(/*include_stalled=*/true);
        check();
        for (ConnId id = 0; id < kConnections; ++id) {
            if (conns_[id].live) disconnect(id);
            check();
        }
        if (broker_.connection_count() != 0) fail("connections left after every disconnect");
    }

private:
    [[noreturn]] void fail(const std::string& what) const { fuzz::fail(kTarget, what, input_); }

    void connect(ConnId id) {
        ConnModel& model = conns_[id];
        model = ConnModel{};
        model.live = true;
        broker_.handle_connect(id);
        ++connects_;
        pump();
    }

    void disconnect(ConnId id) {
        broker_.handle_disconnect(id);
        conns_[id] = ConnModel{};
        pump();
    }

    void receive(ConnId id, std::string_view bytes) {
        if (!conns_[id].live) connect(id);
        model_input(conns_[id], bytes);
        broker_.handle_receive(id, bytes);
        pump();
    }

    void write(ConnId id, std::size_t bytes) {
        ConnModel& model = conns_[id];
        if (bytes > model.outstanding) fail("harness bug: writing more than outstanding");
        broker_.handle_written(id, bytes);
        model.outstanding -= bytes;
        pump();
    }

    void drain(bool include_stalled) {
        for (bool progress = true; progress;) {
            progress = false;
            for (ConnId id = 0; id < kConnections; ++id) {
                ConnModel& model = conns_[id];
                if (!model.live || model.outstanding == 0 || (model.stalled && !include_stalled)) continue;
                write(id, model.outstanding);
                progress = true;
            }
        }
    }

    // Lines as the broker must split them; one reply due per non-empty line,
    // and one for a line past the limit; nothing after "quit" or that.
    void model_input(ConnModel& model, std::string_view bytes) {
        if (model.close_seen || model.input_spent) return;
        model.partial.append(bytes);
        std::string_view rest = model.partial;
        for (;;) {
            const std::size_t newline = rest.find('\n');
            const std::string_view line = rest.substr(0, newline);
            if (line.size() > limits_.line_bytes_max) {
                ++model.replies_due;
                model.input_spent = true;
                break;
            }
            if (newline == std::string_view::npos) break;
            rest.remove_prefix(newline + 1);
            const std::string_view trimmed = trim_line(line);
            if (trimmed == "quit") {
                model.input_spent = true;
                break;
            }
            if (!trimmed.empty()) ++model.replies_due;
        }
        model.partial = model.input_spent ? std::string() : std::string(rest);
    }

    void pump() {
        if (hold_) return;
        for (bool progress = true; progress;) {
            progress = false;
            while (const std::optional<Close> close = broker_.poll_close()) {
                on_close(*close);
                progress = true;
            }
            while (const std::optional<Transmit> transmit = broker_.poll_transmit()) {
                on_transmit(*transmit);
                progress = true;
            }
        }
    }

    void on_close(const Close& close) {
        if (close.conn >= kConnections || !conns_[close.conn].live) fail("Close for a connection that is not live");
        ConnModel& model = conns_[close.conn];
        if (model.close_seen) fail("a second Close for one connection");
        model.close_seen = true;
        const std::size_t pending = broker_.pending_bytes(close.conn);
        if (close.reason == CloseReason::slow_consumer) {
            model.slow_consumer = true;
            if (pending != model.outstanding) fail("slow_consumer Close with output still queued");
        } else if (pending != 0 || model.outstanding != 0) {
            fail("graceful Close (" + std::string(to_string(close.reason)) + ") before every byte was written");
        }
        // The shell shuts the socket down; here the peer simply goes away
        // at the program's next disconnect, or at the end.
    }

    void on_transmit(const Transmit& transmit) {
        if (transmit.conn >= kConnections || !conns_[transmit.conn].live) fail("Transmit for a connection that is not live");
        ConnModel& model = conns_[transmit.conn];
        if (model.close_seen) fail("Transmit after the connection's Close");
        if (model.outstanding != 0) fail("a second Transmit while one is outstanding");
        if (transmit.frames.empty() || transmit.bytes == 0) fail("an empty Transmit");
        std::size_t bytes = 0;
        for (const Frame& frame : transmit.frames) {
            if (frame == nullptr) fail("a null frame");
            bytes += frame->size();
            check_frame(*frame, model);
        }
        if (bytes != transmit.bytes) fail("Transmit.bytes is not the sum of its frames");
        model.outstanding = transmit.bytes;
    }

    void check_frame(const std::string& frame, ConnModel& model) {
        if (!frame.ends_with("\r\n") || frame.find('\n') != frame.size() - 1) fail("a frame that is not one \\r\\n line");
        if (!fuzz::strict_utf8(frame)) fail("a frame that is not UTF-8");
        if (frame == "{\"success\": true}\r\n") {
            ++model.replies_seen;
            return;
        }
        if (frame.starts_with("{\"success\": false")) {
            bool known = false;
            for (const LineError error : {LineError::bad_utf8, LineError::bad_json, LineError::malformed,
                                          LineError::line_too_long, LineError::internal, LineError::topic_too_long,
                                          LineError::too_many_subscriptions}) {
                known = known || frame == encode_error(error);
            }
            if (!known) fail("an error frame with an unknown reason: " + frame);
            if (frame == encode_error(LineError::internal)) fail("the core answered Internal exception");
            ++model.replies_seen;
            return;
        }
        const nlohmann::json message = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
        if (message.is_discarded() || !message.is_object()) fail("a frame that is not a JSON object: " + frame);
        if (frame.starts_with("{\"success\": true, ")) {
            // The memq extensions' replies: hello names the broker; holes
            // lists index ranges, none in a broker that never recovered.
            const auto broker = message.find("broker");
            const auto holes = message.find("holes");
            const bool hello = broker != message.end() && *broker == "memqd" && message.contains("incarnation");
            const bool no_holes = holes != message.end() && holes->is_array() && holes->empty() && message.size() == 2;
            if (!hello && !no_holes) fail("a success reply of unknown shape: " + frame);
            ++model.replies_seen;
            return;
        }
        const auto topic = message.find("topic");
        const auto index = message.find("index");
        const auto command = message.find("command");
        if (command == message.end() || *command != "send" || topic == message.end() || !topic->is_string() ||
            index == message.end() || !index->is_number_integer()) {
            fail("a message frame without command/topic/index: " + frame);
        }
        const Topic* known = broker_.topics().find(topic->get_ref<const std::string&>());
        const auto value = index->get<std::int64_t>();
        if (known == nullptr || value < 0 || value >= known->next_index) fail("a message index the topic never gave: " + frame);
    }

    void check() {
        broker_.check_invariants();
        std::size_t live = 0;
        for (ConnId id = 0; id < kConnections; ++id) {
            const ConnModel& model = conns_[id];
            if (broker_.is_connected(id) != model.live) fail("is_connected(" + std::to_string(id) + ") disagrees");
            if (!model.live) continue;
            ++live;
            const std::size_t pending = broker_.pending_bytes(id);
            if (pending > limits_.pending_bytes_max) fail("pending bytes past pending_bytes_max");
            if (pending < model.outstanding) fail("pending_bytes below the outstanding Transmit");
            if (model.slow_consumer) continue;
            if (model.replies_seen > model.replies_due) {
                fail("conn " + std::to_string(id) + ": more replies (" + std::to_string(model.replies_seen) +
                     ") than lines (" + std::to_string(model.replies_due) + ")");
            }
            // Held, a slow consumer's Close is not seen yet: its dropped output looks written.
            if (!hold_ && pending == model.outstanding && model.replies_seen != model.replies_due) {
                fail("conn " + std::to_string(id) + ": nothing queued, yet " + std::to_string(model.replies_seen) +
                     " replies for " + std::to_string(model.replies_due) + " lines");
            }
        }
        if (broker_.connection_count() != live) fail("connection_count() disagrees");

        const BrokerStats& now = broker_.stats();
        const auto grew = [](std::uint64_t before, std::uint64_t after) { return after >= before; };
        if (!grew(stats_.lines_processed, now.lines_processed) || !grew(stats_.errors_replied, now.errors_replied) ||
            !grew(stats_.messages_published, now.messages_published) ||
            !grew(stats_.messages_delivered, now.messages_delivered) ||
            !grew(stats_.slow_consumer_closes, now.slow_consumer_closes) ||
            !grew(stats_.line_too_long_closes, now.line_too_long_closes)) {
            fail("a stats counter went down");
        }
        if (now.connections_accepted != connects_) fail("stats.connections_accepted != handle_connect calls");
        stats_ = now;
    }

    Limits limits_;
    Broker broker_;
    std::string_view input_;
    std::array<ConnModel, kConnections> conns_{};
    std::uint64_t connects_ = 0;
    BrokerStats stats_{};
    bool hold_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    Program program(input);
    Limits limits;
    limits.line_bytes_max = 64 + program.u16() % 4033;
    limits.pending_bytes_max = 256 + program.u16() % 65281;
    limits.cache_messages_max = program.byte() % 9;
    const std::uint64_t seed = program.byte();
    Harness harness(limits, seed, input);
    harness.run(program);
    return 0;
}
