// broker_process.hpp — a real memqd for tests: started on a free port, stopped with SIGTERM.
//
// The port is learned from memqd's --port-file, polled with a deadline (memqd
// writes it atomically once listening); the process is reaped with waitpid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace memq::testing {

// True when this test binary was built with a memqd to run (MEMQD_PATH).
bool memqd_available();

// Which server a BrokerProcess runs: memqd, or the aiomemq-protocol reference
// server of the Python suite (tests/python/aiomemq_reference_server.py, no
// memq extension: hello is "Malformed json message"), with a cache of 100.
enum class Server { memqd, aiomemq_reference };

class BrokerProcess {
public:
    // Starts memqd with `extra_args` (e.g. {"--cache-size", "10"}); throws
    // std::runtime_error when it does not come up within a few seconds.
    explicit BrokerProcess(std::vector<std::string> extra_args = {});
    // Starts `server` (extra_args only for memqd) on a free port.
    explicit BrokerProcess(Server server, std::vector<std::string> extra_args = {});
    ~BrokerProcess();
    BrokerProcess(const BrokerProcess&) = delete;
    BrokerProcess& operator=(const BrokerProcess&) = delete;

    std::uint16_t port() const { return port_; }
    // SIGTERM, then waits for the exit; returns the exit status (as waitpid's).
    int stop();
    // Ends memqd with `signal` (SIGTERM, SIGKILL), waits for the exit, and
    // starts a new memqd, with the same arguments, on the same port. Returns
    // the old one's exit status.
    int restart(int signal);

private:
    void spawn(std::uint16_t port);
    int end(int signal);

    void spawn_memqd(std::uint16_t port);
    // Polls `ready` until it holds; throws if the process exits first or the deadline passes.
    void await_start(const std::string& what, const std::string& log_file, const std::function<bool()>& ready);
    void spawn_reference(std::uint16_t port);

    Server server_ = Server::memqd;
    std::vector<std::string> extra_args_;
    std::string directory_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
};

// Skips the current test when there is no memqd to run.
#define MEMQ_REQUIRE_MEMQD()                                                   \
    do {                                                                       \
        if (!::memq::testing::memqd_available()) GTEST_SKIP() << "no memqd built"; \
    } while (false)

}  // namespace memq::testing
