"""memq.aio over TLS: the client's ssl.SSLContext (tls, tls_ca, tls_cert,
tls_key, tls_server_name) against a TLS endpoint.

memqd has no TLS listener of its own yet, so each test puts a TLS-terminating
relay (aio_relay.Relay, in the test's own loop) in front of the test's
memqd: what the client says inside TLS reaches memqd as it is.
The certificates (a CA, a server certificate for "localhost", a client
certificate) are made once per module with the openssl command.
"""

import ssl
import subprocess

import pytest

import memq
import memq.aio

from aio_relay import Relay
from conftest import REPLY_TIMEOUT_S

pytestmark = pytest.mark.asyncio


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(directory, name, subject, extensions):
    """A key and a certificate for `subject`, signed by the CA in `directory`."""
    (directory / f"{name}.ext").write_text(extensions)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=memq test CA", cwd=directory)
    issue(directory, "server", "/CN=localhost", "subjectAltName=DNS:localhost\n")
    issue(directory, "client", "/CN=memq test client", "extendedKeyUsage=clientAuth\n")
    return directory


def tls_relay(certificates, broker_port, require_client_certificate=False):
    """A Relay to memqd that clients reach through TLS, with the server certificate for "localhost"."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates / "ca.pem")
    return Relay(broker_port, context)


async def round_trip(port, **tls_options):
    async with memq.aio.Client(port=port, timeout=REPLY_TIMEOUT_S, **tls_options) as client:
        await client.subscribe("tls")
        await client.send("tls", "through TLS")
        return (await client.receive(timeout=REPLY_TIMEOUT_S)).msg


async def test_a_client_that_trusts_the_ca_talks_to_memqd_through_tls(certificates, broker):
    async with tls_relay(certificates, broker.port) as relay:
        assert await round_trip(relay.port, tls=True, tls_ca=str(certificates / "ca.pem"),
                                tls_server_name="localhost") == "through TLS"


async def test_the_server_name_defaults_to_the_host(certificates, broker):
    async with tls_relay(certificates, broker.port) as relay:
        async with memq.aio.Client("localhost", relay.port, tls=True, tls_ca=str(certificates / "ca.pem")) as client:
            await client.send("tls", "by name")


async def test_a_certificate_for_another_name_is_refused(certificates, broker):
    async with tls_relay(certificates, broker.port) as relay:
        with pytest.raises(memq.aio.TlsError, match="certificate verify failed"):
            await round_trip(relay.port, tls=True, tls_ca=str(certificates / "ca.pem"), tls_server_name="elsewhere")


async def test_a_certificate_from_an_unknown_ca_is_refused(certificates, broker):
    async with tls_relay(certificates, broker.port) as relay:
        with pytest.raises(memq.aio.TlsError, match="certificate verify failed"):
            await round_trip(relay.port, tls=True, tls_server_name="localhost")  # the system's CAs only


async def test_a_client_certificate_is_presented_to_a_server_that_requires_one(certificates, broker):
    async with tls_relay(certificates, broker.port, require_client_certificate=True) as relay:
        assert await round_trip(relay.port, tls=True, tls_ca=str(certificates / "ca.pem"), tls_server_name="localhost",
                                tls_cert=str(certificates / "client.pem"),
                                tls_key=str(certificates / "client.key")) == "through TLS"
