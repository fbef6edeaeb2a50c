"""A real Prometheus server scrapes memqd's metrics port.

Debian's `prometheus` package (installed by scripts/setup.sh) is started on a
free loopback port with a temporary configuration that scrapes memqd every
200 ms and a temporary TSDB directory; after some traffic, a counter is read
back through Prometheus's HTTP query API, polled until a deadline. Both
servers are stopped by pid.
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.memqd_only

SCRAPE_INTERVAL = "200ms"
STARTUP_DEADLINE_S = 10.0   # Prometheus ready (it takes ~0.5 s here)
QUERY_DEADLINE_S = 10.0     # the counter seen through a query after the traffic
STOP_DEADLINE_S = 10.0
HTTP_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.05
MESSAGES = 37


def free_loopback_port():
    """A port that was free a moment ago (Prometheus takes no port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_json(url):
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read().decode())


@pytest.fixture
def prometheus(tmp_path):
    """Starts Prometheus; returns a function that points it at a metrics port and yields its base URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: scripts/setup.sh installs it (Debian's prometheus package)"
    processes = []

    def start(metrics_port):
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "  - job_name: memqd\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{metrics_port}']\n")
        port = free_loopback_port()
        log = open(tmp_path / "prometheus.log", "w")
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        processes.append((process, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            assert process.poll() is None, "prometheus exited: " + (tmp_path / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=HTTP_TIMEOUT_S) as response:
                    if response.status == 200:
                        return base
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "prometheus not ready: " + (tmp_path / "prometheus.log").read_text()
            time.sleep(POLL_INTERVAL_S)

    yield start
    for process, log in processes:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def query(base, expression):
    """The instant vector of `expression`: [(labels, value)]."""
    answer = http_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
    assert answer["status"] == "success", answer
    return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]


def test_prometheus_reads_the_published_counter(make_broker, tmp_path, prometheus):
    port_file = tmp_path / "metrics-port"
    broker = make_broker(args=("--metrics", "127.0.0.1:0", "--metrics-port-file", str(port_file)))
    base = prometheus(int(port_file.read_text()))
    with broker.client() as publisher:
        for i in range(MESSAGES):
            publisher.send("scraped", f"m{i}")
    deadline = time.monotonic() + QUERY_DEADLINE_S
    seen = []
    while True:
        seen = query(base, "memq_messages_published_total")
        if seen and seen[0][1] == MESSAGES:
            break
        assert time.monotonic() < deadline, f"Prometheus saw {seen}; targets: {http_json(base + '/api/v1/targets')}"
        time.sleep(POLL_INTERVAL_S)
    labels, _ = seen[0]
    assert labels["job"] == "memqd"
    assert labels["instance"] == f"127.0.0.1:{int(port_file.read_text())}"
    assert query(base, "up") == [({"__name__": "up", "job": "memqd", "instance": labels["instance"]}, 1.0)]
