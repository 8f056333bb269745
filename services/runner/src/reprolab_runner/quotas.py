"""Workspace quotas (issue 17 item 4): how much a workspace may run at once and keep, set by its instructors.

The runner owns what is counted at once (runs, sessions, model servers: all its tables), so it keeps the
limits and admits a run or a session in the same transaction that creates it: the quota row is locked
(``FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so two submits racing for the last place cannot
both get it. Storage is checked by the gateway, which alone sees both of its parts: the registry's datasets
and the runner's run outputs (``QuotaUsage.output_bytes``). 0 means no limit; a workspace without a row has
none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.micro.service import Service
from reprolab.v1 import runner_pb2
from reprolab_common.db import UTCDateTime, transact, utcnow
from reprolab_common.errors import Invalid, ProblemError
from reprolab_common.nats import InFlight, endpoint
from reprolab_common.subjects import Runner
from sqlalchemy import BigInteger, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .deploy.models import DeployedModel, ModelState
from .models import Base, Output, Run, Status
from .sessions.models import NotebookSession, SessionStatus

ACTIVE_RUNS = (Status.QUEUED, Status.STARTING, Status.RUNNING)
ACTIVE_SESSIONS = (SessionStatus.STARTING, SessionStatus.RUNNING)
ACTIVE_MODELS = (ModelState.DEPLOYING, ModelState.SERVING)
MAX_CONCURRENT = 1000
MAX_STORAGE_BYTES = 1 << 50  # 1 PiB: a typo guard, not a policy


class WorkspaceQuota(Base):
    """A workspace's limits (migration 0009); absent: no limits."""

    __tablename__ = "workspace_quotas"

    workspace: Mapped[str] = mapped_column(String(63), primary_key=True)
    max_concurrent_runs: Mapped[int] = mapped_column(Integer, default=0)
    max_concurrent_runs_per_user: Mapped[int] = mapped_column(Integer, default=0)
    max_storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TooBusy(ProblemError):
    """Over a concurrent quota: the gateway answers 429 with Retry-After."""

    status = 429
    title = "Too many runs at once"


@dataclass(frozen=True)
class Usage:
    runs: int
    sessions: int
    models: int
    mine: int
    output_bytes: int

    @property
    def concurrent(self) -> int:
        return self.runs + self.sessions + self.models


def quota(db: Session, workspace: str, *, lock: bool = False) -> WorkspaceQuota | None:
    return db.get(WorkspaceQuota, workspace, with_for_update=lock)


def usage(db: Session, workspace: str, user_id: str) -> Usage:
    """What the workspace has going now and keeps: a few COUNT/SUM queries on indexed columns."""
    runs = select(func.count()).select_from(Run).where(Run.workspace == workspace, Run.status.in_(ACTIVE_RUNS))
    sessions = select(func.count()).select_from(NotebookSession).where(
        NotebookSession.workspace == workspace, NotebookSession.status.in_(ACTIVE_SESSIONS))
    models = select(func.count()).select_from(DeployedModel).where(
        DeployedModel.workspace == workspace, DeployedModel.state.in_(ACTIVE_MODELS))
    my_runs = runs.where(Run.requested_by_id == user_id)
    my_sessions = sessions.where(NotebookSession.owner_id == user_id)
    outputs = select(func.coalesce(func.sum(Output.size), 0)).join(Run, Output.run_id == Run.id).where(
        Run.workspace == workspace)
    return Usage(runs=db.scalar(runs), sessions=db.scalar(sessions), models=db.scalar(models),
                 mine=db.scalar(my_runs) + db.scalar(my_sessions), output_bytes=int(db.scalar(outputs)))


def admit(db: Session, *, workspace: str, user_id: str, what: str, per_member: bool = True) -> None:
    """Refuse (429) one more run, session or (``per_member`` False: the per-member limit counts runs and
    sessions only) model server beyond the workspace's concurrent quotas; call it in the transaction that
    creates it."""
    q = quota(db, workspace, lock=True)
    if q is None or not (q.max_concurrent_runs or (per_member and q.max_concurrent_runs_per_user)):
        return
    u = usage(db, workspace, user_id)
    if q.max_concurrent_runs and u.concurrent >= q.max_concurrent_runs:
        raise TooBusy(
            f"workspace {workspace!r} already has {u.concurrent} of its {q.max_concurrent_runs} concurrent runs, "
            f"sessions and model servers going ({u.runs} runs, {u.sessions} sessions, {u.models} model servers); "
            f"nothing was started. Start this {what} again when one ends (stop a session or a model server, or "
            "cancel a run you no longer need), or ask an instructor to raise the workspace's quota")
    if per_member and q.max_concurrent_runs_per_user and u.mine >= q.max_concurrent_runs_per_user:
        raise TooBusy(
            f"you already have {u.mine} runs and sessions going in {workspace!r}, the most this workspace allows "
            f"one member ({q.max_concurrent_runs_per_user}); nothing was started. Start this {what} again when "
            "one of yours ends (or cancel one, or stop a session), or ask an instructor to raise the quota")


def put_quota(db: Session, *, workspace: str, max_concurrent_runs: int, max_concurrent_runs_per_user: int,
              max_storage_bytes: int, updated_by: str) -> WorkspaceQuota:
    row = quota(db, workspace, lock=True)
    if row is None:
        row = WorkspaceQuota(workspace=workspace)
        db.add(row)
    row.max_concurrent_runs, row.max_concurrent_runs_per_user = max_concurrent_runs, max_concurrent_runs_per_user
    row.max_storage_bytes, row.updated_by, row.updated_at = max_storage_bytes, updated_by, utcnow()
    db.flush()
    return row


def quota_proto(workspace: str, row: WorkspaceQuota | None) -> runner_pb2.WorkspaceQuota:
    if row is None:
        return runner_pb2.WorkspaceQuota(workspace=workspace)
    return runner_pb2.WorkspaceQuota(workspace=row.workspace, max_concurrent_runs=row.max_concurrent_runs,
                                     max_concurrent_runs_per_user=row.max_concurrent_runs_per_user,
                                     max_storage_bytes=row.max_storage_bytes, updated_by=row.updated_by)


def validate(q: runner_pb2.WorkspaceQuota) -> None:
    problems = []
    if not 0 <= q.max_concurrent_runs <= MAX_CONCURRENT:
        problems.append(("max_concurrent_runs", f"must be 0 (no limit) to {MAX_CONCURRENT}"))
    if not 0 <= q.max_concurrent_runs_per_user <= MAX_CONCURRENT:
        problems.append(("max_concurrent_runs_per_member", f"must be 0 (no limit) to {MAX_CONCURRENT}"))
    if not 0 <= q.max_storage_bytes <= MAX_STORAGE_BYTES:
        problems.append(("max_storage_bytes", "must be 0 (no limit) to 1 PiB"))
    if problems:
        raise Invalid("; ".join(f"{loc} {msg}" for loc, msg in problems), errors=problems)


@dataclass
class QuotaApi:
    """``runner.quota.get|put``: only the gateway calls them (it checked membership, and the role for put)."""

    sessions: sessionmaker

    async def get(self, r: runner_pb2.GetQuotaRequest) -> runner_pb2.QuotaUsage:
        def read(db: Session) -> runner_pb2.QuotaUsage:
            u = usage(db, r.workspace, r.actor.user_id)
            return runner_pb2.QuotaUsage(quota=quota_proto(r.workspace, quota(db, r.workspace)), active_runs=u.runs,
                                         active_sessions=u.sessions, active_models=u.models, caller_active=u.mine,
                                         output_bytes=u.output_bytes)
        return await transact(self.sessions, read)

    async def put(self, r: runner_pb2.PutQuotaRequest) -> runner_pb2.QuotaUsage:
        validate(r.quota)
        q = r.quota
        await transact(self.sessions, lambda db: put_quota(
            db, workspace=q.workspace, max_concurrent_runs=q.max_concurrent_runs,
            max_concurrent_runs_per_user=q.max_concurrent_runs_per_user, max_storage_bytes=q.max_storage_bytes,
            updated_by=r.actor.username))
        return await self.get(runner_pb2.GetQuotaRequest(actor=r.actor, workspace=q.workspace))


async def add_quota_endpoints(micro: Service, api: QuotaApi, in_flight: InFlight) -> None:
    for subject, req_type, fn in ((Runner.QUOTA_GET, runner_pb2.GetQuotaRequest, api.get),
                                  (Runner.QUOTA_PUT, runner_pb2.PutQuotaRequest, api.put)):
        await micro.add_endpoint(name=subject.value.replace(".", "-"), subject=subject.value,
                                 handler=in_flight.wrap(endpoint(req_type, fn)))
