// memqd_process.cpp — spawning, watching and stopping memqd child processes.
#include "memqd_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace memq::e2e {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kPollInterval{2};

std::runtime_error system_failure(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

ExitStatus decode(int wait_status) {
    ExitStatus status;
    if (WIFEXITED(wait_status)) {
        status.exited = true;
        status.code = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
        status.signal = WTERMSIG(wait_status);
    }
    return status;
}

// Reaps `pid` if it has exited, without blocking.
std::optional<ExitStatus> try_reap(pid_t pid) {
    int wait_status = 0;
    const pid_t reaped = waitpid(pid, &wait_status, WNOHANG);
    if (reaped == pid) return decode(wait_status);
    if (reaped < 0) throw system_failure("waitpid");
    return std::nullopt;
}

// Waits for `pid` to exit; past the deadline it is SIGKILLed and reported as timed out.
ExitStatus wait_for_exit(pid_t pid, std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
        if (std::optional<ExitStatus> status = try_reap(pid)) return *status;
        std::this_thread::sleep_for(kPollInterval);
    }
    kill(pid, SIGKILL);
    int wait_status = 0;
    waitpid(pid, &wait_status, 0);
    ExitStatus status = decode(wait_status);
    status.timed_out = true;
    return status;
}

// Starts MEMQD_PATH with `args`; stdin from /dev/null, stdout and stderr into files.
pid_t spawn_memqd(const std::vector<std::string>& args, const fs::path& stdout_path, const fs::path& stderr_path) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(MEMQD_PATH));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    // The child starts with default signal handling and nothing blocked, whatever the test runner set.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t no_signals;
    sigemptyset(&no_signals);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (const int number : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) sigaddset(&defaults, number);
    posix_spawnattr_setsigmask(&attributes, &no_signals);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = -1;
    const int error = posix_spawn(&pid, MEMQD_PATH, &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw std::runtime_error(std::string("posix_spawn " MEMQD_PATH ": ") + std::strerror(error));
    return pid;
}

// The port in a complete port file ("PORT\n"), if there is one yet.
std::optional<std::uint16_t> read_port_file(const fs::path& path) {
    std::error_code ignored;
    if (!fs::exists(path, ignored)) return std::nullopt;
    const std::string text = read_file(path);
    if (text.empty() || text.back() != '\n') throw std::runtime_error("partial port file: '" + text + "'");
    unsigned value = 0;
    const char* const end = text.data() + text.size() - 1;
    const auto [stop, parse_error] = std::from_chars(text.data(), end, value);
    if (parse_error != std::errc{} || stop != end || value == 0 || value > 65535) {
        throw std::runtime_error("bad port file: '" + text + "'");
    }
    return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string describe(const ExitStatus& status) {
    std::ostringstream text;
    if (status.exited) {
        text << "exited with code " << status.code;
    } else {
        text << "killed by signal " << status.signal;
    }
    if (status.timed_out) text << " (after the deadline passed)";
    return text.str();
}

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "memq-e2e-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw system_failure("mkdtemp");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

MemqdProcess::MemqdProcess(std::vector<std::string> args, std::chrono::milliseconds deadline) {
    const fs::path port_file = dir_.path() / "port";
    args.push_back("--port-file");
    args.push_back(port_file.string());
    pid_ = spawn_memqd(args, dir_.path() / "stdout", dir_.path() / "stderr");

    const auto until = Clock::now() + deadline;
    for (;;) {
        if (std::optional<std::uint16_t> port = read_port_file(port_file)) {
            port_ = *port;
            return;
        }
        if (std::optional<ExitStatus> status = try_reap(pid_)) {
            exit_status_ = status;
            throw std::runtime_error("memqd " + describe(*status) + " before listening; stderr: " + stderr_text());
        }
        if (Clock::now() >= until) {
            exit_status_ = wait_for_exit(pid_, std::chrono::milliseconds(0));
            throw std::runtime_error("memqd wrote no port file before the deadline; stderr: " + stderr_text());
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

MemqdProcess::~MemqdProcess() {
    if (pid_ > 0 && !exit_status_) wait_for_exit(pid_, std::chrono::milliseconds(0));  // kills it
}

std::vector<std::string> any_port(std::vector<std::string> extra_args) {
    std::vector<std::string> args{"--port", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return args;
}

bool MemqdProcess::running() {
    if (exit_status_) return false;
    exit_status_ = try_reap(pid_);
    return !exit_status_;
}

ExitStatus MemqdProcess::signal_and_wait(int signal_number, std::chrono::milliseconds deadline) {
    if (exit_status_) return *exit_status_;
    kill(pid_, signal_number);
    exit_status_ = wait_for_exit(pid_, deadline);
    return *exit_status_;
}

ExitStatus MemqdProcess::stop(std::chrono::milliseconds deadline) { return signal_and_wait(SIGTERM, deadline); }

std::string MemqdProcess::stderr_text() const { return read_file(dir_.path() / "stderr"); }

RunResult run_memqd(const std::vector<std::string>& args, std::chrono::milliseconds deadline) {
    const TempDir dir;
    const pid_t pid = spawn_memqd(args, dir.path() / "stdout", dir.path() / "stderr");
    RunResult result;
    result.status = wait_for_exit(pid, deadline);
    result.stdout_text = read_file(dir.path() / "stdout");
    result.stderr_text = read_file(dir.path() / "stderr");
    return result;
}

std::uint16_t pick_free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw system_failure("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    close(fd);
    if (!ok) throw system_failure("bind");
    return ntohs(address.sin_port);
}

std::uint64_t raise_open_file_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) throw system_failure("getrlimit");
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) throw system_failure("setrlimit");
    return limit.rlim_cur;
}

}  // namespace memq::e2e
