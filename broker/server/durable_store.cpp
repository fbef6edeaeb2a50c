// durable_store.cpp — the data dir at start, and the core's log while running (see durable_store.hpp).
#include "durable_store.hpp"

#include <algorithm>
#include <utility>

#include <unistd.h>

#include "heap_prefault.hpp"
#include "log_format.hpp"

namespace memq {

DurableStore::DurableStore(const ServerOptions& options, const Logger& log) : log_(log), options_(options) {
    try {
        directory_ = std::make_unique<DataDir>(options.data_dir);
        log_file_ = directory_->map_log();
    } catch (const DataDirError& error) {
        throw StartError(error.what());
    }
    scan_ = storage::scan_log(log_file_.bytes(), storage::ScanMode::strict, [this](const storage::LogRecord& record) {
        if (record.kind == storage::RecordKind::reserve) ++reserve_records_;
    });
    if (!scan_.header_accepted()) {
        throw StartError("the log " + directory_->log_path() + " is not a memq log or is damaged at its start (" +
                         storage::to_string(scan_.header) + "); memqd does not start on it");
    }
    if (scan_.damage == storage::Damage::corrupt_middle) {
        if (!options.salvage) {
            throw StartError("the log " + directory_->log_path() + " has a corrupt record at byte " +
                             std::to_string(scan_.damage_offset) +
                             ", followed by good ones; memqd does not start on it. Back the data dir up, then "
                             "start with --salvage to keep every good record (docs/operations.md, \"Salvage\")");
        }
        salvaged_ = true;
    }
}

DurableStore::~DurableStore() { stop(); }

namespace {

std::uint64_t available_memory_bytes() {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES);
    const long page_bytes = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page_bytes > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_bytes) : 0;
}

}  // namespace

std::uint64_t DurableStore::incarnation(std::uint64_t fresh) const {
    if (salvaged_ || scan_.header != storage::HeaderStatus::ok) return fresh;
    return scan_.incarnation;
}

std::size_t DurableStore::expected_heap_bytes() const {
    // Measured on the recovery benchmark's data dir (docs/architecture.md):
    // a cached message's frame is about 1.25 bytes of the log's each, and it
    // costs about 128 bytes besides (its block, the cache's order, malloc's
    // headers); a topic about 200. No more than the limits let the cache keep.
    const Limits& limits = options_.limits;
    const std::uint64_t topics = std::min<std::uint64_t>(reserve_records_, limits.indexed_topics_max);
    const std::uint64_t messages = scan_.records - std::min(scan_.records, reserve_records_);
    const std::uint64_t frame_bytes = std::min<std::uint64_t>(log_file_.bytes().size() / 4 * 5, limits.cache_bytes_max);
    const std::uint64_t bytes = frame_bytes + std::min<std::uint64_t>(messages, frame_bytes / 32) * 128 + topics * 200;
    return static_cast<std::size_t>(std::min<std::uint64_t>(bytes, available_memory_bytes() / 2));
}

void DurableStore::recover(Broker& broker) {
    const auto started = std::chrono::steady_clock::now();
    const storage::ScanMode mode = salvaged_ ? storage::ScanMode::salvage : storage::ScanMode::strict;
    // The pages the records below fill are faulted in on the other core meanwhile.
    HeapPrefault prefault(expected_heap_bytes());
    broker.expect_recovered_topics(reserve_records_);
    const storage::ScanResult scan =
        storage::scan_log(log_file_.bytes(), mode, [&](const storage::LogRecord& record) { broker.recover(record); });
    // A clean log of this version goes on as it is (its torn tail cut below);
    // any other is replaced by the first write, a snapshot.
    const std::optional<std::size_t> appendable_bytes = scan.appendable_bytes();
    if (const std::optional<std::string> problem = broker.finish_recovery(appendable_bytes)) throw StartError(*problem);
    prefault.finish();
    const std::size_t log_bytes = log_file_.bytes().size();
    log_file_ = MappedLog();  // the core copied what it keeps; unmapped before any cut
    if (scan.damage == storage::Damage::torn_tail) {
        log_.warn("data dir ", options_.data_dir, ": cut a torn tail of ", log_bytes - scan.good_bytes,
                  " bytes at byte ", scan.good_bytes, " (a write a crash cut short)");
        try {
            directory_->cut_log(scan.good_bytes);
        } catch (const DataDirError& error) {
            throw StartError(error.what());
        }
    }
    if (salvaged_) {
        log_.warn("data dir ", options_.data_dir, ": salvaged: skipped ", scan.skipped_regions,
                  " corrupt region(s), ", scan.skipped_bytes, " bytes; kept ", scan.records,
                  " good records; resuming clients get a Reset (a new incarnation)");
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log_.info("data dir ", options_.data_dir, ": recovered ", broker.topics().size(), " topics and ",
              broker.topics().cached_messages(), " cached messages (", scan.records, " records, ", log_bytes,
              " bytes) in ", took.count(), " ms (", prefault.populated_bytes() >> 20, " MiB of heap faulted in ahead); ",
              appendable_bytes ? "appending to the log" : "rewriting the log");
}

void DurableStore::start(asio::io_context& io, Broker& broker, TcpServer& server, DurationHistogram* syncs) {
    broker_ = &broker;
    server_ = &server;
    LogWriterOptions writer_options;
    writer_options.sync_interval = std::chrono::milliseconds(options_.fsync_interval_ms);
    if (syncs != nullptr) writer_options.on_sync_time = [syncs](std::chrono::nanoseconds took) { syncs->observe(took); };
    writer_ = std::make_unique<LogWriter>(
        io, *directory_, writer_options,
        [this](std::uint64_t synced) {
            const bool was_failed = !broker_->storage_healthy();
            broker_->handle_synced(synced);
            if (was_failed && broker_->storage_healthy()) log_.info("storage writable again: sends are taken");
            server_->pump();
        },
        [this](std::uint64_t first_unsure, std::error_code error, const std::string& what) {
            log_.error("storage failed (", what, ": ", error.message(), "; writes from ", first_unsure,
                       " on may be lost): sends are refused with \"Storage unavailable\" until a write succeeds");
            broker_->handle_storage_failed();
            server_->pump();
        });
    server.set_storage_sink([this](storage::StorageWrite&& write) { return writer_->submit(std::move(write)); });
    retry_timer_ = std::make_unique<asio::steady_timer>(io);
    arm_retry();
    server.pump();  // the first write: a snapshot that replaces the log, or the holes recovery found
}

void DurableStore::arm_retry() {
    retry_timer_->expires_after(kStorageRetryInterval);
    retry_timer_->async_wait([this](const asio::error_code& error) {
        if (error || stopped_) return;
        if (!broker_->storage_healthy()) {
            broker_->request_snapshot();
            server_->pump();
        }
        arm_retry();
    });
}

void DurableStore::stop() {
    if (stopped_ || writer_ == nullptr) return;
    stopped_ = true;
    retry_timer_->cancel();
    if (broker_->storage_healthy()) {
        broker_->request_snapshot(true);
        server_->pump();
    }
    writer_->stop();
    const LogWriterStats stats = writer_->stats();
    log_.info("data dir ", options_.data_dir, ": ", stats.writes, " writes, ", stats.syncs, " syncs, ",
              stats.failures, " failures; synced through write ", stats.synced_seq);
}

}  // namespace memq
