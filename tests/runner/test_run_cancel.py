"""A cancelled run stays cancelled: cancelled while queued, while its container is starting and while it
runs, its final state is ``cancelled`` with exactly one terminal event, even when the worker goes on to
start the container or the container then ends by itself and the worker reports it.

Real parts: the runner's worker and API, NATS JetStream (the worker's own fetch loop), SQLite migrated as
in production, the local object store and the local target on podman (real containers). The only hook is
a gate in the target's submit, so the test can cancel at the moment the container is being started.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import threading
import uuid
from pathlib import Path
from typing import Any

import docker
import nats
import pytest
from reprolab.v1 import common_pb2, events_pb2, runner_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.nats import ensure_streams
from reprolab_common.objectstore import LocalObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_runner import targets as _targets  # noqa: F401  (registers the targets)
from reprolab_runner.api import Api
from reprolab_runner.config import RunnerSettings
from reprolab_runner.models import MIGRATIONS, TERMINAL, OutboxEvent, Run
from reprolab_runner.targets.base import LABEL
from reprolab_runner.targets.local import LocalTarget
from reprolab_runner.worker import Worker
from sqlalchemy import select

ACTOR = common_pb2.Actor(user_id="u-ada", username="ada")
WS = "cancels"
TERMINAL_EVENTS = {f"run.{s}" for s in TERMINAL}


def _code() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("main.py")
        info.size = 0
        tf.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


CODE = _code()


class GatedLocalTarget(LocalTarget):
    """The real local target; its submit first waits for the test's gate (when one is set)."""

    gate: threading.Event | None = None
    entered: threading.Event | None = None

    def submit(self, request: Any) -> str:
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return super().submit(request)


class GatedWorker(Worker):
    gated: GatedLocalTarget | None = None

    def target(self, name: str, run: Run | None = None) -> Any:
        if self.gated is None:
            self.gated = GatedLocalTarget(self.settings, docker_url=self.settings.docker_url, store=self.store,
                                          installation=self.settings.installation_id())
        return self.gated


@pytest.fixture
async def runner(nats_server, podman_socket: str, base_image: str, tmp_path: Path):
    common = CommonSettings(data_dir=tmp_path / "data", nats_url=nats_server.url)
    settings = RunnerSettings(common=common, enabled_targets=["local"], poll_seconds=0.2, docker_url=podman_socket,
                              durable=f"runner-{uuid.uuid4().hex[:8]}", installation=f"t{uuid.uuid4().hex[:8]}")
    engine = make_engine(common, "runner")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes(f"code/{WS}/c.tar.gz", CODE)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    worker = GatedWorker(settings=settings, sessions=sessions, js=js, store=store, wake_outbox=lambda: None, nc=nc)
    api = Api(settings=settings, sessions=sessions, enqueue=worker.enqueue, wake_outbox=lambda: None)
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []

    def start() -> None:
        tasks.append(asyncio.create_task(worker.run(stop)))

    yield api, worker, sessions, start
    stop.set()
    if worker.gated is not None and worker.gated.gate is not None:
        worker.gated.gate.set()
    for task in tasks:
        await asyncio.wait_for(task, 10)
    await asyncio.gather(*worker.tasks, return_exceptions=True)
    await js.delete_consumer("JOBS", settings.durable)
    await nc.close()
    engine.dispose()


async def submit(api: Api, command: list[str]) -> str:
    run = await api.submit(runner_pb2.SubmitRunRequest(
        actor=ACTOR, workspace=WS, environment="py", version=1, image="localhost/reprolab/bookworm-python:latest",
        code_digest="sha256:" + hashlib.sha256(CODE).hexdigest(), code_object_key=f"code/{WS}/c.tar.gz",
        command=command, target="local", resources=runner_pb2.RunResources(timeout_seconds=120)))
    return run.id


def events(sessions: Any, run_id: str) -> list[str]:
    """The run's events in the order they were written (the outbox, as the activity list gets them)."""
    rows = in_transaction(sessions, lambda s: [bytes(e.payload) for e in s.scalars(
        select(OutboxEvent).order_by(OutboxEvent.seq))])
    parsed = [events_pb2.Event.FromString(p) for p in rows]
    return [e.type for e in parsed if e.subject == f"runs/{run_id}"]


def row(sessions: Any, run_id: str) -> Run:
    return in_transaction(sessions, lambda s: s.get(Run, run_id))


async def until(check, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.1)


def containers(podman_socket: str, run_id: str) -> list[Any]:
    return docker.DockerClient(base_url=podman_socket).containers.list(all=True, filters={"label": f"{LABEL}={run_id}"})


async def settled(worker: Worker, sessions: Any, podman_socket: str, run_id: str) -> Run:
    """The run once the worker is done with it (no container left, no job in hand) and a little after."""
    await until(lambda: not containers(podman_socket, run_id) and run_id not in worker._driving)
    await asyncio.sleep(1.0)  # a late write would land now
    return row(sessions, run_id)


def assert_cancelled_once(sessions: Any, run: Run) -> None:
    assert run.status == "cancelled", (run.status, run.error)
    seen = events(sessions, run.id)
    assert [e for e in seen if e in TERMINAL_EVENTS] == ["run.cancelled"], seen


async def test_cancelled_while_queued(runner, podman_socket: str) -> None:
    api, worker, sessions, start = runner
    run_id = await submit(api, ["sleep", "30"])
    reply = await api.cancel(runner_pb2.CancelRunRequest(actor=ACTOR, run_id=run_id))
    assert reply.status == runner_pb2.RUN_STATUS_CANCELLED
    start()  # the worker finds the job after the cancel
    await asyncio.sleep(2.0)
    run = await settled(worker, sessions, podman_socket, run_id)
    assert_cancelled_once(sessions, run)
    assert "run.started" not in events(sessions, run_id)


@pytest.mark.parametrize("command", [["true"], ["sh", "-c", "exit 3"]])
async def test_cancelled_while_its_container_starts(runner, podman_socket: str, command: list[str]) -> None:
    """The worker has taken the job and is starting the container when the cancel arrives; the container
    then starts and ends by itself (succeeded or failed): the run stays cancelled, one terminal event."""
    api, worker, sessions, start = runner
    worker.gated = GatedLocalTarget(worker.settings, docker_url=podman_socket, store=worker.store,
                                    installation=worker.settings.installation_id())
    worker.gated.gate, worker.gated.entered = threading.Event(), threading.Event()
    start()
    run_id = await submit(api, command)
    await until(worker.gated.entered.is_set)
    await api.cancel(runner_pb2.CancelRunRequest(actor=ACTOR, run_id=run_id))
    assert row(sessions, run_id).status == "cancelled"
    worker.gated.gate.set()
    run = await settled(worker, sessions, podman_socket, run_id)
    assert_cancelled_once(sessions, run)


async def test_cancelled_while_it_runs(runner, podman_socket: str) -> None:
    """Cancelled while it runs, the container ends with code 0 on the stop signal (it traps TERM): the
    worker's report of that exit does not replace the cancellation."""
    api, worker, sessions, start = runner
    start()
    run_id = await submit(api, ["sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait"])
    await until(lambda: row(sessions, run_id).status == "running")
    reply = await api.cancel(runner_pb2.CancelRunRequest(actor=ACTOR, run_id=run_id))
    assert reply.status == runner_pb2.RUN_STATUS_CANCELLED
    run = await settled(worker, sessions, podman_socket, run_id)
    assert_cancelled_once(sessions, run)
    assert json.loads(run.provenance_json or "{}").get("run") in (None, run_id)


async def test_cancelled_then_deleted_while_its_container_stops(runner, podman_socket: str, tmp_path: Path) -> None:
    """A cancelled run has ended, so it may be deleted at once, before the worker has stopped its container:
    the worker then stops and removes it, records nothing and keeps none of its outputs."""
    api, worker, sessions, start = runner
    start()
    run_id = await submit(api, ["sh", "-c", "echo partial > /outputs/p.txt; trap 'exit 0' TERM; sleep 30 & wait"])
    await until(lambda: row(sessions, run_id).status == "running")
    await asyncio.sleep(0.5)
    await api.cancel(runner_pb2.CancelRunRequest(actor=ACTOR, run_id=run_id))
    await api.delete(runner_pb2.GetRunRequest(actor=ACTOR, run_id=run_id))
    await until(lambda: not containers(podman_socket, run_id) and run_id not in worker._driving)
    await asyncio.sleep(1.0)
    assert row(sessions, run_id) is None
    assert not list((tmp_path / "objects").glob(f"runs/{run_id}/**/*.txt")), "no outputs kept for no one"
    assert [e for e in events(sessions, run_id) if e in TERMINAL_EVENTS] == ["run.cancelled"]
