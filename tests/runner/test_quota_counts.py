"""What a workspace's concurrent quota counts, on the runner's database (SQLite, migrated as in production):
runs not ended, sessions starting or running and model servers deploying or serving; one member's runs and
sessions for the per-member limit. Beyond either, ``quotas.admit`` refuses with 429 and says what to do."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory, utcnow
from reprolab_common.settings import CommonSettings
from reprolab_runner import quotas, service
from reprolab_runner.deploy.models import DeployedModel
from reprolab_runner.models import MIGRATIONS, Status
from reprolab_runner.sessions.models import NotebookSession

ADA = common_pb2.Actor(user_id="u-ada", username="ada")
BOB = common_pb2.Actor(user_id="u-bob", username="bob")
WS = "ml101"


@pytest.fixture
def sessions(tmp_path: Path):
    engine = make_engine(CommonSettings(data_dir=tmp_path), "runner")
    migrate(engine, MIGRATIONS)
    yield session_factory(engine)
    engine.dispose()


def run(db, actor: common_pb2.Actor, workspace: str = WS):
    return service.create_run(session=db, request=runner_pb2.SubmitRunRequest(
        actor=actor, workspace=workspace, environment="py", version=1, image="i@sha256:" + "a" * 64,
        code_digest="sha256:" + "b" * 64, code_object_key="code/c.tar.gz", command=["true"], target="local"),
        resources=runner_pb2.RunResources(cpu_millis=1000, memory_bytes=1 << 30, pids=64, timeout_seconds=60))


def notebook(db, owner: common_pb2.Actor, status: str) -> NotebookSession:
    now = utcnow()
    s = NotebookSession(id=str(uuid.uuid4()), workspace=WS, environment="py", version=1, image="i", lock_digest="l",
                        target="local", cpu_millis=1000, memory_bytes=1 << 30, pids=64, network="none",
                        owner_id=owner.user_id, owner_username=owner.username, status=status, server_token="t",
                        idle_timeout_seconds=0, created_at=now, last_activity=now)
    db.add(s)
    return s


def model(db, state: str, version: int) -> None:
    db.add(DeployedModel(id=str(uuid.uuid4()), workspace=WS, name="m", version=version, run_id="r", image="i",
                         artifact="a", kind="sklearn", state=state, target="local", created_by="t",
                         created_by_id="u-t"))


def test_runs_sessions_and_model_servers_count_and_the_one_beyond_is_refused(sessions) -> None:
    def setup(db):
        quotas.put_quota(db, workspace=WS, max_concurrent_runs=4, max_concurrent_runs_per_user=0,
                         max_storage_bytes=0, updated_by="teach")
        run(db, ADA)
        done = run(db, ADA)
        service.finish(session=db, run=done, status=Status.SUCCEEDED, exit_code=0,
                       outputs=[("logs.txt", 300, "c" * 64, "runs/x/outputs/logs.txt")])
        run(db, ADA, workspace="other")  # another workspace's run is not counted
        notebook(db, BOB, "running")
        notebook(db, BOB, "stopped")
        model(db, "serving", 1)
        model(db, "failed", 2)
    in_transaction(sessions, setup)
    u = in_transaction(sessions, lambda db: quotas.usage(db, WS, ADA.user_id))
    assert (u.runs, u.sessions, u.models, u.mine, u.concurrent, u.output_bytes) == (1, 1, 1, 1, 3, 300)
    in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=BOB.user_id, what="run"))
    in_transaction(sessions, lambda db: notebook(db, BOB, "starting"))
    with pytest.raises(quotas.TooBusy) as info:
        in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=ADA.user_id, what="session"))
    assert info.value.status == 429
    assert "4 of its 4 concurrent runs, sessions and model servers going (1 runs, 2 sessions, 1 model servers)" \
        in info.value.detail and "Start this session again when one ends" in info.value.detail


def test_one_member_beyond_their_limit_is_refused_others_are_not(sessions) -> None:
    def setup(db):
        quotas.put_quota(db, workspace=WS, max_concurrent_runs=0, max_concurrent_runs_per_user=2,
                         max_storage_bytes=0, updated_by="teach")
        run(db, ADA)
        notebook(db, ADA, "running")
    in_transaction(sessions, setup)
    with pytest.raises(quotas.TooBusy, match="you already have 2 runs and sessions going"):
        in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=ADA.user_id, what="run"))
    in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=BOB.user_id, what="run"))


async def test_limits_are_validated_and_read_back_with_usage(sessions) -> None:
    api = quotas.QuotaApi(sessions=sessions)
    empty = await api.get(runner_pb2.GetQuotaRequest(actor=ADA, workspace=WS))
    assert empty.quota.max_concurrent_runs == 0 and empty.active_runs == 0
    for bad in (runner_pb2.WorkspaceQuota(workspace=WS, max_concurrent_runs=-1),
                runner_pb2.WorkspaceQuota(workspace=WS, max_concurrent_runs_per_user=1001),
                runner_pb2.WorkspaceQuota(workspace=WS, max_storage_bytes=(1 << 50) + 1)):
        with pytest.raises(quotas.Invalid):
            await api.put(runner_pb2.PutQuotaRequest(actor=ADA, quota=bad))
    got = await api.put(runner_pb2.PutQuotaRequest(actor=ADA, quota=runner_pb2.WorkspaceQuota(
        workspace=WS, max_concurrent_runs=2, max_storage_bytes=1 << 30)))
    assert (got.quota.max_concurrent_runs, got.quota.max_storage_bytes, got.quota.updated_by) == (2, 1 << 30, "ada")


def test_a_model_server_beyond_the_workspace_limit_is_refused_but_not_by_the_member_limit(sessions) -> None:
    """A model server counts against the workspace's concurrent limit only: the per-member limit is about runs
    and sessions, so a member at it may still deploy while the workspace has room."""
    def setup(db):
        quotas.put_quota(db, workspace=WS, max_concurrent_runs=2, max_concurrent_runs_per_user=1,
                         max_storage_bytes=0, updated_by="teach")
        run(db, ADA)
    in_transaction(sessions, setup)
    in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=ADA.user_id, what="model server",
                                                     per_member=False))
    with pytest.raises(quotas.TooBusy):  # but ada's second run is beyond her own limit
        in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=ADA.user_id, what="run"))
    in_transaction(sessions, lambda db: model(db, "deploying", 1))
    with pytest.raises(quotas.TooBusy) as info:
        in_transaction(sessions, lambda db: quotas.admit(db, workspace=WS, user_id=BOB.user_id, what="model server",
                                                         per_member=False))
    assert "2 of its 2 concurrent runs, sessions and model servers going (1 runs, 0 sessions, 1 model servers)" \
        in info.value.detail and "Start this model server again when one ends" in info.value.detail
