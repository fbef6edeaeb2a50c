// log_scan_test.cpp — specifies scan_log (broker/storage/log_format.hpp):
// what a whole log, an empty file and a refused header yield; that every
// truncation point of a valid log scans to its good prefix as a torn tail;
// that every single bit flip is detected, never delivered, and classified
// (header refused, torn tail for the last record, corrupt middle before it);
// that strict stops at a corrupt middle and salvage keeps every good record
// after it; and the body-length limit as the scanner applies it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "log_test_support.hpp"

namespace {

using namespace memq_storage_test;
using memq::storage::Damage;
using memq::storage::HeaderStatus;
using memq::storage::kHeaderBytes;
using memq::storage::ScanMode;

std::vector<Record> first(const std::vector<Record>& records, std::size_t count) {
    return {records.begin(), records.begin() + static_cast<std::ptrdiff_t>(count)};
}

std::vector<Record> all_but(const std::vector<Record>& records, std::size_t skipped) {
    std::vector<Record> kept = records;
    kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(skipped));
    return kept;
}

// The offset just past record k of the sample.
std::size_t end_of(const SampleLog& log, std::size_t k) {
    return k + 1 < log.offsets.size() ? log.offsets[k + 1] : log.bytes.size();
}

// ---- whole files -------------------------------------------------------------

TEST(LogScan, an_empty_file_has_no_header_no_records_and_no_damage) {
    const Collected got = scan("");
    EXPECT_EQ(got.result.header, HeaderStatus::missing);
    EXPECT_TRUE(got.result.header_accepted());
    EXPECT_TRUE(got.records.empty());
    EXPECT_EQ(got.result.good_bytes, 0u);
    EXPECT_EQ(got.result.damage, Damage::none);
}

TEST(LogScan, a_header_alone_is_a_log_of_no_records) {
    const Collected got = scan(header_bytes(3));
    EXPECT_EQ(got.result.header, HeaderStatus::ok);
    EXPECT_EQ(got.result.incarnation, 3u);
    EXPECT_EQ(got.result.records, 0u);
    EXPECT_EQ(got.result.good_bytes, kHeaderBytes);
    EXPECT_EQ(got.result.damage, Damage::none);
}

TEST(LogScan, a_valid_log_yields_every_record_in_order) {
    const SampleLog log = sample_log();
    const Collected got = scan(log.bytes);
    EXPECT_EQ(got.result.header, HeaderStatus::ok);
    EXPECT_EQ(got.result.incarnation, 42u);
    EXPECT_EQ(got.records, log.records);
    EXPECT_EQ(got.result.records, log.records.size());
    EXPECT_EQ(got.result.good_bytes, log.bytes.size());
    EXPECT_EQ(got.result.damage, Damage::none);
}

TEST(LogScan, a_refused_header_yields_no_record_at_all) {
    SampleLog log = sample_log();
    log.bytes[0] = 'X';
    const Collected got = scan(log.bytes, ScanMode::salvage);
    EXPECT_EQ(got.result.header, HeaderStatus::bad_magic);
    EXPECT_FALSE(got.result.header_accepted());
    EXPECT_TRUE(got.records.empty());
    EXPECT_EQ(got.result.good_bytes, 0u);
}

TEST(LogScan, a_version_1_log_is_read_with_its_framed_messages) {
    std::string file = header_bytes(42, 1);
    memq::storage::append_reserve(file, "t", 8);
    memq::storage::append_framed_message(file, "t", 0, Delivery::one, "frame 0\r\n");
    const Collected got = scan(file);
    EXPECT_EQ(got.result.header, HeaderStatus::ok);
    EXPECT_EQ(got.result.damage, memq::storage::Damage::none);
    EXPECT_EQ(got.records, (std::vector<Record>{Record(RecordKind::reserve, "t", 8),
                                                Record(RecordKind::framed_message, "t", 0, Delivery::one, "frame 0\r\n")}));
}

TEST(LogScan, a_log_of_another_version_is_refused) {
    const SampleLog log = sample_log();
    const std::string file = header_bytes(42, 3) + log.bytes.substr(kHeaderBytes);
    const Collected got = scan(file);
    EXPECT_EQ(got.result.header, HeaderStatus::bad_version);
    EXPECT_TRUE(got.records.empty());
}

// ---- torn tails ----------------------------------------------------------------

TEST(LogScan, every_truncation_point_scans_to_the_records_that_fit_whole) {
    const SampleLog log = sample_log();
    for (std::size_t length = kHeaderBytes; length <= log.bytes.size(); ++length) {
        const Collected got = scan(std::string_view(log.bytes).substr(0, length));
        std::size_t whole = 0;
        while (whole < log.records.size() && end_of(log, whole) <= length) ++whole;
        const std::size_t boundary = whole == 0 ? kHeaderBytes : end_of(log, whole - 1);
        EXPECT_EQ(got.records, first(log.records, whole)) << "length " << length;
        EXPECT_EQ(got.result.good_bytes, boundary) << "length " << length;
        if (boundary == length) {
            EXPECT_EQ(got.result.damage, Damage::none) << "length " << length;
        } else {
            EXPECT_EQ(got.result.damage, Damage::torn_tail) << "length " << length;
            EXPECT_EQ(got.result.damage_offset, boundary) << "length " << length;
        }
    }
}

TEST(LogScan, every_truncation_inside_the_header_is_refused_as_truncated) {
    const SampleLog log = sample_log();
    for (std::size_t length = 1; length < kHeaderBytes; ++length) {
        const Collected got = scan(std::string_view(log.bytes).substr(0, length));
        EXPECT_EQ(got.result.header, HeaderStatus::truncated) << "length " << length;
        EXPECT_TRUE(got.records.empty());
    }
}

TEST(LogScan, a_zero_filled_tail_is_a_torn_tail) {
    const SampleLog log = sample_log();
    const Collected got = scan(log.bytes + std::string(4096, '\0'));
    EXPECT_EQ(got.records, log.records);
    EXPECT_EQ(got.result.damage, Damage::torn_tail);
    EXPECT_EQ(got.result.good_bytes, log.bytes.size());
}

TEST(LogScan, a_torn_tail_is_the_same_in_salvage_and_skips_nothing) {
    const SampleLog log = sample_log();
    const Collected got = scan(std::string_view(log.bytes).substr(0, log.bytes.size() - 1), ScanMode::salvage);
    EXPECT_EQ(got.result.damage, Damage::torn_tail);
    EXPECT_EQ(got.records, first(log.records, log.records.size() - 1));
    EXPECT_EQ(got.result.skipped_regions, 0u);
    EXPECT_EQ(got.result.skipped_bytes, 0u);
}

// ---- bit flips -----------------------------------------------------------------

TEST(LogScan, every_bit_flip_in_the_header_refuses_the_log) {
    const SampleLog log = sample_log();
    for (std::size_t byte = 0; byte < kHeaderBytes; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string file = log.bytes;
            file[byte] = static_cast<char>(file[byte] ^ (1 << bit));
            const Collected got = scan(file, ScanMode::salvage);
            EXPECT_FALSE(got.result.header_accepted()) << "byte " << byte << " bit " << bit;
            EXPECT_TRUE(got.records.empty()) << "byte " << byte << " bit " << bit;
        }
    }
}

// Calls check(k, file, where) for every single bit flip in every record k of
// the sample log.
template <class Check>
void for_every_bit_flip_in_a_record(const SampleLog& log, Check check) {
    for (std::size_t k = 0; k < log.records.size(); ++k) {
        for (std::size_t byte = log.offsets[k]; byte < end_of(log, k); ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                std::string file = log.bytes;
                file[byte] = static_cast<char>(file[byte] ^ (1 << bit));
                check(k, file,
                      "record " + std::to_string(k) + " byte " + std::to_string(byte) + " bit " + std::to_string(bit));
            }
        }
    }
}

TEST(LogScan, every_bit_flip_in_a_record_is_detected_and_classified_in_strict_mode) {
    const SampleLog log = sample_log();
    const std::size_t last = log.records.size() - 1;
    for_every_bit_flip_in_a_record(log, [&](std::size_t k, const std::string& file, const std::string& where) {
        const Collected got = scan(file, ScanMode::strict);
        EXPECT_EQ(got.records, first(log.records, k)) << where;
        EXPECT_EQ(got.result.good_bytes, log.offsets[k]) << where;
        EXPECT_EQ(got.result.damage_offset, log.offsets[k]) << where;
        EXPECT_EQ(got.result.damage, k == last ? Damage::torn_tail : Damage::corrupt_middle) << where;
    });
}

TEST(LogScan, every_bit_flip_in_a_record_loses_that_record_alone_in_salvage_mode) {
    const SampleLog log = sample_log();
    const std::size_t last = log.records.size() - 1;
    for_every_bit_flip_in_a_record(log, [&](std::size_t k, const std::string& file, const std::string& where) {
        const Collected got = scan(file, ScanMode::salvage);
        EXPECT_EQ(got.records, all_but(log.records, k)) << where;
        EXPECT_EQ(got.result.skipped_regions, k == last ? 0u : 1u) << where;
        EXPECT_EQ(got.result.skipped_bytes, k == last ? 0u : end_of(log, k) - log.offsets[k]) << where;
    });
}

// ---- corrupt middles -------------------------------------------------------------

TEST(LogScan, strict_mode_stops_at_a_corrupt_middle_and_reports_its_offset) {
    const SampleLog log = sample_log();
    const std::string file = log.bytes.substr(0, log.offsets[2]) + "garbage!" + log.bytes.substr(log.offsets[2]);
    const Collected got = scan(file, ScanMode::strict);
    EXPECT_EQ(got.result.damage, Damage::corrupt_middle);
    EXPECT_EQ(got.result.damage_offset, log.offsets[2]);
    EXPECT_EQ(got.records, first(log.records, 2));
    EXPECT_EQ(got.result.skipped_bytes, 0u);
}

TEST(LogScan, salvage_skips_a_corrupt_region_and_keeps_every_record_after_it) {
    const SampleLog log = sample_log();
    const std::string file = log.bytes.substr(0, log.offsets[2]) + "garbage!" + log.bytes.substr(log.offsets[2]);
    const Collected got = scan(file, ScanMode::salvage);
    EXPECT_EQ(got.result.damage, Damage::corrupt_middle);
    EXPECT_EQ(got.result.damage_offset, log.offsets[2]);
    EXPECT_EQ(got.result.good_bytes, log.offsets[2]) << "the good prefix ends at the corruption";
    EXPECT_EQ(got.records, log.records);
    EXPECT_EQ(got.result.skipped_regions, 1u);
    EXPECT_EQ(got.result.skipped_bytes, 8u);
}

TEST(LogScan, salvage_counts_each_corrupt_region) {
    const SampleLog log = sample_log();
    std::string file = log.bytes;
    file[log.offsets[1]] = static_cast<char>(file[log.offsets[1]] ^ 1);
    file[log.offsets[3]] = static_cast<char>(file[log.offsets[3]] ^ 1);
    const Collected got = scan(file, ScanMode::salvage);
    EXPECT_EQ(got.records, (std::vector<Record>{log.records[0], log.records[2], log.records[4]}));
    EXPECT_EQ(got.result.skipped_regions, 2u);
    EXPECT_EQ(got.result.skipped_bytes, (log.offsets[2] - log.offsets[1]) + (log.offsets[4] - log.offsets[3]));
    EXPECT_EQ(got.result.damage_offset, log.offsets[1]) << "the first damage is reported";
}

TEST(LogScan, a_corrupt_middle_then_a_torn_tail_is_reported_as_the_corrupt_middle) {
    const SampleLog log = sample_log();
    std::string file = log.bytes.substr(0, log.bytes.size() - 1);
    file[log.offsets[1]] = static_cast<char>(file[log.offsets[1]] ^ 1);
    const Collected got = scan(file, ScanMode::salvage);
    EXPECT_EQ(got.result.damage, Damage::corrupt_middle);
    EXPECT_EQ(got.records, (std::vector<Record>{log.records[0], log.records[2], log.records[3]}));
}

TEST(LogScan, a_record_with_a_good_crc_but_bad_contents_is_corruption_too) {
    const SampleLog log = sample_log();
    const std::string bad_kind = sealed(std::string(1, '\x09') + le32(1) + "t" + le64(0));
    const std::string file = log.bytes.substr(0, log.offsets[1]) + bad_kind + log.bytes.substr(log.offsets[1]);
    const Collected got = scan(file, ScanMode::salvage);
    EXPECT_EQ(got.result.damage, Damage::corrupt_middle);
    EXPECT_EQ(got.records, log.records);
    EXPECT_EQ(got.result.skipped_bytes, bad_kind.size());
}

// Nested take records, every 13 bytes, each claiming the rest of the file as
// its topic and each with a wrong crc: every one passes the structural checks,
// so a search would checksum about size^2/26 bytes without its budget.
std::string nested_bad_candidates(std::size_t bytes) {
    constexpr std::size_t kStep = 8 + 1 + 4;
    std::string region;
    while (bytes - region.size() >= kStep + 8 + kStep) {
        const std::size_t body = bytes - region.size() - 8;
        region += le32(0) + le32(static_cast<std::uint32_t>(body)) + std::string(1, '\2') +
                  le32(static_cast<std::uint32_t>(body - 1 - 4 - 8));
    }
    return region + std::string(bytes - region.size(), '\0');
}

TEST(LogScan, a_search_that_exhausts_its_checksum_budget_is_a_corrupt_middle) {
    const SampleLog log = sample_log();
    const std::string file = log.bytes + nested_bad_candidates(64 * 1024);
    const Collected strict = scan(file, ScanMode::strict);
    EXPECT_EQ(strict.result.damage, Damage::corrupt_middle) << "nothing proves the rest is a torn tail";
    EXPECT_EQ(strict.result.damage_offset, log.bytes.size());
    EXPECT_EQ(strict.records, log.records);
    const Collected salvage = scan(file, ScanMode::salvage);
    EXPECT_EQ(salvage.records, log.records);
    EXPECT_EQ(salvage.result.skipped_regions, 1u);
    EXPECT_EQ(salvage.result.skipped_bytes, 64u * 1024u) << "salvage drops the rest of the file";
}

TEST(LogScan, the_same_candidates_within_the_budget_are_a_torn_tail) {
    const SampleLog log = sample_log();
    const Collected got = scan(log.bytes + nested_bad_candidates(1024));
    EXPECT_EQ(got.result.damage, Damage::torn_tail);
    EXPECT_EQ(got.records, log.records);
}

// ---- the limit as the scanner applies it ---------------------------------------------

TEST(LogScan, a_record_whose_body_is_at_the_limit_is_read_and_one_above_is_a_torn_tail) {
    std::string file = header_bytes(1);
    memq::storage::append_take(file, "abc", 1);
    const std::size_t body = file.size() - kHeaderBytes - memq::storage::kRecordPrefixBytes;
    EXPECT_EQ(scan(file, ScanMode::strict, body).records.size(), 1u);
    EXPECT_EQ(scan(file, ScanMode::strict, body + 1).records.size(), 1u);
    const Collected over = scan(file, ScanMode::strict, body - 1);
    EXPECT_TRUE(over.records.empty());
    EXPECT_EQ(over.result.damage, Damage::torn_tail);
}

}  // namespace
