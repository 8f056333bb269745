"""Deleting a run in the runner's database (SQLite, migrated as in production): a finished run goes with its
output rows and leaves a ``run.deleted`` event naming the deleter; a run still going and an assignment's
submission are refused with 409 and stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.errors import Conflict, NotFound
from reprolab_common.settings import CommonSettings
from reprolab_runner import service
from reprolab_runner.models import MIGRATIONS, OutboxEvent, Output, Run, Status
from sqlalchemy import func, select

OWNER = common_pb2.Actor(user_id="u-1", username="stud")
TEACHER = common_pb2.Actor(user_id="u-2", username="teach")


@pytest.fixture
def sessions(tmp_path: Path):
    engine = make_engine(CommonSettings(data_dir=tmp_path), "runner")
    migrate(engine, MIGRATIONS)
    yield session_factory(engine)
    engine.dispose()


def _run(sessions, status: Status, assignment: str = "") -> str:
    def make(s):
        run = service.create_run(session=s, request=runner_pb2.SubmitRunRequest(
            actor=OWNER, workspace="ws", environment="py", version=1, image="i@sha256:" + "a" * 64,
            code_digest="sha256:" + "b" * 64, code_object_key="code/ws/c.tar.gz", command=["true"], target="local",
            assignment=assignment), resources=runner_pb2.RunResources(
                cpu_millis=1000, memory_bytes=1 << 30, pids=64, timeout_seconds=60))
        if status != Status.QUEUED:
            service.finish(session=s, run=run, status=status, exit_code=0,
                           outputs=[("logs.txt", 3, "c" * 64, f"runs/{run.id}/outputs/logs.txt")])
        return run.id
    return in_transaction(sessions, make)


def test_a_finished_run_goes_with_its_outputs_and_the_deleter_is_recorded(sessions) -> None:
    run_id = _run(sessions, Status.SUCCEEDED)
    run, files = in_transaction(sessions, lambda s: service.delete_run(session=s, run_id=run_id, actor=TEACHER))
    assert [f.object_key for f in files] == [f"runs/{run_id}/outputs/logs.txt"]

    def check(s):
        assert s.get(Run, run_id) is None
        assert s.scalar(select(func.count()).select_from(Output).where(Output.run_id == run_id)) == 0
        return [bytes(e.payload) for e in s.scalars(select(OutboxEvent))]
    payloads = in_transaction(sessions, check)
    assert any(b"run.deleted" in p and b"teach" in p for p in payloads), "run.deleted names who deleted it"
    with pytest.raises(NotFound):
        in_transaction(sessions, lambda s: service.delete_run(session=s, run_id=run_id, actor=TEACHER))


@pytest.mark.parametrize(("status", "assignment", "needle"), [
    (Status.QUEUED, "", "cancel it first"),
    (Status.SUCCEEDED, "iris", "submission to assignment 'iris'"),
])
def test_a_live_run_and_a_submission_stay(sessions, status, assignment, needle) -> None:
    run_id = _run(sessions, status, assignment)
    with pytest.raises(Conflict, match=needle):
        in_transaction(sessions, lambda s: service.delete_run(session=s, run_id=run_id, actor=OWNER))
    assert in_transaction(sessions, lambda s: s.get(Run, run_id) is not None)


def test_starting_a_run_deleted_meanwhile_records_nothing(sessions) -> None:
    """A run cancelled before it started may be deleted while the worker starts it: ``started`` then says so
    (None) and the worker removes what it started instead of failing with the container left running."""
    run_id = _run(sessions, Status.QUEUED)
    in_transaction(sessions, lambda s: service.request_cancel(session=s, run_id=run_id))
    in_transaction(sessions, lambda s: service.delete_run(session=s, run_id=run_id, actor=OWNER))
    assert in_transaction(sessions, lambda s: service.started(session=s, run_id=run_id, handle="c-1")) is None
