// digest.hpp — the run's fingerprint: a 64-bit hash over every event and
// every byte the simulated clients receive.
//
// Rules: the value depends only on what is mixed in and in which order (no
// pointers, no addresses, no clock), so two runs of one seed with one binary
// print the same digest. Not cryptographic; it must only be cheap and spread
// any difference over all 64 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace memq::sim {

class Digest {
public:
    void mix(std::uint64_t value) { state_ = rotl(state_ ^ (value * kMul1), 31) * kMul2; }

    void mix(std::uint64_t a, std::uint64_t b) {
        mix(a);
        mix(b);
    }

    void mix(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
        mix(a);
        mix(b);
        mix(c);
    }

    // Mixes the bytes eight at a time, then their count (so "ab"+"c" and
    // "a"+"bc" differ as calls, as they should: the cut points are events).
    void bytes(std::string_view data) {
        const char* p = data.data();
        std::size_t left = data.size();
        while (left >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p, 8);
            mix(word);
            p += 8;
            left -= 8;
        }
        std::uint64_t tail = 0;
        std::memcpy(&tail, p, left);
        mix(tail ^ (static_cast<std::uint64_t>(data.size()) << 56));
    }

    // The final value: one more avalanche so that nearby states print far apart.
    std::uint64_t value() const {
        std::uint64_t z = state_;
        z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
        z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ULL;
        return z ^ (z >> 33);
    }

private:
    static constexpr std::uint64_t kMul1 = 0x9e3779b97f4a7c15ULL;
    static constexpr std::uint64_t kMul2 = 0xbf58476d1ce4e5b9ULL;
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace memq::sim
