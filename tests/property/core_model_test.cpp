// core_model_test.cpp — a model-based rapidcheck test of the broker core: a
// random sequence of connects, disconnects, subscribes, unsubscribes, sends
// (all/one, cache on/off), garbage lines and partial writes, under small
// topic, topic-name, subscription, cache-byte and connection limits (so
// "Too many topics", "Topic too long", "Too many subscriptions", global
// eviction and refused connections happen), each line cut
// into random pieces, run through memq::sim::Checker — the simulator's own
// harness, which checks every reply, delivery, Close and pending byte count
// against the simulator's model of PROTOCOL.md. A failure shrinks to a short
// sequence of commands. Replay with RC_PARAMS="seed=N".
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "../client_lines.hpp"
#include "checker.hpp"
#include "generators.hpp"

namespace {

using memq::ConnId;
using memq::Delivery;
using memq::LineError;
using memq::sim::LineIntent;

// Few topics (mostly "a") and few connection ids, so that commands meet each other.
constexpr ConnId kConnIds = 5;

rc::Gen<std::string> any_topic() {
    return rc::gen::weightedElement<std::string>({{6, "a"}, {2, "b"}, {1, ""}, {1, "\xc3\xbc"}});
}

// What commands need to know to be valid: which ids are connected.
struct CoreModel {
    std::set<ConnId> open;
};

// The system under test: the broker inside the checker, plus what a shell
// would remember (which connections the broker closed).
struct CoreSut {
    CoreSut(const memq::Limits& limits, std::uint64_t seed) : checker(limits, seed), broker_seed(seed) {
        checker.on_close([this](ConnId conn, memq::CloseReason) { closed.insert(conn); });
    }

    // Writes `line` (meaning `intent`) on `conn`, handing it to the broker in
    // pieces cut at `cuts`; a shell stops reading a connection once it is closed.
    void write(ConnId conn, const std::string& line, LineIntent intent, std::vector<std::size_t> cuts) {
        if (closed.contains(conn)) return;
        intent.bytes = line.size();
        if (intent.kind != LineIntent::Kind::blank && intent.kind != LineIntent::Kind::quit)
            intent.request = next_request++;
        checker.add_line(conn, intent);
        for (std::size_t& position : cuts) position %= line.size();
        cuts.push_back(line.size());
        std::sort(cuts.begin(), cuts.end());
        std::size_t from = 0;
        for (const std::size_t to : cuts) {
            if (closed.contains(conn)) return;
            if (to > from) checker.receive(conn, std::string_view(line).substr(from, to - from));
            from = std::max(from, to);
        }
    }

    // Strings the intents view must outlive them.
    std::string_view keep(std::string text) { return strings.emplace_back(std::move(text)); }

    // Runs `body`, turning a checker failure into a property failure that
    // names the broker's limits and seed too.
    template <typename Body>
    void checked(Body&& body) {
        try {
            body();
        } catch (const memq::sim::CheckFailure& failure) {
            const memq::Limits& limits = checker.model().limits();
            RC_FAIL(std::string(failure.what()) + "\n(pending_bytes_max " + std::to_string(limits.pending_bytes_max) +
                    ", line_bytes_max " + std::to_string(limits.line_bytes_max) + ", cache_messages_max " +
                    std::to_string(limits.cache_messages_max) + ", cache_bytes_max " +
                    std::to_string(limits.cache_bytes_max) + ", topics_max " + std::to_string(limits.topics_max) +
                    ", indexed_topics_max " + std::to_string(limits.indexed_topics_max) + ", connections_max " +
                    std::to_string(limits.connections_max) + ", topic_bytes_max " +
                    std::to_string(limits.topic_bytes_max) + ", subscriptions_max " +
                    std::to_string(limits.subscriptions_max) + ", broker seed " + std::to_string(broker_seed) + ")");
        }
    }

    memq::sim::Checker checker;
    std::uint64_t broker_seed;
    std::set<ConnId> closed;
    std::deque<std::string> strings;
    memq::RequestId next_request = 1;
};

using Command = rc::state::Command<CoreModel, CoreSut>;

struct OnConnection : Command {
    ConnId conn = *rc::gen::inRange<ConnId>(1, kConnIds + 1);
    void checkPreconditions(const CoreModel& model) const override { RC_PRE(model.open.contains(conn)); }
};

struct Connect : Command {
    ConnId conn = *rc::gen::inRange<ConnId>(1, kConnIds + 1);
    void checkPreconditions(const CoreModel& model) const override { RC_PRE(!model.open.contains(conn)); }
    void apply(CoreModel& model) const override { model.open.insert(conn); }
    void run(const CoreModel&, CoreSut& sut) const override {
        sut.checked([&] { sut.checker.connect(conn); });
    }
    void show(std::ostream& os) const override { os << "Connect(" << conn << ")"; }
};

struct Disconnect : OnConnection {
    void apply(CoreModel& model) const override { model.open.erase(conn); }
    void run(const CoreModel&, CoreSut& sut) const override {
        sut.checked([&] { sut.checker.disconnect(conn); });
        sut.closed.erase(conn);
    }
    void show(std::ostream& os) const override { os << "Disconnect(" << conn << ")"; }
};

struct Subscribe : OnConnection {
    std::string topic = *any_topic();
    std::optional<std::int64_t> last_seen = *rc::gen::weightedOneOf<std::optional<std::int64_t>>({
        {2, rc::gen::just(std::optional<std::int64_t>())},
        {4, rc::gen::cast<std::optional<std::int64_t>>(rc::gen::inRange<std::int64_t>(-2, 12))},
        {1, rc::gen::cast<std::optional<std::int64_t>>(rc::gen::arbitrary<std::int64_t>())},
    });
    bool cache = *rc::gen::weightedElement<bool>({{4, true}, {1, false}});
    std::vector<std::size_t> cuts = *rc::gen::arbitrary<std::vector<std::size_t>>();

    void apply(CoreModel&) const override {}
    void run(const CoreModel&, CoreSut& sut) const override {
        LineIntent intent;
        intent.kind = LineIntent::Kind::subscribe;
        intent.topic = sut.keep(topic);
        intent.last_seen = last_seen.value_or(-1);
        intent.cache = cache;
        const std::string line = memq::testing::client_line(memq::Subscribe{topic, last_seen.value_or(-1), cache});
        sut.checked([&] { sut.write(conn, line, intent, cuts); });
    }
    void show(std::ostream& os) const override {
        os << "Subscribe(" << conn << ", \"" << topic << "\", last_seen " << last_seen.value_or(-1) << ", cache "
           << cache << ")";
    }
};

struct Unsubscribe : OnConnection {
    std::string topic = *any_topic();
    std::vector<std::size_t> cuts = *rc::gen::arbitrary<std::vector<std::size_t>>();

    void apply(CoreModel&) const override {}
    void run(const CoreModel&, CoreSut& sut) const override {
        LineIntent intent;
        intent.kind = LineIntent::Kind::unsubscribe;
        intent.topic = sut.keep(topic);
        sut.checked([&] { sut.write(conn, memq::testing::client_line(memq::Unsubscribe{topic}), intent, cuts); });
    }
    void show(std::ostream& os) const override { os << "Unsubscribe(" << conn << ", \"" << topic << "\")"; }
};

struct Send : OnConnection {
    std::string topic = *any_topic();
    std::string msg = *memq::property::unicode_text();
    Delivery delivery = *rc::gen::element(Delivery::all, Delivery::one);
    std::optional<bool> cache =
        *rc::gen::element(std::optional<bool>(), std::optional<bool>(true), std::optional<bool>(false));
    std::vector<std::size_t> cuts = *rc::gen::arbitrary<std::vector<std::size_t>>();

    void apply(CoreModel&) const override {}
    void run(const CoreModel&, CoreSut& sut) const override {
        LineIntent intent;
        intent.kind = LineIntent::Kind::send;
        intent.topic = sut.keep(topic);
        intent.msg = sut.keep(msg);
        intent.delivery = delivery;
        intent.cache = cache;
        sut.checked([&] {
            sut.write(conn, memq::testing::client_line(memq::Send{topic, msg, delivery, cache}), intent, cuts);
        });
    }
    void show(std::ostream& os) const override {
        os << "Send(" << conn << ", \"" << topic << "\", " << msg.size() << " bytes, "
           << (delivery == Delivery::all ? "all" : "one") << ", cache "
           << (cache ? (*cache ? "true" : "false") : "absent") << ")";
    }
};

// A line the broker must refuse (with its reason), ignore, or close on.
struct GarbageLine {
    const char* line;
    LineIntent::Kind kind;
    LineError error;
};
constexpr std::array<GarbageLine, 10> kGarbage{{
    {"\xc0\xaf\n", LineIntent::Kind::error, LineError::bad_utf8},
    {"{\"command\": \"send\", \"topic\": \"\xed\xa0\x80\"}\n", LineIntent::Kind::error, LineError::bad_utf8},
    {"{\"command\": \"subscribe\"\n", LineIntent::Kind::error, LineError::bad_json},
    {"{} {}\r\n", LineIntent::Kind::error, LineError::bad_json},
    {"{\"command\": \"subscribe\", \"topic\": \"a\", \"last_seen\": true}\n", LineIntent::Kind::error,
     LineError::malformed},
    {"[\"subscribe\"]\n", LineIntent::Kind::error, LineError::malformed},
    {"{\"command\": \"send\", \"topic\": \"a\", \"msg\": \"m\", \"delivery\": \"any\"}\n", LineIntent::Kind::error,
     LineError::malformed},
    {"  \t\r\n", LineIntent::Kind::blank, LineError::internal},
    {"quit\n", LineIntent::Kind::quit, LineError::internal},
    {" quit \r\n", LineIntent::Kind::quit, LineError::internal},
}};

struct Garbage : OnConnection {
    std::size_t which = *rc::gen::inRange<std::size_t>(0, kGarbage.size() + 1);  // the last: too long
    std::vector<std::size_t> cuts = *rc::gen::arbitrary<std::vector<std::size_t>>();

    void apply(CoreModel&) const override {}
    void run(const CoreModel&, CoreSut& sut) const override {
        LineIntent intent;
        std::string line;
        if (which < kGarbage.size()) {
            line = kGarbage[which].line;
            intent.kind = kGarbage[which].kind;
            intent.error = kGarbage[which].error;
        } else {
            line = std::string(sut.checker.model().limits().line_bytes_max + 1, 'x') + "\n";
            intent.kind = LineIntent::Kind::error;
            intent.error = LineError::bad_json;  // what it would be, were it not too long
        }
        sut.checked([&] { sut.write(conn, line, intent, cuts); });
    }
    void show(std::ostream& os) const override {
        if (which < kGarbage.size()) {
            os << "Garbage(" << conn << ", #" << which << ")";
        } else {
            os << "Garbage(" << conn << ", too long)";
        }
    }
};

// The shell's write of part of what is in flight completed.
struct DrainWrites : OnConnection {
    std::size_t bytes = *rc::gen::inRange<std::size_t>(1, 400);

    void apply(CoreModel&) const override {}
    void run(const CoreModel&, CoreSut& sut) const override {
        if (sut.closed.contains(conn)) return;  // a closed socket is written no more
        const std::size_t in_flight = sut.checker.model().conn(conn).in_flight_bytes;
        if (in_flight == 0) return;
        sut.checked([&] { sut.checker.written(conn, std::min(bytes, in_flight)); });
    }
    void show(std::ostream& os) const override { os << "DrainWrites(" << conn << ", " << bytes << ")"; }
};

RC_GTEST_PROP(CoreModelProperty, EveryReplyDeliveryAndCloseMatchesTheModel, ()) {
    memq::Limits limits;
    limits.pending_bytes_max = *rc::gen::element<std::size_t>(120, 300, 1000, 64 << 20);
    limits.line_bytes_max = *rc::gen::element<std::size_t>(40, 120, 1 << 20);
    limits.cache_messages_max = *rc::gen::element<std::size_t>(0, 1, 2, 5, 100);
    limits.cache_bytes_max = *rc::gen::element<std::size_t>(0, 90, 200, 600, 256 << 20);
    limits.topics_max = *rc::gen::element<std::size_t>(1, 2, 100'000);
    limits.indexed_topics_max = *rc::gen::element<std::size_t>(1, 3, 1'000'000);
    limits.connections_max = *rc::gen::element<std::size_t>(1, 3, kConnIds);
    limits.topic_bytes_max = *rc::gen::element<std::size_t>(1, 2, 1024);      // the topics are 0 to 2 bytes
    limits.subscriptions_max = *rc::gen::element<std::size_t>(1, 2, 10'000);  // of 4 topics
    const auto seed = *rc::gen::arbitrary<std::uint64_t>();
    CoreSut sut(limits, seed);
    rc::state::check(CoreModel{}, sut,
                     rc::state::gen::execOneOfWithArgs<Connect, Connect, Disconnect, Subscribe, Subscribe, Unsubscribe,
                                                       Send, Send, Send, Garbage, DrainWrites, DrainWrites>());
}

}  // namespace
