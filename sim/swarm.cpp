// swarm.cpp — draws a run's options from its seed (see swarm.hpp).
#include "swarm.hpp"

#include <algorithm>
#include <cstdio>

namespace memq::sim {
namespace {

// One value of `choices`, uniformly.
template <typename T, std::size_t N>
T pick(Prng& prng, const std::array<T, N>& choices) {
    return choices[prng.below(N)];
}

// Uniform in [low, high].
std::uint64_t between(Prng& prng, std::uint64_t low, std::uint64_t high) { return low + prng.below(high - low + 1); }

// A rate of ppm parts per million, or (with probability 1/off_odds) none at
// all: swarm testing wants some runs without each feature.
Rate maybe(Prng& prng, std::uint64_t ppm, std::uint64_t off_odds) {
    if (off_odds != 0 && prng.below(off_odds) == 0) return Rate::per_million(0);
    return Rate::per_million(ppm);
}

}  // namespace

SwarmOptions draw_swarm(std::uint64_t seed) {
    Prng prng(seed);
    SwarmOptions options;

    options.clients = pick(prng, std::array<std::uint32_t, 9>{1, 2, 2, 3, 4, 4, 6, 8, 12});
    options.topics = pick(prng, std::array<std::uint32_t, 7>{1, 1, 2, 3, 4, 6, 12});
    options.garbage_clients = static_cast<std::uint32_t>(prng.below(options.clients + 1));

    Limits& limits = options.limits;
    limits.cache_messages_max = pick(prng, std::array<std::size_t, 8>{0, 1, 2, 3, 5, 10, 32, 100});
    switch (prng.below(10)) {
        case 0: limits.pending_bytes_max = between(prng, 40, 300); break;
        case 1:
        case 2: limits.pending_bytes_max = between(prng, 300, 1000); break;
        case 3:
        case 4:
        case 5: limits.pending_bytes_max = between(prng, 1000, 32 * kKiB); break;
        default: limits.pending_bytes_max = 64 * kMiB; break;
    }
    switch (prng.below(4)) {  // small windows keep replays lazy for many steps
        case 0: limits.replay_window_bytes = between(prng, 1, 200); break;
        case 1: limits.replay_window_bytes = between(prng, 200, 4 * kKiB); break;
        default: limits.replay_window_bytes = 256 * kKiB; break;
    }
    switch (prng.below(10)) {
        case 0: limits.line_bytes_max = between(prng, 80, 400); break;
        case 1:
        case 2:
        case 3:
        case 4: limits.line_bytes_max = between(prng, 400, 8 * kKiB); break;
        default: limits.line_bytes_max = 1 * kMiB; break;
    }

    switch (prng.below(10)) {
        case 0:
        case 1: options.socket_buffer_min = 1, options.socket_buffer_max = between(prng, 1, 64); break;
        case 2:
        case 3:
        case 4: options.socket_buffer_min = 64, options.socket_buffer_max = between(prng, 64, 4096); break;
        default: options.socket_buffer_min = 4096, options.socket_buffer_max = between(prng, 4096, 256 * kKiB); break;
    }

    // Workload weights; any one of them may be off for this run.
    const std::array<std::uint32_t, kOpKinds> base{30, 10, 40, 20, 4, 5, 2, 1, 2};
    for (std::size_t i = 0; i < kOpKinds; ++i) {
        const bool off = prng.below(6) == 0;
        options.weights[i] = off ? 0 : static_cast<std::uint32_t>(between(prng, base[i] / 2 + 1, base[i] * 2));
    }
    options.weights[static_cast<std::size_t>(OpKind::send_all)] += 1;  // never an empty workload

    options.burst_max = pick(prng, std::array<std::uint32_t, 5>{1, 2, 4, 8, 32});
    options.issue = Rate::per_million(between(prng, 50'000, 900'000));
    options.deliver = Rate::per_million(between(prng, 100'000, 1'000'000));
    options.write = Rate::per_million(between(prng, 100'000, 1'000'000));
    options.read = Rate::per_million(between(prng, 100'000, 1'000'000));
    options.whole = Rate::per_million(between(prng, 0, 1'000'000));
    options.stall = maybe(prng, between(prng, 100, 20'000), 3);
    options.unstall = Rate::per_million(between(prng, 5'000, 200'000));
    options.disconnect = maybe(prng, between(prng, 10, 5'000), 3);
    options.reconnect = Rate::per_million(between(prng, 1'000, 300'000));
    options.resume = Rate::per_million(between(prng, 0, 1'000'000));
    options.linger = Rate::per_million(between(prng, 0, 950'000));
    options.explicit_last_seen = Rate::per_million(between(prng, 0, 500'000));
    options.explicit_cache = Rate::per_million(between(prng, 0, 400'000));
    options.long_message = maybe(prng, between(prng, 100, 50'000), 2);
    options.restart = maybe(prng, between(prng, 20, 2'000), 2);  // per tick: some restarts a run, or none
    options.long_message_max = std::min<std::size_t>(limits.line_bytes_max + 200, between(prng, 64, 4096));

    // The broker-wide limits, drawn last (so the draws above keep their
    // values): small often enough that they are hit, off (huge) otherwise.
    switch (prng.below(4)) {
        case 0: limits.topics_max = between(prng, 1, 3); break;
        case 1: limits.topics_max = between(prng, 1, 8); break;
        default: limits.topics_max = 100'000; break;
    }
    switch (prng.below(6)) {
        case 0: limits.indexed_topics_max = between(prng, 1, 4); break;
        case 1: limits.indexed_topics_max = between(prng, 1, 12); break;
        default: limits.indexed_topics_max = 1'000'000; break;
    }
    switch (prng.below(8)) {
        case 0: limits.cache_bytes_max = between(prng, 0, 100); break;  // most frames do not fit at all
        case 1:
        case 2: limits.cache_bytes_max = between(prng, 100, 1000); break;
        case 3: limits.cache_bytes_max = between(prng, 1000, 16 * kKiB); break;
        default: limits.cache_bytes_max = 256 * kMiB; break;
    }
    switch (prng.below(6)) {
        case 0: limits.connections_max = between(prng, 1, 2); break;  // 0 would let nobody work
        case 1: limits.connections_max = between(prng, 1, options.clients); break;
        default: break;  // no limit
    }
    // The per-command and per-connection limits, drawn after those (same
    // reason). Topic names in the workload run from 0 to about 40 bytes.
    switch (prng.below(4)) {
        case 0: limits.topic_bytes_max = between(prng, 1, 12); break;
        case 1: limits.topic_bytes_max = between(prng, 1, 40); break;
        default: limits.topic_bytes_max = 1 * kKiB; break;
    }
    switch (prng.below(4)) {
        case 0: limits.subscriptions_max = between(prng, 1, 2); break;
        case 1: limits.subscriptions_max = between(prng, 1, options.topics); break;
        default: limits.subscriptions_max = 10'000; break;
    }
    // Durable topics, drawn last of all (same reason): in a third of the runs.
    if (prng.below(3) == 0) {
        Durability& durability = options.durability;
        durability.enabled = true;
        durability.policy = prng.below(2) == 0 ? SyncPolicy::always : SyncPolicy::interval;
        durability.index_reserve_ahead = static_cast<std::int64_t>(between(prng, 2, 64));
        durability.index_reserve_ahead_max = durability.index_reserve_ahead * static_cast<std::int64_t>(between(prng, 1, 16));
        // Small enough that most durable runs compact many times (records of
        // the small messages drawn here are some 50 to 100 bytes).
        durability.compaction_floor_bytes = between(prng, 0, 16 * kKiB);
        durability.compaction_factor = between(prng, 2, 4);
        options.sync_latency_min = static_cast<std::uint32_t>(between(prng, 0, 4));
        options.sync_latency_max = options.sync_latency_min + static_cast<std::uint32_t>(between(prng, 0, 20));
        options.sync_interval = static_cast<std::uint32_t>(between(prng, 1, 100));
        options.write_fails = maybe(prng, between(prng, 10, 5'000), 2);
        options.sync_fails = maybe(prng, between(prng, 10, 5'000), 2);
        options.rot = maybe(prng, between(prng, 50'000, 500'000), 2);
        options.retry_interval = static_cast<std::uint32_t>(between(prng, 1, 50));
        // Crashes are what durability is for: in most durable runs.
        if (options.restart.ppm() == 0 && prng.below(4) != 0) options.restart = Rate::per_million(between(prng, 20, 2'000));
    }
    return options;
}

std::string_view to_string(OpKind kind) {
    switch (kind) {
        case OpKind::subscribe: return "subscribe";
        case OpKind::unsubscribe: return "unsubscribe";
        case OpKind::send_all: return "send_all";
        case OpKind::send_one: return "send_one";
        case OpKind::raw_command: return "raw_command";
        case OpKind::garbage: return "garbage";
        case OpKind::blank: return "blank";
        case OpKind::quit: return "quit";
        case OpKind::too_long: return "too_long";
    }
    return "?";
}

std::string describe(const SwarmOptions& options) {
    char text[768];
    std::snprintf(text, sizeof text,
                  "clients=%u topics=%u garbage_clients=%u cache_messages_max=%zu pending_bytes_max=%zu "
                  "line_bytes_max=%zu cache_bytes_max=%zu topics_max=%zu indexed_topics_max=%zu "
                  "connections_max=%zu topic_bytes_max=%zu subscriptions_max=%zu replay_window_bytes=%zu "
                  "socket_buffer=%zu..%zu burst_max=%u",
                  options.clients, options.topics, options.garbage_clients, options.limits.cache_messages_max,
                  options.limits.pending_bytes_max, options.limits.line_bytes_max, options.limits.cache_bytes_max,
                  options.limits.topics_max, options.limits.indexed_topics_max, options.limits.connections_max,
                  options.limits.topic_bytes_max, options.limits.subscriptions_max,
                  options.limits.replay_window_bytes, options.socket_buffer_min,
                  options.socket_buffer_max, options.burst_max);
    std::string out = text;
    out += " weights=";
    for (std::size_t i = 0; i < kOpKinds; ++i) {
        out += (i == 0 ? "" : ",");
        out += to_string(static_cast<OpKind>(i));
        out += ':';
        out += std::to_string(options.weights[i]);
    }
    std::snprintf(
        text, sizeof text,
        " ppm: issue=%llu deliver=%llu write=%llu read=%llu whole=%llu stall=%llu unstall=%llu "
        "disconnect=%llu reconnect=%llu resume=%llu restart=%llu long_message=%llu (max %zu)",
        static_cast<unsigned long long>(options.issue.ppm()), static_cast<unsigned long long>(options.deliver.ppm()),
        static_cast<unsigned long long>(options.write.ppm()), static_cast<unsigned long long>(options.read.ppm()),
        static_cast<unsigned long long>(options.whole.ppm()), static_cast<unsigned long long>(options.stall.ppm()),
        static_cast<unsigned long long>(options.unstall.ppm()),
        static_cast<unsigned long long>(options.disconnect.ppm()),
        static_cast<unsigned long long>(options.reconnect.ppm()), static_cast<unsigned long long>(options.resume.ppm()),
        static_cast<unsigned long long>(options.restart.ppm()), static_cast<unsigned long long>(options.long_message.ppm()), options.long_message_max);
    out += text;
    if (options.durability.enabled) {
        std::snprintf(text, sizeof text,
                      " durable: policy=%s reserve_ahead=%lld compaction_floor=%zu factor=%zu sync_latency=%u..%u "
                      "sync_interval=%u write_fails=%llu sync_fails=%llu rot=%llu retry_interval=%u",
                      options.durability.policy == SyncPolicy::always ? "always" : "interval",
                      static_cast<long long>(options.durability.index_reserve_ahead),
                      options.durability.compaction_floor_bytes, options.durability.compaction_factor,
                      options.sync_latency_min, options.sync_latency_max, options.sync_interval,
                      static_cast<unsigned long long>(options.write_fails.ppm()),
                      static_cast<unsigned long long>(options.sync_fails.ppm()),
                      static_cast<unsigned long long>(options.rot.ppm()), options.retry_interval);
        out += text;
    }
    return out;
}

}  // namespace memq::sim
