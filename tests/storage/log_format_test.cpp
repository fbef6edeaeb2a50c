// log_format_test.cpp — specifies memq's on-disk log format
// (broker/storage/log_format.hpp): the header's bytes and its refusals, each
// record kind's bytes and round trip, the size functions, what makes a record
// bad (crc, lengths, kind, delivery, index) and the body-length limit at the
// number, one below and one above.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "log_test_support.hpp"

namespace {

using namespace memq_storage_test;
using memq::storage::append_header;
using memq::storage::append_message;
using memq::storage::append_reserve;
using memq::storage::append_take;
using memq::storage::DecodedRecord;
using memq::storage::decode_record;
using memq::storage::HeaderStatus;
using memq::storage::kHeaderBytes;
using memq::storage::kRecordBodyBytesMax;
using memq::storage::kRecordBodyBytesMin;
using memq::storage::read_header;
using memq::storage::record_body_length_in_range;

// Kind 5: flags, then the msg literal; kind 1 (version 1's): delivery, then the frame.
std::string message_body(std::string_view topic, std::uint64_t index, std::uint8_t flags, std::string_view msg_json,
                         std::uint8_t kind = 5) {
    return std::string(1, static_cast<char>(kind)) + le32(static_cast<std::uint32_t>(topic.size())) +
           std::string(topic) + le64(index) + std::string(1, static_cast<char>(flags)) +
           le32(static_cast<std::uint32_t>(msg_json.size())) + std::string(msg_json);
}

std::string framed_message_body(std::string_view topic, std::uint64_t index, std::uint8_t delivery,
                                std::string_view frame) {
    return message_body(topic, index, delivery, frame, 1);
}

std::string indexed_body(std::uint8_t kind, std::string_view topic, std::uint64_t index) {
    return std::string(1, static_cast<char>(kind)) + le32(static_cast<std::uint32_t>(topic.size())) +
           std::string(topic) + le64(index);
}

std::string hole_body(std::string_view topic, std::uint64_t first, std::uint64_t last) {
    return indexed_body(4, topic, first) + le64(last);
}

bool decodes(std::string_view bytes) {
    DecodedRecord decoded;
    return decode_record(bytes, decoded);
}

HeaderStatus header_status(std::string_view bytes) {
    std::uint64_t incarnation = 0;
    return read_header(bytes, incarnation);
}

// A sample header with one byte changed by `change` (xor).
std::string header_with(std::size_t byte, std::uint8_t change) {
    std::string header = header_bytes(1);
    header[byte] = static_cast<char>(header[byte] ^ change);
    return header;
}

Record decoded_record(std::string_view bytes) {
    DecodedRecord decoded;
    EXPECT_TRUE(decode_record(bytes, decoded));
    EXPECT_EQ(decoded.bytes, bytes.size());
    return Record(decoded.record);
}

// ---- header ---------------------------------------------------------------

TEST(LogHeader, is_magic_version_incarnation_and_a_checksum_of_those_in_24_bytes) {
    std::string out;
    append_header(out, 0x0102030405060708u);
    EXPECT_EQ(out, header_bytes(0x0102030405060708u));
    EXPECT_EQ(out.size(), kHeaderBytes);
    EXPECT_EQ(out.substr(0, 8), "memqlog\n");
}

TEST(LogHeader, reads_back_its_incarnation) {
    std::string out;
    append_header(out, 99);
    std::uint64_t incarnation = 0;
    EXPECT_EQ(read_header(out, incarnation), HeaderStatus::ok);
    EXPECT_EQ(incarnation, 99u);
}

TEST(LogHeader, an_empty_file_has_no_header_yet) { EXPECT_EQ(header_status(""), HeaderStatus::missing); }

TEST(LogHeader, a_file_shorter_than_the_header_is_refused_as_truncated) {
    const std::string header = header_bytes(1);
    EXPECT_EQ(header_status(header.substr(0, 1)), HeaderStatus::truncated);
    EXPECT_EQ(header_status(header.substr(0, kHeaderBytes - 1)), HeaderStatus::truncated);
}

TEST(LogHeader, a_wrong_magic_is_refused) { EXPECT_EQ(header_status(header_with(0, 0x20)), HeaderStatus::bad_magic); }

TEST(LogHeader, version_2_is_written) {
    EXPECT_EQ(memq::storage::kLogVersion, 2u);
    std::string out;
    append_header(out, 1);
    EXPECT_EQ(out, header_bytes(1, 2));
}

TEST(LogHeader, versions_1_and_2_are_read) {
    EXPECT_EQ(header_status(header_bytes(1, 1)), HeaderStatus::ok);
    EXPECT_EQ(header_status(header_bytes(1, 2)), HeaderStatus::ok);
}

TEST(LogHeader, an_unknown_version_with_a_good_checksum_is_refused_as_a_version) {
    EXPECT_EQ(header_status(header_bytes(1, 3)), HeaderStatus::bad_version);
    EXPECT_EQ(header_status(header_bytes(1, 0)), HeaderStatus::bad_version);
}

TEST(LogHeader, a_changed_incarnation_fails_the_checksum) {
    EXPECT_EQ(header_status(header_with(12, 0x02)), HeaderStatus::bad_checksum);
}

TEST(LogHeader, a_changed_checksum_is_refused) {
    EXPECT_EQ(header_status(header_with(23, 0x10)), HeaderStatus::bad_checksum);
}

TEST(LogHeader, appending_keeps_what_the_string_held) {
    std::string out = "x";
    append_header(out, 5);
    EXPECT_EQ(out, std::string("x") + header_bytes(5));
}

// ---- records: bytes and round trips ------------------------------------------

TEST(LogRecordFormat, a_message_is_sealed_kind_5_topic_index_flags_and_msg_literal) {
    std::string out;
    append_message(out, "t", 5, Delivery::all, false, "\"m\"");
    EXPECT_EQ(out, sealed(message_body("t", 5, 0, "\"m\"")));
}

TEST(LogRecordFormat, a_message_flags_delivery_one_as_bit_0_and_cache_true_as_bit_1) {
    std::string out;
    append_message(out, "t", 5, Delivery::one, false, "\"m\"");
    EXPECT_EQ(out, sealed(message_body("t", 5, 1, "\"m\"")));
    out.clear();
    append_message(out, "t", 5, Delivery::all, true, "\"m\"");
    EXPECT_EQ(out, sealed(message_body("t", 5, 2, "\"m\"")));
    out.clear();
    append_message(out, "t", 5, Delivery::one, true, "\"m\"");
    EXPECT_EQ(out, sealed(message_body("t", 5, 3, "\"m\"")));
}

TEST(LogRecordFormat, a_framed_message_is_sealed_kind_1_topic_index_delivery_and_frame) {
    std::string out;
    memq::storage::append_framed_message(out, "t", 5, Delivery::one, "frame\n");
    EXPECT_EQ(out, sealed(framed_message_body("t", 5, 1, "frame\n")));
}

TEST(LogRecordFormat, a_take_is_sealed_kind_2_topic_and_index) {
    std::string out;
    append_take(out, "jobs", 9);
    EXPECT_EQ(out, sealed(indexed_body(2, "jobs", 9)));
}

TEST(LogRecordFormat, a_reserve_is_sealed_kind_3_topic_and_next_index) {
    std::string out;
    append_reserve(out, "orders", 4096);
    EXPECT_EQ(out, sealed(indexed_body(3, "orders", 4096)));
}

TEST(LogRecordFormat, a_hole_is_sealed_kind_4_topic_first_and_last) {
    std::string out;
    memq::storage::append_hole(out, "t", 51, 4095);
    EXPECT_EQ(out, sealed(hole_body("t", 51, 4095)));
    EXPECT_EQ(out.size(), memq::storage::hole_record_bytes(1));
}

TEST(LogRecordFormat, a_hole_round_trips_its_first_and_last) {
    std::string out;
    memq::storage::append_hole(out, "topic", 7, 7);
    DecodedRecord decoded;
    ASSERT_TRUE(decode_record(out, decoded));
    EXPECT_EQ(decoded.record.kind, memq::storage::RecordKind::hole);
    EXPECT_EQ(decoded.record.topic, "topic");
    EXPECT_EQ(decoded.record.index, 7);
    EXPECT_EQ(decoded.record.last, 7);
    std::string again;
    memq::storage::append_record(again, decoded.record);
    EXPECT_EQ(again, out);
}

TEST(LogRecordFormat, a_hole_whose_last_is_below_its_first_is_refused_and_a_bad_record) {
    std::string out;
    EXPECT_THROW(memq::storage::append_hole(out, "t", 8, 7), std::invalid_argument);
    EXPECT_THROW(memq::storage::append_hole(out, "t", -1, 7), std::invalid_argument);
    EXPECT_FALSE(decodes(sealed(hole_body("t", 8, 7))));
    EXPECT_TRUE(decodes(sealed(hole_body("t", 8, 8))));
}

TEST(LogRecordFormat, a_hole_without_its_last_or_with_bytes_after_it_is_a_bad_record) {
    EXPECT_FALSE(decodes(sealed(indexed_body(4, "t", 1))));
    EXPECT_FALSE(decodes(sealed(hole_body("t", 1, 2) + "x")));
}

TEST(LogScanHoles, a_log_with_hole_records_scans_in_file_order_strict_and_salvage) {
    std::string log = header_bytes(1);
    append_reserve(log, "t", 16);
    memq::storage::append_hole(log, "t", 3, 15);
    append_take(log, "t", 2);
    for (const auto mode : {memq::storage::ScanMode::strict, memq::storage::ScanMode::salvage}) {
        std::vector<memq::storage::RecordKind> kinds;
        const auto result = memq::storage::scan_log(log, mode, [&](const memq::storage::LogRecord& record) {
            kinds.push_back(record.kind);
        });
        EXPECT_EQ(result.damage, memq::storage::Damage::none);
        EXPECT_EQ(kinds, (std::vector<memq::storage::RecordKind>{memq::storage::RecordKind::reserve,
                                                                 memq::storage::RecordKind::hole,
                                                                 memq::storage::RecordKind::take}));
    }
}

TEST(LogRecordFormat, a_message_round_trips_byte_for_byte) {
    std::string out;
    const std::string msg_json = std::string("\"\xc3\xbc\\u0000\"");
    append_message(out, "\xc3\xbc topic", 123456789012345, Delivery::all, false, msg_json);
    EXPECT_EQ(decoded_record(out),
              Record(RecordKind::message, "\xc3\xbc topic", 123456789012345, Delivery::all, msg_json));
}

TEST(LogRecordFormat, a_one_message_with_cache_true_round_trips_both) {
    std::string out;
    append_message(out, "t", 0, Delivery::one, true, "\"f\"");
    EXPECT_EQ(decoded_record(out), Record(RecordKind::message, "t", 0, Delivery::one, "\"f\"", true));
}

TEST(LogRecordFormat, a_framed_message_round_trips_byte_for_byte) {
    std::string out;
    memq::storage::append_framed_message(out, "t", 9, Delivery::one, "frame\r\n");
    EXPECT_EQ(decoded_record(out), Record(RecordKind::framed_message, "t", 9, Delivery::one, "frame\r\n"));
    std::string again;
    memq::storage::append_record(again, Record(decoded_record(out)).view());
    EXPECT_EQ(again, out);
}

// The frame a record holds is the frame memqd sent: rebuilt for a message,
// as stored for a framed message.
std::string frame_sent(const memq::SendRef& send, std::int64_t index) {
    std::string frame;
    memq::append_message(frame, send, index);
    return frame;
}

std::string frame_of_record(std::string_view encoded) {
    std::string frame;
    memq::storage::append_message_frame(frame, Record(decoded_record(encoded)).view());
    return frame;
}

TEST(LogRecordFrame, a_message_rebuilds_the_frame_of_its_send) {
    std::string out;
    append_message(out, "t\"x", 41, Delivery::all, false, "\"hi\"");
    EXPECT_EQ(frame_of_record(out), frame_sent({{"t\"x", {}}, {"hi", "\"hi\""}, Delivery::all, std::nullopt}, 41));
}

TEST(LogRecordFrame, a_one_message_with_cache_true_rebuilds_both_fields) {
    std::string out;
    append_message(out, "t", 0, Delivery::one, true, "\"a\\nb\"");
    EXPECT_EQ(frame_of_record(out), frame_sent({{"t", "\"t\""}, {"a\nb", {}}, Delivery::one, true}, 0));
}

TEST(LogRecordFrame, a_framed_message_gives_its_frame_as_stored) {
    std::string out;
    memq::storage::append_framed_message(out, "t", 3, Delivery::all, "any frame\r\n");
    std::string frame = "kept ";
    memq::storage::append_message_frame(frame, Record(decoded_record(out)).view());
    EXPECT_EQ(frame, "kept any frame\r\n");
}

TEST(LogRecordFormat, a_take_round_trips) {
    std::string out;
    append_take(out, "jobs", 3);
    EXPECT_EQ(decoded_record(out), Record(RecordKind::take, "jobs", 3));
}

TEST(LogRecordFormat, a_reserve_round_trips_its_next_index) {
    std::string out;
    append_reserve(out, "t", INT64_MAX);
    EXPECT_EQ(decoded_record(out), Record(RecordKind::reserve, "t", INT64_MAX));
}

TEST(LogRecordFormat, an_empty_topic_and_msg_literal_round_trip) {
    std::string out;
    append_message(out, "", 0, Delivery::all, false, "");
    EXPECT_EQ(decoded_record(out), Record(RecordKind::message, "", 0, Delivery::all, ""));
}

TEST(LogRecordFormat, the_size_functions_are_the_encoded_sizes) {
    std::string out;
    append_message(out, "topic", 1, Delivery::all, true, "\"msg bytes\"");
    EXPECT_EQ(memq::storage::message_record_bytes(5, 11), out.size());
    out.clear();
    memq::storage::append_framed_message(out, "topic", 1, Delivery::all, "frame bytes\n");
    EXPECT_EQ(memq::storage::framed_message_record_bytes(5, 12), out.size());
    out.clear();
    append_take(out, "topic", 1);
    EXPECT_EQ(memq::storage::take_record_bytes(5), out.size());
    out.clear();
    append_reserve(out, "topic", 1);
    EXPECT_EQ(memq::storage::reserve_record_bytes(5), out.size());
}

TEST(LogRecordFormat, encoders_append_after_what_the_string_held) {
    std::string out = "prefix";
    append_take(out, "t", 1);
    EXPECT_EQ(out, std::string("prefix") + sealed(indexed_body(2, "t", 1)));
}

TEST(LogRecordFormat, encoders_refuse_a_negative_index) {
    std::string out;
    EXPECT_THROW(append_message(out, "t", -1, Delivery::all, false, "\"f\""), std::invalid_argument);
    EXPECT_THROW(memq::storage::append_framed_message(out, "t", -1, Delivery::all, "f"), std::invalid_argument);
    EXPECT_THROW(append_take(out, "t", -1), std::invalid_argument);
    EXPECT_THROW(append_reserve(out, "t", -1), std::invalid_argument);
    EXPECT_TRUE(out.empty());
}

// ---- bad records -----------------------------------------------------------

TEST(LogRecordFormat, a_crc_mismatch_is_a_bad_record) {
    std::string record = sealed(indexed_body(2, "t", 1));
    record[0] = static_cast<char>(record[0] ^ 1);
    EXPECT_FALSE(decodes(record));
}

TEST(LogRecordFormat, an_unknown_kind_is_a_bad_record_even_with_a_good_crc) {
    EXPECT_FALSE(decodes(sealed(indexed_body(0, "t", 1))));
    EXPECT_FALSE(decodes(sealed(indexed_body(6, "t", 1))));
    EXPECT_FALSE(decodes(sealed(message_body("t", 1, 0, "f", 6))));
    EXPECT_TRUE(decodes(sealed(message_body("t", 1, 0, "f", 5))));
    EXPECT_TRUE(decodes(sealed(indexed_body(3, "t", 1))));
}

TEST(LogRecordFormat, a_framed_message_delivery_other_than_0_or_1_is_a_bad_record) {
    EXPECT_FALSE(decodes(sealed(framed_message_body("t", 1, 2, "f"))));
    EXPECT_TRUE(decodes(sealed(framed_message_body("t", 1, 1, "f"))));
}

TEST(LogRecordFormat, message_flags_above_3_are_a_bad_record) {
    EXPECT_TRUE(decodes(sealed(message_body("t", 1, 3, "\"f\""))));
    EXPECT_FALSE(decodes(sealed(message_body("t", 1, 4, "\"f\""))));
    EXPECT_FALSE(decodes(sealed(message_body("t", 1, 0x80, "\"f\""))));
}

TEST(LogRecordFormat, a_negative_index_is_a_bad_record) {
    EXPECT_FALSE(decodes(sealed(indexed_body(2, "t", static_cast<std::uint64_t>(-1)))));
    EXPECT_FALSE(decodes(sealed(message_body("t", static_cast<std::uint64_t>(INT64_MIN), 0, "f"))));
    EXPECT_FALSE(decodes(sealed(framed_message_body("t", static_cast<std::uint64_t>(INT64_MIN), 0, "f"))));
}

TEST(LogRecordFormat, a_topic_length_past_the_body_is_a_bad_record) {
    std::string body = indexed_body(2, "t", 1);
    body.replace(1, 4, le32(2));
    EXPECT_FALSE(decodes(sealed(body)));
    body.replace(1, 4, le32(0xFFFFFFFFu));
    EXPECT_FALSE(decodes(sealed(body)));
}

TEST(LogRecordFormat, a_frame_length_that_does_not_end_the_body_is_a_bad_record) {
    std::string body = message_body("t", 1, 0, "frame");
    const std::size_t frame_length_at = 1 + 4 + 1 + 8 + 1;
    body.replace(frame_length_at, 4, le32(4));
    EXPECT_FALSE(decodes(sealed(body))) << "one byte left over";
    body.replace(frame_length_at, 4, le32(6));
    EXPECT_FALSE(decodes(sealed(body))) << "one byte missing";
}

TEST(LogRecordFormat, bytes_after_a_take_inside_its_body_make_a_bad_record) {
    EXPECT_FALSE(decodes(sealed(indexed_body(2, "t", 1) + "x")));
}

TEST(LogRecordFormat, a_length_past_the_end_of_the_input_is_a_bad_record) {
    const std::string record = sealed(indexed_body(2, "t", 1));
    EXPECT_FALSE(decodes(std::string_view(record).substr(0, record.size() - 1)));
    EXPECT_TRUE(decodes(record));
}

TEST(LogRecordFormat, a_record_decodes_from_the_start_of_longer_input_and_says_its_size) {
    const std::string record = sealed(indexed_body(2, "t", 1));
    DecodedRecord decoded;
    ASSERT_TRUE(decode_record(record + "trailing", decoded));
    EXPECT_EQ(decoded.bytes, record.size());
}

// ---- the body-length limit ---------------------------------------------------

TEST(LogRecordLimits, body_lengths_from_the_minimum_to_kRecordBodyBytesMax_are_in_range) {
    EXPECT_EQ(kRecordBodyBytesMax, std::size_t{1} << 30);
    EXPECT_TRUE(record_body_length_in_range(kRecordBodyBytesMax));
    EXPECT_TRUE(record_body_length_in_range(kRecordBodyBytesMax - 1));
    EXPECT_FALSE(record_body_length_in_range(kRecordBodyBytesMax + 1));
    EXPECT_FALSE(record_body_length_in_range(0xFFFFFFFFu));
}

TEST(LogRecordLimits, the_minimum_body_is_a_take_with_an_empty_topic) {
    std::string out;
    append_take(out, "", 0);
    EXPECT_EQ(out.size(), memq::storage::kRecordPrefixBytes + kRecordBodyBytesMin);
    EXPECT_TRUE(record_body_length_in_range(kRecordBodyBytesMin));
    EXPECT_TRUE(record_body_length_in_range(kRecordBodyBytesMin + 1));
    EXPECT_FALSE(record_body_length_in_range(kRecordBodyBytesMin - 1));
}

// The scanner's limit lowered to a small number, so that a record at it
// fits in a test: at the number, one below, one above.
TEST(LogRecordLimits, a_record_at_the_limit_decodes_and_one_past_it_does_not) {
    const std::string at_limit = sealed(message_body("t", 0, 0, std::string(100, 'f')));
    const std::size_t body = at_limit.size() - memq::storage::kRecordPrefixBytes;
    DecodedRecord decoded;
    EXPECT_TRUE(decode_record(at_limit, decoded, body));
    EXPECT_TRUE(decode_record(at_limit, decoded, body + 1));
    EXPECT_FALSE(decode_record(at_limit, decoded, body - 1));
}

}  // namespace
