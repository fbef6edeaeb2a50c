// bench/storage/log_writer_bench.cpp — owns memq-log-bench, the figures behind
// memqd's durability settings on this machine's disk:
//   1. fdatasync latency after a 4 KiB append (median, p99, max of N);
//   2. group commit: a loop thread submitting sync_now writes to a LogWriter
//      as fast as it can, then paced at 10 000/s and 1 000/s: how many writes
//      one sync covers, and how long a submit() takes (the loop thread's
//      bound: median, p99, max);
//   3. the codec's speed on a recovery-sized log: encoding and scanning 1M
//      reserve records (one per topic) and 256 MiB of 1 KiB messages.
// Usage: memq-log-bench [DIR] [SYNCS] [WRITES]   (DIR default: $TMPDIR or /tmp;
//        a scratch directory is made inside it and removed)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <asio.hpp>

#include "data_dir.hpp"
#include "log_format.hpp"
#include "log_writer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration duration) { return std::chrono::duration<double, std::micro>(duration).count(); }

struct Summary {
    double median, p99, max;
};

Summary summarize(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    const auto at = [&](double quantile) {
        return samples[std::min(samples.size() - 1, static_cast<std::size_t>(quantile * samples.size()))];
    };
    return {at(0.5), at(0.99), samples.back()};
}

int measure_fdatasync(const std::string& directory, int rounds) {
    const std::string path = directory + "/fdatasync.bench";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::perror("open");
        return 1;
    }
    const std::string block(4096, 'x');
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(rounds));
    for (int round = 0; round < rounds; ++round) {
        if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
            std::perror("write");
            return 1;
        }
        const auto start = Clock::now();
        if (::fdatasync(fd) != 0) {
            std::perror("fdatasync");
            return 1;
        }
        samples.push_back(micros(Clock::now() - start));
    }
    ::close(fd);
    const Summary summary = summarize(samples);
    std::printf("fdatasync after a 4 KiB append, %d rounds: median %.0f us, p99 %.0f us, max %.0f us\n", rounds,
                summary.median, summary.p99, summary.max);
    return 0;
}

// rate == 0: as fast as the loop can submit; otherwise paced at rate writes/s.
int measure_group_commit(const std::string& directory, int writes, int rate) {
    asio::io_context loop;
    // Keeps the loop running between reports (poll() must not leave it stopped).
    auto work = asio::make_work_guard(loop);
    memq::DataDir dir(directory + "/data-" + std::to_string(rate));
    std::uint64_t synced = 0;
    std::uint64_t reports = 0;
    memq::LogWriter writer(
        loop, dir, memq::LogWriterOptions{std::chrono::milliseconds(1000)},
        [&](std::uint64_t seq) {
            synced = seq;
            ++reports;
        },
        [&](std::uint64_t, std::error_code, const std::string& what) { std::fprintf(stderr, "failed: %s\n", what.c_str()); });
    const std::string record(100, 'r');
    std::vector<double> submit_micros;
    submit_micros.reserve(static_cast<std::size_t>(writes));
    const auto start = Clock::now();
    for (int seq = 1; seq <= writes; ++seq) {
        if (rate > 0) {
            const auto due = start + std::chrono::nanoseconds(1'000'000'000LL * (seq - 1) / rate);
            while (Clock::now() < due) loop.run_one_until(due);
        }
        const auto before = Clock::now();
        writer.submit(memq::storage::StorageWrite{static_cast<std::uint64_t>(seq), record, false, true});
        submit_micros.push_back(micros(Clock::now() - before));
        loop.poll();  // the loop's other work: here, the on_synced reports
    }
    while (synced < static_cast<std::uint64_t>(writes)) loop.run_one_for(std::chrono::milliseconds(100));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const memq::LogWriterStats stats = writer.stats();
    const Summary submit = summarize(submit_micros);
    const std::string pace = rate > 0 ? "at " + std::to_string(rate) + "/s" : std::string("as fast as possible");
    std::printf("group commit, %d sync_now writes of 100 B submitted %s: %llu syncs, %.1f writes per sync, "
                "%.0f writes/s durable, slowest sync %.0f us\n",
                writes, pace.c_str(), static_cast<unsigned long long>(stats.syncs),
                static_cast<double>(writes) / static_cast<double>(stats.syncs), writes / seconds,
                static_cast<double>(stats.sync_nanos_max) / 1000.0);
    std::printf("submit() on the loop thread: median %.2f us, p99 %.2f us, max %.0f us (%llu on_synced reports)\n",
                submit.median, submit.p99, submit.max, static_cast<unsigned long long>(reports));
    return 0;
}

int measure_codec() {
    constexpr int kTopics = 1'000'000;
    constexpr std::size_t kCachedBytes = std::size_t{256} << 20;
    const std::string msg_json = '"' + std::string(1022, 'm') + '"';
    std::string log;
    log.reserve(kCachedBytes + kTopics * 40 + (std::size_t{1} << 20));
    const auto encode_start = Clock::now();
    memq::storage::append_header(log, 1);
    for (int topic = 0; topic < kTopics; ++topic) {
        memq::storage::append_reserve(log, "topic-" + std::to_string(topic), 1024);
    }
    std::int64_t index = 0;
    while (log.size() < kCachedBytes) memq::storage::append_message(log, "hot", index++, memq::Delivery::all, false, msg_json);
    const double encode_seconds = std::chrono::duration<double>(Clock::now() - encode_start).count();
    std::uint64_t delivered = 0;
    const auto scan_start = Clock::now();
    const memq::storage::ScanResult result = memq::storage::scan_log(
        log, memq::storage::ScanMode::strict, [&](const memq::storage::LogRecord&) { ++delivered; });
    const double scan_seconds = std::chrono::duration<double>(Clock::now() - scan_start).count();
    const double mib = static_cast<double>(log.size()) / (1 << 20);
    std::printf("codec, %.0f MiB log (%d reserves, %lld messages of 1 KiB): encode %.2f s, scan %.2f s (%.0f MiB/s, "
                "%llu records, damage %s)\n",
                mib, kTopics, static_cast<long long>(index), encode_seconds, scan_seconds, mib / scan_seconds,
                static_cast<unsigned long long>(delivered), memq::storage::to_string(result.damage));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    const char* tmp = std::getenv("TMPDIR");
    const std::string base = argc > 1 ? argv[1] : (tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int writes = argc > 3 ? std::atoi(argv[3]) : 20000;
    std::string scratch = base + "/memq-log-bench-XXXXXX";
    if (::mkdtemp(scratch.data()) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    int status = measure_fdatasync(scratch, rounds);
    if (status == 0) status = measure_group_commit(scratch, writes, 0);
    if (status == 0) status = measure_group_commit(scratch, writes / 2, 10'000);
    if (status == 0) status = measure_group_commit(scratch, writes / 20, 1'000);
    if (status == 0) status = measure_codec();
    std::error_code ignored;
    std::filesystem::remove_all(scratch, ignored);
    return status;
}
