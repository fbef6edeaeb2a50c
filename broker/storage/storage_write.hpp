#pragma once
#include <cstdint>
#include <string>
namespace memq::storage {
struct StorageWrite { std::uint64_t seq = 0; std::string bytes; bool replace = false; bool sync_now = false; };
}
