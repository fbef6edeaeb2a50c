// storage_write.hpp — owns StorageWrite, one write of the log as the core asks
// for it and the shell (broker/server/log_writer.hpp) or the simulator's disk
// performs it. Plain data, standard library only.
#pragma once

#include <cstdint>
#include <string>

namespace memq::storage {

struct StorageWrite {
    // Grows by one per write, from 1; writes are performed strictly in seq order.
    std::uint64_t seq = 0;
    // replace == false: records to append to the log. replace == true: a whole
    // new log (header and snapshot) that takes the old one's place atomically.
    std::string bytes;
    bool replace = false;
    // Sync as soon as possible (group commit) rather than within the interval.
    bool sync_now = false;
};

}  // namespace memq::storage
