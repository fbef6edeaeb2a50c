// main.cpp — memq-sim: runs the deterministic simulation for one seed, a
// range of seeds, or a batch of fresh ones, and prints how to replay any run.
//
// Rules: the only nondeterminism is the choice of a fresh seed (from
// std::random_device) when none is given, and it is printed before the run.
// The last line of a run is its digest. Exit status: 0 when every run passed,
// 1 on the first failing seed, 2 on a bad command line.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "digest.hpp"
#include "simulator.hpp"

namespace {

using memq::sim::RunConfig;
using memq::sim::RunResult;

constexpr std::size_t kMaxJobs = 64;
constexpr std::uint64_t kNoSeed = ~std::uint64_t{0};

// The seed each worker is running, for the abort handler: a failed
// MEMQ_CHECK inside the core aborts the process, and the report must still
// say how to replay it.
std::atomic<std::uint64_t> g_running[kMaxJobs];
RunConfig g_config;

void write_text(const char* text) {
    const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
    (void)ignored;
}

void write_number(std::uint64_t value) {
    char digits[24];
    std::size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    char text[24];
    for (std::size_t i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
    text[n] = '\0';
    write_text(text);
}

// A failed MEMQ_CHECK (SIGABRT) or a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL)
// kills the process: say which seed was running and how to replay it.
extern "C" void on_fatal_signal(int signal_number) {
    // Not async-signal-safe, but these signals come from the core or the
    // simulator, not from inside stdio: flush so that --trace shows the path.
    std::fflush(stdout);
    for (std::size_t i = 0; i < kMaxJobs; ++i) {
        const std::uint64_t seed = g_running[i].load(std::memory_order_relaxed);
        if (seed == kNoSeed) continue;
        write_text(signal_number == SIGABRT
                       ? "\nmemq-sim: FAIL: the process aborted (an invariant check failed) while running seed "
                       : "\nmemq-sim: FAIL: the process crashed while running seed ");
        write_number(seed);
        write_text("\nreplay: memq-sim --seed ");
        write_number(seed);
        if (g_config.ops != RunConfig{}.ops) {
            write_text(" --ops ");
            write_number(g_config.ops);
        }
        if (g_config.ticks != RunConfig{}.ticks) {
            write_text(" --ticks ");
            write_number(g_config.ticks);
        }
        write_text(" --trace\n");
    }
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
}

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: memq-sim [--seed N | --seeds A..B | --count N] [--ops N] [--ticks N] [--trace]\n"
                 "                [--jobs N] [--invariants-every N]\n"
                 "  --seed N     run seed N (decimal or 0x hex); without it a fresh seed is drawn and printed\n"
                 "  --seeds A..B run every seed from A to B inclusive; stop at the first failure\n"
                 "  --count N    run N fresh seeds (printed); stop at the first failure\n"
                 "  --ops N      requests per run in the fault phase (default %llu)\n"
                 "  --ticks N    ticks per run in the fault phase, at most (default: no bound)\n"
                 "  --trace      print every event of the run\n"
                 "  --jobs N     run that many seeds at once (default 1)\n"
                 "  --invariants-every N  run the core's check_invariants after every N-th call into the core\n"
                 "               (default 0: after every tick; 1: after every call)\n"
                 "The last line is the digest of the run (or of all runs, in seed order).\n",
                 static_cast<unsigned long long>(RunConfig{}.ops));
}

bool parse_u64(std::string_view text, std::uint64_t& value) {
    if (text.empty()) return false;
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) base = 16, text.remove_prefix(2);
    const std::string copy(text);
    char* end = nullptr;
    errno = 0;
    const unsigned long long parsed = std::strtoull(copy.c_str(), &end, base);
    if (errno != 0 || end != copy.c_str() + copy.size() || copy[0] == '-') return false;
    value = parsed;
    return true;
}

std::uint64_t fresh_seed() {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

void print_failure(const RunResult& result) {
    std::printf("FAIL seed %llu %s\n", static_cast<unsigned long long>(result.seed), result.failure.c_str());
    std::printf("options: %s\n", result.options.c_str());
    std::printf("last events:\n%s", result.recent.c_str());
    std::printf("replay: %s --trace\n", result.replay.c_str());
}

// Client operations: every connection a client opened (refused ones too),
// every request it wrote, every reply and message it read.
std::uint64_t client_operations(const memq::sim::RunStats& s) {
    return s.connects + s.ops + s.acks + s.failures + s.messages;
}

std::string summary(const RunResult& result, double seconds) {
    const auto& s = result.stats;
    char text[1024];
    std::snprintf(text, sizeof text,
                  "ok: %llu requests, %llu ticks (+%llu to drain), %llu core calls; clients got %llu acks, "
                  "%llu failures, %llu messages, %llu gaps, %llu resets; %llu connects (%llu resumed), %llu drops, "
                  "%llu restarts, closes: "
                  "quit %llu, line too long %llu, slow consumer %llu, too many connections %llu; %llu \"Too many "
                  "topics\", %llu \"Topic too long\", %llu \"Too many subscriptions\", %llu cache evictions for bytes; %llu \"one\" choices read back, %llu "
                  "\"Line too long\" replies that overflowed; %.3f s: %.0f requests/s, %.0f client operations/s",
                  static_cast<unsigned long long>(s.ops), static_cast<unsigned long long>(s.ticks),
                  static_cast<unsigned long long>(s.drain_ticks), static_cast<unsigned long long>(s.core_calls),
                  static_cast<unsigned long long>(s.acks), static_cast<unsigned long long>(s.failures),
                  static_cast<unsigned long long>(s.messages), static_cast<unsigned long long>(s.gaps),
                  static_cast<unsigned long long>(s.resets), static_cast<unsigned long long>(s.connects),
                  static_cast<unsigned long long>(s.resumes), static_cast<unsigned long long>(s.drops),
                  static_cast<unsigned long long>(s.restarts), static_cast<unsigned long long>(s.closes[0]),
                  static_cast<unsigned long long>(s.closes[1]), static_cast<unsigned long long>(s.closes[2]),
                  static_cast<unsigned long long>(s.closes[3]), static_cast<unsigned long long>(s.model.topics_refused),
                  static_cast<unsigned long long>(s.model.topic_too_long_refused),
                  static_cast<unsigned long long>(s.model.subscriptions_refused),
                  static_cast<unsigned long long>(s.model.cache_evictions),
                  static_cast<unsigned long long>(s.model.one_choices),
                  static_cast<unsigned long long>(s.model.too_long_overflows), seconds,
                  seconds > 0 ? static_cast<double>(s.ops) / seconds : 0.0,
                  seconds > 0 ? static_cast<double>(client_operations(s)) / seconds : 0.0);
    std::string out = text;
    if (s.model.writes != 0) {  // a durable broker
        std::snprintf(text, sizeof text,
                      "; durable: %llu writes (%llu snapshots), %llu syncs, %llu storage failures, %llu sends "
                      "waited for a reservation, %llu \"Storage unavailable\", %llu storage-failed closes, "
                      "%llu salvages, %llu logs continued (%llu hole records appended)",
                      static_cast<unsigned long long>(s.model.writes), static_cast<unsigned long long>(s.model.snapshots),
                      static_cast<unsigned long long>(s.syncs), static_cast<unsigned long long>(s.storage_failures),
                      static_cast<unsigned long long>(s.model.sends_stalled),
                      static_cast<unsigned long long>(s.model.storage_refused),
                      static_cast<unsigned long long>(s.model.storage_closes),
                      static_cast<unsigned long long>(s.salvages), static_cast<unsigned long long>(s.logs_continued),
                      static_cast<unsigned long long>(s.holes_appended));
        out += text;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    RunConfig config;
    std::uint64_t seed = kNoSeed, first = 0, last = 0, count = 0, jobs = 1;
    bool have_seed = false, have_range = false, have_count = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto value = [&](std::uint64_t& out) {
            if (i + 1 >= argc || !parse_u64(argv[i + 1], out)) {
                std::fprintf(stderr, "memq-sim: %s needs a number\n", argv[i]);
                std::exit(2);
            }
            ++i;
        };
        if (arg == "--seed") {
            value(seed);
            have_seed = true;
        } else if (arg == "--seeds") {
            const std::string_view range = i + 1 < argc ? std::string_view(argv[i + 1]) : std::string_view();
            const std::size_t dots = range.find("..");
            if (dots == std::string_view::npos || !parse_u64(range.substr(0, dots), first) ||
                !parse_u64(range.substr(dots + 2), last) || last < first) {
                std::fprintf(stderr, "memq-sim: --seeds needs A..B with A <= B\n");
                return 2;
            }
            ++i;
            have_range = true;
        } else if (arg == "--count") {
            value(count);
            have_count = true;
        } else if (arg == "--ops") {
            value(config.ops);
        } else if (arg == "--ticks") {
            value(config.ticks);
        } else if (arg == "--jobs") {
            value(jobs);
        } else if (arg == "--invariants-every") {
            std::uint64_t every = 0;
            value(every);
            config.invariants_every = static_cast<std::uint32_t>(every);
        } else if (arg == "--trace") {
            config.trace = true;
        } else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "memq-sim: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (have_seed + have_range + have_count > 1) {
        std::fprintf(stderr, "memq-sim: give one of --seed, --seeds, --count\n");
        return 2;
    }
    jobs = std::max<std::uint64_t>(1, std::min<std::uint64_t>(jobs, kMaxJobs));
    g_config = config;
    for (auto& running : g_running) running.store(kNoSeed);
    for (const int signal_number : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
        std::signal(signal_number, on_fatal_signal);

    std::vector<std::uint64_t> seeds;
    if (have_range) {
        for (std::uint64_t s = first;; ++s) {
            seeds.push_back(s);
            if (s == last) break;
        }
        std::printf("memq-sim: seeds %llu..%llu, %llu requests each\n", static_cast<unsigned long long>(first),
                    static_cast<unsigned long long>(last), static_cast<unsigned long long>(config.ops));
    } else if (have_count) {
        for (std::uint64_t i = 0; i < count; ++i) seeds.push_back(fresh_seed());
        std::printf("memq-sim: %llu fresh seeds, %llu requests each:", static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(config.ops));
        for (const std::uint64_t s : seeds) std::printf(" %llu", static_cast<unsigned long long>(s));
        std::printf("\n");
    } else {
        if (!have_seed) seed = fresh_seed();
        seeds.push_back(seed);
        std::printf("memq-sim: seed %llu (replay: %s)\n", static_cast<unsigned long long>(seed),
                    memq::sim::replay_command(seed, config).c_str());
    }
    std::fflush(stdout);

    const bool single = seeds.size() == 1;
    if (single) jobs = 1;
    std::vector<RunResult> results(seeds.size());
    // One byte per seed, not std::vector<bool>: its bits share words, and the
    // workers write them concurrently (a lost bit would hide a failing seed).
    std::vector<std::uint8_t> done(seeds.size(), 0);
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    const auto started = std::chrono::steady_clock::now();
    const auto worker = [&](std::size_t job) {
        for (;;) {
            const std::size_t index = next.fetch_add(1);
            if (index >= seeds.size() || failed.load()) break;
            g_running[job].store(seeds[index]);
            results[index] = memq::sim::simulate(seeds[index], config);
            g_running[job].store(kNoSeed);
            done[index] = 1;
            if (!results[index].ok) failed.store(true);
        }
    };
    if (jobs == 1) {
        worker(0);
    } else {
        std::vector<std::thread> threads;
        for (std::size_t job = 0; job < jobs; ++job) threads.emplace_back(worker, job);
        for (std::thread& thread : threads) thread.join();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    for (std::size_t i = 0; i < seeds.size(); ++i) {
        if (done[i] != 0 && !results[i].ok) {
            print_failure(results[i]);
            return 1;
        }
    }
    if (single) {
        std::printf("options: %s\n%s\n", results[0].options.c_str(), summary(results[0], seconds).c_str());
        std::printf("digest 0x%016llx\n", static_cast<unsigned long long>(results[0].digest));
        return 0;
    }
    memq::sim::Digest all;
    std::uint64_t ops = 0, replies = 0, messages = 0, operations = 0;
    for (const RunResult& result : results) {
        all.mix(result.digest);
        ops += result.stats.ops;
        replies += result.stats.acks + result.stats.failures;
        messages += result.stats.messages;
        operations += client_operations(result.stats);
    }
    const double client_ops = static_cast<double>(operations);
    std::printf(
        "ok: %zu seeds, %llu requests, %llu replies and %llu messages received, %.3f s: %.0f requests/s, "
        "%.0f client operations/s (%llu jobs)\n",
        seeds.size(), static_cast<unsigned long long>(ops), static_cast<unsigned long long>(replies),
        static_cast<unsigned long long>(messages), seconds, seconds > 0 ? static_cast<double>(ops) / seconds : 0.0,
        seconds > 0 ? client_ops / seconds : 0.0, static_cast<unsigned long long>(jobs));
    std::printf("digest 0x%016llx\n", static_cast<unsigned long long>(all.value()));
    return 0;
}
