// workload.hpp — what simulated clients ask of the broker: requests drawn
// from the run's seed, written through a real ClientCore.
//
// Rules: every string a request uses (topics, messages, hand-written lines)
// lives in pools built once per run and never changed, so a LineIntent can
// view them for as long as the run lasts. Every line is issued together with
// its meaning (LineIntent); nothing is ever parsed to learn it, except the
// lines ClientCore::resubscribe_all() writes, whose order only the ClientCore
// knows. The pools deliberately hold hard cases: empty, quoted, escaped,
// control and non-ASCII strings, duplicate keys, odd spacing, lines of exactly
// line_bytes_max bytes and one byte more.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client_core.hpp"
#include "model.hpp"
#include "prng.hpp"
#include "swarm.hpp"

namespace memq::sim {

class Workload {
public:
    Workload(const SwarmOptions& options, std::uint64_t seed);
    // Intents view the pools: a Workload never moves.
    Workload(const Workload&) = delete;
    Workload& operator=(const Workload&) = delete;

    // Makes one request on `core` (its line lands in core's output) and
    // returns what it means. `rough` clients may also send garbage, blank,
    // quit and over-long lines.
    LineIntent issue(Prng& prng, ClientCore& core, bool rough, OpKind& kind);

    // The meaning of the lines ClientCore::resubscribe_all() just wrote into
    // `output` (their request ids count up from `first_request`).
    void resubscribe_intents(std::string_view output, RequestId first_request, std::vector<LineIntent>& out) const;

    const std::vector<std::string>& topics() const { return topics_; }

private:
    struct RawLine {
        std::string bytes;  // the whole line, '\n' included
        LineIntent intent;  // request and bytes are filled in when issued
        bool expect_reply = true;
    };

    std::string_view pick_topic(Prng& prng) const;
    std::string_view pick_message(Prng& prng) const;
    OpKind pick_kind(Prng& prng, bool rough) const;
    void build_topics(Prng& prng);
    void build_messages(Prng& prng);
    void build_raw_lines();
    void build_limit_lines(Prng& prng);
    LineIntent issue_raw(ClientCore& core, const RawLine& raw) const;

    SwarmOptions options_;
    std::vector<std::string> topics_;
    std::unordered_map<std::string, std::size_t> topic_index_;
    std::vector<std::string> messages_;
    std::vector<std::string> long_messages_;
    std::vector<std::string> raw_messages_;  // messages that hand-written lines spell with escapes
    std::vector<RawLine> raw_commands_;
    std::vector<RawLine> garbage_;
    std::vector<RawLine> blanks_;
    std::vector<RawLine> quits_;
    std::vector<RawLine> limit_lines_;         // around line_bytes_max; empty when that is too big to send often
    std::array<std::string, 2> pad_messages_;  // the messages of the two valid lines in limit_lines_
    static constexpr std::string_view kPadTopic = "pad";
    std::vector<std::uint32_t> cumulative_rough_;
    std::vector<std::uint32_t> cumulative_clean_;
};

}  // namespace memq::sim
