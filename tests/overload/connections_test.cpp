// connections_test.cpp — overload (d): as many concurrent subscribed connections as
// the open-file limit allows, each receiving messages; memory per connection.
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
#include "overload.hpp"
#include "wire.hpp"

namespace memq::overload {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Both this process and memqd hold one descriptor per connection; memqd's
// coming --max-connections default is the open-file limit minus ~32.
constexpr std::size_t kWanted = 19'000;
constexpr std::size_t kHeadroom = 200;  // descriptors kept free on each side
constexpr std::size_t kTopics = 190;
constexpr std::size_t kMessagesPerTopic = 2;
constexpr std::size_t kBlock = 500;  // connects before their acks are awaited
constexpr std::uint64_t kPerConnectionBound = kSanitized ? 64 * kKiB : 4 * kKiB;

std::string topic_of(std::size_t i) { return "conn-topic-" + std::to_string(i % kTopics); }
std::string msg_of(std::size_t topic, std::size_t n) { return "to " + std::to_string(topic) + " #" + std::to_string(n); }

// Raw non-blocking sockets under one epoll, each with its complete lines.
class Crowd {
public:
    Crowd() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {}
    ~Crowd() {
        for (const Member& member : members_) close(member.fd);
        close(epoll_fd_);
    }

    std::size_t size() const { return members_.size(); }
    const std::vector<std::string>& lines(std::size_t i) const { return members_[i].lines; }

    void join(std::uint16_t port, const std::string& first_line) {
        const int fd = connect_loopback(port);
        members_.push_back(Member{fd, {}, {}});
        set_nonblocking(fd);
        const std::string line = first_line + "\n";
        if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
            throw std::runtime_error("first line did not fit the socket buffer");
        }
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = members_.size() - 1;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) throw std::runtime_error("epoll_ctl");
    }

    // Reads until members [from, size()) each hold `lines_each` lines or the
    // deadline passes; returns how many of them do.
    std::size_t read_until(std::size_t from, std::size_t lines_each, std::chrono::milliseconds deadline) {
        const auto until = Clock::now() + deadline;
        const auto complete = [&] {
            std::size_t n = 0;
            for (std::size_t i = from; i < members_.size(); ++i) n += members_[i].lines.size() >= lines_each;
            return n;
        };
        std::size_t done = complete();
        std::vector<epoll_event> events(512);
        char chunk[4096];
        while (done < members_.size() - from && Clock::now() < until) {
            const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
            for (int e = 0; e < ready; ++e) {
                Member& member = members_[events[static_cast<std::size_t>(e)].data.u64];
                for (;;) {
                    const ssize_t got = recv(member.fd, chunk, sizeof chunk, 0);
                    if (got > 0) {
                        member.partial.append(chunk, static_cast<std::size_t>(got));
                        continue;
                    }
                    if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, member.fd, nullptr);
                    }
                    break;
                }
                for (std::size_t end; (end = member.partial.find("\r\n")) != std::string::npos;) {
                    member.lines.push_back(member.partial.substr(0, end));
                    member.partial.erase(0, end + 2);
                }
            }
            if (ready > 0) done = complete();
        }
        return done;
    }

private:
    struct Member {
        int fd;
        std::string partial;
        std::vector<std::string> lines;
    };
    int epoll_fd_;
    std::vector<Member> members_;
};

TEST(Connections, NineteenThousandSubscribersEachReceiveTheirMessages) {
    const std::uint64_t limit = e2e::raise_open_file_limit();
    const std::size_t connections = std::min<std::size_t>(kWanted, limit > kHeadroom ? limit - kHeadroom : 0);
    if (connections < 1000) GTEST_SKIP() << "open-file limit " << limit << " is too low";
    e2e::MemqdProcess memqd(e2e::any_port());
    const auto started = Clock::now();
    const Memory before = read_memory(memqd.pid());
    {
        Crowd crowd;
        while (crowd.size() < connections) {
            const std::size_t from = crowd.size();
            for (std::size_t i = from; i < std::min(from + kBlock, connections); ++i) {
                ASSERT_NO_THROW(crowd.join(memqd.port(), e2e::subscribe_command(topic_of(i)))) << "connection " << i;
            }
            ASSERT_EQ(crowd.read_until(from, 1, 30s), crowd.size() - from) << "acks missing in block from " << from;
        }
        const std::size_t memqd_fds = count_fds(memqd.pid());
        const double connect_seconds = std::chrono::duration<double>(Clock::now() - started).count();

        e2e::LineClient publisher(memqd.port());
        std::string sends;
        for (std::size_t n = 0; n < kMessagesPerTopic; ++n) {
            for (std::size_t t = 0; t < kTopics; ++t) sends += e2e::send_command(topic_of(t), msg_of(t, n)) + "\n";
        }
        publisher.send_raw(sends, 30s);
        for (std::size_t i = 0; i < kTopics * kMessagesPerTopic; ++i) {
            ASSERT_TRUE(e2e::is_json(publisher.read_line(30s), e2e::kAck)) << "send " << i;
        }
        ASSERT_EQ(crowd.read_until(0, 1 + kMessagesPerTopic, 60s), connections) << "deliveries missing";
        for (std::size_t i = 0; i < connections; ++i) {
            const std::vector<std::string>& lines = crowd.lines(i);
            ASSERT_EQ(lines.size(), 1 + kMessagesPerTopic) << "connection " << i;
            ASSERT_TRUE(e2e::is_json(lines[0], e2e::kAck)) << "connection " << i;
            for (std::size_t n = 0; n < kMessagesPerTopic; ++n) {
                ASSERT_TRUE(e2e::is_json(lines[1 + n], e2e::delivered_message(topic_of(i), msg_of(i % kTopics, n),
                                                                               static_cast<std::int64_t>(n))))
                    << "connection " << i;
            }
        }
        const Memory after = read_memory(memqd.pid());
        const std::uint64_t growth = after.hwm_bytes > before.rss_bytes ? after.hwm_bytes - before.rss_bytes : 0;
        const std::uint64_t per_connection = growth / connections;
        figure("connections", std::string(build_flavour()) + "; open-file limit " + std::to_string(limit) + "; " +
                                  std::to_string(connections) + " subscribed connections in " +
                                  std::to_string(connect_seconds) + " s; memqd fds=" + std::to_string(memqd_fds) +
                                  "; each got its " + std::to_string(kMessagesPerTopic) + " messages (" +
                                  std::to_string(kTopics) + " topics)");
        figure("connections", "memqd VmRSS before=" + mib(before.rss_bytes) + " VmHWM=" + mib(after.hwm_bytes) +
                                  " growth=" + mib(growth) + " per connection=" + std::to_string(per_connection) +
                                  " bytes bound=" + std::to_string(kPerConnectionBound) + " bytes");
        EXPECT_GE(memqd_fds, connections);
        EXPECT_LT(per_connection, kPerConnectionBound);
    }
    const e2e::ExitStatus status = memqd.stop(30s);
    EXPECT_TRUE(status.is_clean()) << e2e::describe(status) << "; stderr:\n" << memqd.stderr_text();
}

}  // namespace
}  // namespace memq::overload
