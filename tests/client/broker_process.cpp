// broker_process.cpp — spawning, finding the port of, and stopping a memqd child process.
#include "broker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
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

BrokerProcess::BrokerProcess(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
    if (!memqd_available()) throw std::runtime_error("no memqd built");
    char pattern[] = "/tmp/memq-client-test-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    directory_ = pattern;
    spawn(0);
}

void BrokerProcess::spawn(std::uint16_t port) {
    const std::string port_file = directory_ + "/port";
    const std::string log_file = directory_ + "/memqd.log";
    std::filesystem::remove(port_file);  // a restart must not read the last run's

    std::vector<std::string> args = {kMemqdPath, "--port", std::to_string(port), "--port-file", port_file};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int spawned = posix_spawn(&pid_, kMemqdPath, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error(std::string("posix_spawn memqd: ") + std::strerror(spawned));

    const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
        std::ifstream in(port_file);
        unsigned port = 0;
        if (in >> port && port > 0 && port < 65536) {
            port_ = static_cast<std::uint16_t>(port);
            return;
        }
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("memqd exited at start; see " + log_file);
        }
        std::this_thread::sleep_for(kPollInterval);  // polling a condition, with a deadline
    }
    stop();
    throw std::runtime_error("memqd wrote no port file within the deadline; see " + log_file);
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
