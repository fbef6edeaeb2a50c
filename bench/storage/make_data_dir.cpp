// make_data_dir.cpp — owns memq-make-data-dir: writes a data dir for the
// recovery benchmark (bench/recovery.sh --generate) directly, without a
// memqd: the log of a GeneratorPlan (data_dir_generator.hpp), written to
// memq.log.tmp, synced and renamed over memq.log, under the data dir's lock
// (DataDir), so that a memqd running on DIR is never written under. Prints
// one JSON line: what was written, and the memqd limits that keep it all.
//
// Usage: memq-make-data-dir DIR [--topics N] [--cache-mib M] [--hot-topics H]
//                           [--cold-payload B] [--payload B] [--topic-prefix P]
//                           [--incarnation X]
// DIR must hold no log yet. Exits 2 on a bad argument or an IO error.
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "data_dir.hpp"
#include "data_dir_generator.hpp"
#include "file_ops.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "memq-make-data-dir: %s\n", what.c_str());
    std::exit(2);
}

std::uint64_t parse_count(std::string_view name, const char* text) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fail("--" + std::string(name) + " takes a non-negative integer, not " + text);
    }
    return value;
}

std::uint64_t fresh_incarnation() {
    std::random_device device;
    std::uint64_t value = 0;
    while (value == 0) value = (std::uint64_t{device()} << 32) | device();
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]).starts_with("-")) {
        fail("usage: memq-make-data-dir DIR [--topics N] [--cache-mib M] [--hot-topics H] [--cold-payload B] "
             "[--payload B] [--topic-prefix P] [--incarnation X]");
    }
    const std::string path = argv[1];
    memq::bench::GeneratorPlan plan;
    plan.incarnation = fresh_incarnation();
    for (int at = 2; at < argc; at += 2) {
        const std::string_view name = argv[at];
        if (at + 1 >= argc) fail(std::string(name) + " needs a value");
        const char* value = argv[at + 1];
        if (name == "--topics") plan.topics = parse_count("topics", value);
        else if (name == "--cache-mib") plan.cached_bytes_target = parse_count("cache-mib", value) << 20;
        else if (name == "--hot-topics") plan.hot_topics = parse_count("hot-topics", value);
        else if (name == "--cold-payload") plan.cold_payload_bytes = parse_count("cold-payload", value);
        else if (name == "--payload") plan.hot_payload_bytes = parse_count("payload", value);
        else if (name == "--topic-prefix") plan.topic_prefix = value;
        else if (name == "--incarnation") plan.incarnation = parse_count("incarnation", value);
        else fail("unknown argument " + std::string(name));
    }
    const auto started = std::chrono::steady_clock::now();
    memq::FileOps& ops = memq::system_file_ops();
    try {
        memq::bench::check_plan(plan);
    } catch (const std::invalid_argument& error) {
        fail(error.what());
    }
    try {
        const memq::DataDir directory(path);
        if (!directory.map_log().bytes().empty()) fail(directory.log_path() + " exists: give an empty or new DIR");
        const std::string temp = directory.temp_log_path();
        int fd = -1;
        if (const int error = ops.open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0644, fd); error != 0) {
            fail("open " + temp + ": " + std::strerror(error));
        }
        const memq::bench::GeneratorSummary summary = memq::bench::generate_log(plan, [&](std::string_view chunk) {
            std::size_t written = 0;
            if (const int error = memq::write_fully(ops, fd, chunk.data(), chunk.size(), written); error != 0) {
                fail("write " + temp + ": " + std::strerror(error));
            }
        });
        if (const int error = ops.fsync(fd); error != 0) fail("fsync " + temp + ": " + std::strerror(error));
        ops.close(fd);
        if (const int error = ops.rename(temp, directory.log_path()); error != 0) {
            fail("rename " + temp + ": " + std::strerror(error));
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::printf("{\"tool\": \"memq-make-data-dir\", \"topics\": %llu, \"messages\": %llu, \"cached_bytes\": %llu, "
                    "\"log_bytes\": %llu, \"most_per_topic\": %llu, \"incarnation\": %llu, \"seconds\": %.3f}\n",
                    static_cast<unsigned long long>(summary.topics), static_cast<unsigned long long>(summary.messages),
                    static_cast<unsigned long long>(summary.cached_bytes),
                    static_cast<unsigned long long>(summary.log_bytes),
                    static_cast<unsigned long long>(summary.most_per_topic),
                    static_cast<unsigned long long>(plan.incarnation), seconds);
    } catch (const memq::DataDirError& error) {
        fail(error.what());
    } catch (const std::invalid_argument& error) {
        fail(error.what());
    }
    return 0;
}
