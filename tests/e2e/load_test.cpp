// load_test.cpp — end to end under load: 10,000 connections, and a subscriber that never reads.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "memqd_process.hpp"
#include "wire.hpp"

namespace memq::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Many raw non-blocking sockets, each with the bytes read from it so far.
class ConnectionSwarm {
public:
    ConnectionSwarm() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {}
    ~ConnectionSwarm() {
        for (const Connection& connection : connections_) close(connection.fd);
        close(epoll_fd_);
    }
    ConnectionSwarm(const ConnectionSwarm&) = delete;
    ConnectionSwarm& operator=(const ConnectionSwarm&) = delete;

    std::size_t size() const { return connections_.size(); }

    // Connects (blocking, so memqd's backlog never overflows), then switches
    // to non-blocking and sends `first_line`, which fits in the socket buffer.
    void connect_and_send(std::uint16_t port, const std::string& first_line) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        connections_.push_back(Connection{fd, {}, {}});
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
        ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
        const std::string line = first_line + "\n";
        ASSERT_EQ(send(fd, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = connections_.size() - 1;
        ASSERT_EQ(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event), 0) << std::strerror(errno);
    }

    // Reads until every connection has `lines_each` complete "\r\n" lines, or
    // the deadline passes; returns how many connections are complete.
    std::size_t read_lines(std::size_t lines_each, std::chrono::milliseconds deadline) {
        const auto until = Clock::now() + deadline;
        std::size_t complete = 0;
        for (Connection& connection : connections_) complete += connection.lines.size() >= lines_each;
        std::vector<epoll_event> events(1024);
        char chunk[4096];
        while (complete < connections_.size() && Clock::now() < until) {
            const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
            for (int i = 0; i < ready; ++i) {
                Connection& connection = connections_[events[static_cast<std::size_t>(i)].data.u64];
                const bool was_complete = connection.lines.size() >= lines_each;
                for (;;) {
                    const ssize_t received = recv(connection.fd, chunk, sizeof chunk, 0);
                    if (received == 0 || (received < 0 && errno != EAGAIN && errno != EINTR)) {
                        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);  // closed: nothing more
                        break;
                    }
                    if (received < 0) break;
                    connection.partial.append(chunk, static_cast<std::size_t>(received));
                }
                for (std::size_t end; (end = connection.partial.find("\r\n")) != std::string::npos;) {
                    connection.lines.push_back(connection.partial.substr(0, end));
                    connection.partial.erase(0, end + 2);
                }
                if (!was_complete && connection.lines.size() >= lines_each) ++complete;
            }
        }
        return complete;
    }

    const std::vector<std::string>& lines(std::size_t connection) const { return connections_[connection].lines; }

private:
    struct Connection {
        int fd;
        std::string partial;
        std::vector<std::string> lines;
    };

    int epoll_fd_;
    std::vector<Connection> connections_;
};

std::string topic_of(std::size_t i) { return "topic-" + std::to_string(i); }
std::string msg_of(std::size_t i) { return "message for " + std::to_string(i); }

TEST(Load, TenThousandConnectionsEachReceiveOneMessage) {
    constexpr std::size_t kConnections = 10'000;
    if (raise_open_file_limit() < kConnections + 100) GTEST_SKIP() << "the open file limit is too low";
    MemqdProcess memqd(any_port());
    {
        ConnectionSwarm swarm;
        for (std::size_t i = 0; i < kConnections; ++i) {
            ASSERT_NO_FATAL_FAILURE(swarm.connect_and_send(memqd.port(), subscribe_command(topic_of(i))));
        }
        ASSERT_EQ(swarm.read_lines(1, 30s), kConnections) << "not every subscribe was acknowledged";

        LineClient publisher(memqd.port());
        std::string sends;
        for (std::size_t i = 0; i < kConnections; ++i) sends += send_command(topic_of(i), msg_of(i)) + "\n";
        publisher.send_raw(sends, 30s);
        for (std::size_t i = 0; i < kConnections; ++i) ASSERT_TRUE(is_json(publisher.read_line(), kAck)) << i;

        ASSERT_EQ(swarm.read_lines(2, 30s), kConnections) << "not every subscriber got its message";
        for (std::size_t i = 0; i < kConnections; ++i) {
            const std::vector<std::string>& lines = swarm.lines(i);
            ASSERT_EQ(lines.size(), 2u) << "connection " << i;
            ASSERT_TRUE(is_json(lines[0], kAck)) << "connection " << i;
            ASSERT_TRUE(is_json(lines[1], delivered_message(topic_of(i), msg_of(i), 0))) << "connection " << i;
        }
    }
    const ExitStatus status = memqd.stop();
    EXPECT_TRUE(status.is_clean()) << describe(status) << "; stderr:\n" << memqd.stderr_text();
}

TEST(Load, SubscriberThatNeverReadsDoesNotBlockOthers) {
    MemqdProcess memqd(any_port({"--max-pending-bytes", std::to_string(1024 * 1024)}));
    {
        LineClient stalled(memqd.port(), 16 * 1024);  // subscribes, then reads nothing until the end
        stalled.send_line(subscribe_command("firehose"));
        ASSERT_TRUE(is_json(stalled.read_line(), kAck));
        LineClient listener(memqd.port());
        listener.send_line(subscribe_command("heartbeat"));
        ASSERT_TRUE(is_json(listener.read_line(), kAck));
        LineClient pinger(memqd.port());
        LineClient publisher(memqd.port());

        // 20 MiB to the stalled subscriber's topic, pipelined in 1 MiB batches;
        // after each batch a heartbeat on another topic must arrive promptly.
        constexpr int kBatches = 20;
        constexpr int kMessagesPerBatch = 64;
        const std::string message = send_command("firehose", std::string(16 * 1024, 'f')) + "\n";
        std::string batch;
        for (int i = 0; i < kMessagesPerBatch; ++i) batch += message;
        for (int b = 0; b < kBatches; ++b) {
            publisher.send_raw(batch, 10s);
            const auto sent = Clock::now();
            pinger.send_line(send_command("heartbeat", std::to_string(b)));
            ASSERT_TRUE(is_json(listener.read_line(2s), delivered_message("heartbeat", std::to_string(b), b)))
                << "batch " << b;
            EXPECT_LT(Clock::now() - sent, 1s) << "batch " << b;
            ASSERT_TRUE(is_json(pinger.read_line(), kAck));
        }
        for (int i = 0; i < kBatches * kMessagesPerBatch; ++i) {
            ASSERT_TRUE(is_json(publisher.read_line(), kAck)) << "ack " << i;
        }

        // The stalled subscriber was cut off: it reads what the kernel buffers
        // held, then the end of the stream, far short of 20 MiB.
        std::size_t received = 0;
        const LineClient::Ending ending = stalled.read_until_closed(10s, &received);
        EXPECT_NE(ending, LineClient::Ending::timeout) << "read " << received << " bytes";
        EXPECT_LT(received, std::size_t{kBatches} * kMessagesPerBatch * message.size() / 2);

        // memqd is still up and serving.
        EXPECT_TRUE(memqd.running());
        LineClient newcomer(memqd.port());
        newcomer.send_line(subscribe_command("after"));
        EXPECT_TRUE(is_json(newcomer.read_line(), kAck));
    }
    const std::string log = memqd.stderr_text();
    EXPECT_NE(log.find("slow consumer"), std::string::npos) << log;
    const ExitStatus status = memqd.stop();
    EXPECT_TRUE(status.is_clean()) << describe(status) << "; stderr:\n" << log;
}

}  // namespace
}  // namespace memq::e2e
