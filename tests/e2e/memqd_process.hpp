// memqd_process.hpp — runs the memqd binary as a child process for end-to-end tests.
//
// Rules: never a fixed port (memqd picks one and reports it through
// --port-file); every wait polls a condition against a deadline, none is a
// fixed sleep; a child still running when its owner goes away is killed, so
// a failed test leaves no process behind. Helpers throw std::runtime_error on
// failure, which GoogleTest reports as a test failure.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace memq::e2e {

inline constexpr std::chrono::milliseconds kDefaultDeadline{10000};

// How a child process ended.
struct ExitStatus {
    bool exited = false;  // false: killed by a signal (or never ended)
    int code = -1;        // exit code when exited
    int signal = 0;       // signal number when killed
    bool timed_out = false;

    bool is_clean() const { return exited && code == 0; }
};

std::string describe(const ExitStatus& status);

// A scratch directory, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

class MemqdProcess {
public:
    // Starts `memqd ARGS... --port-file FILE` and returns once FILE appears
    // (or throws, with memqd's stderr, if it exits or the deadline passes).
    // Pass "--port", "0" (see any_port) unless the test needs a given port.
    explicit MemqdProcess(std::vector<std::string> args, std::chrono::milliseconds deadline = kDefaultDeadline);
    ~MemqdProcess();
    MemqdProcess(const MemqdProcess&) = delete;
    MemqdProcess& operator=(const MemqdProcess&) = delete;

    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }

    // True while the child has not exited (reaps it if it has).
    bool running();
    // Sends `signal_number` and waits for the exit; SIGKILLs it past the deadline.
    ExitStatus signal_and_wait(int signal_number, std::chrono::milliseconds deadline = kDefaultDeadline);
    // SIGTERM, then wait.
    ExitStatus stop(std::chrono::milliseconds deadline = kDefaultDeadline);
    std::string stderr_text() const;

private:
    TempDir dir_;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::optional<ExitStatus> exit_status_;
};

// {"--port", "0", EXTRA...}: memqd's arguments for a test that needs no given port.
std::vector<std::string> any_port(std::vector<std::string> extra_args = {});

// Result of running memqd to completion (for argument checks).
struct RunResult {
    ExitStatus status;
    std::string stdout_text;
    std::string stderr_text;
};

// Runs `memqd ARGS...` and waits for it to exit (SIGKILL past the deadline).
RunResult run_memqd(const std::vector<std::string>& args, std::chrono::milliseconds deadline = kDefaultDeadline);

// A port that was free a moment ago (bound to port 0, then closed). Racy by
// nature: only for the test of memqd's positional port argument.
std::uint16_t pick_free_port();

// Sets the soft limit on open files to the hard limit; returns the new soft limit.
std::uint64_t raise_open_file_limit();

}  // namespace memq::e2e
