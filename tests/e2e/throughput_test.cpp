// throughput_test.cpp — end to end under a bulk publish: memqd's output keeps up with its input.
//
// A pipelining publisher makes memqd read and parse input far faster than a
// trickle of writes would drain it; a peer that reads promptly, in a thread of
// its own, must get everything and never be closed as a slow consumer.
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_fixture.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMessages = 300'000;
constexpr std::size_t kMessageBytes = 64;
constexpr std::size_t kSendChunkBytes = 1024 * 1024;
constexpr auto kReadDeadline = 45s;  // under the suite's 60 s, with room for a sanitizer build

// A message of kMessageBytes, distinct for each index (its last ten bytes are the index).
std::string msg_of(std::size_t index) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%010zu", index);
    std::string msg(kMessageBytes - 10, 'm');
    msg += digits;
    return msg;
}

// What count_lines saw on one connection.
struct LineCount {
    std::size_t lines = 0;
    std::string last_line;  // without its "\r\n"
    bool closed = false;    // EOF or an error before `expected` lines
};

// Reads `fd` (non-blocking) as fast as it can, counting "\r\n"-terminated
// lines, until `expected` lines came, the peer closed, or the deadline passed.
LineCount count_lines(int fd, std::size_t expected, Clock::time_point until) {
    LineCount count;
    std::string partial;  // the line being read; only the latest is kept
    std::array<char, 256 * 1024> chunk;
    while (count.lines < expected && Clock::now() < until) {
        const ssize_t received = recv(fd, chunk.data(), chunk.size(), 0);
        if (received == 0 || (received < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            count.closed = true;
            break;
        }
        if (received < 0) {
            pollfd entry{fd, POLLIN, 0};
            poll(&entry, 1, 100);
            continue;
        }
        std::string_view bytes(chunk.data(), static_cast<std::size_t>(received));
        for (std::size_t end; (end = bytes.find('\n')) != std::string_view::npos; bytes.remove_prefix(end + 1)) {
            ++count.lines;
            partial.append(bytes.substr(0, end));
            if (!partial.empty() && partial.back() == '\r') partial.pop_back();
            count.last_line.swap(partial);
            partial.clear();
        }
        partial.append(bytes);
    }
    return count;
}

// Every send of the publish, one line each, cut into chunks of about
// kSendChunkBytes. The lines differ only in msg_of's digits, so one line is
// built with send_command and the others are copies with their digits put in.
std::vector<std::string> bulk_sends(const std::string& topic) {
    std::string line = send_command(topic, msg_of(0)) + "\n";
    const std::size_t msg_at = line.find(msg_of(0));
    if (msg_at == std::string::npos) {
        ADD_FAILURE() << "the message is not verbatim in " << line;
        return {};
    }
    std::vector<std::string> chunks(1);
    for (std::size_t i = 0; i < kMessages; ++i) {
        if (chunks.back().size() >= kSendChunkBytes) chunks.emplace_back();
        line.replace(msg_at, kMessageBytes, msg_of(i));
        chunks.back() += line;
    }
    return chunks;
}

class Throughput : public MemqdTest {
protected:
    std::vector<std::string> memqd_args() const override {
        return any_port({"--max-pending-bytes", std::to_string(8 * 1024 * 1024)});
    }

    void expect_no_slow_consumer() {
        const std::string log = memqd().stderr_text();
        EXPECT_EQ(log.find("slow consumer"), std::string::npos) << log;
    }
};

TEST_F(Throughput, PromptReaderOfABulkPublishIsNotClosed) {
    LineClient subscriber(port());
    subscriber.send_line(subscribe_command("bulk"));
    ASSERT_TRUE(is_json(subscriber.read_line(), kAck));
    LineClient publisher(port());

    const auto until = Clock::now() + kReadDeadline;
    LineCount delivered;
    LineCount acks;
    std::thread subscriber_reader([&] { delivered = count_lines(subscriber.fd(), kMessages, until); });
    std::thread ack_reader([&] { acks = count_lines(publisher.fd(), kMessages, until); });
    const std::vector<std::string> chunks = bulk_sends("bulk");
    try {
        for (const std::string& chunk : chunks) publisher.send_raw(chunk, 30s);
    } catch (const std::exception& failure) {
        ADD_FAILURE() << "publishing: " << failure.what();
    }
    ack_reader.join();
    subscriber_reader.join();

    EXPECT_EQ(acks.lines, kMessages) << (acks.closed ? "the publisher was closed" : "timed out");
    EXPECT_TRUE(is_json(acks.last_line, kAck));
    ASSERT_EQ(delivered.lines, kMessages) << (delivered.closed ? "the subscriber was closed" : "timed out");
    EXPECT_TRUE(is_json(delivered.last_line, delivered_message("bulk", msg_of(kMessages - 1), kMessages - 1)));
    EXPECT_TRUE(subscriber.nothing_arrives_within(100ms)) << "the subscriber's stream ended";
    expect_no_slow_consumer();
}

// Acks are small: a tighter bound on pending output makes a trickle show.
class ThroughputTight : public Throughput {
protected:
    std::vector<std::string> memqd_args() const override {
        return any_port({"--max-pending-bytes", std::to_string(1024 * 1024)});
    }
};

TEST_F(ThroughputTight, PipeliningPublisherIsNotClosedByItsOwnAcks) {
    LineClient publisher(port());  // nobody subscribes: memqd's only output is the acks

    const auto until = Clock::now() + kReadDeadline;
    LineCount acks;
    std::thread ack_reader([&] { acks = count_lines(publisher.fd(), kMessages, until); });
    const std::vector<std::string> chunks = bulk_sends("nobody");
    try {
        for (const std::string& chunk : chunks) publisher.send_raw(chunk, 30s);
    } catch (const std::exception& failure) {
        ADD_FAILURE() << "publishing: " << failure.what();
    }
    ack_reader.join();

    ASSERT_EQ(acks.lines, kMessages) << (acks.closed ? "the publisher was closed" : "timed out");
    EXPECT_TRUE(is_json(acks.last_line, kAck));
    EXPECT_TRUE(publisher.nothing_arrives_within(100ms)) << "the publisher's stream ended";
    expect_no_slow_consumer();
}

}  // namespace
}  // namespace memq::e2e
