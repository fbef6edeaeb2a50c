// protocol.cpp — the wire format's pure functions: reason texts, line
// trimming, strict UTF-8 (over json_cursor's RFC 3629 table), JSON string
// literals and the encoders of every frame the broker writes.
#include "protocol.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "check.hpp"
#include "json_cursor.hpp"

namespace memq {

std::string_view reason_text(LineError error) {
    switch (error) {
        case LineError::bad_utf8: return "Could not decode input as UTF-8";
        case LineError::bad_json: return "Could not parse json";
        case LineError::malformed: return "Malformed json message";
        case LineError::line_too_long: return "Line too long";
        case LineError::internal: return "Internal exception";
        case LineError::topic_too_long: return "Topic too long";
        case LineError::too_many_subscriptions: return "Too many subscriptions";
        case LineError::too_many_topics: return "Too many topics";
        case LineError::storage_unavailable: return "Storage unavailable";
    }
    return "Internal exception";
}

std::string_view trim_line(std::string_view line) {
    // The common line has nothing to trim but a '\r' (all six are <= ' ').
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && static_cast<unsigned char>(line.front()) > ' ' &&
        static_cast<unsigned char>(line.back()) > ' ') {
        return line;
    }
    constexpr std::string_view kWhitespace = " \t\r\n\f\v";
    const std::size_t first = line.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos) return {};
    const std::size_t last = line.find_last_not_of(kWhitespace);
    return line.substr(first, last - first + 1);
}

bool is_valid_utf8(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
    while (p != end) {
        // Past ASCII 16 bytes at a time (no byte with its high bit set).
        while (end - p >= 16) {
            std::uint64_t low, high;
            std::memcpy(&low, p, 8);
            std::memcpy(&high, p + 8, 8);
            if (((low | high) & kHighBits) != 0) break;
            p += 16;
        }
        if (p == end) break;
        if (*p < 0x80) {
            ++p;
            continue;
        }
        const std::size_t length = detail::utf8_sequence_length(p, end);
        if (length == 0) return false;
        p += length;
    }
    return true;
}

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run_start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
#if defined(__SSE2__)
        // Past 16 bytes at a time that need no escape (>= 0x20 unsigned, not
        // '"' or '\\'); x ^ 0x80 turns the unsigned test into a signed one.
        while (text.size() - i >= 16) {
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
            const __m128i control = _mm_cmplt_epi8(_mm_xor_si128(bytes, _mm_set1_epi8(static_cast<char>(0x80))),
                                                   _mm_set1_epi8(static_cast<char>(0x20 ^ 0x80)));
            const __m128i special = _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                                                                       _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
            const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
            if (mask != 0) {
                i += static_cast<std::size_t>(std::countr_zero(mask));
                break;
            }
            i += 16;
        }
        if (i == text.size()) break;
#endif
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text, run_start, i - run_start);
        run_start = i + 1;
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            case '\b': out.append("\\b"); break;
            case '\f': out.append("\\f"); break;
            default:
                out.append("\\u00");
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xF]);
        }
    }
    out.append(text, run_start, text.size() - run_start);
    out.push_back('"');
}

namespace {

void append_integer(std::string& out, std::int64_t value) {
    char digits[24];
    const auto result = std::to_chars(std::begin(digits), std::end(digits), value);
    out.append(digits, result.ptr);
}

}  // namespace

std::string encode_ack() { return "{\"success\": true}\r\n"; }

std::string incarnation_text(std::uint64_t incarnation) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text(16, '0');
    for (std::size_t i = 0; i < text.size(); ++i) text[text.size() - 1 - i] = kDigits[(incarnation >> (4 * i)) & 0xF];
    return text;
}

std::string encode_hello(std::uint64_t incarnation) {
    return "{\"success\": true, \"broker\": \"memqd\", \"incarnation\": \"" + incarnation_text(incarnation) + "\"}\r\n";
}

std::string encode_error(LineError error) {
    std::string frame = "{\"success\": false, \"reason\": ";
    append_json_string(frame, reason_text(error));
    frame.append("}\r\n");
    return frame;
}

namespace {
void append_string_ref(std::string& out, const StringRef& text) {
    if (text.json.empty()) {
        append_json_string(out, text.text);
    } else {
        out.append(text.json);  // already what append_json_string writes for text.text
    }
}

// A message frame's fixed parts, in order (cache only if the sender gave it).
constexpr std::string_view kHead = "{\"command\": \"send\", \"topic\": ";
constexpr std::string_view kMsg = ", \"msg\": ";
constexpr std::string_view kAll = ", \"delivery\": \"all\"";
constexpr std::string_view kOne = ", \"delivery\": \"one\"";
constexpr std::string_view kCacheTrue = ", \"cache\": true";
constexpr std::string_view kCacheFalse = ", \"cache\": false";
constexpr std::string_view kIndex = ", \"index\": ";
constexpr std::string_view kEnd = "}\r\n";
static_assert(kAll.size() == kOne.size());
}  // namespace

namespace {
// The frame of a message whose msg literal is in hand, its topic's literal
// being '"' topic_inner '"': sized once, then copied in.
void put_message_frame(std::string& out, std::string_view topic_inner, std::string_view msg_json, Delivery delivery,
                       std::optional<bool> cache, std::int64_t index) {
    char digits[24];
    const char* const digits_end = std::to_chars(std::begin(digits), std::end(digits), index).ptr;
    const auto digit_count = static_cast<std::size_t>(digits_end - digits);
    const std::size_t cache_bytes = !cache.has_value() ? 0 : *cache ? kCacheTrue.size() : kCacheFalse.size();
    const std::size_t total = kHead.size() + topic_inner.size() + 2 + kMsg.size() + msg_json.size() + kAll.size() +
                              cache_bytes + kIndex.size() + digit_count + kEnd.size();
    const std::size_t start = out.size();
    out.resize(start + total);
    char* cursor = out.data() + start;
    const auto put = [&cursor](const char* data, std::size_t size) {
        std::memcpy(cursor, data, size);
        cursor += size;
    };
    put(kHead.data(), kHead.size());
    *cursor++ = '"';
    put(topic_inner.data(), topic_inner.size());
    *cursor++ = '"';
    put(kMsg.data(), kMsg.size());
    put(msg_json.data(), msg_json.size());
    put(delivery == Delivery::one ? kOne.data() : kAll.data(), kAll.size());
    if (cache_bytes != 0) put(*cache ? kCacheTrue.data() : kCacheFalse.data(), cache_bytes);
    put(kIndex.data(), kIndex.size());
    put(digits, digit_count);
    put(kEnd.data(), kEnd.size());
    MEMQ_CHECK(cursor == out.data() + out.size());
}

// Whether append_json_string writes `text` between its quotes as it is.
bool json_string_is_plain(std::string_view text) {
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == '"' || byte == '\\') return false;
    }
    return true;
}
}  // namespace

void append_message(std::string& out, const SendRef& send, std::int64_t index) {
    if (send.topic.json.empty() || send.msg.json.empty()) {
        // A string to escape: the general way, one piece at a time.
        constexpr std::size_t kFixedBytes = 96;  // keys, punctuation, delivery, cache, index
        out.reserve(out.size() + std::max(send.topic.text.size(), send.topic.json.size()) +
                    std::max(send.msg.text.size(), send.msg.json.size()) + kFixedBytes);
        out.append(kHead);
        append_string_ref(out, send.topic);
        out.append(kMsg);
        append_string_ref(out, send.msg);
        out.append(send.delivery == Delivery::one ? kOne : kAll);
        if (send.cache.has_value()) out.append(*send.cache ? kCacheTrue : kCacheFalse);
        out.append(kIndex);
        append_integer(out, index);
        out.append(kEnd);
        return;
    }
    // The common case: both literals copied as they are.
    const std::string_view topic_json = send.topic.json;
    put_message_frame(out, topic_json.substr(1, topic_json.size() - 2), send.msg.json, send.delivery, send.cache, index);
}

void append_message_frame(std::string& out, std::string_view topic, std::string_view msg_json, Delivery delivery,
                          std::optional<bool> cache, std::int64_t index) {
    if (json_string_is_plain(topic)) return put_message_frame(out, topic, msg_json, delivery, cache, index);
    append_message(out, SendRef{{topic, {}}, {{}, msg_json}, delivery, cache}, index);
}

std::optional<MessageFrameFields> message_frame_fields(std::string_view frame, std::int64_t index,
                                                      Delivery delivery) {
    const auto take_suffix = [&frame](std::string_view suffix) {
        if (!frame.ends_with(suffix)) return false;
        frame.remove_suffix(suffix.size());
        return true;
    };
    char digits[24];
    const char* const digits_end = std::to_chars(std::begin(digits), std::end(digits), index).ptr;
    if (!take_suffix(kEnd) || !take_suffix(std::string_view(digits, static_cast<std::size_t>(digits_end - digits))) ||
        !take_suffix(kIndex)) {
        return std::nullopt;
    }
    MessageFrameFields fields;
    if (take_suffix(kCacheTrue)) {
        fields.cache = true;
    } else if (take_suffix(kCacheFalse)) {
        fields.cache = false;
    }
    if (!take_suffix(delivery == Delivery::one ? kOne : kAll)) return std::nullopt;
    // What is left: the head, the topic's literal, ", \"msg\": " and the msg's
    // literal. The topic's literal ends at its first quote not escaped.
    if (!frame.starts_with(kHead) || frame.size() <= kHead.size() || frame[kHead.size()] != '"') return std::nullopt;
    std::size_t at = kHead.size() + 1;
    while (at < frame.size() && frame[at] != '"') at += frame[at] == '\\' ? 2 : 1;
    if (at >= frame.size() || !frame.substr(at + 1).starts_with(kMsg)) return std::nullopt;
    fields.msg_json = frame.substr(at + 1 + kMsg.size());
    if (fields.msg_json.size() < 2 || fields.msg_json.front() != '"' || fields.msg_json.back() != '"') return std::nullopt;
    return fields;
}

std::string encode_message(const Send& send, std::int64_t index) {
    std::string frame;
    append_message(frame, SendRef{{send.topic, {}}, {send.msg, {}}, send.delivery, send.cache}, index);
    return frame;
}

}  // namespace memq
