// tests/fuzz/fuzz_log_scan.cpp — owns the log scanner's fuzz target
// (fuzz_log_scan): arbitrary bytes read as a memq log file
// (broker/storage/log_format.hpp), in strict and in salvage mode.
//
// It checks, and aborts with the offending bytes on any disagreement:
// - scanning never crashes, and reports sizes inside the input;
// - every record delivered is a view into the input, and re-encodes to
//   exactly the bytes it was read from (nothing but checked bytes reaches the
//   callback);
// - records come in file order, without overlap;
// - strict's records are the good prefix: the first records salvage yields,
//   all of them ending by good_bytes, and the good prefix alone scans again
//   to the same records with no damage;
// - a refused header yields no record, and an empty input is "missing";
// - damage none means the records cover the input to its end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "log_format.hpp"

namespace {

using namespace memq::storage;
using memq::fuzz::fail;

constexpr const char* kTarget = "fuzz_log_scan";

struct Seen {
    std::size_t offset;
    std::size_t bytes;
    std::string encoded;
};

// The record's offset in file, found from its topic view: the topic follows
// the 8-byte prefix, the kind byte and the topic's length.
std::size_t record_offset(std::string_view file, const LogRecord& record) {
    return static_cast<std::size_t>(record.topic.data() - file.data()) - kRecordPrefixBytes - 1 - 4;
}

struct Scan {
    ScanResult result;
    std::vector<Seen> seen;
};

Scan scan_checked(std::string_view file, ScanMode mode) {
    Scan scan;
    scan.result = scan_log(file, mode, [&](const LogRecord& record) {
        if (record.topic.data() < file.data() || record.topic.data() + record.topic.size() > file.data() + file.size()) {
            fail(kTarget, "a record's topic is not a view into the input", file);
        }
        Seen seen;
        seen.offset = record_offset(file, record);
        append_record(seen.encoded, record);
        seen.bytes = seen.encoded.size();
        if (seen.offset + seen.bytes > file.size() || file.substr(seen.offset, seen.bytes) != seen.encoded) {
            fail(kTarget, "a record does not re-encode to the bytes it was read from", file,
                 "at offset " + std::to_string(seen.offset));
        }
        if (!scan.seen.empty() && scan.seen.back().offset + scan.seen.back().bytes > seen.offset) {
            fail(kTarget, "records overlap or go backwards", file, "at offset " + std::to_string(seen.offset));
        }
        scan.seen.push_back(std::move(seen));
    });
    if (scan.result.records != scan.seen.size()) fail(kTarget, "records count differs from the callbacks", file);
    if (scan.result.good_bytes > file.size()) fail(kTarget, "good_bytes past the input", file);
    if (!scan.result.header_accepted() && !scan.seen.empty()) fail(kTarget, "records from a refused header", file);
    if (file.empty() != (scan.result.header == HeaderStatus::missing)) fail(kTarget, "missing iff empty", file);
    if (scan.result.header == HeaderStatus::ok && scan.result.damage == Damage::none) {
        const std::size_t end = scan.seen.empty() ? kHeaderBytes : scan.seen.back().offset + scan.seen.back().bytes;
        if (end != file.size() || scan.result.good_bytes != file.size()) {
            fail(kTarget, "no damage, but the records do not reach the end", file);
        }
    }
    return scan;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view file(reinterpret_cast<const char*>(data), size);
    const Scan strict = scan_checked(file, ScanMode::strict);
    const Scan salvage = scan_checked(file, ScanMode::salvage);
    if (strict.seen.size() > salvage.seen.size()) fail(kTarget, "strict read more than salvage", file);
    for (std::size_t i = 0; i < strict.seen.size(); ++i) {
        if (strict.seen[i].offset != salvage.seen[i].offset) fail(kTarget, "strict is not salvage's prefix", file);
        if (strict.seen[i].offset + strict.seen[i].bytes > strict.result.good_bytes) {
            fail(kTarget, "a strict record ends past good_bytes", file);
        }
    }
    if (strict.result.damage != salvage.result.damage) {
        fail(kTarget, "strict and salvage classify the damage differently", file);
    }
    if (strict.result.header == HeaderStatus::ok) {
        const Scan prefix = scan_checked(file.substr(0, strict.result.good_bytes), ScanMode::strict);
        if (prefix.result.damage != Damage::none || prefix.seen.size() != strict.seen.size()) {
            fail(kTarget, "the good prefix does not scan again to the same records", file);
        }
    }
    return 0;
}
