// data_dir_generator_test.cpp — specifies the recovery benchmark's data dir
// generator (bench/storage/data_dir_generator.hpp): its log scans clean, a
// durable broker core recovers every topic and every cached message from it,
// each frame byte for byte the line memqd sends, and the cached bytes stay
// within the target (at the number, one below, one above).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "broker.hpp"
#include "data_dir_generator.hpp"
#include "log_format.hpp"
#include "protocol.hpp"

namespace {

using memq::bench::GeneratorPlan;
using memq::bench::GeneratorSummary;

struct Generated {
    std::string log;
    GeneratorSummary summary;
};

Generated generate(const GeneratorPlan& plan, std::size_t chunk_bytes = 4096) {
    Generated generated;
    generated.summary =
        memq::bench::generate_log(plan, [&](std::string_view chunk) { generated.log.append(chunk); }, chunk_bytes);
    return generated;
}

GeneratorPlan small_plan() {
    GeneratorPlan plan;
    plan.topics = 50;
    plan.hot_topics = 5;
    plan.cached_bytes_target = 40000;
    plan.incarnation = 77;
    return plan;
}

std::string frame_of(const GeneratorPlan& plan, std::uint64_t topic, std::int64_t index, std::size_t payload_bytes) {
    return memq::encode_message(memq::Send{memq::bench::generated_topic(plan, topic),
                                           memq::bench::generated_payload(topic, index, payload_bytes),
                                           memq::Delivery::all, std::nullopt},
                                index);
}

// The cached frame bytes of one cold message per topic.
std::uint64_t cold_bytes(const GeneratorPlan& plan) {
    std::uint64_t bytes = 0;
    for (std::uint64_t topic = 0; topic < plan.topics; ++topic) bytes += frame_of(plan, topic, 0, plan.cold_payload_bytes).size();
    return bytes;
}

// A durable core that recovered the log, as memqd's start does.
struct Recovered {
    explicit Recovered(const Generated& generated, std::size_t cache_size) : broker(limits(cache_size), 1, 0, durable()) {
        memq::storage::scan_log(generated.log, memq::storage::ScanMode::strict,
                                [&](const memq::storage::LogRecord& record) { broker.recover(record); });
        problem = broker.finish_recovery();
    }
    static memq::Limits limits(std::size_t cache_size) {
        memq::Limits limits;
        limits.cache_messages_max = cache_size;
        return limits;
    }
    static memq::Durability durable() {
        memq::Durability durability;
        durability.enabled = true;
        return durability;
    }
    memq::Broker broker;
    std::optional<std::string> problem;
};

TEST(DataDirGenerator, the_log_scans_clean_with_its_header_and_one_record_per_topic_and_message) {
    const GeneratorPlan plan = small_plan();
    const Generated generated = generate(plan);
    std::uint64_t reserves = 0;
    std::uint64_t messages = 0;
    const memq::storage::ScanResult scan =
        memq::storage::scan_log(generated.log, memq::storage::ScanMode::strict, [&](const memq::storage::LogRecord& record) {
            reserves += record.kind == memq::storage::RecordKind::reserve;
            messages += record.kind == memq::storage::RecordKind::message;
        });
    EXPECT_EQ(scan.header, memq::storage::HeaderStatus::ok);
    EXPECT_EQ(scan.incarnation, 77u);
    EXPECT_EQ(scan.damage, memq::storage::Damage::none);
    EXPECT_EQ(reserves, plan.topics);
    EXPECT_EQ(messages, generated.summary.messages);
    EXPECT_GT(messages, plan.topics) << "the hot topics got more than the one message each";
    EXPECT_EQ(generated.summary.log_bytes, generated.log.size());
}

TEST(DataDirGenerator, chunks_concatenated_are_the_same_file_whatever_their_size) {
    const GeneratorPlan plan = small_plan();
    EXPECT_EQ(generate(plan, 1).log, generate(plan, 1 << 20).log);
}

TEST(DataDirGenerator, a_core_recovers_every_topic_and_every_message_byte_for_byte) {
    const GeneratorPlan plan = small_plan();
    const Generated generated = generate(plan);
    const Recovered recovered(generated, generated.summary.most_per_topic);
    ASSERT_FALSE(recovered.problem.has_value()) << *recovered.problem;
    const memq::TopicTable& topics = recovered.broker.topics();
    EXPECT_EQ(topics.size(), plan.topics);
    EXPECT_EQ(topics.stateful_count(), plan.topics) << "every topic holds a cached message";
    EXPECT_EQ(topics.cached_messages(), generated.summary.messages);
    EXPECT_EQ(topics.cached_bytes(), generated.summary.cached_bytes);
    std::map<std::string, std::vector<std::int64_t>> indices;
    topics.for_each_cached([&](const memq::Topic& topic, const memq::CachedMessage& message) {
        const std::uint64_t number = std::stoull(std::string(topic.name.substr(plan.topic_prefix.size())));
        const std::size_t payload = message.index == 0 ? plan.cold_payload_bytes : plan.hot_payload_bytes;
        EXPECT_EQ(*message.frame, frame_of(plan, number, message.index, payload));
        indices[std::string(topic.name)].push_back(message.index);
    });
    for (std::uint64_t number = 0; number < plan.topics; ++number) {
        const std::string name = memq::bench::generated_topic(plan, number);
        const std::vector<std::int64_t>& cached = indices[name];
        ASSERT_FALSE(cached.empty()) << name;
        for (std::size_t at = 0; at < cached.size(); ++at) EXPECT_EQ(cached[at], static_cast<std::int64_t>(at)) << name;
        EXPECT_EQ(topics.find(name)->next_index, static_cast<std::int64_t>(cached.size())) << name << ": its reserve is exact";
        if (number >= plan.hot_topics) {
            EXPECT_EQ(cached.size(), 1u) << name << " is cold";
        }
    }
}

TEST(DataDirGenerator, most_per_topic_is_the_cache_size_that_keeps_every_message) {
    const GeneratorPlan plan = small_plan();
    const Generated generated = generate(plan);
    ASSERT_GT(generated.summary.most_per_topic, 1u);
    const Recovered enough(generated, generated.summary.most_per_topic);
    EXPECT_EQ(enough.broker.topics().cached_messages(), generated.summary.messages);
    const Recovered one_short(generated, generated.summary.most_per_topic - 1);
    EXPECT_LT(one_short.broker.topics().cached_messages(), generated.summary.messages);
}

TEST(DataDirGenerator, the_cached_bytes_stay_within_the_target_and_the_next_message_would_pass_it) {
    const GeneratorPlan plan = small_plan();
    const Generated generated = generate(plan);
    EXPECT_LE(generated.summary.cached_bytes, plan.cached_bytes_target);
    const std::uint64_t hot = generated.summary.messages - plan.topics;
    const std::uint64_t next_topic = hot % plan.hot_topics;
    const auto next_index = static_cast<std::int64_t>(hot / plan.hot_topics + 1);
    const std::size_t next_frame = frame_of(plan, next_topic, next_index, plan.hot_payload_bytes).size();
    EXPECT_GT(generated.summary.cached_bytes + next_frame, plan.cached_bytes_target);
}

TEST(DataDirGenerator, a_target_of_exactly_the_cold_messages_has_no_hot_message) {
    GeneratorPlan plan = small_plan();
    plan.cached_bytes_target = cold_bytes(plan);
    const Generated generated = generate(plan);
    EXPECT_EQ(generated.summary.messages, plan.topics);
    EXPECT_EQ(generated.summary.cached_bytes, plan.cached_bytes_target);
    EXPECT_EQ(generated.summary.most_per_topic, 1u);
}

TEST(DataDirGenerator, a_target_one_byte_below_the_cold_messages_is_refused_before_anything_is_written) {
    GeneratorPlan plan = small_plan();
    plan.cached_bytes_target = cold_bytes(plan) - 1;
    std::size_t chunks = 0;
    EXPECT_THROW(memq::bench::generate_log(plan, [&](std::string_view) { ++chunks; }), std::invalid_argument);
    EXPECT_EQ(chunks, 0u);
}

TEST(DataDirGenerator, hot_topics_may_be_every_topic_but_not_more) {
    GeneratorPlan plan = small_plan();
    plan.hot_topics = plan.topics;
    EXPECT_NO_THROW(memq::bench::check_plan(plan));
    plan.hot_topics = plan.topics + 1;
    EXPECT_THROW(memq::bench::check_plan(plan), std::invalid_argument);
}

TEST(DataDirGenerator, a_plan_without_topics_is_refused) {
    GeneratorPlan plan = small_plan();
    plan.topics = 0;
    plan.hot_topics = 0;
    EXPECT_THROW(memq::bench::check_plan(plan), std::invalid_argument);
}

}  // namespace
