// crc32c_test.cpp — specifies CRC-32C (broker/storage/crc32c.hpp): the
// published check values, extension over pieces, and the SSE4.2 path agreeing
// with the table path at every length 0..64, every misalignment and on
// random inputs.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "crc32c.hpp"

namespace {

using memq::storage::crc32c;
using memq::storage::crc32c_hardware;
using memq::storage::crc32c_hardware_available;
using memq::storage::crc32c_portable;

std::string bytes_of(std::initializer_list<int> values) {
    std::string out;
    for (int value : values) out.push_back(static_cast<char>(value));
    return out;
}

std::string ascending(int from, int count, int step) {
    std::string out;
    for (int i = 0; i < count; ++i) out.push_back(static_cast<char>(from + i * step));
    return out;
}

std::string random_bytes(std::mt19937_64& random, std::size_t n) {
    std::string out(n, '\0');
    for (char& byte : out) byte = static_cast<char>(random() & 0xFFu);
    return out;
}

TEST(Crc32c, the_check_value_of_123456789_is_e3069283) {
    EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
    EXPECT_EQ(crc32c_portable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32c, nothing_checksums_to_zero) { EXPECT_EQ(crc32c(0, nullptr, 0), 0u); }

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, matches_the_iscsi_test_vectors) {
    EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
    EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
    EXPECT_EQ(crc32c(ascending(0, 32, 1)), 0x46DD794Eu);
    EXPECT_EQ(crc32c(ascending(31, 32, -1)), 0x113FDB5Cu);
}

TEST(Crc32c, a_single_byte_has_its_own_checksum) {
    EXPECT_NE(crc32c(bytes_of({0})), crc32c(bytes_of({1})));
}

TEST(Crc32c, extends_over_pieces_split_anywhere) {
    std::mt19937_64 random(7);
    const std::string whole = random_bytes(random, 100);
    for (std::size_t split = 0; split <= whole.size(); ++split) {
        const std::uint32_t first = crc32c(0, whole.data(), split);
        EXPECT_EQ(crc32c(first, whole.data() + split, whole.size() - split), crc32c(whole)) << "split " << split;
    }
}

TEST(Crc32c, hardware_and_table_agree_at_every_length_to_64_and_every_misalignment) {
    if (!crc32c_hardware_available()) GTEST_SKIP() << "this CPU has no SSE4.2";
    std::mt19937_64 random(11);
    const std::string buffer = random_bytes(random, 64 + 16);
    for (std::size_t start = 0; start < 16; ++start) {
        for (std::size_t length = 0; length <= 64; ++length) {
            const char* data = buffer.data() + start;
            EXPECT_EQ(crc32c_hardware(0, data, length), crc32c_portable(0, data, length))
                << "start " << start << " length " << length;
            EXPECT_EQ(crc32c_hardware(0x12345678u, data, length), crc32c_portable(0x12345678u, data, length))
                << "start " << start << " length " << length << " continuing";
        }
    }
}

TEST(Crc32c, hardware_and_table_agree_on_random_inputs) {
    if (!crc32c_hardware_available()) GTEST_SKIP() << "this CPU has no SSE4.2";
    std::mt19937_64 random(13);
    for (int round = 0; round < 500; ++round) {
        const std::string input = random_bytes(random, random() % 4096);
        const std::size_t start = input.empty() ? 0 : random() % input.size();
        const std::uint32_t seed = static_cast<std::uint32_t>(random());
        EXPECT_EQ(crc32c_hardware(seed, input.data() + start, input.size() - start),
                  crc32c_portable(seed, input.data() + start, input.size() - start))
            << "round " << round;
    }
}

TEST(Crc32c, the_chosen_path_agrees_with_the_table) {
    std::mt19937_64 random(17);
    const std::string input = random_bytes(random, 1000);
    EXPECT_EQ(crc32c(input), crc32c_portable(0, input.data(), input.size()));
}

}  // namespace
