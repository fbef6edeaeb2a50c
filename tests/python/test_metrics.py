"""memqd's metrics port (--metrics ADDRESS:PORT): /metrics, /healthz and /readyz over HTTP.

Each test starts memqd with --metrics 127.0.0.1:0 (or the older --metrics-port 0)
and learns the bound port from --metrics-port-file (written before the main
port file, so it is there once the broker fixture returns). Everything is on
loopback.
"""

import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.memqd_only

HTTP_TIMEOUT_S = 5.0
HEAD_BYTES_MAX = 8192  # memqd's bound on a request head (http::kDefaultHeadBytesMax)

# One sample line of the text format 0.0.4: name, optional labels, value (no timestamps here).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+)$')


@pytest.fixture
def metered(make_broker, tmp_path):
    """A memqd with its metrics port on; returns (broker, metrics_port)."""
    port_file = tmp_path / "metrics-port"
    broker = make_broker(args=("--metrics", "127.0.0.1:0", "--metrics-port-file", str(port_file)))
    return broker, int(port_file.read_text())


def get(port, path, method="GET"):
    """(status, headers, body text) of one request to the metrics port."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode()


def raw_status(port, data):
    """Sends `data` as it is and returns the status code of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S) as connection:
        connection.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            assert chunk, f"connection closed before a status line; got {answer!r}"
            answer += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert match, answer
    return int(match.group(1))


def samples(text):
    """{'name{labels}': value} of an exposition text; every line must be well formed."""
    found = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def scrape(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(body)


def test_counters_move_by_the_traffic(metered):
    broker, metrics_port = metered
    before = scrape(metrics_port)
    assert before["memq_connections"] == 0

    with broker.client() as subscriber, broker.client() as publisher:
        subscriber.subscribe("news")
        for i in range(5):
            publisher.send("news", f"m{i}")
        for _ in range(5):
            assert subscriber.receive(timeout=HTTP_TIMEOUT_S) is not None
        publisher.send_raw(b"not json\n", expect_reply=True)
        assert publisher.next_reply(timeout=HTTP_TIMEOUT_S)["success"] is False
        during = scrape(metrics_port)

    def moved(name):
        return during[name] - before.get(name, 0)

    assert moved("memq_connections_accepted_total") == 2
    assert during["memq_connections"] == 2
    assert moved("memq_lines_processed_total") == 9  # two hellos (the SDK's first line), a subscribe, five sends, one bad line
    assert moved("memq_errors_replied_total") == 1
    assert moved("memq_messages_published_total") == 5
    assert moved("memq_messages_delivered_total") == 5
    assert during["memq_topics_known"] == 1
    assert during["memq_topics_stateful"] == 1
    assert during["memq_cached_messages"] == 5
    assert during["memq_cached_bytes"] > 5 * len('{"index":0,"msg":"m0"}')
    assert during["memq_pending_bytes"] >= 0
    for unmoved in ("memq_connections_refused_total", "memq_topics_refused_total", "memq_cache_evictions_total",
                    'memq_connection_closes_total{reason="slow_consumer"}',
                    'memq_connection_closes_total{reason="line_too_long"}'):
        assert moved(unmoved) == 0, unmoved
    assert during["memq_uptime_seconds"] >= before["memq_uptime_seconds"]
    build_info = [name for name in during if name.startswith("memq_build_info{")]
    assert len(build_info) == 1 and re.fullmatch(r'memq_build_info\{version="[^"]+",incarnation="[0-9a-f]{16}"\}',
                                                 build_info[0]), build_info


def test_a_refused_connection_and_a_long_line_are_counted(make_broker, tmp_path):
    port_file = tmp_path / "metrics-port"
    broker = make_broker(args=("--metrics-port", "0", "--metrics-port-file", str(port_file),
                               "--max-connections", "1", "--max-line-bytes", "64"))
    metrics_port = int(port_file.read_text())
    with broker.client() as first:
        first.subscribe("t")  # connected and admitted before the second comes
        # The second connection is refused: accepted and closed at once (EOF, nothing else).
        with socket.create_connection((broker.host, broker.port), timeout=HTTP_TIMEOUT_S) as refused:
            assert refused.recv(1) == b""
        first.send_raw(b"x" * 65 + b"\n", expect_reply=True)
        assert first.next_reply(timeout=HTTP_TIMEOUT_S)["reason"] == "Line too long"
    deadline = time.monotonic() + HTTP_TIMEOUT_S
    while True:  # the close is counted as the core sees it; poll with a deadline
        after = scrape(metrics_port)
        if after['memq_connection_closes_total{reason="line_too_long"}'] == 1 or time.monotonic() > deadline:
            break
    assert after['memq_connection_closes_total{reason="line_too_long"}'] == 1
    assert after["memq_connections_refused_total"] == 1
    assert after["memq_connections_accepted_total"] == 1  # the refused one is not admitted
    assert after["memq_connections_max"] == 1


def test_a_port_alone_serves_on_loopback(make_broker, tmp_path):
    port_file = tmp_path / "metrics-port"
    make_broker(args=("--metrics", "0", "--metrics-port-file", str(port_file)))
    assert get(int(port_file.read_text()), "/healthz")[::2] == (200, "ok\n")


def test_an_ipv6_address_in_brackets(make_broker, tmp_path):
    port_file = tmp_path / "metrics-port"
    make_broker(args=("--metrics", "[::1]:0", "--metrics-port-file", str(port_file)))
    request = urllib.request.Request(f"http://[::1]:{int(port_file.read_text())}/healthz")
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        assert (response.status, response.read()) == (200, b"ok\n")


def test_event_loop_turns_form_a_cumulative_histogram(metered):
    broker, metrics_port = metered
    before = scrape(metrics_port)
    with broker.client() as subscriber, broker.client() as publisher:
        subscriber.subscribe("turns")
        for i in range(20):
            publisher.send("turns", f"m{i}")
        for _ in range(20):
            assert subscriber.receive(timeout=HTTP_TIMEOUT_S) is not None
        after = scrape(metrics_port)
    name = "memq_event_loop_turn_seconds"
    # Every read the broker handled is one turn: at least one per command sent here.
    assert after[name + "_count"] - before[name + "_count"] >= 21
    assert after[name + "_sum"] > before[name + "_sum"]
    buckets = [(float(key.split('le="')[1][:-2]), value) for key, value in after.items()
               if key.startswith(name + "_bucket{")]
    buckets.sort()
    assert buckets[-1] == (float("inf"), after[name + "_count"])
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), "buckets are cumulative"


def test_promtool_accepts_the_exposition(metered):
    broker, metrics_port = metered
    with broker.client() as client:
        client.subscribe("a")
        client.send("a", "hello")
        _, _, body = get(metrics_port, "/metrics")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh installs it (Debian's prometheus package)"
    checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_health_and_readiness(metered):
    _, metrics_port = metered
    assert get(metrics_port, "/healthz")[::2] == (200, "ok\n")
    assert get(metrics_port, "/readyz")[::2] == (200, "ready\n")
    assert get(metrics_port, "/metrics?whatever=1")[0] == 200


def test_unknown_paths_methods_and_bad_requests(metered):
    _, metrics_port = metered
    assert get(metrics_port, "/")[0] == 404
    assert get(metrics_port, "/metricsz")[0] == 404
    status, headers, _ = get(metrics_port, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET"
    assert get(metrics_port, "/healthz", method="DELETE")[0] == 405
    assert raw_status(metrics_port, b"GARBAGE\r\n\r\n") == 400
    assert raw_status(metrics_port, b"GET /metrics HTTP/1.1\r\n\r\n") == 400  # no Host


def request_of_size(size):
    start = b"GET /healthz HTTP/1.1\r\nHost: "
    end = b"\r\n\r\n"
    return start + b"h" * (size - len(start) - len(end)) + end


def test_the_request_head_bound(metered):
    _, metrics_port = metered
    assert len(request_of_size(HEAD_BYTES_MAX)) == HEAD_BYTES_MAX
    assert raw_status(metrics_port, request_of_size(HEAD_BYTES_MAX - 1)) == 200
    assert raw_status(metrics_port, request_of_size(HEAD_BYTES_MAX)) == 200
    assert raw_status(metrics_port, request_of_size(HEAD_BYTES_MAX + 1)) == 431
    # A client that never ends its head is answered once it passes the bound, not left hanging.
    assert raw_status(metrics_port, b"G" * (HEAD_BYTES_MAX + 100)) == 431


def test_readyz_is_503_during_the_shutdown_flush(metered):
    broker, metrics_port = metered
    # A connection that never closes holds the flush open (up to memqd's bounds).
    holder = socket.create_connection((broker.host, broker.port), timeout=HTTP_TIMEOUT_S)
    try:
        assert get(metrics_port, "/readyz")[0] == 200
        broker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + HTTP_TIMEOUT_S
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(get(metrics_port, "/readyz")[0])
            if statuses[-1] == 503:
                break
        assert statuses[-1] == 503, statuses
        assert set(statuses) <= {200, 503}
        assert get(metrics_port, "/healthz")[0] == 200  # still alive while it flushes
    finally:
        holder.close()
    assert broker.process.wait(timeout=10) == 0


def test_scrape_time(metered):
    """Not a bound on speed: records what a scrape costs, and that many in a row all succeed."""
    broker, metrics_port = metered
    with broker.client() as client:
        for i in range(100):
            client.subscribe(f"topic{i}")
    start = time.perf_counter()
    for _ in range(50):
        scrape(metrics_port)
    per_scrape_ms = (time.perf_counter() - start) / 50 * 1000
    print(f"scrape: {per_scrape_ms:.2f} ms each over 50, 100 topics")
    assert per_scrape_ms < 1000


@pytest.fixture
def durable_metered(make_broker, tmp_path):
    """A memqd with durable topics (--fsync always) and its metrics port on; returns (broker, metrics_port)."""
    port_file = tmp_path / "metrics-port"
    broker = make_broker(args=("--metrics", "127.0.0.1:0", "--metrics-port-file", str(port_file),
                               "--data-dir", str(tmp_path / "data"), "--fsync", "always"))
    return broker, int(port_file.read_text())


def test_an_in_memory_broker_has_no_storage_figures(metered):
    _, metrics_port = metered
    assert not [name for name in scrape(metrics_port) if name.startswith("memq_storage_")]


def test_storage_figures_move_by_the_traffic(durable_metered):
    broker, metrics_port = durable_metered
    with broker.client() as client:
        for i in range(3):
            client.send("durable", f"m{i}")  # acked under always: synced
        after = scrape(metrics_port)
    assert after["memq_storage_healthy"] == 1
    # The topic's first send waits for its reservation (counted once more each
    # time it runs again before that reservation is synced).
    assert after["memq_storage_sends_waited_total"] >= 1
    assert after["memq_storage_compactions_total"] >= 1  # the snapshot a new data dir starts with
    assert after["memq_storage_failures_total"] == 0
    assert after["memq_storage_sends_refused_total"] == 0
    assert after["memq_storage_log_bytes"] > 3 * len('{"command": "send", "topic": "durable"}')
    assert after["memq_storage_sync_seconds_count"] >= 2  # the reservation's sync, then the sends'
    assert after['memq_storage_sync_seconds_bucket{le="+Inf"}'] == after["memq_storage_sync_seconds_count"]
    assert after["memq_storage_sync_seconds_sum"] > 0


def test_promtool_accepts_the_storage_figures(durable_metered):
    broker, metrics_port = durable_metered
    with broker.client() as client:
        client.send("durable", "hello")
        _, _, body = get(metrics_port, "/metrics")
    assert "memq_storage_sync_seconds_bucket" in body
    checked = subprocess.run([shutil.which("promtool"), "check", "metrics"], input=body, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0 and checked.stdout.strip() == "" and checked.stderr.strip() == "", \
        checked.stdout + checked.stderr
