"""Events are never lost: a backlog committed while the service was away ships at start, and the
service keeps answering (and publishing) across a NATS restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
from nats.aio.client import Client
from reprolab.v1 import common_pb2
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.errors import ProblemError
from reprolab_common.nats import ensure_streams
from reprolab_common.natsserver import NatsServer
from reprolab_common.settings import CommonSettings
from reprolab_common.subjects import Registry
from reprolab_registry import service
from reprolab_registry.models import MIGRATIONS, OutboxEvent
from sqlalchemy import func, select

from ._support import RegistryProcess, User, check_events, collect_events, spec_json

ALICE = common_pb2.Actor(user_id="id-alice", username="alice")


def common_settings(env: dict[str, str]) -> CommonSettings:
    return CommonSettings(
        data_dir=Path(env["REPROLAB_DATA_DIR"]),
        database_url=env.get("REPROLAB_DATABASE_URL"),
        database_schema_prefix=env.get("REPROLAB_DATABASE_SCHEMA_PREFIX", ""),
    )


async def test_backlog_committed_while_down_ships_at_start(
    nats_server: NatsServer, database_env: dict[str, str], tmp_path: Path, nc: Client, ws: str
) -> None:
    engine = make_engine(common_settings(database_env), "registry")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        service.create_workspace(session=s, actor=ALICE, slug=ws, title="offline")
    with sessions.begin() as s:
        service.create_environment(
            session=s, actor=ALICE, workspace=ws, name="e", description="", spec_json=spec_json()
        )

    def pending() -> int:
        with sessions() as s:
            return s.scalar(select(func.count()).select_from(OutboxEvent)) or 0

    assert pending() == 4
    await ensure_streams(nc.jetstream())  # this test may run before any service created EVENTS
    assert await collect_events(nc, ws, 0, settle=0.2) == []
    proc = RegistryProcess(
        {**database_env, "REPROLAB_NATS_URL": nats_server.url}, tmp_path / "registry.log"
    ).start()
    try:
        await proc.wait_ready(nc)  # also proves migrating an up-to-date database is a no-op
        check_events(
            await collect_events(nc, ws, 4),
            ["workspace.created", "member.added", "environment.created", "version.created"],
        )
        for _ in range(100):  # rows leave the outbox once JetStream acked them
            if not pending():
                break
            await asyncio.sleep(0.05)
        assert pending() == 0
        env = await User(nc, ALICE)(Registry.ENV_GET, workspace=ws, environment="e")
        assert env.latest.origin == "create"
    finally:
        rc = proc.stop()
        engine.dispose()
    assert rc == 0


async def test_service_survives_a_nats_restart(tmp_path: Path, ws: str) -> None:
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    proc = RegistryProcess(
        {"REPROLAB_DATA_DIR": str(tmp_path / "data"), "REPROLAB_NATS_URL": server.url},
        tmp_path / "registry.log",
    ).start()
    client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    alice = User(client, ALICE)
    try:
        await proc.wait_ready(client)
        await alice(Registry.WORKSPACE_CREATE, slug=ws)
        check_events(await collect_events(client, ws, 2, settle=0.1), ["workspace.created", "member.added"])

        server.restart()
        deadline = time.monotonic() + 20
        while True:  # a read until the registry answers again, so the write below is sent once
            try:
                # short wait: a request sent while this client itself reconnects is lost, not refused
                await alice(Registry.WORKSPACE_GET, workspace=ws, wait=1.0)
                break
            except ProblemError as exc:
                assert exc.status == 503 and time.monotonic() < deadline, exc.detail
                await asyncio.sleep(0.1)
        env = await alice(Registry.ENV_CREATE, workspace=ws, name="after", spec_json=spec_json())
        assert env.latest_version == 1
        check_events(
            await collect_events(client, ws, 4),
            ["workspace.created", "member.added", "environment.created", "version.created"],
        )
    finally:
        rc = proc.stop()
        await client.close()
        server.stop()
    assert rc == 0, proc.log.read_text()
