"""The ``runner.model.*`` handlers over real PostgreSQL/SQLite, a real object store directory and real
podman: a finished run's output deployed in the run's image, served, a second version, rollback, stop;
bad deploys are 4xx problems; nothing is left running."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import random
import subprocess
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from reprolab.v1 import common_pb2, events_pb2, serving_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory, utcnow
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.objectstore import make_object_store
from reprolab_common.settings import CommonSettings
from reprolab_runner.deploy import service
from reprolab_runner.deploy.api import ModelApi
from reprolab_runner.deploy.deployer import Deployer
from reprolab_runner.deploy.engine import LocalServing
from reprolab_runner.deploy.models import DeployedModel
from reprolab_runner.deploy.monitoring import Monitor
from reprolab_runner.deploy.traffic import TrafficLog
from reprolab_runner.models import MIGRATIONS, OutboxEvent, Output, Run
from sqlalchemy import select

BOB = common_pb2.Actor(user_id="u-bob", username="bob")
SCORE = textwrap.dedent("""
    def init():
        pass

    def run(inputs):
        return ["virginica" if row[2] > THRESHOLD else "setosa" for row in inputs["input-0"]]

    THRESHOLD = 2.5
""")


@pytest.fixture
def world(database_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, podman_socket: str,
          base_image: str) -> Iterator[SimpleNamespace]:
    for key, value in database_env.items():
        monkeypatch.setenv(key, value)
    common = CommonSettings()
    engine = make_engine(common, "runner")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    store = make_object_store(common)
    installation = f"t-{uuid.uuid4().hex[:8]}"
    settings = SimpleNamespace(common=common, docker_url=podman_socket, installation_id=lambda: installation,
                               model_min_accuracy=0.8, model_monitor_seconds=300,
                               model_webhook_allow_private=True)
    target = LocalServing(settings, installation=installation)
    deployer = Deployer(settings=settings, sessions=sessions, store=store, wake_outbox=lambda: None, target=target)
    monitor = Monitor(settings=settings, sessions=sessions, store=store, wake_outbox=lambda: None)
    api = ModelApi(settings=settings, sessions=sessions, deployer=deployer, wake_outbox=lambda: None,
                   monitoring=monitor)
    digest = subprocess.run(["podman", "image", "inspect", base_image, "--format", "{{.Digest}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    pinned = f"{base_image.rsplit(':', 1)[0]}@{digest}"
    yield SimpleNamespace(api=api, sessions=sessions, store=store, target=target, image=pinned)
    for handle in target.owned().values():
        target.stop(handle)
    assert target.owned() == {}
    engine.dispose()


def add_run(w: SimpleNamespace, score: str, status: str = "succeeded", datasets: str = "[]") -> str:
    run_id = str(uuid.uuid4())
    key = f"runs/{run_id}/outputs/score.py"
    w.store.put_bytes(key, score.encode())
    # the base image, pinned by its digest, stands in for a built environment's image
    image = w.image

    def _add(s):  # noqa: ANN001, ANN202
        s.add(Run(id=run_id, workspace="ws", environment="py", version=1, image=image, code_digest="sha256:x",
                  code_object_key="c", command_json="[]", target="local", cpu_millis=1000, memory_bytes=1 << 30,
                  pids=64, timeout_seconds=60, status=status, requested_by="bob", requested_by_id="u-bob",
                  datasets_json=datasets))
        s.flush()
        s.add(Output(run_id=run_id, name="score.py", size=len(score), sha256=hashlib.sha256(score.encode()).hexdigest(),
                     object_key=key))
    in_transaction(w.sessions, _add)
    return run_id


async def deployed(w: SimpleNamespace, run_id: str) -> serving_pb2.ModelVersion:
    v = await w.api.deploy(serving_pb2.DeployModelRequest(actor=BOB, workspace="ws", name="iris", run_id=run_id,
                                                          artifact="score.py"))
    assert v.state == "deploying"
    await asyncio.gather(*w.api.deployer.tasks)
    got = await w.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=v.version))
    assert got.state == "serving", got.error
    return got


async def predict(w: SimpleNamespace, version: int = 0) -> list[str]:
    route = await w.api.route(serving_pb2.RouteModelRequest(workspace="ws", name="iris", version=version))
    assert route.model.version == (version or route.model.version)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{route.upstream_url}/v2/models/iris/versions/{route.model.version}/infer", json={
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [6.3, 3.3, 6.0, 2.5]}]})
    assert r.status_code == 200, r.text
    return r.json()["outputs"][0]["data"]


async def test_deploy_roll_back_and_stop(world: SimpleNamespace) -> None:
    v1 = await deployed(world, add_run(world, SCORE))
    assert (v1.version, v1.active) == (1, True) and "@sha256:" in v1.image
    assert await predict(world) == ["virginica"]
    v2 = await deployed(world, add_run(world, SCORE.replace("2.5", "100")))
    assert not v2.active and await predict(world) == ["virginica"]  # a new version is not live until activated
    assert await predict(world, version=2) == ["setosa"]  # but it answers at its own versions/2 URL
    await world.api.activate(serving_pb2.ActivateModelRequest(workspace="ws", name="iris", version=2))
    assert await predict(world) == ["setosa"]
    await world.api.activate(serving_pb2.ActivateModelRequest(workspace="ws", name="iris", version=1))  # rollback
    assert await predict(world) == ["virginica"]
    listed = await world.api.list(serving_pb2.ListModelsRequest(workspace="ws", name="iris"))
    assert [(m.version, m.active) for m in listed.items] == [(1, True), (2, False)]
    for version in (1, 2):
        stopped = await world.api.stop(serving_pb2.StopModelRequest(workspace="ws", name="iris", version=version))
        assert stopped.state == "stopped"
    assert world.target.owned() == {}
    with pytest.raises(NotFound):
        await world.api.route(serving_pb2.RouteModelRequest(workspace="ws", name="iris"))


async def test_bad_deploys_are_refused(world: SimpleNamespace) -> None:
    ok = add_run(world, SCORE)
    with pytest.raises(NotFound):
        await world.api.deploy(serving_pb2.DeployModelRequest(workspace="ws", name="iris", run_id="nope",
                                                              artifact="score.py"))
    with pytest.raises(NotFound):  # another workspace's run
        await world.api.deploy(serving_pb2.DeployModelRequest(workspace="other", name="iris", run_id=ok,
                                                              artifact="score.py"))
    with pytest.raises(Invalid, match="no output"):
        await world.api.deploy(serving_pb2.DeployModelRequest(workspace="ws", name="iris", run_id=ok,
                                                              artifact="model.joblib"))
    with pytest.raises(Invalid, match="failed"):
        await world.api.deploy(serving_pb2.DeployModelRequest(workspace="ws", name="iris",
                                                              run_id=add_run(world, SCORE, "failed"),
                                                              artifact="score.py"))


async def test_a_model_that_cannot_load_ends_failed_with_its_output(world: SimpleNamespace) -> None:
    broken = "def init():\n    raise RuntimeError('cannot load me')\n\n\ndef run(inputs):\n    return []\n"
    run_id = add_run(world, broken)
    v = await world.api.deploy(serving_pb2.DeployModelRequest(actor=BOB, workspace="ws", name="iris", run_id=run_id,
                                                              artifact="score.py"))
    await asyncio.gather(*world.api.deployer.tasks)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=v.version))
    assert got.state == "failed" and "cannot load me" in got.error
    assert world.target.owned() == {}


def model_events(w: SimpleNamespace, verb: str) -> list[events_pb2.Event]:
    def _read(db):  # noqa: ANN001, ANN202
        return [events_pb2.Event.FromString(row.payload) for row in db.scalars(select(OutboxEvent))]
    return [e for e in in_transaction(w.sessions, _read) if e.type == f"model.{verb}"]


async def test_the_reconciler_restarts_gone_servers_removes_orphans_and_fails_dead_deploys(
        world: SimpleNamespace) -> None:
    """What the runner does at start and every minute: a server that is gone (removed, or exited as after
    a machine restart) is started again from the artifact copy and answers; a server of a version that is
    no longer served is removed; a deploy its runner never finished is failed, a recent one left alone."""
    deployer = world.api.deployer
    v1 = await deployed(world, add_run(world, SCORE))
    assert await deployer.reconcile_once() == {"restarted": 0, "removed": 0, "failed": 0}  # all is as it should be

    world.target.stop(world.target.owned()["ws/iris/1"])  # removed
    assert await deployer.reconcile_once() == {"restarted": 1, "removed": 0, "failed": 0}
    assert await deployer.reconcile_once() == {"restarted": 0, "removed": 0, "failed": 0}  # under way: not twice
    await asyncio.gather(*deployer.tasks)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=1))
    assert got.state == "serving", got.error
    assert await predict(world) == ["virginica"]

    handle = world.target.owned()["ws/iris/1"]
    await asyncio.to_thread(subprocess.run, ["podman", "stop", "-t", "0", handle], check=True,
                            capture_output=True)  # exited, still there
    assert world.target.alive(handle)[0] is False
    assert (await deployer.reconcile_once())["restarted"] == 1
    await asyncio.gather(*deployer.tasks)
    assert await predict(world) == ["virginica"]
    reasons = [e.model.detail for e in model_events(world, "restarted")]
    assert reasons == ["its server was removed",
                       "the model server was killed (SIGKILL: its memory limit, or a stop from outside)"], reasons

    # the version is stopped but its server was not (a runner died in between): the server goes
    in_transaction(world.sessions, lambda db: service.stopped(
        db, actor=BOB, model_id=service.get(db, "ws", "iris", v1.version).id))
    assert await deployer.reconcile_once() == {"restarted": 0, "removed": 1, "failed": 0}
    assert world.target.owned() == {}

    # deploys no task of this runner is doing: an old one is failed, a recent one is not touched
    run_id = add_run(world, SCORE)

    def _deploying(db, age: float) -> str:  # noqa: ANN001
        m = service.create_version(db, actor=BOB, workspace="ws", name="iris", run_id=run_id, image=world.image,
                                   artifact="score.py", target="local")
        m.state_since = utcnow() - timedelta(seconds=age)
        return m.id
    old = in_transaction(world.sessions, lambda db: _deploying(db, deployer.stale_after() + 5))
    recent = in_transaction(world.sessions, lambda db: _deploying(db, 1))
    assert await deployer.reconcile_once() == {"restarted": 0, "removed": 0, "failed": 1}
    states = in_transaction(world.sessions, lambda db: {
        i: (db.get(DeployedModel, i).state, db.get(DeployedModel, i).error) for i in (old, recent)})
    assert states[old] == ("failed", "the runner stopped before this version was ready; deploy it again")
    assert states[recent] == ("deploying", "")


async def test_a_restart_without_the_artifact_copy_fails_and_says_why(world: SimpleNamespace) -> None:
    v1 = await deployed(world, add_run(world, SCORE))
    path = in_transaction(world.sessions, lambda db: service.get(db, "ws", "iris", v1.version).artifact_path)
    await asyncio.to_thread(Path(path).unlink)
    world.target.stop(world.target.owned()["ws/iris/1"])
    assert (await world.api.deployer.reconcile_once())["restarted"] == 1
    await asyncio.gather(*world.api.deployer.tasks)
    got = await world.api.get(serving_pb2.GetModelRequest(workspace="ws", name="iris", version=1))
    assert got.state == "failed"
    assert got.error == ("its server was removed, and restarting it failed: the copy of its artifact is gone from "
                         "the runner's data directory; deploy it again")
    assert world.target.owned() == {}


class HookServer:
    """A real HTTP server on loopback that records the JSON POSTed to it (a model's alert webhook)."""

    def __init__(self) -> None:
        received, paths = self.received, self.paths = [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_monitoring_compares_traffic_with_the_runs_training_data(world: SimpleNamespace) -> None:
    """The reference is the run's own dataset (a CSV in the object store); tensor traffic has positional
    features, matched to its numeric columns; shifted traffic drifts and raises one alert."""
    rng = random.Random(3)
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [f"{rng.gauss(5.8, .8):.2f},{rng.gauss(3, .4):.2f},{rng.gauss(3.7, 1.7):.2f},{rng.gauss(1.2, .7):.2f},"
              f"{rng.choice(['setosa', 'virginica'])}" for _ in range(150)]
    key = f"datasets/{uuid.uuid4().hex}"
    world.store.put_bytes(key, "\n".join(lines).encode())
    run_id = add_run(world, SCORE, datasets=json.dumps([{"name": "iris-train.csv", "object_key": key,
                                                         "mount": "/data/iris-train.csv", "digest": "sha256:x"}]))
    with pytest.raises(NotFound):
        await world.api.monitor(serving_pb2.ModelMonitorRequest(workspace="ws", name="iris"))
    hook = HookServer()
    in_transaction(world.sessions, lambda s: service.create_version(
        s, actor=BOB, workspace="ws", name="iris", run_id=run_id, image=world.image, artifact="score.py",
        target="local", webhook_url=f"{hook.url}/hooks/s3cr3t-path"))
    listed = await world.api.list(serving_pb2.ListModelsRequest(workspace="ws", name="iris"))
    assert listed.items[0].webhook_url == "http://127.0.0.1/…"  # the path (the hook's secret) is not shown
    traffic = TrafficLog(world.store)
    rows = [{str(j): v for j, v in enumerate([rng.gauss(5.8, .8), rng.gauss(3, .4), rng.gauss(3.7, 1.7),
                                               rng.gauss(1.2, .7)])} for _ in range(60)]
    traffic.record("ws", "iris", 1, "same", rows, ["setosa"] * 60)
    traffic.flush()

    async def report(**kw: object) -> tuple[dict, list]:
        got = await world.api.monitor(serving_pb2.ModelMonitorRequest(workspace="ws", name="iris", **kw))
        return json.loads(got.report_json), [a.kind for a in got.alerts]

    rep, alerts = await report(run_now=True)
    assert rep["reference"] == {"dataset": "iris-train.csv", "rows": 150}
    assert rep["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert rep["windows"][-1]["count"] == 60 and rep["windows"][-1]["drift"]["drifted"] is False and alerts == []
    assert rep["reference_stats"]["sepal_length"]["count"] == 150
    shifted = [{k: v + 3 for k, v in r.items()} for r in rows]
    traffic.record("ws", "iris", 1, "shift", shifted * 3, ["virginica"] * 180)
    traffic.flush()
    stale, _ = await report()  # the stored report of the last pass
    assert stale["windows"][-1]["count"] == 60
    rep, alerts = await report(run_now=True)
    assert rep["windows"][-1]["count"] == 240 and rep["windows"][-1]["drift"]["drifted"] is True
    assert alerts == ["drift"]  # one per window, however many passes see it
    assert [(p["model"], p["kind"]) for p in hook.received] == [("iris", "drift")]  # the webhook heard it once
    assert hook.paths == ["/hooks/s3cr3t-path"] and "petal_length" in hook.received[0]["detail"]
    hook.close()
    day, alerts = await report(window="day", run_now=True)
    assert day["window"] == "day" and alerts == ["drift"]
    with pytest.raises(Invalid, match="hour"):
        await report(window="week")


async def test_a_deploy_beyond_the_workspace_quota_is_refused_and_nothing_is_made(world: SimpleNamespace) -> None:
    from reprolab_runner import quotas

    v1 = await deployed(world, add_run(world, SCORE))
    in_transaction(world.sessions, lambda db: quotas.put_quota(
        db, workspace="ws", max_concurrent_runs=1, max_concurrent_runs_per_user=0, max_storage_bytes=0,
        updated_by="teach"))
    with pytest.raises(quotas.TooBusy) as info:
        await world.api.deploy(serving_pb2.DeployModelRequest(actor=BOB, workspace="ws", name="iris",
                                                              run_id=add_run(world, SCORE), artifact="score.py"))
    assert info.value.status == 429 and "1 model servers" in info.value.detail
    listed = await world.api.list(serving_pb2.ListModelsRequest(workspace="ws", name="iris"))
    assert [m.version for m in listed.items] == [1] and len(world.target.owned()) == 1  # nothing was made
    await world.api.stop(serving_pb2.StopModelRequest(workspace="ws", name="iris", version=v1.version))
    v2 = await deployed(world, add_run(world, SCORE))  # the stopped server freed its place
    assert v2.version == 2
    await world.api.stop(serving_pb2.StopModelRequest(workspace="ws", name="iris", version=2))
