"""The bus refuses what an identity may not do: a real nats-server with the permissions of
``reprolab_common.buspermissions`` (exactly the config ``reprolab up`` writes), one client per identity."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from reprolab.v1 import common_pb2, registry_pb2
from reprolab_common import buspermissions as bp
from reprolab_common import subjects
from reprolab_common.nats import JobSubject, Stream, connect, ensure_consumer, ensure_streams
from reprolab_common.natsserver import NatsServer, bus_credentials

# A refused request is dropped by the server: the requester sees no answer.
REFUSED = (NoRespondersError, NatsTimeout)

REQUEST_ENUMS = [v for v in vars(subjects).values()
                 if isinstance(v, type) and issubclass(v, StrEnum) and v is not StrEnum
                 and v is not subjects.ServiceName]


def test_every_subject_constant_is_served_and_callable() -> None:
    """A subject added to subjects.py without a line in the permissions table fails here (and would be
    unreachable on a real bus): someone must serve it and someone must be allowed to call it."""
    table = bp.permissions()
    missing = [e.__name__ for e in REQUEST_ENUMS if e not in bp.SERVES]
    assert not missing, f"add these subjects.py enums to buspermissions.SERVES: {missing}"
    for enum in REQUEST_ENUMS:
        server = bp.SERVES[enum]
        for subject in enum:
            assert subject.value in table[server].subscribe, subject
            callers = [name for name in bp.SERVICES if subject.value in table[name].publish]
            assert callers, f"no identity may call {subject.value}"
            assert callers == list(bp.INTERNAL_CALLERS.get(subject.value, (bp.GATEWAY,))), (subject, callers)
    for name in bp.SERVICES:  # no service identity holds a wildcard over the whole bus
        assert ">" not in table[name].publish and ">" not in table[name].subscribe


def test_credentials_and_config_are_private(tmp_path: Path) -> None:
    creds_file = tmp_path / "nats-credentials.json"
    creds = bus_credentials(creds_file)
    assert set(creds) == set(bp.IDENTITIES) and len(set(creds.values())) == len(creds)
    assert bus_credentials(creds_file) == creds  # a restart keeps them
    server = NatsServer(tmp_path / "nats", credentials=creds)
    server._args()
    for path in (creds_file, server.config_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        assert creds["gateway"] in path.read_text()


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, dict[str, str]]]:
    root = tmp_path_factory.mktemp("bus")
    creds = bus_credentials(root / "creds.json")
    server = NatsServer(root / "js", log_file=root / "nats.log", credentials=creds).start()
    yield server, creds
    server.stop()


class Peer:
    """A client as one identity that records the permission violations the server reports."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[str] = []
        self.nc: Client

    async def open(self, url: str, password: str) -> Peer:
        async def _error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(url, user=self.name, password=password, inbox_prefix=bp.inbox_prefix(self.name),
                                     error_cb=_error, allow_reconnect=False)
        return self

    async def violations(self, word: str, subject: str) -> bool:
        """True once the server has refused ``word`` (Publish/Subscription) on ``subject``."""
        # Up to 10 s: the server's -ERR arrives asynchronously, late on a loaded machine.
        for _ in range(500):
            if any("permissions violation" in e.lower() and word.lower() in e.lower() and subject.lower() in e.lower()
                   for e in self.errors):
                return True
            await asyncio.sleep(0.02)
        return False


@pytest_asyncio.fixture
async def peers(bus) -> AsyncIterator[dict[str, Peer]]:
    server, creds = bus
    out = {name: await Peer(name).open(server.url, creds[name]) for name in bp.IDENTITIES}
    yield out
    for peer in out.values():
        await peer.nc.close()


async def test_unknown_client_and_wrong_password_are_refused(bus) -> None:
    server, creds = bus
    for options in ({}, {"user": "gateway", "password": "guess"}, {"user": "mallory", "password": creds["gateway"]}):
        with pytest.raises(Exception) as info:
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2,
                               **options)
        assert "authorization" in str(info.value).lower() or "no servers" in str(info.value).lower(), info.value


async def _responder(peer: Peer, subject: str, got: list[bytes]) -> None:
    async def _cb(msg) -> None:
        got.append(msg.data)
        await msg.respond(b"ok")

    await peer.nc.subscribe(subject, cb=_cb)
    await peer.nc.flush()


async def test_forged_actor_request_refused_unless_from_the_gateway(peers) -> None:
    """Only the gateway may publish to a user-facing request subject, so an actor claiming
    platform_admin from any other identity never reaches the registry."""
    got: list[bytes] = []
    await _responder(peers[bp.REGISTRY], subjects.Registry.WORKSPACE_LIST, got)
    forged = registry_pb2.ListWorkspacesRequest(actor=common_pb2.Actor(username="mallory", platform_admin=True))
    for name in (bp.REGISTRY, bp.AUDIT, bp.BUILDER, bp.RUNNER):
        with pytest.raises(REFUSED):
            await peers[name].nc.request(subjects.Registry.WORKSPACE_LIST, forged.SerializeToString(), timeout=0.5)
        assert await peers[name].violations("publish", subjects.Registry.WORKSPACE_LIST), peers[name].errors
    assert got == []
    reply = await peers[bp.GATEWAY].nc.request(subjects.Registry.WORKSPACE_LIST, b"x", timeout=2)
    assert reply.data == b"ok" and got == [b"x"]


async def test_internal_subjects_only_from_their_caller(peers) -> None:
    got: list[bytes] = []
    subject = subjects.Registry.VERSION_RECORD_IMAGE
    await _responder(peers[bp.REGISTRY], subject, got)
    with pytest.raises(REFUSED):
        await peers[bp.GATEWAY].nc.request(subject, b"from-gateway", timeout=0.5)
    assert await peers[bp.GATEWAY].violations("publish", subject)
    assert (await peers[bp.BUILDER].nc.request(subject, b"b", timeout=2)).data == b"ok"
    assert got == [b"b"]


async def test_credential_subject_readable_only_by_the_runner(peers) -> None:
    """A cloud secret on runner.credential.put reaches the runner and no other identity, whatever it
    subscribes to (the subject itself, a wildcard, every inbox)."""
    seen: dict[str, list[bytes]] = {}
    for name in (bp.GATEWAY, bp.REGISTRY, bp.AUDIT, bp.BUILDER):
        seen[name] = []
        for pattern in (subjects.Runner.CREDENTIAL_PUT, "runner.>", ">", "_INBOX_runner.>", "_INBOX_gateway.>"):
            if pattern == f"_INBOX_{name}.>":
                continue

            async def _cb(msg, name=name) -> None:
                seen[name].append(msg.data)

            await peers[name].nc.subscribe(pattern, cb=_cb)
            assert await peers[name].violations("subscription", pattern), (name, pattern, peers[name].errors)
    got: list[bytes] = []
    await _responder(peers[bp.RUNNER], subjects.Runner.CREDENTIAL_PUT, got)
    # Once in the full suite (load ~15) the request found no responder right after the runner's flushed SUB;
    # a few tries with a pause, then the same assertions: the secret reached the runner, once, and nobody else.
    for attempt in range(10):
        try:
            reply = await peers[bp.GATEWAY].nc.request(subjects.Runner.CREDENTIAL_PUT, b"canary-secret", timeout=2)
            break
        except NoRespondersError:
            if attempt == 9:
                raise
            await asyncio.sleep(0.5)
    assert reply.data == b"ok" and got == [b"canary-secret"]
    await asyncio.sleep(0.2)
    assert all(msgs == [] for msgs in seen.values()), seen


async def test_services_cannot_read_streams_they_do_not_consume(peers, bus) -> None:
    server, creds = bus
    nc = await connect(server.url, "bootstrap", user=bp.BUILDER, password=creds[bp.BUILDER])
    await ensure_streams(nc.jetstream())
    await nc.jetstream().publish("logs.build.x", b"log line")
    await nc.close()
    # the registry may not fetch a stored message of any stream nor consume the job queue
    for subject in (f"$JS.API.STREAM.MSG.GET.{Stream.LOGS}", f"$JS.API.CONSUMER.CREATE.{Stream.JOBS}",
                    f"$JS.API.STREAM.DELETE.{Stream.EVENTS}"):
        with pytest.raises(REFUSED):
            await peers[bp.REGISTRY].nc.request(subject, b"{}", timeout=0.5)
        assert await peers[bp.REGISTRY].violations("publish", subject)
    # nor may it publish a build job or a log line as if it were the builder
    for subject in (JobSubject.BUILD.value, "logs.build.x", "logs.run.x"):
        await peers[bp.REGISTRY].nc.publish(subject, b"forged")
        assert await peers[bp.REGISTRY].violations("publish", subject)


async def test_each_service_can_do_its_own_work(peers, bus) -> None:
    """The allow lists are not too narrow: every JetStream path a service uses works as that service."""
    server, creds = bus
    clients = {name: await connect(server.url, name, user=name, password=creds[name]) for name in bp.SERVICES}
    try:
        for name in bp.SERVICES:
            if name != bp.GATEWAY:
                await ensure_streams(clients[name].jetstream())
        for name, job in ((bp.BUILDER, JobSubject.BUILD), (bp.RUNNER, JobSubject.RUN)):
            js = clients[name].jetstream()
            await js.publish(job.value, b"job", stream=Stream.JOBS.value)
            await ensure_consumer(js, Stream.JOBS, name, job.value)
            sub = await js.pull_subscribe(job.value, durable=name, stream=Stream.JOBS.value)
            msgs = await sub.fetch(1, timeout=5)
            assert msgs[0].data == b"job"
            await msgs[0].ack()
        js = clients[bp.AUDIT].jetstream()
        await clients[bp.REGISTRY].jetstream().publish("events.ws.created", b"ev", stream=Stream.EVENTS.value)
        await ensure_consumer(js, Stream.EVENTS, "audit", "events.>")
        sub = await js.pull_subscribe_bind(durable="audit", stream=Stream.EVENTS.value)
        assert (await sub.fetch(1, timeout=5))[0].data == b"ev"
        # the gateway follows a log with an ordered consumer
        await clients[bp.RUNNER].jetstream().publish("logs.run.r1", b"line")
        follow = await clients[bp.GATEWAY].jetstream().subscribe("logs.run.r1", ordered_consumer=True)
        assert (await follow.next_msg(timeout=5)).data == b"line"
        await follow.unsubscribe()
    finally:
        for nc in clients.values():
            await nc.close()
