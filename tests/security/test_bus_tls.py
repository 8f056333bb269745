"""TLS to NATS (issue 11, item 1): where the bus leaves the host (the Helm chart turns it on), a real
nats-server with a certificate refuses plaintext clients and clients that do not trust its CA, the
services' own connect (``REPROLAB_NATS_TLS_CA_FILE``) works, and a secret sent over it cannot be read by
whoever relays the bytes (a recording TCP proxy stands in for the network between two pods)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reprolab_common import subjects
from reprolab_common.nats import connect
from reprolab_common.natsserver import NatsServer, bus_credentials


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_pki(root: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    ca_key, ca_cert = _ca("reprolab test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _other_key, other_cert = _ca("somebody else's CA")
    paths = {"ca": root / "ca.crt", "cert": root / "server.crt", "key": root / "server.key",
             "other": root / "other.crt"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["key"], key)
    paths["other"].write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    return paths


@pytest.fixture(scope="module")
def tls_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, dict[str, str], dict[str, Path]]]:
    root = tmp_path_factory.mktemp("tlsbus")
    pki = make_pki(root)
    creds = bus_credentials(root / "creds.json")
    server = NatsServer(root / "js", log_file=root / "nats.log", credentials=creds,
                        tls=(pki["cert"], pki["key"])).start()
    yield server, creds, pki
    server.stop()


class RecordingProxy:
    """Relays TCP between a client and the server and keeps every byte that crossed it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.seen = bytearray()
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self.seen += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server:
            self.server.close()


async def test_plaintext_and_untrusted_clients_are_refused(tls_bus) -> None:
    server, creds, pki = tls_bus
    for options in ({}, {"tls": ssl.create_default_context(cafile=str(pki["other"]))}):
        with pytest.raises(Exception) as info:  # noqa: PT011 - nats-py raises several types here
            await nats.connect(server.url, user="gateway", password=creds["gateway"], allow_reconnect=False,
                               max_reconnect_attempts=0, connect_timeout=2, **options)
        text = f"{type(info.value).__name__} {info.value}".lower()
        assert any(w in text for w in ("tls", "ssl", "certificate", "no servers", "secure")), text


async def test_services_connect_over_tls_and_secrets_are_unreadable_on_the_wire(tls_bus) -> None:
    server, creds, pki = tls_bus
    proxy = RecordingProxy(server.port)
    port = await proxy.start()
    url = f"nats://127.0.0.1:{port}"
    secret = b"AKIAEXAMPLE-secret-key-that-must-not-leak-0123456789"
    runner = await connect(url, "runner", initial_timeout=5, user="runner", password=creds["runner"],
                           tls_ca_file=pki["ca"])
    gateway = await connect(url, "gateway", initial_timeout=5, user="gateway", password=creds["gateway"],
                            tls_ca_file=pki["ca"])
    try:
        subject = subjects.Runner.CREDENTIAL_PUT.value
        got: list[bytes] = []

        async def _cb(msg) -> None:
            got.append(msg.data)
            await msg.respond(b"stored")

        await runner.subscribe(subject, cb=_cb)
        await runner.flush()
        reply = await gateway.request(subject, secret, timeout=5)
        assert reply.data == b"stored" and got == [secret]
    finally:
        await gateway.close()
        await runner.close()
        await proxy.stop()
    assert len(proxy.seen) > len(secret)  # the conversation did go through the proxy
    assert secret not in bytes(proxy.seen)
    assert creds["gateway"].encode() not in bytes(proxy.seen)  # nor the bus password
