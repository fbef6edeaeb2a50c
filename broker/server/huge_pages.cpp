// huge_pages.cpp — the GLIBC_TUNABLES re-execution of huge_pages.hpp.
#include "huge_pages.hpp"

#include <climits>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace memq {

std::string tunables_with_huge_pages(const char* current) {
    const std::string setting = std::string(kHugePageTunable) + "=1";
    if (current == nullptr || *current == '\0') return setting;
    // GLIBC_TUNABLES is a colon-separated list of name=value.
    std::string_view rest = current;
    while (!rest.empty()) {
        const std::size_t colon = rest.find(':');
        const std::string_view item = rest.substr(0, colon);
        if (item.substr(0, item.find('=')) == kHugePageTunable) return "";
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    return std::string(current) + ":" + setting;
}

std::string reexec_with_huge_page_heap(char** argv) {
    const char* const current = std::getenv("GLIBC_TUNABLES");
    const std::string tunables = tunables_with_huge_pages(current);
    if (tunables.empty()) return "";
    const std::string before = current == nullptr ? "" : current;
    if (::setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return std::string("setenv: ") + std::strerror(errno);
    // The binary's own path, not /proc/self/exe: the process keeps its name
    // (ps, pgrep and top show "memqd", not "exe").
    std::string self(PATH_MAX, '\0');
    const ssize_t length = ::readlink("/proc/self/exe", self.data(), self.size());
    std::string problem;
    if (length <= 0 || static_cast<std::size_t>(length) >= self.size()) {
        problem = std::string("readlink /proc/self/exe: ") + std::strerror(length < 0 ? errno : ENAMETOOLONG);
    } else {
        self.resize(static_cast<std::size_t>(length));
        ::execv(self.c_str(), argv);
        problem = "exec " + self + ": " + std::strerror(errno);
    }
    // Back as it was (nothing in this process reads it again).
    if (current == nullptr) ::unsetenv("GLIBC_TUNABLES");
    else ::setenv("GLIBC_TUNABLES", before.c_str(), 1);
    return problem;
}

}  // namespace memq
