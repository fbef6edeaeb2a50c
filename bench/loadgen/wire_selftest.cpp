// wire_selftest.cpp — memq-bench-selftest: checks the stream parsers of
// wire.cpp on synthetic server output for memq, NATS, Redis, Redis Streams and
// NATS JetStream, fed whole and split at every byte boundary, as memq-bench's
// reads may split it. Prints "N passed, N failed"; exit status 0 when all passed.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "histogram.hpp"
#include "wire.hpp"

namespace {

using bench::Proto;
using bench::Tally;

int g_passed = 0;
int g_failed = 0;

void expect(bool ok, const std::string& what) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAILED: %s\n", what.c_str());
    }
}

std::string stamped_payload(std::size_t size, std::uint64_t stamp) {
    std::string payload(size, 'x');
    payload[0] = bench::kStampMark;
    bench::write_stamp(payload.data() + 1, stamp);
    return payload;
}

std::string bulk(const std::string& text) {
    std::string out = "$";
    out.append(std::to_string(text.size())).append("\r\n").append(text).append("\r\n");
    return out;
}

// One XREAD answer of one stream: entries of (id, payload), each with one field "f".
std::string xread_answer(const std::string& stream, const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string out = "*1\r\n*2\r\n" + bulk(stream) + "*" + std::to_string(entries.size()) + "\r\n";
    for (const auto& [id, payload] : entries) out += "*2\r\n" + bulk(id) + "*2\r\n" + bulk("f") + bulk(payload);
    return out;
}

struct Stream {
    std::string bytes;
    std::uint64_t messages = 0;
    std::uint64_t replies = 0;
    std::uint64_t pings = 0;
    std::uint64_t errors = 0;
};

// What each broker sends a subscriber (and a publisher) in a short session.
Stream sample(Proto proto, std::size_t payload_size) {
    Stream s;
    const std::string topic = "bench.1.2.0";
    for (int i = 0; i < 5; ++i) {
        const std::string payload = stamped_payload(payload_size, 1000 + static_cast<std::uint64_t>(i));
        switch (proto) {
            case Proto::memq:
                if (i == 0) s.bytes += "{\"success\": true}\r\n", ++s.replies;
                s.bytes += "{\"command\": \"send\", \"topic\": \"" + topic + "\", \"msg\": \"" + payload +
                           "\", \"delivery\": \"all\", \"index\": " + std::to_string(i) + "}\r\n";
                if (i == 3) s.bytes += "{\"success\": false, \"reason\": \"Malformed json message\"}\r\n", ++s.errors;
                break;
            case Proto::nats:
                if (i == 0) s.bytes += "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\nPONG\r\n", ++s.replies;
                s.bytes += "MSG " + topic + " 1 " + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
                if (i == 2) s.bytes += "PING\r\n", ++s.pings;
                if (i == 3) s.bytes += "MSG " + topic + " 1 _INBOX.reply " + std::to_string(payload.size()) + "\r\n" + payload + "\r\n", ++s.messages;
                if (i == 4) s.bytes += "-ERR 'Unknown Protocol Operation'\r\n", ++s.errors;
                break;
            case Proto::redis:
                if (i == 0) {
                    s.bytes += "*3\r\n$9\r\nsubscribe\r\n$" + std::to_string(topic.size()) + "\r\n" + topic + "\r\n:1\r\n";
                    ++s.replies;
                }
                s.bytes += "*3\r\n$7\r\nmessage\r\n$" + std::to_string(topic.size()) + "\r\n" + topic + "\r\n$" +
                           std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
                if (i == 2) s.bytes += ":1\r\n+PONG\r\n", s.replies += 2;
                if (i == 4) s.bytes += "-ERR unknown command\r\n", ++s.errors;
                break;
            case Proto::redis_streams:
                if (i == 0) s.bytes += "+PONG\r\n", ++s.replies;
                s.bytes += xread_answer(topic, {{"1-" + std::to_string(i), payload}});
                if (i == 2) s.bytes += "$15\r\n1700000000000-0\r\n", ++s.replies;  // an XADD's id
                if (i == 4) s.bytes += "-ERR unknown command\r\n", ++s.errors;
                break;
            case Proto::jetstream: {
                const auto inbox_msg = [&](const std::string& json) {
                    return "MSG _INBOX.acks." + topic + " 1 " + std::to_string(json.size()) + "\r\n" + json + "\r\n";
                };
                if (i == 0) {
                    s.bytes += "INFO {\"server_id\":\"x\",\"jetstream\":true}\r\n";
                    s.bytes += inbox_msg("{\"type\":\"io.nats.jetstream.api.v1.stream_create_response\",\"did_create\":true}");
                    ++s.replies;
                }
                s.bytes += "MSG " + topic + " 1 " + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
                if (i == 2) s.bytes += inbox_msg("{\"stream\":\"bench_1_2_0\",\"seq\":3}"), ++s.replies;
                if (i == 3) s.bytes += "PING\r\n", ++s.pings;
                if (i == 4) s.bytes += inbox_msg("{\"error\":{\"code\":503,\"description\":\"unavailable\"}}"), ++s.errors;
                break;
            }
        }
        ++s.messages;
    }
    return s;
}

// Feeds `bytes` in pieces of `piece` bytes the way memq-bench does: append,
// parse, keep the unparsed tail.
Tally feed(Proto proto, const std::string& bytes, std::size_t piece, bench::Histogram& latency) {
    Tally tally;
    std::string buffer;
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
        buffer.append(bytes, at, piece);
        const std::size_t used = bench::parse_stream(proto, buffer.data(), buffer.size(), tally, &latency, 2000);
        buffer.erase(0, used);
    }
    if (!buffer.empty()) ++tally.errors;  // bytes left over: a frame was not recognised
    return tally;
}

void check_stream(Proto proto, std::size_t payload_size) {
    const Stream s = sample(proto, payload_size);
    const std::string name = std::string(bench::proto_name(proto)) + " payload " + std::to_string(payload_size);
    for (std::size_t piece = 1; piece <= s.bytes.size(); piece = piece < 64 ? piece + 1 : piece * 2) {
        bench::Histogram latency;
        const Tally tally = feed(proto, s.bytes, piece, latency);
        const std::string where = name + " in pieces of " + std::to_string(piece);
        expect(tally.messages == s.messages, where + ": messages");
        expect(tally.replies == s.replies, where + ": replies");
        expect(tally.pings == s.pings, where + ": pings");
        expect(tally.errors == s.errors, where + ": errors");
        expect(latency.count() == s.messages, where + ": latency samples");
        expect(latency.max() <= 1000 && latency.quantile(0.5) >= 990, where + ": latency values");
    }
}

// XREAD answers move the cursor to their last id, one answer at a time,
// however the bytes are split; a null answer (a timeout) moves only the count.
void check_stream_cursor() {
    const std::string two_answers = xread_answer("s", {{"5-0", stamped_payload(20, 1)}, {"5-1", stamped_payload(20, 1)},
                                                       {"6-0", stamped_payload(20, 1)}}) +
                                    "*-1\r\n" + xread_answer("s", {{"7-3", stamped_payload(20, 1)}});
    for (std::size_t piece = 1; piece <= two_answers.size(); ++piece) {
        Tally tally;
        bench::StreamCursor cursor;
        std::string buffer;
        std::vector<std::string> seen_ids;
        for (std::size_t at = 0; at < two_answers.size(); at += piece) {
            buffer.append(two_answers, at, piece);
            const std::uint64_t before = cursor.reads_answered;
            buffer.erase(0, bench::parse_stream(Proto::redis_streams, buffer.data(), buffer.size(), tally, nullptr, 0,
                                                nullptr, &cursor));
            if (cursor.reads_answered != before) seen_ids.push_back(cursor.last_id);
        }
        const std::string where = "redis-streams cursor in pieces of " + std::to_string(piece);
        expect(buffer.empty() && tally.messages == 4 && tally.errors == 0, where + ": entries");
        expect(cursor.reads_answered == 3 && cursor.last_id == "7-3", where + ": last id");
        // The null answer keeps the id: after any call the cursor holds the last entry read so far.
        expect(std::all_of(seen_ids.begin(), seen_ids.end(), [](const std::string& id) { return id == "6-0" || id == "7-3"; }),
               where + ": ids only of whole answers");
    }
    expect(bench::stream_read("s", "6-0") ==
               "*8\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n"
               "$1\r\ns\r\n$3\r\n6-0\r\n",
           "XREAD command");
    expect(bench::StreamCursor{}.last_id == "0-0", "a cursor starts at the stream's start");
}

// The handshakes of the durable protocols: what is sent, and which answer completes it.
void check_durable_hellos() {
    const std::string jetstream = bench::hello(Proto::jetstream, bench::Role::publisher, "a.b");
    expect(jetstream.find("SUB _INBOX.acks.a.b 1\r\n") != std::string::npos, "jetstream hello subscribes to the inbox");
    expect(jetstream.find("PUB $JS.API.STREAM.CREATE.a_b _INBOX.acks.a.b ") != std::string::npos,
           "jetstream hello creates the stream, answered on the inbox");
    expect(jetstream.find("{\"name\":\"a_b\",\"subjects\":[\"a.b\"],\"storage\":\"file\"}") != std::string::npos,
           "jetstream stream config: file storage over the subject");
    const std::string info = "INFO {\"jetstream\":true}\r\n";
    expect(bench::hello_reply_size(Proto::jetstream, bench::Role::publisher, info) == 0,
           "jetstream hello: INFO alone does not complete it");
    const std::string created = info + "MSG _INBOX.acks.a.b 1 16\r\n{\"did_create\":1}\r\n";
    expect(bench::hello_reply_size(Proto::jetstream, bench::Role::publisher, created) ==
               static_cast<std::ptrdiff_t>(created.size()),
           "jetstream hello: the create answer completes it");
    expect(bench::hello_reply_size(Proto::jetstream, bench::Role::publisher,
                                   info + "MSG _INBOX.acks.a.b 1 12\r\n{\"error\":{}}\r\n") == -1,
           "jetstream hello: an error answer is a refusal");
    const std::string reader = bench::hello(Proto::redis_streams, bench::Role::subscriber, "s");
    expect(reader == "*1\r\n$4\r\nPING\r\n" + bench::stream_read("s", "0-0"), "redis-streams subscriber: PING, then XREAD");
    expect(bench::hello_reply_size(Proto::redis_streams, bench::Role::subscriber, "+PONG\r\n") == 7,
           "redis-streams hello: PONG completes it");
    expect(bench::acks_every_publish(Proto::jetstream) && bench::acks_every_publish(Proto::redis_streams) &&
               bench::acks_every_publish(Proto::memq) && !bench::acks_every_publish(Proto::nats),
           "which protocols ack every publish");
}

void check_templates() {
    for (Proto proto : {Proto::memq, Proto::nats, Proto::redis, Proto::redis_streams, Proto::jetstream}) {
        const bench::PublishTemplate t = bench::make_publish(proto, "bench.t", 64);
        const std::string name(bench::proto_name(proto));
        expect(t.bytes[t.stamp_offset - 1] == bench::kStampMark, name + ": stamp follows the mark");
        std::uint64_t stamp = 1;
        expect(bench::read_stamp(t.bytes.data() + t.stamp_offset - 1, t.bytes.data() + t.bytes.size(), stamp) && stamp == 0,
               name + ": template stamp reads back");
    }
    const bench::PublishTemplate memq = bench::make_publish(Proto::memq, "t", 16);
    expect(memq.bytes == "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"~000000000000000\", \"delivery\": \"all\"}\n",
           "memq publish line");
    const bench::PublishTemplate nats = bench::make_publish(Proto::nats, "t", 16);
    expect(nats.bytes == "PUB t 16\r\n~000000000000000\r\n", "NATS PUB");
    const bench::PublishTemplate redis = bench::make_publish(Proto::redis, "t", 16);
    expect(redis.bytes == "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$16\r\n~000000000000000\r\n", "RESP PUBLISH");
    const bench::PublishTemplate xadd = bench::make_publish(Proto::redis_streams, "t", 16);
    expect(xadd.bytes == "*5\r\n$4\r\nXADD\r\n$1\r\nt\r\n$1\r\n*\r\n$1\r\nf\r\n$16\r\n~000000000000000\r\n", "XADD");
    const bench::PublishTemplate jetstream = bench::make_publish(Proto::jetstream, "t", 16);
    expect(jetstream.bytes == "PUB t _INBOX.acks.t 16\r\n~000000000000000\r\n", "JetStream PUB with its ack inbox");
    for (const char* name : {"memq", "nats", "redis", "redis-streams", "jetstream"}) {
        const auto proto = bench::parse_proto(name);
        expect(proto && bench::proto_name(*proto) == name, std::string("protocol name ") + name);
    }
    char digits[bench::kStampDigits + 1] = {};
    digits[0] = bench::kStampMark;
    bench::write_stamp(digits + 1, 0x123456789abcdefULL);
    std::uint64_t back = 0;
    expect(bench::read_stamp(digits, digits + sizeof(digits), back) && back == 0x123456789abcdefULL, "stamp round trip");
}

// memq deliveries' indices: consecutive passes, a gap, a repeat or a missing
// index is a break; split at every byte, as reads split them.
void check_indices() {
    const auto delivery = [](const std::string& index_text) {
        return "{\"command\": \"send\", \"topic\": \"t\", \"msg\": \"" + stamped_payload(16, 1) +
               "\", \"delivery\": \"all\"" + index_text + "}\r\n";
    };
    const auto breaks_in = [](const std::string& bytes) {
        std::uint64_t worst = 0;
        for (std::size_t piece = 1; piece <= bytes.size(); ++piece) {
            Tally tally;
            bench::IndexCheck check;
            std::string buffer;
            for (std::size_t at = 0; at < bytes.size(); at += piece) {
                buffer.append(bytes, at, piece);
                buffer.erase(0, bench::parse_stream(Proto::memq, buffer.data(), buffer.size(), tally, nullptr, 0, &check));
            }
            worst = std::max(worst, check.breaks);
        }
        return worst;
    };
    const std::string ack = "{\"success\": true}\r\n";
    expect(breaks_in(delivery(", \"index\": 41") + ack + delivery(", \"index\": 42") + delivery(", \"index\": 43")) == 0,
           "memq indices: consecutive");
    expect(breaks_in(delivery(", \"index\": 7") + delivery(", \"index\": 9")) == 1, "memq indices: a gap");
    expect(breaks_in(delivery(", \"index\": 7") + delivery(", \"index\": 7")) == 1, "memq indices: a repeat");
    expect(breaks_in(delivery(", \"index\": 7") + delivery(", \"cache\": false, \"index\": 8")) == 0,
           "memq indices: with cache");
    expect(breaks_in(delivery("")) == 1, "memq indices: none");
}

void check_histogram() {
    bench::Histogram h;
    for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);
    const double p50 = static_cast<double>(h.quantile(0.5));
    const double p99 = static_cast<double>(h.quantile(0.99));
    expect(p50 > 50e6 * 0.98 && p50 < 50e6 * 1.02, "histogram p50 within 2%");
    expect(p99 > 99e6 * 0.98 && p99 < 99e6 * 1.02, "histogram p99 within 2%");
    expect(h.quantile(1.0) == 100000000, "histogram max");
}

}  // namespace

int main() {
    for (Proto proto : {Proto::memq, Proto::nats, Proto::redis, Proto::redis_streams, Proto::jetstream}) {
        for (std::size_t size : {16u, 64u, 1000u}) check_stream(proto, size);
    }
    check_templates();
    check_stream_cursor();
    check_durable_hellos();
    check_indices();
    check_histogram();
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
