// recovery_core_bench.cpp — owns memq-recovery-core-bench: the core's share
// of a recovery-sized data dir, in one process, without a disk or a process
// start: a GeneratorPlan's log (data_dir_generator.hpp) built in memory, then
//   1. recovery: scan_log handing every record to Broker::recover, then
//      finish_recovery (what memqd's start does after mapping the log);
//   2. compaction: the snapshot the core serializes on the event loop
//      (request_snapshot, then the poll_storage that builds it): the loop
//      stall a compaction causes at this size (into a fresh buffer each
//      time, as memqd's writes move to the writer thread).
// Each is timed --rounds times (a fresh core per recovery; the compactions on
// the last one); prints one JSON line with every round, the medians and the
// CPU time of the process, so that a loaded machine shows as wall >> CPU.
//
// Usage: memq-recovery-core-bench [--topics N] [--cache-mib M] [--hot-topics H]
//                                 [--payload B] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker.hpp"
#include "data_dir_generator.hpp"
#include "log_format.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double cpu_seconds() {
    timespec now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

std::string list(const std::vector<double>& values) {
    std::string text = "[";
    for (std::size_t at = 0; at < values.size(); ++at) {
        char number[32];
        std::snprintf(number, sizeof number, "%s%.3f", at == 0 ? "" : ", ", values[at]);
        text += number;
    }
    return text + "]";
}

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr,
                 "memq-recovery-core-bench: %s\nusage: memq-recovery-core-bench [--topics N] [--cache-mib M] "
                 "[--hot-topics H] [--payload B] [--rounds R]\n",
                 problem.c_str());
    std::exit(2);
}

std::unique_ptr<memq::Broker> make_core(const memq::bench::GeneratorPlan& plan, std::uint64_t most_per_topic) {
    memq::Limits limits;
    limits.cache_messages_max = most_per_topic;
    limits.cache_bytes_max = plan.cached_bytes_target;
    limits.topics_max = plan.topics;
    limits.indexed_topics_max = plan.topics;
    memq::Durability durability;
    durability.enabled = true;
    return std::make_unique<memq::Broker>(limits, 1, plan.incarnation, durability);
}

}  // namespace

int main(int argc, char** argv) {
    memq::bench::GeneratorPlan plan;
    int rounds = 3;
    for (int at = 1; at < argc; at += 2) {
        const std::string_view name = argv[at];
        if (at + 1 >= argc) usage(std::string(name) + " needs a value");
        const unsigned long long value = std::strtoull(argv[at + 1], nullptr, 10);
        if (name == "--topics") plan.topics = value;
        else if (name == "--cache-mib") plan.cached_bytes_target = value << 20;
        else if (name == "--hot-topics") plan.hot_topics = value;
        else if (name == "--payload") plan.hot_payload_bytes = value;
        else if (name == "--rounds") rounds = static_cast<int>(value);
        else usage("unknown argument " + std::string(name));
    }
    if (rounds < 1) usage("--rounds must be at least 1");
    std::string log;
    memq::bench::GeneratorSummary summary;
    try {
        summary = memq::bench::generate_log(plan, [&](std::string_view chunk) { log.append(chunk); });
    } catch (const std::exception& error) {
        usage(error.what());
    }

    std::vector<double> recoveries;
    std::vector<double> recovery_cpu;
    std::unique_ptr<memq::Broker> core;
    for (int round = 0; round < rounds; ++round) {
        core.reset();  // the last round's core goes before the next is built
        core = make_core(plan, summary.most_per_topic);
        const double cpu_before = cpu_seconds();
        const Clock::time_point started = Clock::now();
        core->expect_recovered_topics(plan.topics);
        memq::storage::scan_log(log, memq::storage::ScanMode::strict,
                                [&](const memq::storage::LogRecord& record) { core->recover(record); });
        if (const auto problem = core->finish_recovery(log.size())) usage(*problem);  // a clean log goes on, as in memqd
        recoveries.push_back(seconds_since(started));
        recovery_cpu.push_back(cpu_seconds() - cpu_before);
    }
    std::string().swap(log);

    // Each round asks for a snapshot, as a compaction does, and the poll builds it.
    std::vector<double> compactions;
    std::vector<double> compaction_cpu;
    std::size_t snapshot_bytes = 0;
    for (int round = 0; round < rounds; ++round) {
        // A fresh buffer each time, as in memqd, whose writes move to the log writer's thread.
        memq::storage::StorageWrite write;
        core->request_snapshot();
        const double cpu_before = cpu_seconds();
        const Clock::time_point started = Clock::now();
        if (!core->poll_storage(write) || !write.replace) usage("the core wrote no snapshot");
        compactions.push_back(seconds_since(started));
        compaction_cpu.push_back(cpu_seconds() - cpu_before);
        snapshot_bytes = write.bytes.size();
        core->handle_synced(write.seq);
    }
    std::printf("{\"tool\": \"memq-recovery-core-bench\", \"topics\": %llu, \"messages\": %llu, \"cached_bytes\": %llu, "
                "\"log_bytes\": %llu, \"snapshot_bytes\": %zu, \"recovery_seconds\": %s, \"recovery_cpu_seconds\": %s, "
                "\"median_recovery_seconds\": %.3f, \"compaction_seconds\": %s, \"compaction_cpu_seconds\": %s, "
                "\"median_compaction_seconds\": %.3f}\n",
                static_cast<unsigned long long>(summary.topics), static_cast<unsigned long long>(summary.messages),
                static_cast<unsigned long long>(summary.cached_bytes),
                static_cast<unsigned long long>(summary.log_bytes), snapshot_bytes, list(recoveries).c_str(),
                list(recovery_cpu).c_str(), median(recoveries), list(compactions).c_str(),
                list(compaction_cpu).c_str(), median(compactions));
    return 0;
}
