// core_bench.cpp — memq-micro: Google Benchmark microbenchmarks of the broker
// core's per-message costs (parse, validate, route, serialize; the client's
// decode is in decode_bench.cpp) and a count of heap allocations per message. The global operator new/delete of this binary
// are replaced by counting ones; every benchmark reports `allocs_per_msg`
// measured over its timed loop, after a warm-up that reaches steady state.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "broker.hpp"
#include "command_parser.hpp"
#include "protocol.hpp"

// ---- counting allocator ---------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* block = std::malloc(size == 0 ? 1 : size)) return block;
    throw std::bad_alloc();
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t alignment) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    const auto align = static_cast<std::size_t>(alignment);
    const std::size_t rounded = (size + align - 1) / align * align;
    if (void* block = std::aligned_alloc(align, rounded == 0 ? align : rounded)) return block;
    throw std::bad_alloc();
}

std::uint64_t allocations() { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(size);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(size);
    } catch (...) {
        return nullptr;
    }
}
void* operator new(std::size_t size, std::align_val_t alignment) { return counted_aligned_alloc(size, alignment); }
void* operator new[](std::size_t size, std::align_val_t alignment) { return counted_aligned_alloc(size, alignment); }
void operator delete(void* block) noexcept { std::free(block); }
void operator delete[](void* block) noexcept { std::free(block); }
void operator delete(void* block, std::size_t) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t) noexcept { std::free(block); }
void operator delete(void* block, std::align_val_t) noexcept { std::free(block); }
void operator delete[](void* block, std::align_val_t) noexcept { std::free(block); }
void operator delete(void* block, std::size_t, std::align_val_t) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t, std::align_val_t) noexcept { std::free(block); }

// ---- fixtures -----------------------------------------------------------------

namespace {

constexpr std::string_view kTopic = "bench.topic.0";

// A 45-byte message: with the command's keys the line is 120 bytes.
constexpr std::size_t kTypicalMsgBytes = 45;

memq::Send typical_send(std::size_t msg_bytes = kTypicalMsgBytes) {
    memq::Send send;
    send.topic = std::string(kTopic);
    send.msg = std::string("~00000123456789a").append(msg_bytes - 16, 'x');
    return send;
}

// The typical send line as clients write it, without its '\n' (as
// parse_line sees it). Topic and message need no escapes, so they are written
// as they are.
std::string typical_line(std::size_t msg_bytes = kTypicalMsgBytes) {
    const memq::Send send = typical_send(msg_bytes);
    return R"({"command": "send", "topic": ")" + send.topic + R"(", "msg": ")" + send.msg + R"(", "delivery": "all"})";
}

void report_allocations(benchmark::State& state, std::uint64_t before, std::uint64_t messages_per_iteration) {
    const double messages = static_cast<double>(state.iterations()) * static_cast<double>(messages_per_iteration);
    state.counters["allocs_per_msg"] = static_cast<double>(allocations() - before) / messages;
}

// A broker with one publisher and `subscribers` connections on kTopic.
class Route {
public:
    explicit Route(int subscribers) : broker_(memq::Limits{}, 42) {
        broker_.handle_connect(kPublisher);
        const std::string line = R"({"command": "subscribe", "topic": ")" + std::string(kTopic) + R"(", "cache": false})" + "\n";
        for (int i = 0; i < subscribers; ++i) {
            const memq::ConnId id = kPublisher + 1 + static_cast<memq::ConnId>(i);
            broker_.handle_connect(id);
            broker_.handle_receive(id, line);
            drain();
        }
    }

    // Feeds `bytes` from the publisher and writes out everything it causes,
    // as the shell does: every Transmit is reported fully written.
    void publish(std::string_view bytes) {
        broker_.handle_receive(kPublisher, bytes);
        drain();
    }

    std::uint64_t frames() const { return frames_; }

private:
    // As memqd's shell does: one Transmit, handed back drained every time.
    void drain() {
        while (broker_.poll_close()) {
        }
        while (broker_.poll_transmit(transmit_)) {
            frames_ += transmit_.frames.size();
            broker_.handle_written(transmit_.conn, transmit_.bytes);
            transmit_.frames.clear();
        }
    }

    static constexpr memq::ConnId kPublisher = 1;
    memq::Broker broker_;
    memq::Transmit transmit_;
    std::uint64_t frames_ = 0;
};

// ---- benchmarks ---------------------------------------------------------------

// range(0): the size of the message inside the line (45 for the typical one).
void BM_parse_line(benchmark::State& state) {
    const std::string line = typical_line(static_cast<std::size_t>(state.range(0)));
    for (int i = 0; i < 1000; ++i) benchmark::DoNotOptimize(memq::parse_line(line));
    const std::uint64_t before = allocations();
    for (auto _ : state) {
        memq::ParseResult parsed = memq::parse_line(line);
        benchmark::DoNotOptimize(parsed);
    }
    report_allocations(state, before, 1);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(line.size()));
    state.SetLabel(std::to_string(line.size()) + "-byte send line");
}
BENCHMARK(BM_parse_line)->Arg(kTypicalMsgBytes)->Arg(16384);

void BM_validate_utf8(benchmark::State& state) {
    const std::string line = typical_line(static_cast<std::size_t>(state.range(0)));
    const std::uint64_t before = allocations();
    for (auto _ : state) {
        benchmark::DoNotOptimize(memq::is_valid_utf8(line));
    }
    report_allocations(state, before, 1);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(line.size()));
}
BENCHMARK(BM_validate_utf8)->Arg(kTypicalMsgBytes)->Arg(16384);

void BM_trim_line(benchmark::State& state) {
    const std::string line = std::string(" ").append(typical_line()).append("\r");
    const std::uint64_t before = allocations();
    for (auto _ : state) {
        benchmark::DoNotOptimize(memq::trim_line(line));
    }
    report_allocations(state, before, 1);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_trim_line);

void BM_encode_message(benchmark::State& state) {
    const memq::Send send = typical_send(static_cast<std::size_t>(state.range(0)));
    std::int64_t index = 0;
    const std::uint64_t before = allocations();
    for (auto _ : state) {
        std::string frame = memq::encode_message(send, index++);
        benchmark::DoNotOptimize(frame);
    }
    report_allocations(state, before, 1);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(send.msg.size() + send.topic.size()));
}
BENCHMARK(BM_encode_message)->Arg(kTypicalMsgBytes)->Arg(16384);

// One send line per handle_receive, then every Transmit drained and written:
// the whole per-message cost of the core. range(0): subscribers; range(1):
// message size.
void BM_route(benchmark::State& state) {
    const int subscribers = static_cast<int>(state.range(0));
    Route route(subscribers);
    const std::string line = typical_line(static_cast<std::size_t>(state.range(1))).append("\n");
    for (int i = 0; i < 2000; ++i) route.publish(line);  // fills the replay cache: steady state
    const std::uint64_t frames_before = route.frames();
    const std::uint64_t before = allocations();
    for (auto _ : state) route.publish(line);
    report_allocations(state, before, 1);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(line.size()));
    state.counters["deliveries"] = benchmark::Counter(static_cast<double>(state.iterations() * subscribers),
                                                      benchmark::Counter::kIsRate);
    state.counters["frames_per_msg"] =
        static_cast<double>(route.frames() - frames_before) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_route)->Args({1, kTypicalMsgBytes})->Args({100, kTypicalMsgBytes})->Args({1, 16384});

// A pipelined read: 256 send lines in one handle_receive, as a busy
// publisher's 32 KiB segment brings them; one subscriber.
void BM_route_pipelined(benchmark::State& state) {
    constexpr int kLines = 256;
    Route route(1);
    std::string segment;
    for (int i = 0; i < kLines; ++i) segment.append(typical_line()).append("\n");
    for (int i = 0; i < 20; ++i) route.publish(segment);
    const std::uint64_t before = allocations();
    for (auto _ : state) route.publish(segment);
    report_allocations(state, before, kLines);
    state.SetLabel("whole core, 1 -> 1, cache on: handle_receive of 256 send lines, poll_transmit, handle_written");
    state.SetItemsProcessed(state.iterations() * kLines);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(segment.size()));
}
BENCHMARK(BM_route_pipelined);

}  // namespace

BENCHMARK_MAIN();
