// prng.hpp — the broker's only source of randomness: a seeded xoshiro256**.
//
// Rules: deterministic for a given seed on every platform and standard
// library (no <random> distributions); seeded through splitmix64 so that any
// 64-bit seed, 0 included, gives a well-mixed state.
#pragma once

#include <array>
#include <cstdint>

namespace memq {

__extension__ typedef unsigned __int128 Uint128;  // -Wpedantic: a GCC/Clang extension

// One splitmix64 step: advances `state` and returns the next output.
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

class Prng {
public:
    explicit constexpr Prng(std::uint64_t seed) {
        for (auto& word : state_) word = splitmix64(seed);
    }

    constexpr std::uint64_t next() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, bound), bound > 0, without modulo bias (rejection on the
    // top of the 128-bit product, after Lemire).
    constexpr std::uint64_t below(std::uint64_t bound) {
        const std::uint64_t threshold = (0 - bound) % bound;
        for (;;) {
            const Uint128 product = static_cast<Uint128>(next()) * bound;
            if (static_cast<std::uint64_t>(product) >= threshold) {
                return static_cast<std::uint64_t>(product >> 64);
            }
        }
    }

    // True with probability numerator / denominator.
    constexpr bool chance(std::uint64_t numerator, std::uint64_t denominator) {
        return below(denominator) < numerator;
    }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::array<std::uint64_t, 4> state_{};
};

}  // namespace memq
