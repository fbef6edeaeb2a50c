// broker_process.cpp — spawning, finding the port of, and stopping a memqd child process.
#include "broker_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace memq::testing {
namespace {

constexpr auto kStartDeadline = std::chrono::seconds(10);
constexpr auto kPollInterval = std::chrono::milliseconds(2);

#ifdef MEMQD_PATH
constexpr const char* kMemqdPath = MEMQD_PATH;
#else
constexpr const char* kMemqdPath = nullptr;
#endif

}  // namespace

bool memqd_available() { return kMemqdPath != nullptr; }

BrokerProcess::BrokerProcess(std::vector<std::string> extra_args) : BrokerProcess(Server::memqd, std::move(extra_args)) {}

BrokerProcess::BrokerProcess(Server server, std::vector<std::string> extra_args)
    : server_(server), extra_args_(std::move(extra_args)) {
    if (server_ == Server::memqd && !memqd_available()) throw std::runtime_error("no memqd built");
    char pattern[] = "/tmp/memq-client-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    directory_ = pattern;
    spawn(0);
}

namespace {

// Starts `args` with stderr appended to `log_file`; returns the pid.
pid_t spawn_logged(std::vector<std::string> args, const std::string& log_file) {
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error("posix_spawn " + args[0] + ": " + std::strerror(spawned));
    return pid;
}

// A loopback socket bound to `port` (0: any); -1 on failure.
int loopback_socket(std::uint16_t port, bool connect_to) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto* where = reinterpret_cast<const sockaddr*>(&address);
    if ((connect_to ? connect(fd, where, sizeof address) : bind(fd, where, sizeof address)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

std::uint16_t free_port() {
    const int fd = loopback_socket(0, false);
    if (fd < 0) throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    sockaddr_in address{};
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
}

}  // namespace

void BrokerProcess::spawn(std::uint16_t port) {
    if (server_ == Server::memqd) {
        spawn_memqd(port);
    } else {
        spawn_reference(port == 0 ? free_port() : port);
    }
}

void BrokerProcess::spawn_reference(std::uint16_t port) {
    const std::string log_file = directory_ + "/server.log";
    // The system's python3 when there is one: it starts faster than a version manager's shim.
    std::vector<std::string> python = {"/usr/bin/python3"};
    if (access(python[0].c_str(), X_OK) != 0) python = {"/usr/bin/env", "python3"};
    python.insert(python.end(), {MEMQ_SOURCE_DIR "/tests/python/aiomemq_reference_server.py", std::to_string(port), "100"});
    pid_ = spawn_logged(std::move(python), log_file);
    port_ = port;
    await_start("the reference server", log_file, [port] {
        const int fd = loopback_socket(port, true);
        if (fd >= 0) close(fd);
        return fd >= 0;
    });
}

void BrokerProcess::await_start(const std::string& what, const std::string& log_file,
                                const std::function<bool()>& ready) {
    const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
        if (ready()) return;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error(what + " exited at start; see " + log_file);
        }
        std::this_thread::sleep_for(kPollInterval);  // polling a condition, with a deadline
    }
    stop();
    throw std::runtime_error(what + " did not come up within the deadline; see " + log_file);
}

void BrokerProcess::spawn_memqd(std::uint16_t port) {
    const std::string port_file = directory_ + "/port";
    const std::string log_file = directory_ + "/memqd.log";
    std::filesystem::remove(port_file);  // a restart must not read the last run's

    std::vector<std::string> args = {kMemqdPath, "--port", std::to_string(port), "--port-file", port_file};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    pid_ = spawn_logged(std::move(args), log_file);
    await_start("memqd (its port file)", log_file, [this, &port_file] {
        std::ifstream in(port_file);
        unsigned port = 0;
        if (!(in >> port && port > 0 && port < 65536)) return false;
        port_ = static_cast<std::uint16_t>(port);
        return true;
    });
}

int BrokerProcess::stop() { return end(SIGTERM); }

int BrokerProcess::restart(int signal) {
    const int status = end(signal);
    spawn(port_);
    return status;
}

int BrokerProcess::end(int signal) {
    if (pid_ < 0) return 0;
    kill(pid_, signal);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
}

BrokerProcess::~BrokerProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

}  // namespace memq::testing
