// durability.hpp — what a broker with durable topics promises, as the core sees it.
//
// The core stays IO-free: it decides what must be stored and hands it out as
// StorageWrites (poll_storage); the shell or the simulator writes and syncs
// them and reports back (handle_synced, handle_storage_failed). The policy
// below is all the core needs to know; when to sync without being asked (the
// interval) is the shell's business. docs/architecture.md, "Durable topics",
// has the design and its invariants.
#pragma once

#include <cstddef>
#include <cstdint>

#include "limits.hpp"

namespace memq {

enum class SyncPolicy : std::uint8_t {
    // A send whose message is stored is acknowledged only once its record is
    // synced (group commit: one sync covers every record written before it).
    always,
    // Sends are acknowledged at once; the shell syncs every interval, so a
    // crash may lose the last interval's messages. Indices are still never
    // handed out twice: they are reserved durably ahead of use.
    interval,
};

// For when to compact, the core and the simulator's model estimate the live
// state's log bytes with these. A cached message's record holds its frame's
// msg literal, topic and index, not the frame's fixed text: a frame is at
// least this many bytes larger than its record (checked in
// tests/unit/broker_durability_test.cpp), so frame bytes minus it per message
// bound the records from above. A topic's reserve record is estimated at
// the other constant.
inline constexpr std::size_t kFrameBytesBeyondRecord = 48;
inline constexpr std::size_t kReserveRecordOverhead = 64;

// A turn's records are appended unsealed and sealed when polled; a
// snapshot's are sealed in batches of this many bytes, not one by one
// (storage::Sealing says why).
inline constexpr std::size_t kSnapshotSealBatchBytes = 64 * 1024;

// The records of one turn are built in a buffer the core keeps; it keeps
// its capacity up to this (a larger one, grown while storage was failing,
// is freed).
inline constexpr std::size_t kPendingLogCapacityKept = 4 * kMiB;

struct Durability {
    bool enabled = false;  // off: the in-memory broker, with no storage output at all
    SyncPolicy policy = SyncPolicy::interval;
    // Indices one reserve record sets aside for a topic, at first. A new
    // reservation is written when a topic has used half of its last one, so
    // a send waits for a sync only on a topic's first send, or when it
    // outruns the syncs; then (or when a renewal comes before the last one is
    // synced) the topic's reservations double, up to index_reserve_ahead_max.
    // After a crash a topic goes on from its last reservation: the unused
    // part (at most index_reserve_ahead_max) shows to resuming subscribers as
    // a gap, never as a repeat.
    std::int64_t index_reserve_ahead = 4096;
    std::int64_t index_reserve_ahead_max = 1 << 20;
    // The log is rewritten from the live state (compacted) once it is larger
    // than both compaction_floor_bytes and compaction_factor times the live
    // state's size (cached messages' records plus one reserve record a topic).
    std::size_t compaction_floor_bytes = 64 * kMiB;
    std::size_t compaction_factor = 2;
};

}  // namespace memq
