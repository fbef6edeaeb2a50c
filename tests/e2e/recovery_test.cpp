// recovery_test.cpp — memqd started on a large data dir (issue 12): the log
// a memq-make-data-dir plan writes (bench/storage/data_dir_generator.hpp)
// comes back topic by topic and frame by frame, byte for byte, with the heap
// the recovery fills faulted in ahead on the helper thread
// (broker/server/heap_prefault.hpp), which the start-up log line reports.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "data_dir_generator.hpp"
#include "line_client.hpp"
#include "memqd_process.hpp"
#include "protocol.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcHeap = false;  // the sanitizer's allocator replaces malloc: nothing is set aside
#else
constexpr bool kGlibcHeap = true;
#endif

// The frame memqd replays for the plan's message of `topic` at `index`, without its "\r\n".
std::string replayed_line(const bench::GeneratorPlan& plan, std::uint64_t topic, std::int64_t index,
                          std::size_t payload_bytes) {
    std::string frame = encode_message(
        Send{bench::generated_topic(plan, topic), bench::generated_payload(topic, index, payload_bytes), Delivery::all,
             std::nullopt},
        index);
    frame.resize(frame.size() - 2);
    return frame;
}

TEST(Recovery, a_large_data_dir_comes_back_byte_for_byte_with_its_heap_faulted_in_ahead) {
    TempDir dir;
    const std::filesystem::path data = dir.path() / "data";
    std::filesystem::create_directories(data);
    bench::GeneratorPlan plan;
    plan.topics = 200000;
    plan.cached_bytes_target = std::uint64_t{40} << 20;
    plan.hot_topics = 100;
    plan.topic_prefix = "large-";
    std::ofstream log(data / "memq.log", std::ios::binary);
    const bench::GeneratorSummary summary =
        bench::generate_log(plan, [&](std::string_view chunk) { log.write(chunk.data(), static_cast<std::streamsize>(chunk.size())); });
    log.close();
    ASSERT_TRUE(log.good());

    const std::string topics = std::to_string(plan.topics);
    MemqdProcess memqd(any_port({"--data-dir", data.string(), "--max-topics", topics, "--max-indexed-topics", topics,
                                 "--cache-size", std::to_string(summary.most_per_topic), "--max-cache-bytes",
                                 std::to_string(summary.cached_bytes * 2)}),
                       std::chrono::seconds(60));
    const std::string text = memqd.stderr_text();
    std::smatch recovered;
    ASSERT_TRUE(std::regex_search(text, recovered, std::regex(R"(recovered (\d+) topics and (\d+) cached messages .* \((\d+) MiB of heap faulted in ahead\))")))
        << text;
    EXPECT_EQ(std::stoull(recovered[1]), plan.topics);
    EXPECT_EQ(std::stoull(recovered[2]), summary.messages);
    if (kGlibcHeap) {
        EXPECT_GT(std::stoull(recovered[3]), 0u) << text;
    }

    LineClient client(memqd.port());
    // The first hot topic: its cold message at index 0, then its hot ones.
    client.send_line(subscribe_command(bench::generated_topic(plan, 0), -1));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    for (std::int64_t index = 0; index < static_cast<std::int64_t>(summary.most_per_topic); ++index) {
        const std::size_t payload = index == 0 ? plan.cold_payload_bytes : plan.hot_payload_bytes;
        ASSERT_EQ(client.read_line(), replayed_line(plan, 0, index, payload)) << "index " << index;
    }
    // The last topic: its one cold message.
    client.send_line(subscribe_command(bench::generated_topic(plan, plan.topics - 1), -1));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_EQ(client.read_line(), replayed_line(plan, plan.topics - 1, 0, plan.cold_payload_bytes));
    EXPECT_TRUE(memqd.stop().is_clean());
}

}  // namespace
}  // namespace memq::e2e
