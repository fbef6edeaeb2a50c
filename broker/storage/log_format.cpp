// log_format.cpp — owns the encoders, the record decoder and the scanner of
// memq's on-disk log (the format is described in log_format.hpp).
#include "log_format.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "check.hpp"
#include "crc32c.hpp"

namespace memq::storage {
namespace {

// Sizes of the fields after the kind byte.
constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kIndexBytes = 8;
constexpr std::size_t kDeliveryBytes = 1;  // a framed message's delivery, a message's flags
// A message record's flags.
constexpr unsigned char kFlagDeliveryOne = 1;
constexpr unsigned char kFlagCacheTrue = 2;
constexpr unsigned char kFlagsAll = kFlagDeliveryOne | kFlagCacheTrue;
constexpr std::size_t kKindBytes = 1;
constexpr std::size_t kHeaderChecksummedBytes = 20;

// Little-endian stores into bytes already sized for them; each returns the
// byte after what it wrote.
char* store_u32(char* at, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
    return at + 4;
}

char* store_u64(char* at, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) at[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
    return at + 8;
}

char* store_bytes(char* at, std::string_view bytes) {
    if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
    return at + bytes.size();
}

std::uint32_t get_u32(const char* at) {
    std::uint32_t value = 0;
    for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(at[i]);
    return value;
}

std::uint64_t get_u64(const char* at) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(at[i]);
    return value;
}

std::size_t topic_body_bytes(std::size_t topic_bytes) { return kKindBytes + kLengthBytes + topic_bytes + kIndexBytes; }

std::size_t hole_body_bytes(std::size_t topic_bytes) { return topic_body_bytes(topic_bytes) + kIndexBytes; }

// A message's and a framed message's: the flags or delivery byte, then a length and its bytes.
std::size_t message_body_bytes(std::size_t topic_bytes, std::size_t value_bytes) {
    return topic_body_bytes(topic_bytes) + kDeliveryBytes + kLengthBytes + value_bytes;
}

void check_index(std::int64_t index) {
    if (index < 0) throw std::invalid_argument("memq log: a record's index must not be negative");
}

void check_body(std::size_t body_bytes) {
    if (body_bytes > kRecordBodyBytesMax) throw std::length_error("memq log: record body past kRecordBodyBytesMax");
}

// One record being appended to `out`: the constructor grows `out` by the
// whole record at once and writes its prefix (the crc left for seal()) and
// the body's kind and topic; the caller stores the rest of the body at
// `at`, then seal() checksums it.
class RecordAppender {
public:
    RecordAppender(std::string& out, std::size_t body_bytes, RecordKind kind, std::string_view topic)
        : out_(out), start_(out.size()) {
        check_body(body_bytes);
        out.resize(start_ + kRecordPrefixBytes + body_bytes);
        at = out.data() + start_ + 4;  // the crc's 4 bytes: seal()'s
        at = store_u32(at, static_cast<std::uint32_t>(body_bytes));
        *at++ = static_cast<char>(kind);
        at = store_u32(at, static_cast<std::uint32_t>(topic.size()));
        at = store_bytes(at, topic);
    }

    void seal(Sealing sealing) {
        MEMQ_CHECK(at == out_.data() + out_.size());  // the body was stored whole
        if (sealing == Sealing::now) seal_records(out_, start_, out_.size());
    }

    char* at;  // where the body's next field goes

private:
    std::string& out_;
    std::size_t start_;
};

void append_indexed(std::string& out, RecordKind kind, std::string_view topic, std::int64_t index, Sealing sealing) {
    check_index(index);
    RecordAppender record(out, topic_body_bytes(topic.size()), kind, topic);
    record.at = store_u64(record.at, static_cast<std::uint64_t>(index));
    record.seal(sealing);
}

// The structure of a body (kind, lengths adding up, index, delivery), without
// its crc: O(1), the resync search's first filter.
bool parse_body(std::string_view body, LogRecord& record) {
    if (body.size() < kRecordBodyBytesMin) return false;
    const auto kind = static_cast<unsigned char>(body[0]);
    if (kind < 1 || kind > static_cast<unsigned char>(kLastRecordKind)) return false;
    const std::uint64_t topic_bytes = get_u32(body.data() + kKindBytes);
    std::size_t at = kKindBytes + kLengthBytes;
    if (topic_bytes > body.size() - at || body.size() - at - topic_bytes < kIndexBytes) return false;
    const std::string_view topic = body.substr(at, topic_bytes);
    at += topic_bytes;
    const auto index = static_cast<std::int64_t>(get_u64(body.data() + at));
    if (index < 0) return false;
    at += kIndexBytes;
    Delivery delivery = Delivery::all;
    std::string_view frame;
    std::int64_t last = 0;
    std::string_view msg_json;
    bool cache_true = false;
    if (kind == static_cast<unsigned char>(RecordKind::hole)) {
        if (body.size() - at != kIndexBytes) return false;
        last = static_cast<std::int64_t>(get_u64(body.data() + at));
        if (last < index) return false;
    } else if (kind == static_cast<unsigned char>(RecordKind::message) ||
               kind == static_cast<unsigned char>(RecordKind::framed_message)) {
        if (body.size() - at < kDeliveryBytes + kLengthBytes) return false;
        const auto flags = static_cast<unsigned char>(body[at]);
        const bool framed = kind == static_cast<unsigned char>(RecordKind::framed_message);
        if (flags > (framed ? kFlagDeliveryOne : kFlagsAll)) return false;
        delivery = (flags & kFlagDeliveryOne) != 0 ? Delivery::one : Delivery::all;
        cache_true = (flags & kFlagCacheTrue) != 0;
        at += kDeliveryBytes;
        const std::uint64_t value_bytes = get_u32(body.data() + at);
        at += kLengthBytes;
        if (value_bytes != body.size() - at) return false;
        (framed ? frame : msg_json) = body.substr(at);
    } else if (at != body.size()) {
        return false;
    }
    record = LogRecord{static_cast<RecordKind>(kind), topic, index, delivery, frame, last, msg_json, cache_true};
    return true;
}

// The crc budget of one resync search.
struct ChecksumBudget {
    std::size_t bytes_left;
    bool exhausted = false;
};

bool decode_at(std::string_view bytes, DecodedRecord& decoded, std::size_t body_bytes_max,
               ChecksumBudget* budget) {
    if (bytes.size() < kRecordPrefixBytes) return false;
    const std::uint64_t body_length = get_u32(bytes.data() + 4);
    if (!record_body_length_in_range(body_length, body_bytes_max)) return false;
    if (body_length > bytes.size() - kRecordPrefixBytes) return false;
    LogRecord record;
    if (!parse_body(bytes.substr(kRecordPrefixBytes, body_length), record)) return false;
    const std::size_t checksummed = 4 + body_length;
    if (budget != nullptr) {
        if (checksummed > budget->bytes_left) {
            budget->exhausted = true;
            return false;
        }
        budget->bytes_left -= checksummed;
    }
    if (crc32c(0, bytes.data() + 4, checksummed) != get_u32(bytes.data())) return false;
    decoded.record = record;
    decoded.bytes = kRecordPrefixBytes + body_length;
    return true;
}

enum class Resync : std::uint8_t { found, none, gave_up };

// The first offset after bad_offset where a good record starts.
Resync find_next_good(std::string_view file, std::size_t bad_offset, std::size_t body_bytes_max,
                      std::size_t& found) {
    const std::size_t after = file.size() - bad_offset;
    ChecksumBudget budget{after * kResyncChecksumFactor + kResyncChecksumSlackBytes};
    DecodedRecord decoded;
    for (std::size_t offset = bad_offset + 1; offset + kRecordPrefixBytes + kRecordBodyBytesMin <= file.size();
         ++offset) {
        if (decode_at(file.substr(offset), decoded, body_bytes_max, &budget)) {
            found = offset;
            return Resync::found;
        }
        if (budget.exhausted) return Resync::gave_up;
    }
    return Resync::none;
}

}  // namespace

void append_header(std::string& out, std::uint64_t incarnation) {
    const std::size_t start = out.size();
    out.resize(start + kHeaderBytes);
    char* at = store_bytes(out.data() + start, kLogMagic);
    at = store_u32(at, kLogVersion);
    at = store_u64(at, incarnation);
    at = store_u32(at, crc32c(0, out.data() + start, kHeaderChecksummedBytes));
    MEMQ_CHECK(at == out.data() + out.size());
}

std::size_t message_record_bytes(std::size_t topic_bytes, std::size_t msg_json_bytes) {
    return kRecordPrefixBytes + message_body_bytes(topic_bytes, msg_json_bytes);
}

std::size_t framed_message_record_bytes(std::size_t topic_bytes, std::size_t frame_bytes) {
    return kRecordPrefixBytes + message_body_bytes(topic_bytes, frame_bytes);
}

std::size_t take_record_bytes(std::size_t topic_bytes) { return kRecordPrefixBytes + topic_body_bytes(topic_bytes); }

std::size_t reserve_record_bytes(std::size_t topic_bytes) { return kRecordPrefixBytes + topic_body_bytes(topic_bytes); }

std::size_t hole_record_bytes(std::size_t topic_bytes) { return kRecordPrefixBytes + hole_body_bytes(topic_bytes); }

namespace {
void append_message_kind(std::string& out, RecordKind kind, std::string_view topic, std::int64_t index,
                         unsigned char flags, std::string_view value, Sealing sealing) {
    check_index(index);
    RecordAppender record(out, message_body_bytes(topic.size(), value.size()), kind, topic);
    record.at = store_u64(record.at, static_cast<std::uint64_t>(index));
    *record.at++ = static_cast<char>(flags);
    record.at = store_u32(record.at, static_cast<std::uint32_t>(value.size()));
    record.at = store_bytes(record.at, value);
    record.seal(sealing);
}
}  // namespace

void append_message(std::string& out, std::string_view topic, std::int64_t index, Delivery delivery,
                    bool cache_true, std::string_view msg_json, Sealing sealing) {
    const auto flags = static_cast<unsigned char>((delivery == Delivery::one ? kFlagDeliveryOne : 0) |
                                                  (cache_true ? kFlagCacheTrue : 0));
    append_message_kind(out, RecordKind::message, topic, index, flags, msg_json, sealing);
}

void append_framed_message(std::string& out, std::string_view topic, std::int64_t index, Delivery delivery,
                           std::string_view frame, Sealing sealing) {
    append_message_kind(out, RecordKind::framed_message, topic, index,
                        delivery == Delivery::one ? kFlagDeliveryOne : 0, frame, sealing);
}

void append_take(std::string& out, std::string_view topic, std::int64_t index, Sealing sealing) {
    append_indexed(out, RecordKind::take, topic, index, sealing);
}

void append_reserve(std::string& out, std::string_view topic, std::int64_t next_index, Sealing sealing) {
    append_indexed(out, RecordKind::reserve, topic, next_index, sealing);
}

void seal_records(std::string& bytes, std::size_t from, std::size_t to) {
    MEMQ_CHECK(from <= to && to <= bytes.size());
    while (from < to) {
        char* const record = bytes.data() + from;
        MEMQ_CHECK(to - from >= kRecordPrefixBytes);
        const std::size_t size = kRecordPrefixBytes + get_u32(record + 4);
        MEMQ_CHECK(size <= to - from);  // whole records only
        store_u32(record, crc32c(0, record + 4, size - 4));
        from += size;
    }
}

void append_hole(std::string& out, std::string_view topic, std::int64_t first, std::int64_t last, Sealing sealing) {
    check_index(first);
    if (last < first) throw std::invalid_argument("memq log: a hole's last index must not be below its first");
    RecordAppender record(out, hole_body_bytes(topic.size()), RecordKind::hole, topic);
    record.at = store_u64(record.at, static_cast<std::uint64_t>(first));
    record.at = store_u64(record.at, static_cast<std::uint64_t>(last));
    record.seal(sealing);
}

void append_record(std::string& out, const LogRecord& record) {
    switch (record.kind) {
        case RecordKind::message:
            append_message(out, record.topic, record.index, record.delivery, record.cache_true, record.msg_json);
            return;
        case RecordKind::framed_message:
            append_framed_message(out, record.topic, record.index, record.delivery, record.frame);
            return;
        case RecordKind::take: append_take(out, record.topic, record.index); return;
        case RecordKind::reserve: append_reserve(out, record.topic, record.index); return;
        case RecordKind::hole: append_hole(out, record.topic, record.index, record.last); return;
    }
    throw std::invalid_argument("memq log: unknown record kind");
}

void append_message_frame(std::string& out, const LogRecord& record) {
    if (record.kind == RecordKind::framed_message) {
        out.append(record.frame);
        return;
    }
    MEMQ_CHECK(record.kind == RecordKind::message);
    memq::append_message_frame(out, record.topic, record.msg_json, record.delivery,
                               record.cache_true ? std::optional<bool>(true) : std::nullopt, record.index);
}

bool decode_record(std::string_view bytes, DecodedRecord& decoded, std::size_t body_bytes_max) {
    return decode_at(bytes, decoded, std::min(body_bytes_max, kRecordBodyBytesMax), nullptr);
}

HeaderStatus read_header(std::string_view file, std::uint64_t& incarnation, std::uint32_t* version_read) {
    if (file.empty()) return HeaderStatus::missing;
    if (file.size() < kHeaderBytes) return HeaderStatus::truncated;
    if (file.substr(0, kLogMagic.size()) != kLogMagic) return HeaderStatus::bad_magic;
    if (get_u32(file.data() + kHeaderChecksummedBytes) != crc32c(0, file.data(), kHeaderChecksummedBytes)) {
        return HeaderStatus::bad_checksum;
    }
    // After the checksum: a version that reads wrong because of a flipped bit
    // is corruption; a checksummed unknown version is a newer format.
    const std::uint32_t version = get_u32(file.data() + kLogMagic.size());
    if (version < kOldestReadableLogVersion || version > kLogVersion) return HeaderStatus::bad_version;
    incarnation = get_u64(file.data() + kLogMagic.size() + 4);
    if (version_read != nullptr) *version_read = version;
    return HeaderStatus::ok;
}

const char* to_string(HeaderStatus status) {
    switch (status) {
        case HeaderStatus::ok: return "ok";
        case HeaderStatus::missing: return "missing";
        case HeaderStatus::truncated: return "truncated header";
        case HeaderStatus::bad_magic: return "not a memq log (bad magic)";
        case HeaderStatus::bad_version: return "unknown log version";
        case HeaderStatus::bad_checksum: return "header checksum mismatch";
    }
    return "unknown header status";
}

const char* to_string(Damage damage) {
    switch (damage) {
        case Damage::none: return "none";
        case Damage::torn_tail: return "torn tail";
        case Damage::corrupt_middle: return "corrupt record in the middle";
    }
    return "unknown damage";
}

ScanResult scan_log_visiting(std::string_view file, ScanMode mode, RecordVisitor visitor,
                             std::size_t body_bytes_max) {
    body_bytes_max = std::min(body_bytes_max, kRecordBodyBytesMax);
    ScanResult result;
    result.header = read_header(file, result.incarnation, &result.version);
    if (result.header != HeaderStatus::ok) return result;
    std::size_t offset = kHeaderBytes;
    bool in_prefix = true;
    DecodedRecord decoded;
    while (offset < file.size()) {
        if (decode_at(file.substr(offset), decoded, body_bytes_max, nullptr)) {
            visitor.visit(visitor.context, decoded.record);
            ++result.records;
            offset += decoded.bytes;
            continue;
        }
        if (in_prefix) {
            result.good_bytes = offset;
            result.damage_offset = offset;
            in_prefix = false;
        }
        std::size_t next = 0;
        const Resync resync = find_next_good(file, offset, body_bytes_max, next);
        if (resync == Resync::none) {
            if (result.damage == Damage::none) result.damage = Damage::torn_tail;
            return result;
        }
        result.damage = Damage::corrupt_middle;
        if (mode == ScanMode::strict) return result;
        ++result.skipped_regions;
        if (resync == Resync::gave_up) {
            result.skipped_bytes += file.size() - offset;
            return result;
        }
        result.skipped_bytes += next - offset;
        offset = next;
    }
    if (in_prefix) result.good_bytes = offset;
    return result;
}

}  // namespace memq::storage
