// log_format.hpp — owns memq's on-disk log format (memqd --data-dir): the
// file header, the four record kinds, their encoders, and the scanner that
// reads a log back, cuts a torn tail and reports corruption. Pure: no IO, no
// clock; the shell (broker/server/log_writer.hpp) moves the bytes.
//
// Every integer is little-endian.
//
// File header, kHeaderBytes = 24 bytes:
//   [0, 8)    magic "memqlog\n"
//   [8, 12)   u32 version: kLogVersion = 2 is written; 1 and 2 are read
//             (version 1 had no message records of kind 5, which version 2
//             writes instead of kind 1: an older memqd refuses the file as
//             of an unknown version, rather than misread it)
//   [12, 20)  u64 incarnation of the broker that wrote the file
//   [20, 24)  u32 CRC-32C of bytes [0, 20)
// A file whose magic, version or checksum is wrong is refused whole (and so
// is a non-empty file shorter than the header: memqd only ever creates a log
// by writing header and snapshot to a temporary file, syncing it and renaming
// it over memq.log, so a crash cannot leave a torn header behind). An empty
// file is a log with no header yet: nothing was ever stored.
//
// Then records, back to back, each:
//   [u32 crc][u32 body_length][body]
// where crc is the CRC-32C of the body_length field and the body (every byte
// after the crc field), and body_length is in [kRecordBodyBytesMin,
// kRecordBodyBytesMax]. The body is [u8 kind][u32 topic length][topic bytes]
// then, by kind:
//   5 message: [i64 index][u8 flags][u32 msg length][msg]
//              msg is the message's "msg" as a JSON string literal, exactly as
//              the frame memqd sends holds it (quotes and escapes included);
//              flags: bit 0 delivery "one" (else "all"), bit 1 the frame
//              carries "cache": true; no other bit is set. The frame is
//              rebuilt from these fields, the topic and the index
//              (append_message_frame): its fixed parts are not stored, which
//              halves a small message's record (docs/architecture.md).
//   1 framed message, version 1's message record, still read, never written:
//              [i64 index][u8 delivery: 0 all, 1 one][u32 frame length][frame]
//              the frame is exactly the line memqd sends, trailing '\n' included
//   2 take:    [i64 index]   a cached "one" message was handed out by a
//              replay: it leaves the topic's cache
//   3 reserve: [i64 next_index]   indices below it may have been handed out;
//              after recovery the topic continues at or after it
//   4 hole:    [i64 first][i64 last]   indices first..last (inclusive) may have
//              been delivered before a crash and are lost: a resuming
//              subscriber is told (the "holes" command, docs/protocol.md).
//              Added without a version bump: a log without hole records reads
//              as before; a memqd older than the kind refuses a log that has
//              one as corrupt, rather than misread it.
// The lengths inside must add up to body_length exactly, indices are >= 0,
// a hole's last is >= its first, delivery is 0 or 1, and flags are below 4. A record that breaks any of this, or whose crc does
// not match, or whose length runs past the input, is a bad record.
//
// Scanning (scan_log) reads records from the header on. At the first bad
// record it looks for a good record starting at any later byte offset:
// - none: the damage is a torn tail, the bytes of a write a crash cut short.
//   good_bytes is where to cut the file; nothing before it is lost.
// - one: the damage is a corrupt middle (a good record follows a bad one,
//   which a crash alone cannot cause). ScanMode::strict stops there, and the
//   caller refuses to start; ScanMode::salvage skips to that record and goes
//   on, counting the bytes and the regions it skipped.
// What salvage keeps: every good record, in file order: the good prefix, and
// after each corrupt region every good record from the first good one found
// by the search on. It drops the corrupt regions whole (a record in one that
// the search cannot find again is lost with it) and the torn tail. The caller
// must then rewrite the log from its state, for the file still holds the
// corrupt bytes.
// Bad bytes never reach the callback: a record is delivered only when its
// length is in range, its crc matches and its contents are valid.
//
// The search's cost (stated bound): every later offset gets O(1) structural
// checks (a kind byte 1..5, and length fields that add up to body_length
// exactly, which random bytes pass about once in 2^32), and only candidates
// that pass them get their crc computed. The crc work of one search is
// capped at kResyncChecksumFactor times the bytes after the bad record plus
// kResyncChecksumSlackBytes; a search that exhausts it (only a file crafted
// to be slow can) is classified as a corrupt middle with nothing found, so
// that strict refuses and salvage drops the rest of the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "protocol.hpp"

namespace memq::storage {

inline constexpr std::string_view kLogMagic{"memqlog\n", 8};
inline constexpr std::uint32_t kLogVersion = 2;           // written
inline constexpr std::uint32_t kOldestReadableLogVersion = 1;
inline constexpr std::size_t kHeaderBytes = 24;

// The crc and body_length fields before every body.
inline constexpr std::size_t kRecordPrefixBytes = 8;
// The smallest valid body: a take or reserve with an empty topic.
inline constexpr std::size_t kRecordBodyBytesMin = 1 + 4 + 8;
// The largest body a record may have (1 GiB): a length field past it is bad.
inline constexpr std::size_t kRecordBodyBytesMax = std::size_t{1} << 30;

// The resync search's crc budget (see above).
inline constexpr std::size_t kResyncChecksumFactor = 4;
inline constexpr std::size_t kResyncChecksumSlackBytes = std::size_t{1} << 20;

enum class RecordKind : std::uint8_t { framed_message = 1, take = 2, reserve = 3, hole = 4, message = 5 };
inline constexpr RecordKind kLastRecordKind = RecordKind::message;

// One record as read back: views into the scanned input. frame is set for a
// framed_message only, msg_json and cache_true for a message only; delivery
// is Delivery::all for every other kind; for reserve, index is the
// next_index; for hole, index is the first lost index and last the last
// (last is 0 for every other kind).
struct LogRecord {
    RecordKind kind = RecordKind::message;
    std::string_view topic;
    std::int64_t index = 0;
    Delivery delivery = Delivery::all;
    std::string_view frame;
    std::int64_t last = 0;
    std::string_view msg_json;
    bool cache_true = false;

    friend bool operator==(const LogRecord&, const LogRecord&) = default;
};

// --------------------------------------------------------------- encoding
// Encoders append to out and allocate nothing beyond out's growth. They throw
// std::invalid_argument for a negative index, std::length_error for a body
// past kRecordBodyBytesMax.

void append_header(std::string& out, std::uint64_t incarnation);

// A record's whole size (prefix and body), so that the log's size can be
// accounted without encoding.
std::size_t message_record_bytes(std::size_t topic_bytes, std::size_t msg_json_bytes);
std::size_t framed_message_record_bytes(std::size_t topic_bytes, std::size_t frame_bytes);
std::size_t take_record_bytes(std::size_t topic_bytes);
std::size_t reserve_record_bytes(std::size_t topic_bytes);
std::size_t hole_record_bytes(std::size_t topic_bytes);

// Whether an encoder checksums its record at once, or leaves the crc zero
// for seal_records(). A caller that appends many records in a row (the
// broker, in one turn of its loop) seals them together afterwards: reading
// back bytes just stored stalls the CPU on the stores (they cannot be
// forwarded to the checksum's wider loads), which cost several times the
// checksum itself.
enum class Sealing : std::uint8_t { now, deferred };

// msg_json: the message's "msg" literal as its frame holds it; cache_true:
// the frame carries "cache": true (the sender said so).
void append_message(std::string& out, std::string_view topic, std::int64_t index, Delivery delivery,
                    bool cache_true, std::string_view msg_json, Sealing sealing = Sealing::now);
// Version 1's message record (for tests of reading old logs).
void append_framed_message(std::string& out, std::string_view topic, std::int64_t index, Delivery delivery,
                           std::string_view frame, Sealing sealing = Sealing::now);
void append_take(std::string& out, std::string_view topic, std::int64_t index, Sealing sealing = Sealing::now);
void append_reserve(std::string& out, std::string_view topic, std::int64_t next_index,
                    Sealing sealing = Sealing::now);
// Also throws std::invalid_argument when last < first.
void append_hole(std::string& out, std::string_view topic, std::int64_t first, std::int64_t last,
                 Sealing sealing = Sealing::now);
// Fills in the crc of each record in bytes[from, to), which holds whole
// records as the encoders wrote them; sealing a sealed record again changes
// nothing.
void seal_records(std::string& bytes, std::size_t from, std::size_t to);
// Encodes any record (what scanning read), e.g. to copy it into a new log.
void append_record(std::string& out, const LogRecord& record);
// Appends the frame (the line memqd sends, "\r\n" included) that a message
// or framed_message record holds.
void append_message_frame(std::string& out, const LogRecord& record);

// True when a body_length field is in [kRecordBodyBytesMin, body_bytes_max].
constexpr bool record_body_length_in_range(std::uint64_t body_length,
                                           std::size_t body_bytes_max = kRecordBodyBytesMax) {
    return body_length >= kRecordBodyBytesMin && body_length <= body_bytes_max;
}

// --------------------------------------------------------------- decoding

enum class HeaderStatus : std::uint8_t {
    ok,
    missing,       // empty input: no log yet
    truncated,     // non-empty but shorter than kHeaderBytes: refused
    bad_magic,     // refused
    bad_version,   // refused
    bad_checksum,  // refused
};
const char* to_string(HeaderStatus status);

enum class Damage : std::uint8_t { none, torn_tail, corrupt_middle };
const char* to_string(Damage damage);

enum class ScanMode : std::uint8_t { strict, salvage };

struct ScanResult {
    HeaderStatus header = HeaderStatus::missing;
    std::uint64_t incarnation = 0;  // when header == ok
    std::uint32_t version = 0;      // when header == ok: the format the records were written in
    std::uint64_t records = 0;      // records delivered to the callback
    // Just past the last record of the good prefix (the header's end for a log
    // of no records; 0 without a header): where a torn tail is cut.
    std::size_t good_bytes = 0;
    Damage damage = Damage::none;
    std::size_t damage_offset = 0;  // the first bad record's offset, when damage != none
    // Salvage only: the corrupt regions passed over and their bytes (the torn
    // tail not included).
    std::uint64_t skipped_regions = 0;
    std::size_t skipped_bytes = 0;

    // False when the header is there but refused (truncated, bad_*).
    bool header_accepted() const { return header == HeaderStatus::ok || header == HeaderStatus::missing; }
    // Where a recovered broker may go on appending to this log: the good
    // prefix's end when the log has a header of this version and no corrupt
    // record inside (a torn tail is cut there first); none when it must be
    // replaced (new, salvaged, an older version).
    std::optional<std::size_t> appendable_bytes() const {
        if (header != HeaderStatus::ok || version != kLogVersion || damage == Damage::corrupt_middle) return std::nullopt;
        return good_bytes;
    }
};

// A record decoded at the start of bytes, and its whole size.
struct DecodedRecord {
    LogRecord record;
    std::size_t bytes = 0;
};
// Decodes the record at the start of bytes; false when it is a bad record
// (record untouched then).
bool decode_record(std::string_view bytes, DecodedRecord& decoded,
                   std::size_t body_bytes_max = kRecordBodyBytesMax);

// Reads the header; incarnation (and version, when given) are set when the status is ok.
HeaderStatus read_header(std::string_view file, std::uint64_t& incarnation, std::uint32_t* version = nullptr);

// The scanner's callback, type-erased (scan_log below takes any callable).
struct RecordVisitor {
    void* context = nullptr;
    void (*visit)(void* context, const LogRecord& record) = nullptr;
};
ScanResult scan_log_visiting(std::string_view file, ScanMode mode, RecordVisitor visitor,
                             std::size_t body_bytes_max = kRecordBodyBytesMax);

// Scans file, calling callback(const LogRecord&) on each good record in file
// order. The views stay valid while file's bytes do. body_bytes_max lowers
// kRecordBodyBytesMax (for tests of the limit); it is never raised past it.
template <class Callback>
ScanResult scan_log(std::string_view file, ScanMode mode, Callback&& callback,
                    std::size_t body_bytes_max = kRecordBodyBytesMax) {
    using Stored = std::remove_reference_t<Callback>;
    RecordVisitor visitor{const_cast<void*>(static_cast<const void*>(&callback)),
                          [](void* context, const LogRecord& record) { (*static_cast<Stored*>(context))(record); }};
    return scan_log_visiting(file, mode, visitor, body_bytes_max);
}

}  // namespace memq::storage
