#!/usr/bin/env python3
# tests/fuzz/make_corpus.py — owns the seed corpora in tests/fuzz/corpus/: it
# writes every seed file from the lists below (run it after changing them, or
# the fuzz_core program layout in fuzz_core.cpp). Seeds only start the
# fuzzers; scripts/fuzz.sh fuzzes a scratch copy, so nothing is added here.
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def b(text):
    return text.encode("utf-8") if isinstance(text, str) else text


# ------------------------------------------------------------------ fuzz_codec
# One file per seed: single lines (no trailing newline: the target checks the
# unfinished last line too) and a few pipelined streams.
CODEC = {
    # valid commands of each kind
    "subscribe": '{"command": "subscribe", "topic": "orders"}',
    "subscribe_last_seen": '{"command": "subscribe", "topic": "orders", "last_seen": 41}',
    "subscribe_no_cache": '{"command":"subscribe","topic":"t","last_seen":-1,"cache":false}',
    "subscribe_int64_min": '{"command": "subscribe", "topic": "t", "last_seen": -9223372036854775808}',
    "subscribe_int64_max": '{"command": "subscribe", "topic": "t", "last_seen": 9223372036854775807}',
    "unsubscribe": '{"command": "unsubscribe", "topic": "orders"}',
    "send_all": '{"command": "send", "topic": "orders", "msg": "42", "delivery": "all"}',
    "send_one_cache": '{"command":"send","topic":"jobs","msg":"","delivery":"one","cache":true}',
    "send_no_cache": '{"delivery": "all", "cache": false, "msg": "m", "topic": "t", "command": "send"}',
    "send_escapes": r'{"command": "send", "topic": "\u00fc\"\\/", "msg": "a\nb\tc\u0000\b\f\r\/", "delivery": "all"}',
    "send_surrogate_pair": r'{"command": "send", "topic": "t", "msg": "\ud83d\ude00\uD834\uDD1E", "delivery": "one"}',
    "send_raw_utf8": b'{"command": "send", "topic": "\xc3\xbc\xe2\x82\xac", "msg": "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf", "delivery": "all"}',
    "send_duplicate_keys": '{"command": "send", "topic": "a", "topic": "b", "msg": 1, "msg": "x", "delivery": "all"}',
    "escaped_key": r'{"comm\u0061nd": "unsubscribe", "top\u0069c": "t"}',
    "whitespace": ' \t{ "command" :\t"unsubscribe" ,\r"topic" : "t" }\r ',
    "quit": "quit",
    # bad UTF-8
    "utf8_overlong": b'{"command": "send", "topic": "\xc0\xaf", "msg": "x", "delivery": "all"}',
    "utf8_surrogate": b'{"command": "subscribe", "topic": "\xed\xa0\x80"}',
    "utf8_past_max": b'{"command": "subscribe", "topic": "\xf4\x90\x80\x80"}',
    "utf8_truncated": b'{"command": "subscribe", "topic": "\xe2\x82"}',
    "utf8_lone_continuation": b"\x80{}",
    "utf8_edges": b'"\xed\x9f\xbf\xee\x80\x80\xe0\xa0\x80\xf0\x90\x80\x80\xdf\xbf\xc2\x80"',
    # bad JSON
    "json_trailing_comma": '{"command": "subscribe", "topic": "t",}',
    "json_trailing_garbage": '{"command": "subscribe", "topic": "t"} x',
    "json_nan": '{"command": "subscribe", "topic": "t", "last_seen": NaN}',
    "json_single_quotes": "{'command': 'subscribe', 'topic': 't'}",
    "json_unterminated": '{"command": "subscribe", "topic": "t',
    "json_lone_surrogate": r'{"command": "subscribe", "topic": "\ud800"}',
    "json_leading_zero": '{"command": "subscribe", "topic": "t", "last_seen": 012}',
    "json_control_char": '{"command": "subscribe", "topic": "a\x01b"}',
    "json_bad_escape": r'{"command": "subscribe", "topic": "\x41"}',
    "json_nested_deep": "[" * 300 + "]" * 300,
    # malformed (valid JSON, no template)
    "malformed_array": '["subscribe", "t"]',
    "malformed_string": '"quit"',
    "malformed_empty_object": "{}",
    "malformed_missing_topic": '{"command": "subscribe"}',
    "malformed_extra_key": '{"command": "unsubscribe", "topic": "t", "cache": true}',
    "malformed_last_seen_true": '{"command": "subscribe", "topic": "t", "last_seen": true}',
    "malformed_last_seen_float": '{"command": "subscribe", "topic": "t", "last_seen": 2.0}',
    "malformed_last_seen_string": '{"command": "subscribe", "topic": "t", "last_seen": "2"}',
    "malformed_last_seen_big": '{"command": "subscribe", "topic": "t", "last_seen": 9223372036854775808}',
    "malformed_last_seen_huge": '{"command": "subscribe", "topic": "t", "last_seen": 1e400}',
    "malformed_subscribe_msg": '{"command": "subscribe", "topic": "t", "msg": "m"}',
    "malformed_subscribe_cache_int": '{"command": "subscribe", "topic": "t", "cache": 1}',
    "malformed_unsubscribe_last_seen": '{"command": "unsubscribe", "topic": "t", "last_seen": 3}',
    "malformed_send_last_seen": '{"command": "send", "topic": "t", "msg": "m", "delivery": "one", "last_seen": 0}',
    "malformed_unknown_command": '{"command": "publish", "topic": "t", "msg": "m", "delivery": "all"}',
    "malformed_delivery": '{"command": "send", "topic": "t", "msg": "m", "delivery": "some"}',
    "malformed_cache_string": '{"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": "no"}',
    "malformed_command_null": '{"command": null, "topic": "t"}',
    "malformed_nested": '{"command": "send", "topic": {"a": [1, {"b": null}]}, "msg": "m", "delivery": "all"}',
    # nlohmann quirks that parse_line now refuses (tests/unit/fast_scan_test.cpp)
    "quirk_nul_tail": b'{"command": "subscribe", "topic": "t"}\x00junk',
    "quirk_bom": b'\xef\xbb\xbf{"command": "subscribe", "topic": "t"}',
    "quirk_overflow_garbage": '{"command": "subscribe", "topic": "t", "last_seen": 1e400e5}',
    # streams
    "stream_session": '{"command": "subscribe", "topic": "orders"}\r\n'
    '{"command": "send", "topic": "orders", "msg": "42", "delivery": "all"}\n'
    "\n   \r\n"
    '{"command": "subscribe"}\n'
    '{"command": "unsubscribe", "topic": "orders"}\n'
    "quit\n"
    '{"command": "subscribe", "topic": "after quit"}\n',
    "stream_errors": b'\xff\n{\n[]\n{"command": "send"}\n\x0c\x0b{"command":"unsubscribe","topic":""}\x0b\n',
    "stream_long_line": '{"command": "send", "topic": "t", "msg": "' + "x" * 1100 + '", "delivery": "all"}\n'
    '{"command": "unsubscribe", "topic": "t"}\n',
}

# ------------------------------------------------------------------- fuzz_core
# Programs in the layout fuzz_core.cpp documents.


def header(line_bytes_max=1024, pending_bytes_max=65536, cache=4, seed=0):
    return struct.pack("<HHBB", line_bytes_max - 64, pending_bytes_max - 256, cache, seed)


def connect(conn):
    return bytes([(0 << 3) | conn])


def disconnect(conn):
    return bytes([(2 << 3) | conn])


def recv(conn, data):
    data = b(data)
    if len(data) <= 255:
        return bytes([(3 << 3) | conn, len(data)]) + data
    return bytes([(11 << 3) | conn]) + struct.pack("<H", len(data)) + data


# canned selector: kind = sel % 8, topic = (sel >> 3) % 4, cache = (sel >> 5) % 3
SUBSCRIBE, SUBSCRIBE_LAST_SEEN, UNSUBSCRIBE, SEND_ALL, SEND_ONE, SEND_UNICODE, BAD_LINE, SEND_BACKSLASHES = range(8)


def canned(conn, kind, topic=0, cache=0, argument=0):
    return bytes([(13 << 3) | conn, kind | (topic << 3) | (cache << 5), argument])


def drain():
    return bytes([21 << 3])


def partial(conn, n):
    return bytes([(25 << 3) | conn, n])


def stall(conn):
    return bytes([(28 << 3) | conn])


def reconnect(conn):
    return bytes([(30 << 3) | conn])


def quit_(conn):
    return recv(conn, "quit\n")


def hold():
    return bytes([31 << 3])


CORE = {
    "pubsub_canned": header()
    + connect(0) + connect(1)
    + canned(1, SUBSCRIBE) + drain()
    + canned(0, SEND_ALL, argument=3) + canned(0, SEND_ONE, argument=1) + drain()
    + canned(2, SUBSCRIBE_LAST_SEEN, argument=2) + drain()
    + canned(1, UNSUBSCRIBE) + canned(0, SEND_UNICODE) + drain(),
    "pubsub_raw": header()
    + recv(1, '{"command": "subscribe", "topic": "orders"}\n')
    + recv(2, '{"command": "send", "topic": "orders", "msg": "42", "delivery": "all"}\n')
    + drain()
    + recv(3, '{"command": "subscribe", "topic": "orders", "last_seen": -1}\n{"command": "subscribe"}\n')
    + drain(),
    "one_cached_then_replayed": header(cache=8)
    + canned(0, SEND_ONE, topic=1, argument=1) + canned(0, SEND_ONE, topic=1, cache=2)
    + canned(0, SEND_ALL, topic=1) + drain()
    + canned(1, SUBSCRIBE, topic=1) + canned(2, SUBSCRIBE_LAST_SEEN, topic=1, argument=2) + drain(),
    "slow_consumer": header(pending_bytes_max=512, cache=2)
    + canned(1, SUBSCRIBE) + drain() + stall(1)
    + canned(0, SEND_ALL, argument=4) * 4 + drain()
    + canned(0, SEND_ALL, argument=4) + drain(),
    "slow_consumer_in_flight": header(pending_bytes_max=2048)
    + canned(1, SUBSCRIBE) + canned(2, SUBSCRIBE) + drain()
    + canned(0, SEND_ALL, argument=16) + partial(1, 100)
    + canned(0, SEND_ALL, argument=30) + partial(1, 255) + drain(),
    "line_too_long": header(line_bytes_max=64)
    + recv(0, '{"command": "unsubscribe", "topic": "t"}\n' + "y" * 80) + drain()
    + recv(0, "more\n") + drain() + disconnect(0),
    "line_too_long_split": header(line_bytes_max=100)
    + recv(0, "{" * 60) + recv(0, "}" * 60 + "\n") + partial(0, 128) + drain(),
    "quit_flushes_first": header()
    + canned(0, SUBSCRIBE) + canned(0, SEND_ALL, argument=2)
    + quit_(0) + partial(0, 60) + partial(0, 255) + disconnect(0),
    "quit_pipelined": header()
    + recv(0, '{"command": "subscribe", "topic": "a"}\n quit \r\n{"command": "subscribe", "topic": "b"}\n')
    + drain() + reconnect(0) + canned(0, SUBSCRIBE, topic=1) + drain(),
    "split_lines": header()
    + recv(0, '{"command": "sub') + recv(0, 'scribe", "topic": "a"}\r') + recv(0, '\n{"command": "send", ')
    + recv(0, '"topic": "a", "msg": "m", "delivery": "all"}\n\n') + drain(),
    "errors_each_class": header()
    + recv(0, b'\xc0\xaf\n{"command": \n["x"]\n{"command": "subscribe", "topic": "a", "last_seen": 1.5}\n')
    + canned(0, BAD_LINE) + canned(0, BAD_LINE, topic=1) + canned(0, BAD_LINE, topic=2)
    + canned(0, BAD_LINE, topic=3) + canned(0, SEND_BACKSLASHES, argument=1) + drain(),
    "cache_zero": header(cache=0)
    + canned(0, SEND_ALL) + canned(0, SEND_ONE) + canned(1, SUBSCRIBE) + drain(),
    "fan_out_all": header(pending_bytes_max=4096)
    + b"".join(canned(i, SUBSCRIBE, topic=2) for i in range(8)) + drain() + stall(5)
    + canned(3, SEND_ALL, topic=2, argument=0xC8) + drain() + canned(3, SEND_ONE, topic=2) + drain(),
    "reuse_ids": header(seed=7)
    + canned(4, SUBSCRIBE, topic=3) + canned(5, SEND_ALL, topic=3)
    + reconnect(4) + disconnect(5) + canned(5, SUBSCRIBE, topic=3) + canned(4, SEND_ALL, topic=3)
    + partial(5, 10) + reconnect(5) + drain(),
    "hold_stale_entries": header(pending_bytes_max=1024)
    + canned(1, SUBSCRIBE) + canned(2, SUBSCRIBE) + drain() + stall(2)
    + hold() + canned(0, SEND_ALL, argument=10) + disconnect(1) + connect(1)
    + canned(0, SEND_ALL, argument=20) + reconnect(2) + quit_(0) + hold() + drain()
    + hold() + canned(3, SUBSCRIBE) + canned(4, SEND_ALL) + partial(3, 0) + quit_(3) + disconnect(3) + hold(),
    "partial_writes": header()
    + canned(1, SUBSCRIBE) + canned(0, SEND_ALL, argument=0x43)
    + partial(0, 1) + partial(1, 1) + partial(1, 0) + partial(1, 254) + partial(1, 255) + drain()
    + canned(1, SUBSCRIBE_LAST_SEEN, argument=1) + drain(),
}


# --------------------------------------------------------------- fuzz_log_scan
# Log files in the layout of broker/storage/log_format.hpp, written here from
# that description: whole logs, a torn tail, a corrupt middle, a bad header.
def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def log_header(incarnation=42, version=1):
    first = b"memqlog\n" + struct.pack("<IQ", version, incarnation)
    return first + struct.pack("<I", crc32c(first))


def log_record(body):
    checksummed = struct.pack("<I", len(body)) + body
    return struct.pack("<I", crc32c(checksummed)) + checksummed


def log_message(topic, index, delivery, frame):
    topic, frame = b(topic), b(frame)
    return log_record(b"\x01" + struct.pack("<I", len(topic)) + topic + struct.pack("<qBI", index, delivery, len(frame)) + frame)


def log_indexed_body(kind, topic, index):
    topic = b(topic)
    return bytes([kind]) + struct.pack("<I", len(topic)) + topic + struct.pack("<q", index)


def log_indexed(kind, topic, index):
    return log_record(log_indexed_body(kind, topic, index))


def log_hole(topic, first, last):
    return log_record(log_indexed_body(4, topic, first) + struct.pack("<q", last))


LOG_RECORDS = [
    log_indexed(3, "orders", 1024),
    log_message("orders", 0, 0, '{"type": "message", "topic": "orders", "msg": "a", "index": 0}\n'),
    log_message("jobs", 7, 1, '{"type": "message", "topic": "jobs", "msg": 1, "index": 7}\n'),
    log_indexed(2, "jobs", 7),
    log_message("", 3, 0, ""),
    log_hole("orders", 1, 1023),
]
LOG_WHOLE = log_header() + b"".join(LOG_RECORDS)
LOG_FLIPPED = bytearray(LOG_WHOLE)
LOG_FLIPPED[len(log_header()) + len(LOG_RECORDS[0]) + 9] ^= 0x04

LOG_SCAN = {
    "empty": b"",
    "header_only": log_header(),
    "whole": LOG_WHOLE,
    "torn_tail": LOG_WHOLE[:-5],
    "zero_tail": LOG_WHOLE + bytes(64),
    "corrupt_middle": bytes(LOG_FLIPPED),
    "garbage_between": log_header() + LOG_RECORDS[0] + b"garbage!" + b"".join(LOG_RECORDS[1:]),
    "bad_kind": log_header() + log_indexed(9, "t", 1) + LOG_RECORDS[0],
    "truncated_header": log_header()[:10],
    "version_2": log_header(version=2) + LOG_RECORDS[0],
}


def main():
    for target, seeds in (("fuzz_codec", CODEC), ("fuzz_core", CORE), ("fuzz_log_scan", LOG_SCAN)):
        directory = CORPUS / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in seeds.items():
            (directory / name).write_bytes(b(data))
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    count = sum(1 for f in CORPUS.rglob("*") if f.is_file())
    print(f"wrote {count} seed files, {total} bytes, under {CORPUS}")


if __name__ == "__main__":
    main()
