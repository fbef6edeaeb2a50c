// disk.hpp — the simulator's disk under a durable broker's memq.log: what is
// synced, what is written and not yet synced, and what a crash leaves.
//
// Rules (the faults a crash may bring, docs/testing.md "Crashes and the disk"):
// - A sync makes every write so far stable, in order; a replace (snapshot)
//   takes effect whole or not at all (memqd writes it to a temporary file and
//   renames it after a sync).
// - A crash keeps an arbitrary number of the unsynced writes whole, in order,
//   tears the next one (an arbitrary prefix of an append; nothing of a
//   replace), and loses the rest.
// - Bit rot, when asked for, flips one bit inside a record that another
//   record follows: damage a scan can tell from a torn tail. The header and
//   the last record are never hit (damage there would look like a crash's).
// - A failed write or sync loses every unsynced write (the broker rewrites
//   its state with a snapshot to recover).
// - After a crash the recovered broker either replaces the file (a
//   snapshot) or appends to it once its torn tail is cut (cut()).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "prng.hpp"
#include "storage_write.hpp"

namespace memq::sim {

// What bit rot hit.
struct Damage {
    bool hit = false;
    std::string topic;  // the damaged record's topic
    bool take = false;  // the damaged record was a take
};

class SimDisk {
public:
    void write(storage::StorageWrite&& write) { unsynced_.push_back(std::move(write)); }
    bool has_unsynced() const { return !unsynced_.empty(); }
    // Every write so far becomes stable; returns the last one's seq (0 if none).
    std::uint64_t sync();
    void lose_unsynced() { unsynced_.clear(); }
    // The file a crash leaves; afterwards the disk holds just that, synced.
    std::string crash(Prng& prng, bool rot, Damage& damage);
    // Cuts the synced file to its first `bytes` (a torn tail after a crash).
    void cut(std::size_t bytes);
    // Rot hit the file since it was last replaced: a scan may find a corrupt
    // record inside it. Without rot, one is a bug.
    bool holds_rot() const { return holds_rot_; }
    const std::string& file() const { return file_; }

private:
    void apply(const storage::StorageWrite& write, std::string& file);

    std::string file_;  // synced
    bool holds_rot_ = false;
    std::vector<storage::StorageWrite> unsynced_;
};

}  // namespace memq::sim
