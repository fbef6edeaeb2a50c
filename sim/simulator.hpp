// simulator.hpp — one deterministic run of the broker core against simulated
// clients on a virtual network, checked at every step.
//
// Rules:
// - One 64-bit seed decides everything: the run's options (swarm.hpp) and
//   every event after, through child seeds derived with splitmix64. The
//   simulator reads no clock and no environment while it runs (the wall time
//   it reports is measured around the run, never inside it).
// - Two phases. Faults on (safety): clients issue requests, links cut and
//   delay bytes, readers stall, clients drop and come back. Faults off
//   (liveness): no new requests; every queue drains; then every request must
//   be answered and every live subscriber must have received what it was owed.
// - A failure stops the run and says what was expected, what happened, the
//   last events before it, and the one command that replays it.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

#include "model.hpp"

namespace memq::sim {

struct RunConfig {
    std::uint64_t ops = 100'000;  // requests issued in the fault phase, at most
    std::uint64_t ticks = 0;      // ticks of the fault phase, at most (0: no bound)
    std::uint64_t drain_ticks_max = 100'000;
    // The core's check_invariants runs after every tick (0), or after every
    // n-th call into the core (1: after each call: slower, pinpoints the call).
    std::uint32_t invariants_every = 0;
    bool trace = false;              // print every event to trace_out
    std::FILE* trace_out = nullptr;  // stdout when null
};

struct RunStats {
    std::uint64_t ops = 0;
    std::uint64_t ticks = 0;
    std::uint64_t drain_ticks = 0;
    std::uint64_t core_calls = 0;
    std::uint64_t connects = 0;
    std::uint64_t resumes = 0;
    std::uint64_t drops = 0;              // clients that dropped their connection
    std::uint64_t restarts = 0;           // broker restarts (a new core, a new incarnation; when durable, crashes)
    std::uint64_t syncs = 0;              // durable: syncs done
    std::uint64_t storage_failures = 0;   // durable: failed writes or syncs
    std::uint64_t salvages = 0;           // durable: recoveries that had to salvage a rotten log
    std::uint64_t logs_continued = 0;     // durable: recoveries that appended to the log rather than replace it
    std::uint64_t holes_appended = 0;     // durable: hole records those recoveries appended
    std::uint64_t resets = 0;             // Reset events the clients got
    std::array<std::uint64_t, kCloseReasonCount> closes{};  // by CloseReason
    std::uint64_t acks = 0;
    std::uint64_t failures = 0;
    std::uint64_t messages = 0;
    std::uint64_t gaps = 0;
    std::uint64_t bytes_received = 0;
    ModelStats model;
};

struct RunResult {
    std::uint64_t seed = 0;
    bool ok = true;
    std::uint64_t digest = 0;
    RunStats stats;
    std::string options;  // the swarm's draw, one line
    std::string failure;  // what was expected and what happened; empty when ok
    std::string recent;   // the last events before the failure, one per line
    std::string replay;   // the command that replays this run
};

RunResult simulate(std::uint64_t seed, const RunConfig& config);

// `memq-sim --seed N` plus whatever else of `config` the replay needs.
std::string replay_command(std::uint64_t seed, const RunConfig& config);

}  // namespace memq::sim
