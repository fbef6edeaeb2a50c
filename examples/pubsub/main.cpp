// main.cpp — the memq client in a few lines: subscribe, send, receive, pipelined publish.
//
// Usage: pubsub [PORT]   (a memqd must be listening on 127.0.0.1:PORT, default 7000)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <memq/client.hpp>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 7000);
    try {
        memq::Client subscriber;
        subscriber.connect("127.0.0.1", port, 5s);
        subscriber.subscribe("greetings", std::nullopt, /*cache=*/false);

        memq::Client publisher;
        publisher.connect("127.0.0.1", port, 5s);
        publisher.send("greetings", "hello, memq");  // waits for the broker's ack
        for (int i = 0; i < 3; ++i) publisher.publish("greetings", "pipelined " + std::to_string(i));
        publisher.flush(5s);  // every publish acked, or an exception says why not

        while (const auto message = subscriber.receive(500ms)) {
            std::printf("#%lld %s\n", static_cast<long long>(message->index), message->msg.c_str());
        }
    } catch (const memq::Error& error) {
        std::fprintf(stderr, "pubsub: %s\n", error.what());
        return 1;
    }
    return 0;
}
