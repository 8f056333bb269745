"""The runner's database functions. Each takes its session as a keyword argument; events go through
the outbox in the same transaction as the state change they describe."""

from __future__ import annotations

import json
import uuid

from google.protobuf import json_format
from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import utcnow
from reprolab_common.errors import Conflict, NotFound
from reprolab_common.nats import new_event
from reprolab_common.outbox import add_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import TERMINAL, OutboxEvent, Output, Run, Status


def emit(session: Session, run: Run, verb: str) -> None:
    add_event(session, OutboxEvent, new_event(
        type=f"run.{verb}", actor=common_pb2.Actor(user_id=run.requested_by_id, username=run.requested_by),
        workspace=run.workspace, subject=f"runs/{run.id}",
        run=runner_pb2.RunEvent(run_id=run.id, environment=run.environment, version=run.version, target=run.target,
                                image=run.image, code_digest=run.code_digest, exit_code=run.exit_code or 0,
                                error=run.error, assignment=run.assignment, score=run.score,
                                score_error=run.score_error),
    ))


def create_run(*, session: Session, request: runner_pb2.SubmitRunRequest, resources: runner_pb2.RunResources) -> Run:
    run = Run(
        id=str(uuid.uuid4()), workspace=request.workspace, environment=request.environment, version=request.version,
        image=request.image, code_digest=request.code_digest, code_object_key=request.code_object_key,
        datasets_json=json.dumps([{"digest": d.digest, "name": d.name, "mount": d.mount, "object_key": d.object_key}
                                  for d in request.datasets], sort_keys=True),
        command_json=json.dumps(list(request.command)), target=request.target, cpu_millis=resources.cpu_millis,
        memory_bytes=resources.memory_bytes, pids=resources.pids, timeout_seconds=resources.timeout_seconds,
        network=int(request.network), assignment=request.assignment, status=Status.QUEUED,
        source_json=json_format.MessageToJson(request.source, indent=None, sort_keys=True,
                                              preserving_proto_field_name=True),
        evaluation_json=json_format.MessageToJson(request.evaluation, indent=None, sort_keys=True)
        if request.assignment else "",
        requested_by=request.actor.username, requested_by_id=request.actor.user_id, created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    emit(session, run, "queued")
    return run


def get_run(*, session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    return run


def list_runs(*, session: Session, workspace: str, user_id: str | None) -> list[Run]:
    query = select(Run).where(Run.workspace == workspace)
    if user_id is not None:
        query = query.where(Run.requested_by_id == user_id)
    return list(session.execute(query.order_by(Run.created_at.desc()).limit(500)).scalars())


def delete_run(*, session: Session, run_id: str, actor: common_pb2.Actor) -> tuple[Run, list[Output]]:
    """Delete a finished run's record and output list (the gateway, which checked who may, removes their
    bytes). Refused with 409 while it runs (cancel it first) and for an assignment's submission (the
    gradebook and leaderboard keep it). ``run.deleted`` names the deleter; earlier entries stay."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    if run.status not in TERMINAL:
        raise Conflict(f"run {run_id} is still {run.status}; cancel it first, then delete it")
    if run.assignment:
        raise Conflict(f"run {run_id} is a submission to assignment {run.assignment!r}; the gradebook and the "
                       "leaderboard keep it")
    files = outputs(session=session, run_id=run_id)
    add_event(session, OutboxEvent, new_event(
        type="run.deleted", actor=actor, workspace=run.workspace, subject=f"runs/{run.id}",
        run=runner_pb2.RunEvent(run_id=run.id, environment=run.environment, version=run.version, target=run.target,
                                image=run.image, code_digest=run.code_digest, exit_code=run.exit_code or 0),
    ))
    for f in files:
        session.delete(f)
    session.flush()
    session.delete(run)
    session.flush()
    return run, files


def request_cancel(*, session: Session, run_id: str) -> Run:
    """Cancel a run that has not ended: it is ``cancelled`` from now on, whatever its container does next
    (``cancel_requested`` tells the worker to stop it; the worker's later report cannot replace this
    outcome, see ``started`` and ``finish``)."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    if run.status in TERMINAL:
        raise Conflict(f"run {run_id} already ended ({run.status})")
    run.cancel_requested = 1
    finish(session=session, run=run, status=Status.CANCELLED,
           error="cancelled by request" if run.handle else "cancelled before it started")
    return run


def started(*, session: Session, run_id: str, handle: str) -> Run | None:
    """Record the target's handle; None when the run was deleted meanwhile (cancelled before it started,
    then deleted while the worker was starting it): the worker then removes what it started. A run that
    ended meanwhile (cancelled while its container was starting) keeps its state: compare-and-set, so the
    worker's late start never turns ``cancelled`` back into ``running`` (the worker then stops it)."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        return None
    run.handle = handle
    if run.status in TERMINAL:
        return run
    run.status, run.started_at = Status.RUNNING, utcnow()
    emit(session, run, "started")
    return run


def finish(*, session: Session, run: Run, status: Status, exit_code: int | None = None, error: str = "",
           metrics_json: str = "", provenance_json: str = "", outputs: list[tuple[str, int, str, str]] = ()) -> Run:
    """The one terminal transition of a run (compare-and-set on the state): a second call leaves the first
    outcome in place and emits nothing. The worker's report on a run cancelled meanwhile only adds what the
    container left (its log and outputs), so the cancelled run keeps them."""
    if run.status in TERMINAL:
        if run.status == Status.CANCELLED and outputs and not run.provenance_json:
            run.metrics_json, run.provenance_json = metrics_json, provenance_json
            for name, size, sha, key in outputs:
                session.add(Output(run_id=run.id, name=name, size=size, sha256=sha, object_key=key))
        return run
    run.status, run.exit_code, run.error, run.finished_at = status, exit_code, error, utcnow()
    run.metrics_json, run.provenance_json = metrics_json, provenance_json
    for name, size, sha, key in outputs:
        session.add(Output(run_id=run.id, name=name, size=size, sha256=sha, object_key=key))
    emit(session, run, {Status.SUCCEEDED: "succeeded", Status.FAILED: "failed", Status.CANCELLED: "cancelled",
                        Status.TIMED_OUT: "timed_out"}[status])
    return run


def outputs(*, session: Session, run_id: str) -> list[Output]:
    return list(session.execute(select(Output).where(Output.run_id == run_id).order_by(Output.name)).scalars())


# --- assignment scoring ----------------------------------------------------------------------

EVAL_SUFFIX = ".eval"
"""The evaluation sandbox of run ``X`` runs as ``X.eval`` (its container label and handle)."""


def evaluation(run: Run) -> runner_pb2.Evaluation:
    return json_format.Parse(run.evaluation_json or "{}", runner_pb2.Evaluation())


def needs_scoring(run: Run) -> bool:
    """A succeeded run of an assignment that has neither a score nor a reason for having none."""
    return bool(run.evaluation_json) and run.status == Status.SUCCEEDED and not run.score and not run.score_error


def scoring_state(run: Run) -> tuple[str, str]:
    """(state, reason): "" without an assignment, else pending, scored, failed or skipped."""
    if not run.evaluation_json:
        return "", ""
    if run.score:
        return "scored", run.score_error
    if run.score_error:
        return "failed", run.score_error
    if run.status in TERMINAL and run.status != Status.SUCCEEDED:
        return "skipped", f"the run {run.status}; only a succeeded run is scored"
    return "pending", ""


def rescore(*, session: Session, run_id: str, new: runner_pb2.Evaluation) -> Run:
    """Score a succeeded run of an assignment again with a new evaluation revision: its scoring
    starts over (the registry keeps every revision's score; the run shows the newest)."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    if not run.evaluation_json or run.status != Status.SUCCEEDED:
        raise Conflict(f"run {run_id} is not a succeeded run of an assignment; only those are scored")
    if needs_scoring(run):
        raise Conflict(f"run {run_id} is being scored; re-score it once that is done")
    if evaluation(run).revision >= new.revision > 0:
        return run  # already re-scored with this revision (a retried request)
    run.evaluation_json = json_format.MessageToJson(new, indent=None, sort_keys=True)
    run.score, run.score_error, run.eval_handle = "", "", ""
    return run


def eval_started(*, session: Session, run_id: str, handle: str) -> Run:
    run = session.get(Run, run_id, with_for_update=True)
    run.eval_handle = handle
    return run


def scored(*, session: Session, run_id: str, score: str = "", error: str = "") -> Run:
    """The one scoring outcome of a run (``run.scored`` or ``run.score_failed``); later calls keep it."""
    run = session.get(Run, run_id, with_for_update=True)
    if run.score or run.score_error:
        return run
    run.score, run.score_error = score, error
    emit(session, run, "scored" if score else "score_failed")
    return run
