// limits.hpp — every limit of the broker core, named and defaulted in one place.
//
// Rules: each limit is named noun_unit_max; the core enforces every one of them
// and never allocates past them on behalf of a client. The shell fills this
// struct from the command line; the simulator draws it from its seed.
#pragma once

#include <cstddef>
#include <limits>

namespace memq {

inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = 1024 * kKiB;

struct Limits {
    // Longest accepted input line, in bytes, not counting the '\n'. A longer
    // line gets "Line too long" and the connection is closed.
    std::size_t line_bytes_max = 1 * kMiB;
    // Output queued for one connection and not yet written. Past it the
    // connection is closed as a slow consumer; nobody else waits for it.
    std::size_t pending_bytes_max = 64 * kMiB;
    // A subscribe's replay is a cursor into the topic's cache, turned into
    // frames only while the connection's output (queued and being written)
    // is below this many bytes; so a replay counts against pending_bytes_max
    // only as far as it is queued. Must be at least 1.
    std::size_t replay_window_bytes = 256 * kKiB;
    // Messages kept per topic for replay after last_seen (0 disables caching).
    std::size_t cache_messages_max = 100;
    // Bytes of cached frames across all topics. Caching past it evicts the
    // globally oldest cached messages first; a frame bigger than the whole
    // budget is delivered but not cached.
    std::size_t cache_bytes_max = 256 * kMiB;
    // Topics that hold state: a subscriber or a cached message. A subscribe
    // or send that would give one more topic state gets "Too many topics".
    std::size_t topics_max = 100'000;
    // Topics known at all, index-only ones included (an index never goes
    // back, so a known topic is never forgotten). A command naming a new
    // topic past it gets "Too many topics".
    std::size_t indexed_topics_max = 1'000'000;
    // Bytes of a topic name, as decoded (UTF-8, escapes resolved). A
    // subscribe, unsubscribe or send naming a longer topic gets "Topic too
    // long" and changes nothing. With indexed_topics_max it bounds what the
    // topic index can hold (a known topic is kept for good): 1 KiB x 1M
    // topics is 1 GiB at most, not the 1 TiB that line_bytes_max allows.
    std::size_t topic_bytes_max = 1 * kKiB;
    // Topics one connection is subscribed to. A subscribe that would add one
    // more gets "Too many subscriptions" and changes nothing; re-subscribing
    // to a topic it has is always allowed. 10'000 is far more than a client
    // of aiomemq's kind names, yet bounds what one connection can pin: its
    // subscription map and subscriber slots (about 100 bytes a topic, so
    // about 1 MiB), and the work of its disconnect, which leaves every topic
    // in one step of the single-threaded core.
    std::size_t subscriptions_max = 10'000;
    // Open connections. One more is refused: accepted, then closed at once
    // (CloseReason::too_many_connections). memqd derives its default from
    // the open-file limit; the core's default is no limit.
    std::size_t connections_max = std::numeric_limits<std::size_t>::max();
};

}  // namespace memq
