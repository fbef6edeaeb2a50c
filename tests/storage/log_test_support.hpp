// log_test_support.hpp — owns what the storage tests share: bytes built by
// hand in the layout log_format.hpp documents (little-endian fields, a record
// sealed with its CRC-32C), a sample log of every record kind, and a
// collector of what a scan delivers, copied out of the scanned bytes.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "crc32c.hpp"
#include "log_format.hpp"

namespace memq_storage_test {

using memq::Delivery;
using memq::storage::LogRecord;
using memq::storage::RecordKind;

inline std::string le32(std::uint32_t value) {
    std::string out;
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
    return out;
}

inline std::string le64(std::uint64_t value) {
    std::string out;
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
    return out;
}

// A record around any body: [crc of length+body][length][body].
inline std::string sealed(std::string_view body) {
    const std::string checksummed = le32(static_cast<std::uint32_t>(body.size())) + std::string(body);
    return le32(memq::storage::crc32c(checksummed)) + checksummed;
}

inline std::string header_bytes(std::uint64_t incarnation, std::uint32_t version = memq::storage::kLogVersion) {
    std::string first = std::string("memqlog\n", 8) + le32(version) + le64(incarnation);
    return first + le32(memq::storage::crc32c(first));
}

// An owned copy of a LogRecord. `value` is a message's msg literal or a
// framed message's frame (empty for the other kinds).
struct Record {
    RecordKind kind = RecordKind::message;
    std::string topic;
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    std::string value;
    bool cache_true = false;

    Record() = default;
    Record(RecordKind kind_, std::string topic_, std::int64_t index_, Delivery delivery_ = Delivery::all,
           std::string value_ = {}, bool cache_true_ = false)
        : kind(kind_),
          topic(std::move(topic_)),
          index(index_),
          delivery(delivery_),
          value(std::move(value_)),
          cache_true(cache_true_) {}
    explicit Record(const LogRecord& view)
        : kind(view.kind),
          topic(view.topic),
          index(view.index),
          delivery(view.delivery),
          value(view.kind == RecordKind::framed_message ? view.frame : view.msg_json),
          cache_true(view.cache_true) {}
    LogRecord view() const {
        LogRecord record;
        record.kind = kind;
        record.topic = topic;
        record.index = index;
        record.delivery = delivery;
        (kind == RecordKind::framed_message ? record.frame : record.msg_json) = value;
        record.cache_true = cache_true;
        return record;
    }
    friend bool operator==(const Record&, const Record&) = default;
};

inline std::ostream& operator<<(std::ostream& out, const Record& record) {
    return out << "{kind " << static_cast<int>(record.kind) << ", topic '" << record.topic << "', index "
               << record.index << ", delivery " << static_cast<int>(record.delivery) << ", value '" << record.value
               << "', cache_true " << record.cache_true << "}";
}

// A log of every kind but hole (a version 1 framed message among them), and
// the offsets at which its records start.
struct SampleLog {
    std::string bytes;
    std::vector<Record> records;
    std::vector<std::size_t> offsets;
};

inline SampleLog sample_log() {
    SampleLog log;
    memq::storage::append_header(log.bytes, 42);
    log.records = {
        Record(RecordKind::reserve, "orders", 1024),
        Record(RecordKind::message, "orders", 0, Delivery::all, "\"a\\n\""),
        Record(RecordKind::framed_message, "jobs", 7, Delivery::one,
               "{\"command\": \"send\", \"topic\": \"jobs\", \"msg\": \"b\", \"delivery\": \"one\", \"index\": 7}\r\n"),
        Record(RecordKind::take, "jobs", 7),
        Record(RecordKind::message, "", 3, Delivery::all, "", true),
    };
    for (const Record& record : log.records) {
        log.offsets.push_back(log.bytes.size());
        memq::storage::append_record(log.bytes, record.view());
    }
    return log;
}

struct Collected {
    std::vector<Record> records;
    memq::storage::ScanResult result;
};

inline Collected scan(std::string_view file, memq::storage::ScanMode mode = memq::storage::ScanMode::strict,
                      std::size_t body_bytes_max = memq::storage::kRecordBodyBytesMax) {
    Collected collected;
    collected.result = memq::storage::scan_log(
        file, mode, [&](const LogRecord& record) { collected.records.emplace_back(record); }, body_bytes_max);
    return collected;
}

}  // namespace memq_storage_test
