// durable_store.hpp — memqd's durable topics on the shell's side (--data-dir):
// opens and locks the data dir, reads the log back into the core at start,
// carries the core's StorageWrites to the LogWriter, and the writer's reports
// (synced, failed) back to the core on the event loop.
//
// Rules:
// - Start-up refuses (StartError, memqd exits 2) rather than guess: a data
//   dir another memqd holds, a log whose header is refused, a corrupt record
//   inside the log without --salvage, a log with more topics than the limits.
// - A torn tail (a crash cut the last write short) is cut off the file, and
//   logged; nothing before it is lost.
// - The incarnation is the log's, so resuming clients see the same broker.
//   A salvaged log, or a new data dir, gets a fresh one: after salvage some
//   records are gone, and clients must re-read from the cache (a Reset).
// - After a storage failure the core refuses sends; every
//   kStorageRetryInterval the store asks the core for a snapshot, and the
//   first one written and synced ends the failure.
// - stop() writes an exact snapshot (no reserved indices left over, so a
//   clean restart shows no gap) and waits for the writer to sync it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <asio.hpp>

#include "broker.hpp"
#include "data_dir.hpp"
#include "duration_histogram.hpp"
#include "log.hpp"
#include "log_writer.hpp"
#include "options.hpp"
#include "tcp_server.hpp"

namespace memq {

inline constexpr std::chrono::milliseconds kStorageRetryInterval{1000};

// Why memqd cannot start on this data dir; what() is the one-line message.
class StartError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class DurableStore {
public:
    // Locks DIR and reads and checks its log. Throws StartError.
    DurableStore(const ServerOptions& options, const Logger& log);
    ~DurableStore();
    DurableStore(const DurableStore&) = delete;
    DurableStore& operator=(const DurableStore&) = delete;

    // The incarnation the broker must run under: the log's, or `fresh`.
    std::uint64_t incarnation(std::uint64_t fresh) const;
    // Hands the log's records to `broker` and finishes its recovery. Throws StartError.
    void recover(Broker& broker);
    // From here on the core's writes go to the log, and its reports come back.
    // Each sync's duration goes to `syncs` (memq_storage_sync_seconds).
    void start(asio::io_context& io, Broker& broker, TcpServer& server, DurationHistogram* syncs);
    // The graceful stop: an exact snapshot, written and synced.
    void stop();


private:
    void arm_retry();
    // About how much heap the recovery will fill (HeapPrefault), from the first scan.
    std::size_t expected_heap_bytes() const;

    const Logger& log_;
    ServerOptions options_;
    std::unique_ptr<DataDir> directory_;
    MappedLog log_file_;  // the log as found at start; unmapped after recovery
    storage::ScanResult scan_;
    std::size_t reserve_records_ = 0;  // in the good prefix: about one per known topic
    bool salvaged_ = false;
    Broker* broker_ = nullptr;
    TcpServer* server_ = nullptr;
    std::unique_ptr<LogWriter> writer_;
    std::unique_ptr<asio::steady_timer> retry_timer_;
    bool stopped_ = false;
};

}  // namespace memq
