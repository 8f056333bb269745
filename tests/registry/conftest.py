"""Registry fixtures: the real service as a subprocess on the session's private nats-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from reprolab.v1 import common_pb2
from reprolab_common.natsserver import NatsServer

from ._support import RegistryProcess, User


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
async def registry(
    nats_server: NatsServer, database_env: dict[str, str], tmp_path: Path, nc: Client
) -> AsyncIterator[RegistryProcess]:
    proc = RegistryProcess(
        {**database_env, "REPROLAB_NATS_URL": nats_server.url}, tmp_path / "registry.log"
    ).start()
    try:
        await proc.wait_ready(nc)
        yield proc
    finally:
        rc = proc.stop()
    assert rc == 0, f"registry did not stop cleanly (rc={rc}):\n{proc.log.read_text()}"


@pytest.fixture
def ws() -> str:
    """A workspace slug unique to the test (the nats-server and its EVENTS stream are session-wide)."""
    return f"ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def users(nc: Client) -> dict[str, User]:
    def user(name: str, admin: bool = False) -> User:
        return User(nc, common_pb2.Actor(user_id=f"id-{name}", username=name, platform_admin=admin))

    return {name: user(name) for name in ("alice", "bob", "carol", "dave", "erin")} | {
        "root": user("root", True)
    }
