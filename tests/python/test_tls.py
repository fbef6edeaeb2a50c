"""memq.Client over TLS: memqd's --tls-port, with certificates made at test time
by tests/tls/make_certs.sh (the openssl CLI). A round trip over TLS and mutual
TLS; each refusal (no client certificate, one from another CA, an expired one,
a broker the client cannot verify) raises memq.TlsError naming the cause, and
memqd goes on serving the clients it accepts."""

import subprocess
import time
from pathlib import Path

import pytest

import memq
from memq.testing import find_memqd

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run([str(REPO / "tests" / "tls" / "make_certs.sh"), str(directory)], check=True)
    return directory


class TlsMemqd:
    """memqd on a plain and a TLS port (both chosen by memqd, read back from its port files)."""

    def __init__(self, workdir, certs, mutual):
        port_file, tls_port_file = workdir / "port", workdir / "tls-port"
        command = [find_memqd(), "--port", "0", "--port-file", str(port_file),
                   "--tls-port", "0", "--tls-port-file", str(tls_port_file),
                   "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
                   "--log-level", "warn"]
        if mutual:
            command += ["--tls-client-ca", str(certs / "ca.pem")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, f"memqd exited with {self.process.returncode}"
            assert time.monotonic() < deadline, "memqd did not listen in time"
            time.sleep(0.01)  # polling a condition with a deadline
        self.port = int(port_file.read_text())
        self.tls_port = int(tls_port_file.read_text())

    def stop(self):
        self.process.terminate()
        return self.process.wait(timeout=10)


@pytest.fixture(params=[False, True], ids=["tls", "mtls"])
def any_memqd(request, tmp_path, certs):
    memqd = TlsMemqd(tmp_path, certs, mutual=request.param)
    yield memqd, request.param
    assert memqd.stop() == 0


@pytest.fixture
def mutual_memqd(tmp_path, certs):
    memqd = TlsMemqd(tmp_path, certs, mutual=True)
    yield memqd
    assert memqd.stop() == 0


def tls_client(memqd, certs, client=None, ca="ca.pem", **options):
    files = {"tls_cert": certs / f"{client}.pem", "tls_key": certs / f"{client}.key"} if client else {}
    return memq.Client(port=memqd.tls_port, tls=True, tls_ca=certs / ca, timeout=5.0, **files, **options)


def test_round_trip_over_tls_and_mutual_tls(any_memqd, certs):
    memqd, mutual = any_memqd
    with tls_client(memqd, certs, "client" if mutual else None) as client:
        client.subscribe("t")
        client.send("t", "over tls")
        message = client.receive(timeout=5.0)
    assert (message.topic, message.msg, message.index) == ("t", "over tls", 0)


def test_tls_and_plain_clients_share_one_broker(mutual_memqd, certs):
    with tls_client(mutual_memqd, certs, "client") as subscriber, memq.Client(port=mutual_memqd.port) as plain:
        subscriber.subscribe("t")
        plain.send("t", "from plain tcp")
        assert subscriber.receive(timeout=5.0).msg == "from plain tcp"


@pytest.mark.parametrize("client, cause", [
    (None, "requires a client certificate"),
    ("other-client", "not signed by a CA it trusts"),
    ("expired-client", "expired"),
], ids=["no-certificate", "other-ca", "expired"])
def test_refused_client_certificate_raises_tls_error_naming_the_cause(mutual_memqd, certs, client, cause):
    with pytest.raises(memq.TlsError, match=cause):
        tls_client(mutual_memqd, certs, client)
    with tls_client(mutual_memqd, certs, "client") as accepted:  # memqd serves on
        accepted.subscribe("t")


def test_broker_not_signed_by_tls_ca_is_refused(any_memqd, certs):
    memqd, _ = any_memqd
    with pytest.raises(memq.TlsError, match="the broker's certificate was not verified"):
        tls_client(memqd, certs, "client", ca="other-ca.pem")


def test_tls_server_name_must_match_the_broker_certificate(any_memqd, certs):
    memqd, _ = any_memqd
    with pytest.raises(memq.TlsError, match="hostname mismatch"):
        tls_client(memqd, certs, "client", tls_server_name="elsewhere.example")


def test_tls_error_is_a_connection_error():
    assert issubclass(memq.TlsError, memq.ConnectionError)


def test_tls_files_need_tls_true(certs):
    with pytest.raises(ValueError, match="need tls=True"):
        memq.Client(port=1, tls_ca=certs / "ca.pem")


def test_unreadable_ca_file_raises_tls_error_naming_it(tmp_path):
    with pytest.raises(memq.TlsError, match="tls_ca_file .*absent.pem"):
        memq.Client(port=1, tls=True, tls_ca=tmp_path / "absent.pem")
