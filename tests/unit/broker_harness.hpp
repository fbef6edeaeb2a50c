// broker_harness.hpp — drives a memq::Broker through its public API the way a
// shell does, and records what each connection would receive.
//
// After every handle_* call the harness drains poll_close() and
// poll_transmit() until both are empty, reports every Transmit as written at
// once (unless the connection is stalled), and runs check_invariants(). It
// fails the running test when the core breaks the driving contract of
// broker.hpp: a Transmit for a closed or unknown connection, a second
// Transmit while one is outstanding, a Transmit whose byte count is wrong, a
// second Close for one connection, a frame that is not one "...\r\n" line.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker.hpp"

namespace memq_test {

using nlohmann::json;
using memq::ConnId;

// ---------------------------------------------------------------------------
// Client → server lines, built with nlohmann so that the tests never depend on
// the codec they check.

// "prefix" followed by the number (spelled out to dodge GCC 12's false
// -Wrestrict on `"literal" + std::to_string(n)` at -O3).
inline std::string numbered(std::string_view prefix, std::int64_t n) {
    std::string out(prefix);
    out += std::to_string(n);
    return out;
}

// The parts appended in order (same reason as numbered()).
template <typename... Parts>
std::string cat(const Parts&... parts) {
    std::string out;
    (out.append(std::string_view(parts)), ...);
    return out;
}

inline std::string line_of(const json& command) { return command.dump() + "\n"; }

inline std::string subscribe_line(const std::string& topic, const json& extra = json::object()) {
    json command = {{"command", "subscribe"}, {"topic", topic}};
    command.update(extra);
    return line_of(command);
}

inline std::string unsubscribe_line(const std::string& topic) {
    return line_of({{"command", "unsubscribe"}, {"topic", topic}});
}

inline std::string send_line(const std::string& topic, const std::string& msg, const std::string& delivery = "all",
                             const json& extra = json::object()) {
    json command = {{"command", "send"}, {"topic", topic}, {"msg", msg}, {"delivery", delivery}};
    command.update(extra);
    return line_of(command);
}

// ---------------------------------------------------------------------------
// Server → client objects, as the tests expect them.

inline json ack() { return {{"success", true}}; }

inline json failure(const std::string& reason) { return {{"success", false}, {"reason", reason}}; }

inline json message(const std::string& topic, const std::string& msg, const std::string& delivery,
                    std::int64_t index, std::optional<bool> cache = std::nullopt) {
    json out = {{"command", "send"}, {"topic", topic}, {"msg", msg}, {"delivery", delivery}, {"index", index}};
    if (cache) out["cache"] = *cache;
    return out;
}

inline const std::string kBadUtf8 = "Could not decode input as UTF-8";
inline const std::string kBadJson = "Could not parse json";
inline const std::string kMalformed = "Malformed json message";
inline const std::string kLineTooLong = "Line too long";

// ---------------------------------------------------------------------------

class BrokerHarness {
public:
    explicit BrokerHarness(const memq::Limits& limits = memq::Limits{}, std::uint64_t seed = 1)
        : broker_(limits, seed) {
        broker_.check_invariants();
    }

    // What becomes of the log a durable harness recovers from.
    enum class AfterRecovery {
        as_memqd,  // a clean log of this version goes on (its torn tail cut); any other is rewritten
        rewrite,   // the first write is a snapshot that replaces it, whatever it is
    };

    // A broker with durable topics, recovered from `log` (the bytes of a
    // memq.log; empty: a new data dir). Its writes are collected by pump()
    // and become the harness's log as they are synced (sync()).
    BrokerHarness(const memq::Limits& limits, const memq::Durability& durability, std::string_view log = {},
                  std::uint64_t incarnation = 7, AfterRecovery after = AfterRecovery::as_memqd)
        : broker_(limits, 1, recovered_incarnation(log, incarnation), durability), synced_log_(log) {
        const memq::storage::ScanResult scan = memq::storage::scan_log(
            log, memq::storage::ScanMode::strict, [&](const memq::storage::LogRecord& record) { broker_.recover(record); });
        EXPECT_TRUE(scan.header_accepted());
        std::optional<std::size_t> appendable_bytes;
        if (after == AfterRecovery::as_memqd) appendable_bytes = scan.appendable_bytes();
        if (appendable_bytes) synced_log_.resize(*appendable_bytes);  // as memqd cuts a torn tail
        if (const std::optional<std::string> problem = broker_.finish_recovery(appendable_bytes)) ADD_FAILURE() << *problem;
        pump();
    }

    // Durable topics: every write polled and not yet synced, in order.
    std::vector<memq::storage::StorageWrite>& unsynced() { return unsynced_; }
    // Syncs every polled write (what a crash keeps from now on).
    void sync() {
        for (const memq::storage::StorageWrite& write : unsynced_) apply(write, synced_log_);
        if (!unsynced_.empty()) broker_.handle_synced(unsynced_.back().seq);
        unsynced_.clear();
        pump();
    }
    void fail_storage() {
        unsynced_.clear();
        broker_.handle_storage_failed();
        pump();
    }
    // The log as a crash now would leave it: what was synced.
    const std::string& synced_log() const { return synced_log_; }
    // The log if every polled write were synced.
    std::string written_log() const {
        std::string log = synced_log_;
        for (const memq::storage::StorageWrite& write : unsynced_) apply(write, log);
        return log;
    }

    memq::Broker& broker() { return broker_; }

    void connect(ConnId conn) {
        peers_[conn] = Peer{};
        broker_.handle_connect(conn);
        pump();
    }

    // The bytes `conn` sent arrive at the core.
    void receive(ConnId conn, std::string_view bytes) {
        broker_.handle_receive(conn, bytes);
        pump();
    }

    void disconnect(ConnId conn) {
        broker_.handle_disconnect(conn);
        peer(conn).gone = true;
        pump();
    }

    // A stalled connection's writes never complete until resume() or write().
    void stall(ConnId conn) { peer(conn).stalled = true; }

    void resume(ConnId conn) {
        Peer& p = peer(conn);
        p.stalled = false;
        const std::size_t outstanding = p.outstanding;
        if (outstanding > 0) write(conn, outstanding);
        pump();
    }

    // Reports `bytes` of the outstanding Transmit of `conn` as written.
    void write(ConnId conn, std::size_t bytes) {
        Peer& p = peer(conn);
        EXPECT_LE(bytes, p.outstanding) << "test bug: writing more than was handed over";
        p.outstanding -= bytes;
        broker_.handle_written(conn, bytes);
        pump();
    }

    std::size_t outstanding(ConnId conn) { return peer(conn).outstanding; }

    // Every byte handed to `conn` so far.
    const std::string& received(ConnId conn) { return peer(conn).bytes; }

    // Every frame handed to `conn` so far, in order.
    const std::vector<memq::Frame>& frames(ConnId conn) { return peer(conn).frames; }

    std::size_t transmit_count(ConnId conn) { return peer(conn).transmits; }

    // The objects `conn` received since the last call, parsed.
    std::vector<json> take(ConnId conn) {
        Peer& p = peer(conn);
        std::vector<json> out;
        while (p.taken < p.bytes.size()) {
            const std::size_t end = p.bytes.find("\r\n", p.taken);
            if (end == std::string::npos) {
                ADD_FAILURE() << "conn " << conn << " got an unterminated line: " << p.bytes.substr(p.taken);
                break;
            }
            const std::string line = p.bytes.substr(p.taken, end - p.taken);
            p.taken = end + 2;
            try {
                out.push_back(json::parse(line));
            } catch (const json::exception& error) {
                ADD_FAILURE() << "conn " << conn << " got a line that is not JSON: " << line << " (" << error.what()
                              << ")";
            }
        }
        return out;
    }

    std::optional<memq::CloseReason> close_reason(ConnId conn) { return peer(conn).close; }
    // How many bytes `conn` had been handed when its Close came.
    std::size_t bytes_at_close(ConnId conn) { return peer(conn).bytes_at_close; }
    // How many of them were still unwritten then.
    std::size_t outstanding_at_close(ConnId conn) { return peer(conn).outstanding_at_close; }

    // The topic's subscriber count (0 for a topic the core does not know).
    std::size_t subscriber_count(std::string_view topic) const {
        const memq::Topic* found = broker_.topics().find(topic);
        return found == nullptr ? 0 : found->subscribers().size();
    }

    std::int64_t next_index(std::string_view topic) const {
        const memq::Topic* found = broker_.topics().find(topic);
        return found == nullptr ? 0 : found->next_index;
    }

private:
    struct Peer {
        std::string bytes;
        std::size_t taken = 0;
        std::vector<memq::Frame> frames;
        std::size_t transmits = 0;
        std::size_t outstanding = 0;
        bool stalled = false;
        bool gone = false;
        std::optional<memq::CloseReason> close;
        std::size_t bytes_at_close = 0;
        std::size_t outstanding_at_close = 0;
    };

    Peer& peer(ConnId conn) {
        const auto found = peers_.find(conn);
        if (found == peers_.end()) {
            ADD_FAILURE() << "test bug: conn " << conn << " was never connected";
            return peers_[conn];
        }
        return found->second;
    }

    void on_close(const memq::Close& close) {
        const auto found = peers_.find(close.conn);
        if (found == peers_.end() || found->second.gone) {
            ADD_FAILURE() << "Close for unknown or disconnected conn " << close.conn;
            return;
        }
        Peer& p = found->second;
        if (p.close) {
            ADD_FAILURE() << "second Close for conn " << close.conn;
            return;
        }
        p.close = close.reason;
        p.bytes_at_close = p.bytes.size();
        p.outstanding_at_close = p.outstanding;
    }

    void on_transmit(const memq::Transmit& transmit) {
        const auto found = peers_.find(transmit.conn);
        if (found == peers_.end() || found->second.gone) {
            ADD_FAILURE() << "Transmit for unknown or disconnected conn " << transmit.conn;
            return;
        }
        Peer& p = found->second;
        if (p.close) {
            ADD_FAILURE() << "Transmit for conn " << transmit.conn << " after its Close";
            return;
        }
        if (p.outstanding > 0) ADD_FAILURE() << "second Transmit for conn " << transmit.conn << " while one is outstanding";
        EXPECT_FALSE(transmit.frames.empty()) << "empty Transmit for conn " << transmit.conn;
        std::size_t total = 0;
        for (const memq::Frame& frame : transmit.frames) {
            if (!frame) {
                ADD_FAILURE() << "null frame for conn " << transmit.conn;
                continue;
            }
            total += frame->size();
            const bool one_line = frame->size() >= 2 && frame->ends_with("\r\n") && frame->find('\n') == frame->size() - 1;
            EXPECT_TRUE(one_line) << "frame is not one \\r\\n-terminated line: " << *frame;
            p.bytes += *frame;
            p.frames.push_back(frame);
        }
        EXPECT_EQ(transmit.bytes, total) << "Transmit.bytes for conn " << transmit.conn;
        ++p.transmits;
        p.outstanding += transmit.bytes;
        if (!p.stalled) {
            p.outstanding -= transmit.bytes;
            broker_.handle_written(transmit.conn, transmit.bytes);
        }
    }

    void pump() {
        for (int round = 0;; ++round) {
            if (round > 100000) {
                ADD_FAILURE() << "the core keeps producing output";
                return;
            }
            bool progress = false;
            while (const std::optional<memq::Close> close = broker_.poll_close()) {
                on_close(*close);
                progress = true;
            }
            while (const std::optional<memq::Transmit> transmit = broker_.poll_transmit()) {
                on_transmit(*transmit);
                progress = true;
            }
            memq::storage::StorageWrite write;
            while (broker_.poll_storage(write)) {
                unsynced_.push_back(std::move(write));
                write = {};
                progress = true;
            }
            broker_.check_invariants();
            if (!progress) return;
        }
    }

    static std::uint64_t recovered_incarnation(std::string_view log, std::uint64_t otherwise) {
        std::uint64_t incarnation = 0;
        return memq::storage::read_header(log, incarnation) == memq::storage::HeaderStatus::ok ? incarnation : otherwise;
    }
    static void apply(const memq::storage::StorageWrite& write, std::string& log) {
        if (write.replace) log.clear();
        log += write.bytes;
    }

    memq::Broker broker_;
    std::map<ConnId, Peer> peers_;
    std::string synced_log_;
    std::vector<memq::storage::StorageWrite> unsynced_;
};

}  // namespace memq_test
