// decode_bench.cpp — memq-micro's client-side benchmark: the subscriber's fast
// decoder (client/fast_decode.hpp) on a delivered message frame. Linked into
// memq-micro by the root build only (it needs the client library's core).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "fast_decode.hpp"
#include "protocol.hpp"

namespace {

// range(0): the size of the message inside the frame. The frame is what
// memqd writes (encode_message) without its "\r\n", as the client's line
// reader hands it over.
void BM_fast_decode_message(benchmark::State& state) {
    memq::Send send;
    send.topic = "bench.topic.0";
    send.msg = std::string("~00000123456789a").append(static_cast<std::size_t>(state.range(0)) - 16, 'x');
    std::string frame = memq::encode_message(send, 123456);
    frame.resize(frame.size() - 2);
    memq::Message message;
    if (!memq::detail::fast_decode_message(frame, message)) state.SkipWithError("the fast decoder declined the frame");
    for (auto _ : state) {
        const bool decoded = memq::detail::fast_decode_message(frame, message);
        benchmark::DoNotOptimize(decoded);
        benchmark::DoNotOptimize(message);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
    state.SetLabel(std::to_string(frame.size()) + "-byte message frame");
}
BENCHMARK(BM_fast_decode_message)->Arg(45)->Arg(16384);

}  // namespace
