// swarm.hpp — the options of one simulated run, all drawn from its seed.
//
// Rules: "swarm testing" — every run gets its own mix: how many clients and
// topics, the broker's limits, the socket buffers, the workload weights and
// the fault rates, and any feature may be switched off entirely. The draw
// uses memq::Prng only, so one seed names one set of options on every
// platform. Nothing here reads a clock or the environment.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "durability.hpp"
#include "limits.hpp"
#include "prng.hpp"

namespace memq::sim {

// A probability, kept as a 64-bit threshold: hit() is one draw and one compare.
class Rate {
public:
    constexpr Rate() = default;
    // `ppm` parts per million; 1'000'000 and above is "always", 0 "never".
    static constexpr Rate per_million(std::uint64_t ppm) {
        Rate rate;
        rate.ppm_ = ppm > kMillion ? kMillion : ppm;
        rate.threshold_ = rate.ppm_ * (~std::uint64_t{0} / kMillion);
        return rate;
    }
    bool hit(Prng& prng) const {
        if (ppm_ >= kMillion) return true;
        return prng.next() < threshold_;
    }
    std::uint64_t ppm() const { return ppm_; }

private:
    static constexpr std::uint64_t kMillion = 1'000'000;
    std::uint64_t ppm_ = 0;
    std::uint64_t threshold_ = 0;
};

// What a simulated client can do with one request.
enum class OpKind : std::uint8_t {
    subscribe,
    unsubscribe,
    send_all,
    send_one,
    raw_command,  // a valid command written by hand: odd spacing, key order, duplicate keys
    garbage,      // bad UTF-8, bad JSON, malformed commands
    blank,        // empty or whitespace-only lines: no reply
    quit,         // the line "quit": replies flushed, then a graceful close
    too_long,     // a line past line_bytes_max: "Line too long", then a graceful close
};
inline constexpr std::size_t kOpKinds = static_cast<std::size_t>(OpKind::too_long) + 1;  // the last kind, + 1

struct SwarmOptions {
    Limits limits;
    std::uint32_t clients = 4;
    std::uint32_t topics = 4;
    // Clients [0, garbage_clients) may send garbage, blank, quit and too-long lines.
    std::uint32_t garbage_clients = 0;
    // Each connection's socket buffer (server → client) holds this many bytes,
    // drawn per connection from [socket_buffer_min, socket_buffer_max].
    std::size_t socket_buffer_min = 1;
    std::size_t socket_buffer_max = 1;
    std::array<std::uint32_t, kOpKinds> weights{};
    std::uint32_t burst_max = 1;  // requests a client issues at once, at most
    Rate issue;                   // a client issues requests this tick
    Rate deliver;                 // a client's bytes reach the broker this tick
    Rate write;                   // the broker's bytes move into a socket buffer this tick
    Rate read;                    // a client reads this tick
    Rate whole;                   // a link moves all it can, not a random part of it
    Rate stall;                   // a reader stops reading (its socket buffer fills up)
    Rate unstall;
    Rate disconnect;          // a client drops its connection
    Rate reconnect;           // an offline client comes back
    Rate resume;              // ... re-subscribing where it stopped (resubscribe_all)
    Rate linger;              // after a Close, the client keeps reading this tick
    Rate explicit_last_seen;  // a subscribe gives last_seen
    Rate explicit_cache;      // a subscribe or send gives "cache"
    Rate long_message;        // a send carries a long message
    Rate restart;             // the broker process restarts this tick (crashes, when durable): every connection is gone
    std::size_t long_message_max = 0;

    // Durable topics (broker/core/durability.hpp), and the disk under them (sim/disk.hpp).
    Durability durability;        // enabled in some runs
    std::uint32_t sync_latency_min = 1;  // ticks from a write that asks for a sync until the sync is done
    std::uint32_t sync_latency_max = 1;
    std::uint32_t sync_interval = 1;     // ticks between the shell's interval syncs
    Rate write_fails;             // a write fails (like ENOSPC or EIO)
    Rate sync_fails;              // a sync fails
    Rate rot;                     // a crash comes with a flipped bit in a record
    std::uint32_t retry_interval = 1;    // ticks between snapshots while storage is failed
};

SwarmOptions draw_swarm(std::uint64_t seed);

// One line, for logs and failure reports.
std::string describe(const SwarmOptions& options);
std::string_view to_string(OpKind kind);

}  // namespace memq::sim
