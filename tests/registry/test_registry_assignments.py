"""Assignments and the leaderboard through the real registry process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from reprolab_common.subjects import Registry

from ._support import User, check_events, collect_events, spec_json
from .test_registry_service import setup_course

pytestmark = pytest.mark.usefixtures("registry")

CODE = "sha256:" + "c" * 64
LABELS = "sha256:" + "1" * 64
PUBLIC = "sha256:" + "2" * 64
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(T0 + timedelta(minutes=minutes))
    return ts


async def prepare(u: dict[str, User], ws: str) -> None:
    await setup_course(u, ws)
    await u["carol"](Registry.ENV_CREATE, workspace=ws, name="py", spec_json=spec_json())
    await u["carol"](Registry.DATASET_REGISTER, workspace=ws, name="labels.csv", digest=LABELS, size=10,
                     visibility="hidden")
    await u["carol"](Registry.DATASET_REGISTER, workspace=ws, name="features.csv", digest=PUBLIC, size=10,
                     visibility="public")


def create(u: User, ws: str, name: str = "iris", **extra: object):
    fields = dict(workspace=ws, name=name, title="Iris", environment="py", evaluation_code_digest=CODE,
                  evaluation_code_key=f"workspaces/{ws}/code/sha256/{'c' * 64}.tar.gz", labels="labels.csv",
                  predictions="predictions.csv", metric="accuracy", higher_is_better=True) | extra
    return u(Registry.ASSIGNMENT_CREATE, **fields)


async def test_create_rbac_and_hidden_details(users: dict[str, User], ws: str, nc: Client) -> None:
    await prepare(users, ws)
    carol, dave, bob = users["carol"], users["dave"], users["bob"]
    made = await create(carol, ws)
    assert (made.name, made.environment, made.version, made.labels_digest, made.labels_name) == (
        "iris", "py", 1, LABELS, "labels.csv")
    assert made.labels_key == f"datasets/sha256/{'1' * 64}" and list(made.command) == ["python3", "evaluate.py"]
    await carol.fails(409, Registry.ASSIGNMENT_CREATE, "already exists", workspace=ws, name="iris",
                      environment="py", evaluation_code_digest=CODE, evaluation_code_key="k/x", labels=LABELS,
                      predictions="p.csv")
    # students may not create; non-members get 404; public labels and bad paths are refused
    await dave.fails(403, Registry.ASSIGNMENT_CREATE, "instructor or admin", workspace=ws, name="x")
    await bob.fails(404, Registry.ASSIGNMENT_CREATE, "not found", workspace=ws, name="x")
    p = await carol.fails(422, Registry.ASSIGNMENT_CREATE, workspace=ws, name="x", environment="py",
                          evaluation_code_digest=CODE, evaluation_code_key="k/x", labels="features.csv",
                          predictions="p.csv")
    assert "hidden dataset" in p.errors[0][1]
    p = await carol.fails(422, Registry.ASSIGNMENT_CREATE, workspace=ws, name="x", environment="py",
                          evaluation_code_digest=CODE, evaluation_code_key="k/x", labels=LABELS,
                          predictions="../etc/passwd")
    assert p.errors[0][0] == "predictions"
    await carol.fails(404, Registry.ASSIGNMENT_CREATE, "environment 'nope'", workspace=ws, name="x",
                      environment="nope", evaluation_code_digest=CODE, evaluation_code_key="k/x", labels=LABELS,
                      predictions="p.csv")
    # a student sees the assignment but neither the labels nor the object keys, unless resolved for a run
    seen = await dave(Registry.ASSIGNMENT_GET, workspace=ws, name="iris")
    assert seen.metric == "accuracy" and seen.predictions == "predictions.csv"
    assert (seen.labels_digest, seen.labels_key, seen.evaluation_code_key, seen.evaluation_code_digest) == (
        "", "", "", "")
    listed = await dave(Registry.ASSIGNMENT_LIST, workspace=ws)
    assert [a.name for a in listed.items] == ["iris"] and listed.items[0].labels_key == ""
    for_run = await dave(Registry.ASSIGNMENT_GET, workspace=ws, name="iris", for_run=True)
    assert for_run.labels_key == made.labels_key
    await bob.fails(404, Registry.ASSIGNMENT_GET, "not found", workspace=ws, name="iris")
    await dave.fails(404, Registry.ASSIGNMENT_GET, "assignment 'nah'", workspace=ws, name="nah")
    events = check_events(await collect_events(nc, ws, 10), [
        "workspace.created", "member.added", "member.added", "member.added", "member.added",
        "environment.created", "version.created", "dataset.uploaded", "dataset.uploaded", "assignment.created"])
    assert events[-1].assignment_created.labels_digest == LABELS and events[-1].actor.username == "carol"


async def score(u: User, ws: str, assignment: str, run: str, who: str, value: str, minute: int):
    return await u(Registry.ASSIGNMENT_RECORD_SCORE, workspace=ws, assignment=assignment, run_id=run,
                   user_id=f"id-{who}", username=who, score=value, scored_at=at(minute))


async def test_leaderboard_best_per_student_ties_by_time_and_direction(users: dict[str, User], ws: str) -> None:
    await prepare(users, ws)
    carol, dave, root = users["carol"], users["dave"], users["root"]
    await create(carol, ws, "acc")
    await create(carol, ws, "loss", metric="rmse", higher_is_better=False)
    for run, who, value, minute in [("r1", "dave", "0.80", 1), ("r2", "erin", "0.9", 2), ("r3", "dave", "0.90", 3),
                                    ("r4", "dave", "0.9", 4), ("r5", "frank", "0.95", 5), ("r6", "erin", "0.85", 6)]:
        await score(root, ws, "acc", run, who, value, minute)
        await score(root, ws, "loss", f"l{run}", who, value, minute)
    board = await dave(Registry.ASSIGNMENT_LEADERBOARD, workspace=ws, assignment="acc")
    # frank 0.95 best; erin's 0.9 (minute 2) beats dave's equal 0.90 (minute 3); dave's best is his earliest 0.9
    assert [(r.rank, r.username, r.score, r.run_id) for r in board.rows] == [
        (1, "frank", "0.95", "r5"), (2, "erin", "0.9", "r2"), (3, "dave", "0.90", "r3")]
    assert board.rows[1].scored_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(minutes=2)
    assert (board.metric, board.higher_is_better) == ("accuracy", True)
    low = await dave(Registry.ASSIGNMENT_LEADERBOARD, workspace=ws, assignment="loss")
    assert [(r.rank, r.username, r.score) for r in low.rows] == [
        (1, "dave", "0.80"), (2, "erin", "0.85"), (3, "frank", "0.95")]
    # recording is idempotent per run; a different score for the same run is refused; junk is refused
    again = await score(root, ws, "acc", "r1", "dave", "0.80", 1)
    assert again.score == "0.80"
    await root.fails(409, Registry.ASSIGNMENT_RECORD_SCORE, "already has score", workspace=ws, assignment="acc",
                     run_id="r1", user_id="id-dave", username="dave", score="0.99")
    for bad in ("NaN", "1e", "", "Infinity"):
        await root.fails(422, Registry.ASSIGNMENT_RECORD_SCORE, workspace=ws, assignment="acc", run_id="rx",
                         user_id="id-dave", username="dave", score=bad)
    await root.fails(404, Registry.ASSIGNMENT_RECORD_SCORE, "assignment 'gone'", workspace=ws, assignment="gone",
                     run_id="ry", user_id="id-dave", username="dave", score="1")
    await users["bob"].fails(404, Registry.ASSIGNMENT_LEADERBOARD, "not found", workspace=ws, assignment="acc")
    empty = await create(carol, ws, "empty")
    assert empty.name == "empty"
    assert list((await dave(Registry.ASSIGNMENT_LEADERBOARD, workspace=ws, assignment="empty")).rows) == []


async def test_only_instructors_and_admins_create(users: dict[str, User], ws: str) -> None:
    await prepare(users, ws)
    made = await create(users["alice"], ws, "by-admin", version=1)
    assert made.created_by == "alice" and made.version == 1
    await users["alice"].fails(422, Registry.ASSIGNMENT_CREATE, workspace=ws, name="v9", environment="py",
                               version=9, evaluation_code_digest=CODE, evaluation_code_key="k/x", labels=LABELS,
                               predictions="p.csv")
    await users["erin"].fails(403, Registry.ASSIGNMENT_CREATE, "instructor or admin", workspace=ws, name="y")
