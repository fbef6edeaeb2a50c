"""memqd --data-dir as users touch it: restarts, kill -9, a second memqd on
the same dir, damaged logs (corrupt inside, torn tail, garbage header),
option errors and a disk that refuses writes (issue 12, items 1, 4, 5).

Each test runs memqd itself on a data dir under pytest's tmp_path and reads
the log with durable_memqd.read_log_records (log_format.hpp's layout).
"""

import json
import signal
import subprocess
import time

import pytest

from durable_memqd import (RECORD_KIND_MESSAGE, DurableMemqd, LOG_NAME,
                           ignore_file_size_signal_and_limit, memqd_path, next_index, read_log_records,
                           replay_lines, run_memqd)

pytestmark = pytest.mark.memqd_only

TOPICS = ("orders", "prices", "ünïcödé")
MESSAGES_PER_TOPIC = 5
# RLIMIT_FSIZE of the disk-error test: room for the header and a few records, not for many 1 KiB messages.
FILE_SIZE_LIMIT_BYTES = 8192
BIG_MESSAGE = "x" * 1024


@pytest.fixture
def memqd_binary(request):
    return memqd_path(request.config)


@pytest.fixture
def start(request, tmp_path, memqd_binary):
    """start(*args, data_dir=..., **options) -> DurableMemqd; every one is stopped by pid after the test."""
    started = []

    def make(*args, data_dir=None, **options):
        workdir = tmp_path / f"memqd-{len(started)}"
        workdir.mkdir()
        memqd = DurableMemqd(memqd_binary, data_dir or tmp_path / "data", workdir, args, **options)
        started.append(memqd)
        return memqd

    yield make
    for memqd in started:
        memqd.end(signal.SIGKILL)


def publish_numbered(memqd, topics=TOPICS, count=MESSAGES_PER_TOPIC):
    """Sends count messages to each topic, each acked; returns {topic: [msg, ...]} in order."""
    sent = {}
    with memqd.connect() as connection:
        for topic in topics:
            sent[topic] = [f"{topic} #{number} é\"\\" for number in range(count)]
            for msg in sent[topic]:
                assert connection.send(topic, msg) == {"success": True}
    return sent


def replayed_messages(memqd, topic, count):
    return [json.loads(line)["msg"] for line in replay_lines(memqd.port, topic, count)]


def stop_cleanly(memqd):
    assert memqd.end(signal.SIGTERM) == 0, memqd.stderr_text()


# ---- restarts ----------------------------------------------------------------

def test_a_restart_keeps_every_cached_message_byte_for_byte_and_in_order(start):
    memqd = start()
    publish_numbered(memqd)
    before = {topic: replay_lines(memqd.port, topic, MESSAGES_PER_TOPIC) for topic in TOPICS}
    assert memqd.restart(signal.SIGTERM) == 0
    after = {topic: replay_lines(memqd.port, topic, MESSAGES_PER_TOPIC) for topic in TOPICS}
    assert after == before


def test_a_restart_keeps_the_incarnation(start):
    memqd = start()
    with memqd.connect() as connection:
        incarnation = connection.incarnation()
    memqd.restart(signal.SIGTERM)
    with memqd.connect() as connection:
        assert connection.incarnation() == incarnation


def test_after_a_clean_stop_the_next_send_gets_exactly_the_next_index(start):
    memqd = start()
    publish_numbered(memqd)
    memqd.restart(signal.SIGTERM)
    for topic in TOPICS:
        assert next_index(memqd.port, topic) == MESSAGES_PER_TOPIC


# ---- kill -9 -----------------------------------------------------------------

def test_sigkill_under_fsync_always_keeps_every_acked_message(start):
    memqd = start("--fsync", "always")
    sent = publish_numbered(memqd)
    assert memqd.restart(signal.SIGKILL) == -signal.SIGKILL
    for topic in TOPICS:
        assert replayed_messages(memqd, topic, MESSAGES_PER_TOPIC) == sent[topic]


def test_sigkill_after_an_acked_send_under_fsync_always_keeps_the_incarnation(start):
    # (A fresh data dir killed before its first write is durable may come back
    # under a new incarnation: nothing was acked, and clients see a Reset.)
    memqd = start("--fsync", "always")
    with memqd.connect() as connection:
        incarnation = connection.incarnation()
        assert connection.send("orders", "acked, so on stable storage with the log's header") == {"success": True}
    memqd.restart(signal.SIGKILL)
    with memqd.connect() as connection:
        assert connection.incarnation() == incarnation


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_after_sigkill_the_next_index_is_above_every_index_handed_out(start, policy):
    memqd = start("--fsync", policy)
    memqd.restart(signal.SIGTERM)  # the data dir's log and incarnation are on disk from here on
    handed_out = {topic: next_index(memqd.port, topic) for topic in TOPICS}
    publish_numbered(memqd)
    handed_out = {topic: handed_out[topic] + MESSAGES_PER_TOPIC for topic in TOPICS}
    memqd.restart(signal.SIGKILL)
    for topic in TOPICS:
        assert next_index(memqd.port, topic) > handed_out[topic]


# ---- the lock ----------------------------------------------------------------

def test_a_second_memqd_on_the_same_data_dir_exits_2_naming_the_dir_and_the_pid(start, tmp_path, memqd_binary):
    first = start()
    second = run_memqd(memqd_binary, ["--port", "0", "--data-dir", first.data_dir])
    assert second.returncode == 2
    assert str(first.data_dir) in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert first.process.poll() is None


def test_the_lock_is_free_again_once_its_memqd_was_killed(start):
    memqd = start()
    memqd.restart(signal.SIGKILL)
    assert memqd.process.poll() is None


# ---- damaged logs ------------------------------------------------------------

def stopped_log_with_messages(start):
    """A data dir whose log holds every message of publish_numbered, memqd stopped; returns (memqd, sent, records)."""
    memqd = start()
    sent = publish_numbered(memqd)
    with memqd.connect() as connection:
        incarnation = connection.incarnation()
    stop_cleanly(memqd)
    log = (memqd.data_dir / LOG_NAME).read_bytes()
    records = read_log_records(log)
    return memqd, sent, records, incarnation


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def first_message_record_followed_by_another(records):
    for record in records[:-1]:
        if record.kind == RECORD_KIND_MESSAGE:
            return record
    raise AssertionError("the log holds no message record followed by another record")


def test_a_corrupt_record_inside_the_log_makes_memqd_exit_2_naming_salvage(start, memqd_binary):
    memqd, _sent, records, _incarnation = stopped_log_with_messages(start)
    victim = first_message_record_followed_by_another(records)
    flip_byte(memqd.data_dir / LOG_NAME, victim.offset + victim.size - 2)  # inside its msg literal
    result = run_memqd(memqd_binary, ["--port", "0", "--data-dir", memqd.data_dir])
    assert result.returncode == 2
    assert "--salvage" in result.stderr


def test_salvage_keeps_every_other_record_under_a_new_incarnation(start):
    memqd, sent, records, incarnation = stopped_log_with_messages(start)
    victim = first_message_record_followed_by_another(records)
    flip_byte(memqd.data_dir / LOG_NAME, victim.offset + victim.size - 2)
    salvaged = start("--salvage", data_dir=memqd.data_dir)
    victim_msg = victim.msg
    for topic in TOPICS:
        kept = [msg for msg in sent[topic] if msg != victim_msg]
        assert replayed_messages(salvaged, topic, len(kept)) == kept
    with salvaged.connect() as connection:
        assert connection.incarnation() != incarnation
    assert "salvaged" in salvaged.stderr_text()


def test_a_torn_tail_is_cut_at_start_and_logged_and_nothing_before_it_is_lost(start):
    memqd, _sent, records, _incarnation = stopped_log_with_messages(start)
    log_path = memqd.data_dir / LOG_NAME
    last = records[-1]
    cut_at = last.offset + last.size // 2
    log_path.write_bytes(log_path.read_bytes()[:cut_at])
    restarted = start("--log-level", "info", data_dir=memqd.data_dir)
    assert f"cut a torn tail of {cut_at - last.offset} bytes at byte {last.offset}" in restarted.stderr_text()
    for topic in TOPICS:
        whole = [record.frame() for record in records[:-1] if record.kind == RECORD_KIND_MESSAGE and record.topic == topic]
        assert replay_lines(restarted.port, topic, len(whole)) == whole


def test_after_a_torn_tail_is_cut_new_sends_follow_the_good_prefix_and_survive_a_sigkill(start):
    memqd, sent, records, incarnation = stopped_log_with_messages(start)
    log_path = memqd.data_dir / LOG_NAME
    last = records[-1]
    log_path.write_bytes(log_path.read_bytes()[:last.offset + last.size // 2])
    restarted = start("--fsync", "always", "--log-level", "info", data_dir=memqd.data_dir)
    assert "appending to the log" in restarted.stderr_text()
    with restarted.connect() as connection:
        assert connection.send("orders", "after the cut") == {"success": True}
    assert restarted.restart(signal.SIGKILL) == -signal.SIGKILL
    text = restarted.stderr_text()
    assert "salvaged" not in text and "cut a torn tail" not in text, text
    whole = [record.frame() for record in records[:-1] if record.kind == RECORD_KIND_MESSAGE and record.topic == "orders"]
    replayed = replay_lines(restarted.port, "orders", len(whole) + 1)
    assert replayed[:-1] == whole
    assert json.loads(replayed[-1])["msg"] == "after the cut"
    with restarted.connect() as connection:
        assert connection.incarnation() == incarnation


def test_a_restart_on_a_clean_log_appends_to_it_rather_than_rewriting_it(start):
    memqd, _sent, _records, _incarnation = stopped_log_with_messages(start)
    log_path = memqd.data_dir / LOG_NAME
    before = log_path.read_bytes()
    inode = log_path.stat().st_ino
    restarted = start("--fsync", "always", "--log-level", "info", data_dir=memqd.data_dir)
    assert "appending to the log" in restarted.stderr_text()
    with restarted.connect() as connection:
        assert connection.send("orders", "appended") == {"success": True}
    after = log_path.read_bytes()
    assert log_path.stat().st_ino == inode, "the log was replaced"
    assert after.startswith(before) and len(after) > len(before)


def test_a_log_whose_header_is_garbage_makes_memqd_exit_2(start, memqd_binary):
    memqd, _sent, _records, _incarnation = stopped_log_with_messages(start)
    log_path = memqd.data_dir / LOG_NAME
    log_path.write_bytes(b"not a memq log header!!!" + log_path.read_bytes()[24:])
    result = run_memqd(memqd_binary, ["--port", "0", "--data-dir", memqd.data_dir])
    assert result.returncode == 2
    assert str(memqd.data_dir) in result.stderr


# ---- option errors -------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--fsync", "bad"], "invalid --fsync 'bad': expected always or interval"),
    (["--fsync-interval-ms", "0"], "invalid --fsync-interval-ms '0': expected a positive integer"),
])
def test_a_bad_durability_option_exits_2_saying_what_is_wrong(tmp_path, memqd_binary, args, message):
    result = run_memqd(memqd_binary, ["--port", "0", "--data-dir", tmp_path / "data", *args])
    assert result.returncode == 2
    assert message in result.stderr


def test_fsync_interval_ms_1_is_the_smallest_period_taken(tmp_path, memqd_binary, start):
    memqd = start("--fsync-interval-ms", "1")
    assert memqd.process.poll() is None


@pytest.mark.parametrize("option", [["--fsync", "always"], ["--fsync-interval-ms", "10"], ["--salvage"]])
def test_a_durability_option_without_data_dir_exits_2(memqd_binary, option):
    result = run_memqd(memqd_binary, ["--port", "0", *option])
    assert result.returncode == 2
    assert "need --data-dir" in result.stderr


def test_help_lists_the_durability_options(memqd_binary):
    result = run_memqd(memqd_binary, ["--help"])
    assert result.returncode == 0
    for option in ("--data-dir DIR", "--fsync always|interval", "--fsync-interval-ms N", "--salvage"):
        assert option in result.stdout


# ---- a disk that refuses writes (RLIMIT_FSIZE: writes past the limit fail with EFBIG) ----

def fill_the_disk(memqd, room_bytes=FILE_SIZE_LIMIT_BYTES):
    """Sends BIG_MESSAGEs until a write fails; returns (replies before the failure, how the connection ended)."""
    replies = []
    with memqd.connect() as connection:
        for _ in range(2 * room_bytes // len(BIG_MESSAGE)):
            try:
                replies.append(connection.send("filler", BIG_MESSAGE))
            except ConnectionError as closed:
                return replies, closed
    return replies, None


@pytest.fixture
def full_disk_memqd(start):
    """memqd --fsync always whose log may not grow past FILE_SIZE_LIMIT_BYTES, with one message on "kept",
    after the write that passed the limit failed."""
    memqd = start("--fsync", "always", "--log-level", "info",
                  preexec_fn=ignore_file_size_signal_and_limit(FILE_SIZE_LIMIT_BYTES))
    with memqd.connect() as connection:
        assert connection.send("kept", "stored before the disk filled") == {"success": True}
    memqd.fill_replies, memqd.fill_end = fill_the_disk(memqd)
    return memqd


def test_a_send_whose_write_failed_is_never_acked_under_always(full_disk_memqd):
    assert full_disk_memqd.fill_end is not None, "the disk never filled"
    assert full_disk_memqd.fill_replies == [{"success": True}] * len(full_disk_memqd.fill_replies)
    assert len(full_disk_memqd.fill_replies) < FILE_SIZE_LIMIT_BYTES // len(BIG_MESSAGE)


def test_after_a_failed_write_sends_are_refused_with_storage_unavailable(full_disk_memqd):
    with full_disk_memqd.connect() as connection:
        assert connection.send("kept", "refused") == {"success": False, "reason": "Storage unavailable"}


def test_after_a_failed_write_subscribers_still_get_replays(full_disk_memqd):
    replayed = replay_lines(full_disk_memqd.port, "kept", 1)
    assert [json.loads(line)["msg"] for line in replayed] == ["stored before the disk filled"]


def test_a_failed_write_is_logged_with_its_cause(full_disk_memqd):
    assert "storage failed" in full_disk_memqd.stderr_text()
    assert "File too large" in full_disk_memqd.stderr_text()


# ---- a full disk for real: a tiny tmpfs (needs mount; skipped, saying why, where mount is not allowed) ----

TMPFS_BYTES = 64 * 1024
# Taken from the tmpfs before memqd starts and given back to show that memqd recovers by itself.
BALLAST_BYTES = 32 * 1024
RECOVERY_TIMEOUT_S = 10.0


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {TMPFS_BYTES}-byte tmpfs here (mount exited {mounted.returncode}: "
                    f"{mounted.stderr.strip()}); the RLIMIT_FSIZE tests above cover failed writes")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def full_tmpfs_memqd(tiny_tmpfs, start):  # tiny_tmpfs first: it is unmounted after memqd ends
    """memqd --fsync always on a tiny tmpfs partly taken by a ballast file, filled until a write failed."""
    (tiny_tmpfs / "ballast").write_bytes(b"\0" * BALLAST_BYTES)
    memqd = start("--fsync", "always", "--log-level", "info", data_dir=tiny_tmpfs / "data")
    with memqd.connect() as connection:
        assert connection.send("kept", "stored before the disk filled") == {"success": True}
    _replies, closed = fill_the_disk(memqd, TMPFS_BYTES)
    assert closed is not None, "the tmpfs never filled"
    return memqd, tiny_tmpfs


def test_a_full_disk_refuses_sends_and_logs_no_space(full_tmpfs_memqd):
    memqd, _mount_point = full_tmpfs_memqd
    with memqd.connect() as connection:
        assert connection.send("kept", "refused") == {"success": False, "reason": "Storage unavailable"}
    assert "No space left on device" in memqd.stderr_text()


def test_a_full_disk_keeps_replaying_cached_messages(full_tmpfs_memqd):
    memqd, _mount_point = full_tmpfs_memqd
    replayed = replay_lines(memqd.port, "kept", 1)
    assert [json.loads(line)["msg"] for line in replayed] == ["stored before the disk filled"]


def test_once_space_is_freed_memqd_takes_sends_again_by_itself(full_tmpfs_memqd):
    memqd, mount_point = full_tmpfs_memqd
    (mount_point / "ballast").unlink()
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    with memqd.connect() as connection:
        while (reply := connection.send("kept", "taken again")) != {"success": True}:
            assert reply == {"success": False, "reason": "Storage unavailable"}
            assert time.monotonic() < deadline, f"memqd did not take sends again within {RECOVERY_TIMEOUT_S} s"
            time.sleep(0.05)  # polling for the store's retry against a deadline
    assert "storage writable again" in memqd.stderr_text()
