// log_properties_test.cpp — rapidcheck properties of the log codec
// (broker/storage/log_format.hpp) over random records: a log of any records
// scans back to them; any cut of it scans to the records that fit whole, as a
// torn tail unless the cut falls on a boundary; and any overwrite of a run of
// bytes never delivers a record that was not written at that offset, in
// either mode, while salvage keeps every record the overwrite did not touch.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "log_test_support.hpp"

namespace {

using namespace memq_storage_test;
using memq::storage::Damage;
using memq::storage::kHeaderBytes;
using memq::storage::ScanMode;

rc::Gen<Record> record_gen() {
    return rc::gen::apply(
        [](int kind, std::string topic, std::int64_t index, bool one, std::string value) {
            const auto record_kind = static_cast<RecordKind>(kind);
            const Delivery delivery = one ? Delivery::one : Delivery::all;
            if (record_kind == RecordKind::framed_message) {
                return Record(record_kind, std::move(topic), index, delivery, std::move(value));
            }
            if (record_kind != RecordKind::message) return Record(record_kind, std::move(topic), index);
            // cache_true drawn from the value's length: one more generator would not say more.
            const bool cache_true = value.size() % 2 == 1;
            return Record(record_kind, std::move(topic), index, delivery, std::move(value), cache_true);
        },
        // Every kind but hole (it has tests of its own: Record has no `last`).
        rc::gen::element(1, 2, 3, 5), rc::gen::container<std::string>(rc::gen::arbitrary<char>()),
        rc::gen::inRange<std::int64_t>(0, INT64_MAX), rc::gen::arbitrary<bool>(),
        rc::gen::container<std::string>(rc::gen::arbitrary<char>()));
}

struct Written {
    std::string bytes;
    std::vector<Record> records;
    std::vector<std::size_t> offsets;  // each record's, then the end
};

Written write_log(const std::vector<Record>& records) {
    Written log;
    memq::storage::append_header(log.bytes, 1);
    log.records = records;
    for (const Record& record : records) {
        log.offsets.push_back(log.bytes.size());
        memq::storage::append_record(log.bytes, record.view());
    }
    log.offsets.push_back(log.bytes.size());
    return log;
}

// Each delivered record with the offset it was read at.
std::vector<std::pair<std::size_t, Record>> scan_at(const std::string& file, ScanMode mode) {
    std::vector<std::pair<std::size_t, Record>> got;
    memq::storage::scan_log(file, mode, [&](const LogRecord& record) {
        const auto offset = static_cast<std::size_t>(record.topic.data() - file.data()) - 8 - 1 - 4;
        got.emplace_back(offset, Record(record));
    });
    return got;
}

RC_GTEST_PROP(LogProperty, AnyRecordsScanBackWhole, ()) {
    const auto records = *rc::gen::container<std::vector<Record>>(record_gen());
    const Written log = write_log(records);
    const Collected got = scan(log.bytes);
    RC_ASSERT(got.records == records);
    RC_ASSERT(got.result.damage == Damage::none);
    RC_ASSERT(got.result.good_bytes == log.bytes.size());
}

RC_GTEST_PROP(LogProperty, AnyCutScansToTheRecordsThatFitWhole, ()) {
    const auto records = *rc::gen::nonEmpty(rc::gen::container<std::vector<Record>>(record_gen()));
    const Written log = write_log(records);
    const auto cut = *rc::gen::inRange(kHeaderBytes, log.bytes.size() + 1);
    const Collected got = scan(log.bytes.substr(0, cut), ScanMode::salvage);
    std::size_t whole = 0;
    while (whole < records.size() && log.offsets[whole + 1] <= cut) ++whole;
    RC_ASSERT(got.records == std::vector<Record>(records.begin(), records.begin() + static_cast<long>(whole)));
    RC_ASSERT(got.result.good_bytes == log.offsets[whole]);
    RC_ASSERT(got.result.damage == (log.offsets[whole] == cut ? Damage::none : Damage::torn_tail));
}

RC_GTEST_PROP(LogProperty, AnOverwriteNeverDeliversARecordThatWasNotWrittenThere, ()) {
    const auto records = *rc::gen::nonEmpty(rc::gen::container<std::vector<Record>>(record_gen()));
    const Written log = write_log(records);
    const auto from = *rc::gen::inRange(kHeaderBytes, log.bytes.size());
    const auto length = *rc::gen::inRange<std::size_t>(1, std::min<std::size_t>(16, log.bytes.size() - from) + 1);
    std::string file = log.bytes;
    for (std::size_t i = from; i < from + length; ++i) file[i] = *rc::gen::arbitrary<char>();
    for (const ScanMode mode : {ScanMode::strict, ScanMode::salvage}) {
        for (const auto& [offset, record] : scan_at(file, mode)) {
            std::size_t k = 0;
            while (k < records.size() && log.offsets[k] != offset) ++k;
            RC_ASSERT(k < records.size());
            RC_ASSERT(record == records[k]);
        }
    }
    // Salvage keeps every record the overwrite left alone.
    const auto salvaged = scan_at(file, ScanMode::salvage);
    for (std::size_t k = 0; k < records.size(); ++k) {
        const bool touched = log.offsets[k] < from + length && from < log.offsets[k + 1];
        if (touched) continue;
        bool kept = false;
        for (const auto& [offset, record] : salvaged) kept = kept || offset == log.offsets[k];
        RC_ASSERT(kept);
    }
}

}  // namespace
