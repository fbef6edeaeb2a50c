// data_dir_generator.hpp — owns the recovery benchmark's data dir generator
// (memq-make-data-dir): the plan of a log holding many known topics and a
// given amount of cached messages, and its encoding with the storage
// library's own encoders, laid out as memqd's snapshot lays out a log:
// header, one reserve record per topic, then the cached messages in the order
// they were cached. The frames are the lines memqd sends (encode_message), so
// the log is byte for byte one memqd could have written.
//
// The plan: topics named <prefix><i> for i in [0, topics). Each gets one
// cached message of cold_payload_bytes (index 0); then the first hot_topics
// topics get hot_payload_bytes messages in turn (indices 1, 2, ...) while the
// cached frame bytes stay within cached_bytes_target. Each topic's reserve
// is exact (its next index), as a graceful stop leaves it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace memq::bench {

struct GeneratorPlan {
    std::uint64_t topics = 1'000'000;
    std::uint64_t cached_bytes_target = std::uint64_t{256} << 20;  // frame bytes, as memq_cached_bytes counts them
    std::uint64_t hot_topics = 1000;
    std::size_t cold_payload_bytes = 16;
    std::size_t hot_payload_bytes = 200;
    std::string topic_prefix = "recovery-";
    std::uint64_t incarnation = 1;
};

// What a plan produced, and the memqd limits that keep all of it.
struct GeneratorSummary {
    std::uint64_t topics = 0;
    std::uint64_t messages = 0;
    std::uint64_t cached_bytes = 0;     // the frames' bytes (memq_cached_bytes once recovered)
    std::uint64_t log_bytes = 0;        // header and records
    std::uint64_t most_per_topic = 0;   // the largest topic's cached messages: --cache-size at least this
};

// Throws std::invalid_argument when the plan cannot hold: no topics, or more
// hot topics than topics.
void check_plan(const GeneratorPlan& plan);

// The topic name of topic i, and the payload of its message at index.
std::string generated_topic(const GeneratorPlan& plan, std::uint64_t topic);
std::string generated_payload(std::uint64_t topic, std::int64_t index, std::size_t bytes);

// Encodes the plan's log, handing it to sink in chunks of about chunk_bytes
// (in file order; the chunks concatenated are the file). Throws
// std::invalid_argument for a plan check_plan refuses, or a target too small
// for one cold message per topic (then before sink is first called).
GeneratorSummary generate_log(const GeneratorPlan& plan, const std::function<void(std::string_view)>& sink,
                              std::size_t chunk_bytes = std::size_t{4} << 20);

}  // namespace memq::bench
