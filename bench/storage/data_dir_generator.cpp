// data_dir_generator.cpp — owns the plan's walk and its encoding into a log
// (see data_dir_generator.hpp).
#include "data_dir_generator.hpp"

#include <algorithm>
#include <stdexcept>

#include "log_format.hpp"
#include "protocol.hpp"

namespace memq::bench {
namespace {

constexpr std::size_t kAlphabetSize = 26;

// Calls message(topic, index, payload_bytes) for every cached message of the
// plan, in the order they are cached (and written): the cold ones, then the
// hot ones in rounds, up to the first that would pass the target.
// frame_bytes(topic, index, payload_bytes) sizes a frame.
template <class FrameBytes, class Message>
void walk_messages(const GeneratorPlan& plan, FrameBytes&& frame_bytes, Message&& message) {
    std::uint64_t cached = 0;
    for (std::uint64_t topic = 0; topic < plan.topics; ++topic) {
        cached += frame_bytes(topic, 0, plan.cold_payload_bytes);
        message(topic, 0, plan.cold_payload_bytes);
    }
    if (cached > plan.cached_bytes_target) {
        throw std::invalid_argument("the cached bytes target is too small for one cold message per topic");
    }
    if (plan.hot_topics == 0) return;
    for (std::int64_t index = 1;; ++index) {
        for (std::uint64_t topic = 0; topic < plan.hot_topics; ++topic) {
            const std::uint64_t bytes = frame_bytes(topic, index, plan.hot_payload_bytes);
            if (cached + bytes > plan.cached_bytes_target) return;
            cached += bytes;
            message(topic, index, plan.hot_payload_bytes);
        }
    }
}

std::string frame_of(const GeneratorPlan& plan, std::uint64_t topic, std::int64_t index, std::size_t payload_bytes) {
    return encode_message(Send{generated_topic(plan, topic), generated_payload(topic, index, payload_bytes),
                               Delivery::all, std::nullopt},
                          index);
}

}  // namespace

void check_plan(const GeneratorPlan& plan) {
    if (plan.topics == 0) throw std::invalid_argument("a plan needs at least one topic");
    if (plan.hot_topics > plan.topics) throw std::invalid_argument("more hot topics than topics");
}

std::string generated_topic(const GeneratorPlan& plan, std::uint64_t topic) {
    return plan.topic_prefix + std::to_string(topic);
}

std::string generated_payload(std::uint64_t topic, std::int64_t index, std::size_t bytes) {
    std::string payload(bytes, 'a');
    const std::uint64_t seed = topic * 31 + static_cast<std::uint64_t>(index) * 7;
    for (std::size_t at = 0; at < bytes; ++at) payload[at] = static_cast<char>('a' + (seed + at) % kAlphabetSize);
    return payload;
}

GeneratorSummary generate_log(const GeneratorPlan& plan, const std::function<void(std::string_view)>& sink,
                              std::size_t chunk_bytes) {
    check_plan(plan);
    // First pass: how many hot rounds fit, so that each reserve (written
    // before the messages, as in a snapshot) is the topic's next index.
    std::string frame;
    const auto frame_bytes = [&](std::uint64_t topic, std::int64_t index, std::size_t payload_bytes) {
        frame = frame_of(plan, topic, index, payload_bytes);
        return static_cast<std::uint64_t>(frame.size());
    };
    std::uint64_t hot_messages = 0;
    walk_messages(plan, frame_bytes, [&](std::uint64_t, std::int64_t index, std::size_t) { hot_messages += index > 0; });
    const std::uint64_t full_rounds = plan.hot_topics == 0 ? 0 : hot_messages / plan.hot_topics;
    const std::uint64_t partial_topics = plan.hot_topics == 0 ? 0 : hot_messages % plan.hot_topics;

    GeneratorSummary summary;
    std::string chunk;
    chunk.reserve(chunk_bytes + (std::size_t{1} << 16));
    const auto flush_if_full = [&] {
        if (chunk.size() < chunk_bytes) return;
        summary.log_bytes += chunk.size();
        sink(chunk);
        chunk.clear();
    };
    storage::append_header(chunk, plan.incarnation);
    for (std::uint64_t topic = 0; topic < plan.topics; ++topic) {
        std::uint64_t next_index = 1;
        if (topic < plan.hot_topics) next_index += full_rounds + (topic < partial_topics ? 1 : 0);
        summary.most_per_topic = std::max(summary.most_per_topic, next_index);
        storage::append_reserve(chunk, generated_topic(plan, topic), static_cast<std::int64_t>(next_index));
        flush_if_full();
    }
    walk_messages(plan, frame_bytes, [&](std::uint64_t topic, std::int64_t index, std::size_t) {
        // frame holds this message's frame: frame_bytes ran just before.
        const std::string_view msg_json = message_frame_fields(frame, index, Delivery::all).value().msg_json;
        storage::append_message(chunk, generated_topic(plan, topic), index, Delivery::all, false, msg_json);
        ++summary.messages;
        summary.cached_bytes += frame.size();
        flush_if_full();
    });
    summary.topics = plan.topics;
    summary.log_bytes += chunk.size();
    if (!chunk.empty()) sink(chunk);
    return summary;
}

}  // namespace memq::bench
