// overload.cpp — /proc readers, figure lines and loopback sockets for the overload tests.
#include "overload.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace memq::overload {
namespace {

std::runtime_error system_failure(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

std::string proc_path(pid_t pid, const char* entry) {
    return "/proc/" + std::to_string(pid) + "/" + entry;
}

}  // namespace

std::string_view build_flavour() { return kSanitized ? "sanitized build (data scaled down)" : "release-scale data"; }

Memory read_memory(pid_t pid) {
    std::ifstream status(proc_path(pid, "status"));
    if (!status) throw std::runtime_error("cannot read " + proc_path(pid, "status"));
    Memory memory;
    bool hwm = false, rss = false;
    for (std::string line; std::getline(status, line);) {
        std::istringstream fields(line);
        std::string key;
        std::uint64_t kib = 0;
        fields >> key >> kib;
        if (key == "VmHWM:") memory.hwm_bytes = kib * kKiB, hwm = true;
        if (key == "VmRSS:") memory.rss_bytes = kib * kKiB, rss = true;
    }
    if (!hwm || !rss) throw std::runtime_error("no VmHWM/VmRSS in " + proc_path(pid, "status"));
    return memory;
}

bool reset_peak(pid_t pid) {
    std::ofstream clear_refs(proc_path(pid, "clear_refs"));
    if (!clear_refs) return false;
    clear_refs << "5\n";
    clear_refs.flush();
    return static_cast<bool>(clear_refs);
}

std::size_t count_fds(pid_t pid) {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(proc_path(pid, "fd"))) ++count;
    return count;
}

std::string mib(std::uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / static_cast<double>(kMiB));
    return text;
}

void figure(std::string_view test, const std::string& text) {
    std::cout << "[figure] " << test << ": " << text << std::endl;
}

int connect_loopback(std::uint16_t port, int receive_buffer) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw system_failure("socket");
    if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    while (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        if (errno == EINTR) continue;
        const std::runtime_error error = system_failure("connect to 127.0.0.1:" + std::to_string(port));
        close(fd);
        throw error;
    }
    return fd;
}

void set_nonblocking(int fd) {
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) throw system_failure("fcntl O_NONBLOCK");
}

void close_with_reset(int fd) {
    const linger abort_on_close{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    close(fd);
}

}  // namespace memq::overload
