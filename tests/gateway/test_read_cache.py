"""The gateway's read cache (core/readcache.py) against the real registry on a nats-server that enforces the
bus permissions (the registry may publish ``registry.changed``, the gateway may subscribe to it): a repeated
read skips the registry; a change made through this gateway is seen at once, one made elsewhere (a second
gateway replica, the builder recording an image, a member removed) once the registry's notice has arrived;
a read that started before a change does not store its reply; nothing is cached while the notices may be
missed; 0 turns it off."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.micro import add_service
from reprolab.v1 import registry_pb2
from reprolab_common.nats import call, connect_options, endpoint
from reprolab_common.natsserver import NatsServer, bus_credentials, stop_child
from reprolab_common.settings import CommonSettings
from reprolab_common.subjects import REGISTRY_CHANGED, Registry
from reprolab_gateway.core.config import GatewaySettings
from reprolab_gateway.core.readcache import ReadCache

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}
CACHED = (Registry.WORKSPACE_GET, Registry.ENV_LIST, Registry.ENV_GET, Registry.VERSION_LIST, Registry.VERSION_GET)
LONG = 60.0  # the cache's time limit in these tests: anything they see change, a notice changed


# tests/gateway/conftest.py's Gateway: conftest is not importable under --import-mode=importlib, so its
# ``run_gateway`` fixture starts the apps here and this name only documents what the helpers take
Gateway = Any


def gateway_settings(root: Path, nats_url: str, nats: dict[str, str] | None = None, **overrides) -> GatewaySettings:
    common = CommonSettings(
        nats_url=nats_url,
        data_dir=str(root / "data"),
        **{k.removeprefix("REPROLAB_").lower(): v for k, v in (nats or {}).items()},
    )
    options = {"bootstrap_token_file": root / "admin-token", "nats_connect_wait_seconds": 5} | overrides
    return GatewaySettings(common=common, **options)


@dataclass
class Bus:
    server: NatsServer
    creds: dict[str, str]
    root: Path

    async def client(self, identity: str) -> Client:
        return await nats.connect(self.server.url, **connect_options(identity, self.creds[identity]))

    def env(self, identity: str) -> dict[str, str]:
        return {"REPROLAB_NATS_USER": identity, "REPROLAB_NATS_PASSWORD": self.creds[identity]}


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    root = tmp_path_factory.mktemp("read-cache")
    creds = bus_credentials(root / "creds.json")
    server = NatsServer(root / "js", log_file=root / "nats.log", credentials=creds).start()
    yield Bus(server, creds, root)
    server.stop()


def spawn_registry(bus: Bus, log: Path) -> subprocess.Popen:
    """The real registry service (SQLite in the gateways' data directory, as ``reprolab up`` runs it)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REPROLAB_")}
    env = (
        inherited
        | bus.env("registry")
        | {"REPROLAB_NATS_URL": bus.server.url, "REPROLAB_DATA_DIR": str(bus.root / "data")}
    )
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "reprolab_registry"], env=env, stdout=out, stderr=out)


@pytest.fixture(scope="module")
async def registry(bus: Bus) -> AsyncIterator[None]:
    log = bus.root / "registry.log"
    proc = spawn_registry(bus, log)
    nc = await bus.client("operator")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                await nc.request("$SRV.PING.registry", b"", timeout=0.25)
                break
            except Exception:
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
        yield
    finally:
        await nc.close()
        stop_child(proc)


def settings_for(bus: Bus, **overrides) -> GatewaySettings:
    """A gateway replica: every one shares the data directory (its database) and the admin token."""
    return gateway_settings(bus.root, bus.server.url, bus.env("gateway"), **overrides)


@pytest.fixture
async def replicas(bus: Bus, registry: None, run_gateway) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateway processes' apps over one database (replicas), each with its own cache."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(run_gateway(settings_for(bus, read_cache_seconds=LONG)))
        b = await stack.enter_async_context(run_gateway(settings_for(bus, read_cache_seconds=LONG)))
        yield a, b


class RegistryCalls:
    """Counts the read requests the registry receives (a plain subscriber gets a copy of each)."""

    def __init__(self) -> None:
        self.count = 0

    async def start(self, nc: Client) -> RegistryCalls:
        for subject in CACHED:
            await nc.subscribe(subject.value, cb=self._seen)
        await nc.flush()
        return self

    async def _seen(self, _msg) -> None:
        self.count += 1

    async def settled(self, nc: Client) -> int:
        """The count once every request sent so far has reached this subscriber's callback."""
        await nc.flush()
        await asyncio.sleep(0.05)
        return self.count


@pytest.fixture
async def operator(bus: Bus) -> AsyncIterator[Client]:
    nc = await bus.client("operator")
    yield nc
    await nc.close()


async def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response


async def new_workspace(gw: Gateway) -> str:
    ws = f"rc-{uuid.uuid4().hex[:8]}"
    await ok(
        await gw.client.post("/api/v1/workspaces", json={"slug": ws, "title": "read cache"}, headers=gw.auth()), 201
    )
    await ok(
        await gw.client.post(
            f"/api/v1/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC}, headers=gw.auth()
        ),
        201,
    )
    return ws


async def new_user(gw: Gateway) -> tuple[str, str]:
    name = f"u{uuid.uuid4().hex[:8]}"
    r = await ok(await gw.client.post("/api/v1/users", json={"username": name}, headers=gw.auth()), 201)
    return name, r.json()["token"]


async def live(gw: Gateway) -> ReadCache:
    """The gateway's cache once its subscription to the notices is confirmed (the first read starts it)."""
    cache = gw.app.state.nats.read_cache
    assert cache is not None
    deadline = time.monotonic() + 5
    while not cache.live:
        cache.begin()
        assert time.monotonic() < deadline, "the read cache never went live"
        await asyncio.sleep(0.01)
    return cache


async def dropped(cache: ReadCache, ws: str) -> None:
    """Wait for the registry's notice about ``ws`` to have emptied the cache of it."""
    deadline = time.monotonic() + 5
    while ws in cache._by_workspace:
        assert time.monotonic() < deadline, f"no notice about {ws} arrived"
        await asyncio.sleep(0.005)


async def test_repeated_reads_skip_the_registry_and_answer_the_same_bytes(replicas, operator) -> None:
    a, _ = replicas
    ws = await new_workspace(a)
    await live(a)
    calls = await RegistryCalls().start(operator)
    paths = [
        f"/api/v1/workspaces/{ws}",
        f"/api/v1/workspaces/{ws}/environments",
        f"/api/v1/workspaces/{ws}/environments?archived=true",
        f"/api/v1/workspaces/{ws}/environments/py",
        f"/api/v1/workspaces/{ws}/environments/py/versions",
        f"/api/v1/workspaces/{ws}/environments/py/versions/1",
    ]
    first = [await ok(await a.client.get(p, headers=a.auth())) for p in paths]
    asked = await calls.settled(operator)
    assert asked == len(paths)
    again = [await ok(await a.client.get(p, headers=a.auth())) for p in paths]
    assert await calls.settled(operator) == asked  # all from the cache
    for one, two in zip(first, again, strict=True):
        assert one.content == two.content
        assert one.headers.items() == two.headers.items()
    # errors are never kept: an unknown environment asks the registry each time
    for _ in range(2):
        r = await a.client.get(f"/api/v1/workspaces/{ws}/environments/nope", headers=a.auth())
        assert r.status_code == 404
    assert await calls.settled(operator) == asked + 2


async def test_a_write_through_this_gateway_is_read_back_at_once(replicas) -> None:
    a, _ = replicas
    ws = await new_workspace(a)
    await live(a)
    versions = f"/api/v1/workspaces/{ws}/environments/py/versions"
    assert len((await ok(await a.client.get(versions, headers=a.auth()))).json()["items"]) == 1
    await ok(await a.client.post(versions, json={"spec": SPEC, "note": "two"}, headers=a.auth()), 201)
    # no waiting for the notice: the write dropped the workspace before its response
    assert len((await ok(await a.client.get(versions, headers=a.auth()))).json()["items"]) == 2
    env = (await ok(await a.client.get(f"/api/v1/workspaces/{ws}/environments/py", headers=a.auth()))).json()
    assert env["latest_version"] == 2


async def test_a_change_through_another_replica_is_seen_once_its_notice_arrives(replicas) -> None:
    a, b = replicas
    ws = await new_workspace(a)
    cache = await live(a)
    envs = f"/api/v1/workspaces/{ws}/environments"
    assert [e["name"] for e in (await ok(await a.client.get(envs, headers=a.auth()))).json()["items"]] == ["py"]
    assert ws in cache._by_workspace
    await ok(await b.client.post(envs, json={"name": "r", "spec": SPEC}, headers=b.auth()), 201)
    await dropped(cache, ws)
    names = [e["name"] for e in (await ok(await a.client.get(envs, headers=a.auth()))).json()["items"]]
    assert names == ["py", "r"]


async def test_an_image_recorded_by_the_builder_is_seen_once_its_notice_arrives(replicas, bus: Bus) -> None:
    a, _ = replicas
    ws = await new_workspace(a)
    cache = await live(a)
    env = f"/api/v1/workspaces/{ws}/environments/py"
    assert (await ok(await a.client.get(env, headers=a.auth()))).json()["latest"]["image_digest"] is None
    version = f"{env}/versions/1"
    assert (await ok(await a.client.get(version, headers=a.auth()))).json()["image_digest"] is None
    builder = await bus.client("builder")
    try:
        digest = "sha256:" + "ab" * 32
        await call(
            builder,
            Registry.VERSION_RECORD_IMAGE,
            registry_pb2.RecordImageRequest(
                workspace=ws,
                environment="py",
                number=1,
                lock_digest="sha256:" + "cd" * 32,
                image_ref=f"registry.test/{ws}/py:v1",
                image_digest=digest,
            ),
            registry_pb2.Version,
        )
    finally:
        await builder.close()
    await dropped(cache, ws)
    assert (await ok(await a.client.get(env, headers=a.auth()))).json()["latest"]["image_digest"] == digest
    assert (await ok(await a.client.get(version, headers=a.auth()))).json()["image_digest"] == digest


async def test_a_removed_member_is_refused_at_once(replicas) -> None:
    a, b = replicas
    ws = await new_workspace(a)
    cache = await live(a)
    name, token = await new_user(a)
    members = f"/api/v1/workspaces/{ws}/members"
    for gw in (a, b):  # removed through this gateway, then through the other replica
        await ok(await gw.client.post(members, json={"username": name, "role": "student"}, headers=gw.auth()), 201)
        if gw is b:
            await dropped(cache, ws)
        for path in (f"/api/v1/workspaces/{ws}", f"/api/v1/workspaces/{ws}/environments"):
            await ok(await a.client.get(path, headers=a.auth(token)))
            await ok(await a.client.get(path, headers=a.auth(token)))  # now cached
        await ok(await gw.client.delete(f"{members}/{name}", headers=gw.auth()), 204)
        if gw is b:
            await dropped(cache, ws)
        for path in (f"/api/v1/workspaces/{ws}", f"/api/v1/workspaces/{ws}/environments"):
            r = await a.client.get(path, headers=a.auth(token))
            assert r.status_code == 404, r.text


async def test_a_revoked_token_is_refused_before_the_cache(replicas) -> None:
    a, _ = replicas
    ws = await new_workspace(a)
    await live(a)
    r = await ok(await a.client.post("/api/v1/me/tokens", json={"name": "short"}, headers=a.auth()), 201)
    token, token_id = r.json()["token"], r.json()["id"]
    await ok(await a.client.get(f"/api/v1/workspaces/{ws}", headers=a.auth(token)))
    await ok(await a.client.delete(f"/api/v1/me/tokens/{token_id}", headers=a.auth()), 204)
    assert (await a.client.get(f"/api/v1/workspaces/{ws}", headers=a.auth(token))).status_code == 401


async def test_zero_turns_the_cache_off(bus: Bus, registry: None, operator, run_gateway) -> None:
    async with run_gateway(settings_for(bus, read_cache_seconds=0)) as gw:
        assert gw.app.state.nats.read_cache is None
        ws = await new_workspace(gw)
        calls = await RegistryCalls().start(operator)
        for _ in range(3):
            await ok(await gw.client.get(f"/api/v1/workspaces/{ws}/environments", headers=gw.auth()))
        assert await calls.settled(operator) == 3


# --- the cache's own rules, on a stand-in registry whose reads the test holds up ------------------------


class SlowRegistry:
    """Answers workspace reads when the test lets it (``gate``); counts them."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.title = "first"
        self.count = 0
        self.started = asyncio.Event()

    async def start(self, nc: Client) -> SlowRegistry:
        service = await add_service(nc, name="read-cache-test-registry", version="0.0.1")
        await service.add_endpoint(
            name="env-create",
            subject=Registry.ENV_CREATE.value,
            handler=endpoint(registry_pb2.CreateEnvironmentRequest, self._create),
        )
        await service.add_endpoint(
            name="workspace-get",
            subject=Registry.WORKSPACE_GET.value,
            handler=endpoint(registry_pb2.GetWorkspaceRequest, self._get),
        )
        return self

    async def _create(self, req: registry_pb2.CreateEnvironmentRequest) -> registry_pb2.Environment:
        """A change this stand-in never announces: only the gateway's own drop can make it visible."""
        self.title = f"with {req.name}"
        return registry_pb2.Environment(workspace=req.workspace, name=req.name, kind="workspace", latest_version=1)

    async def _get(self, req: registry_pb2.GetWorkspaceRequest) -> registry_pb2.Workspace:
        self.count += 1
        title = self.title
        self.started.set()
        await self.gate.wait()
        return registry_pb2.Workspace(slug=req.workspace, title=title, caller_role=1, caller_is_member=True)


@pytest.fixture
async def own_bus(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A private nats-server without permissions (the test publishes notices itself), restartable."""
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


async def test_a_read_started_before_a_change_does_not_store_its_reply(
    own_bus: NatsServer, tmp_path: Path, run_gateway
) -> None:
    nc = await nats.connect(own_bus.url)
    fake = await SlowRegistry().start(nc)
    try:
        async with run_gateway(gateway_settings(tmp_path, own_bus.url, read_cache_seconds=LONG)) as gw:
            cache = gw.app.state.nats.read_cache
            path = "/api/v1/workspaces/cs1"
            await ok(await gw.client.get(path, headers=gw.auth()))  # starts the subscription
            await live(gw)
            fake.gate.clear()
            fake.started.clear()
            slow = asyncio.create_task(gw.client.get(path, headers=gw.auth()))
            await fake.started.wait()  # the registry read the old title...
            fake.title = "second"  # ...then the workspace changed and the registry said so
            await nc.publish(REGISTRY_CHANGED, b"cs1")
            await nc.flush()
            deadline = time.monotonic() + 5
            while cache._dropped.get("cs1") is None:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            fake.gate.set()
            assert (await ok(await slow)).json()["title"] == "first"  # answered as read, not stored
            assert len(cache) == 0
            count = fake.count
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "second"
            assert fake.count == count + 1
            # the reply of a read that started after the change is kept
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "second"
            assert fake.count == count + 1
    finally:
        await nc.close()


async def test_nothing_is_cached_while_the_notices_may_be_missed(
    own_bus: NatsServer, tmp_path: Path, run_gateway
) -> None:
    nc = await nats.connect(own_bus.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    fake = await SlowRegistry().start(nc)
    try:
        async with run_gateway(gateway_settings(tmp_path, own_bus.url, read_cache_seconds=LONG)) as gw:
            cache = gw.app.state.nats.read_cache
            path = "/api/v1/workspaces/cs1"
            await ok(await gw.client.get(path, headers=gw.auth()))
            await live(gw)
            await ok(await gw.client.get(path, headers=gw.auth()))
            assert len(cache) == 1
            own_bus.stop()  # NATS goes away: notices would be lost
            deadline = time.monotonic() + 5
            while gw.app.state.nats.connected:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            assert not cache.live and cache.begin() is None
            # not served from the cache: the same 503 as without it
            assert (await gw.client.get(path, headers=gw.auth())).status_code == 503
            fake.title = "changed while away"  # a change whose notice nobody received
            own_bus.start()
            deadline = time.monotonic() + 10
            while not (gw.app.state.nats.connected and nc.is_connected):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # the stand-in registry's endpoint is subscribed again
            # reconnected: the cache starts empty and serves nothing before its subscription is confirmed
            assert not cache.live and len(cache) == 0
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "changed while away"
            await live(gw)
            count = fake.count
            await ok(await gw.client.get(path, headers=gw.auth()))
            await ok(await gw.client.get(path, headers=gw.auth()))
            assert fake.count == count + 1  # cached again
    finally:
        await nc.close()


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    class Link:
        connected = False

    cache = ReadCache(Link(), 60, max_entries=3)  # type: ignore[arg-type]
    cache._nc = type("Nc", (), {"is_connected": True, "stats": {"reconnects": 0}})()  # a live stand-in
    cache._reconnects = 0
    reply = registry_pb2.Workspace(slug="x", title="t" * 10)
    since = cache.begin()
    assert since is not None
    for key in ("a", "b", "c"):
        cache.put(key, "ws-" + key, reply, since)
    assert cache.get("a") is reply  # a is now the most recently used
    cache.put("d", "ws-d", reply, since)
    assert [k for k in ("a", "b", "c", "d") if cache.get(k) is not None] == ["a", "c", "d"]
    cache.drop("ws-c")
    assert cache.get("c") is None and len(cache) == 2
    cache.put("c", "ws-c", reply, since)  # began before ws-c was dropped: not kept
    assert cache.get("c") is None
    assert json.dumps(sorted(cache._by_workspace)) == '["ws-a", "ws-d"]'


async def test_a_write_through_this_gateway_drops_its_workspace_before_responding(
    own_bus: NatsServer, tmp_path: Path, run_gateway
) -> None:
    nc = await nats.connect(own_bus.url)
    fake = await SlowRegistry().start(nc)  # publishes no notices
    try:
        async with run_gateway(gateway_settings(tmp_path, own_bus.url, read_cache_seconds=LONG)) as gw:
            path = "/api/v1/workspaces/cs1"
            await ok(await gw.client.get(path, headers=gw.auth()))
            await live(gw)
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "first"
            count = fake.count
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "first"
            assert fake.count == count  # cached
            body = {"name": "py", "spec": SPEC}
            await ok(await gw.client.post(f"{path}/environments", json=body, headers=gw.auth()), 201)
            assert (await ok(await gw.client.get(path, headers=gw.auth()))).json()["title"] == "with py"
    finally:
        await nc.close()
