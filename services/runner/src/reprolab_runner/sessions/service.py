"""Database functions of sessions. Each takes its session (SQLAlchemy's) as ``db``; events go through the
outbox in the same transaction as the change they describe. No event or reply carries the server token."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.db import utcnow
from reprolab_common.errors import Conflict, NotFound
from reprolab_common.nats import new_event
from reprolab_common.outbox import add_event
from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from ..models import OutboxEvent
from .models import ACTIVE, NotebookSession, SessionLayer, SessionPolicy, SessionStatus


def emit(db: Db, s: NotebookSession, verb: str, reason: str = "") -> None:
    add_event(db, OutboxEvent, new_event(
        type=f"session.{verb}", actor=common_pb2.Actor(user_id=s.owner_id, username=s.owner_username),
        workspace=s.workspace, subject=f"sessions/{s.id}",
        session=runner_pb2.SessionEvent(session_id=s.id, environment=s.environment, version=s.version,
                                        image=s.session_image or s.image, error=s.error, reason=reason),
    ))


def create(db: Db, *, request: runner_pb2.StartSessionRequest, target: str, network: str, cpu_millis: int,
           memory_bytes: int, pids: int, idle_timeout_seconds: int, max_per_environment: int) -> NotebookSession:
    """A new session in ``starting``; refused while the user has ``max_per_environment`` active ones."""
    active = db.execute(select(NotebookSession).where(
        NotebookSession.workspace == request.workspace, NotebookSession.environment == request.environment,
        NotebookSession.owner_id == request.actor.user_id, NotebookSession.status.in_(ACTIVE))).scalars().all()
    if len(active) >= max_per_environment:
        raise Conflict(f"you already have a session of {request.environment!r} in {request.workspace!r} "
                       f"({active[0].id}); open it or stop it first (this workspace allows {max_per_environment})")
    now = utcnow()
    s = NotebookSession(
        id=str(uuid.uuid4()), workspace=request.workspace, environment=request.environment, version=request.version,
        image=request.image, lock_digest=request.lock_digest, session_image="", target=target,
        cpu_millis=cpu_millis, memory_bytes=memory_bytes, pids=pids, network=network,
        owner_id=request.actor.user_id, owner_username=request.actor.username, status=SessionStatus.STARTING,
        error="", handle="", server_token=secrets.token_hex(32), upstream_url="",
        idle_timeout_seconds=idle_timeout_seconds, created_at=now, last_activity=now, stop_reason="")
    db.add(s)
    db.flush()
    emit(db, s, "starting")
    return s


def get(db: Db, session_id: str, *, lock: bool = False) -> NotebookSession:
    s = db.get(NotebookSession, session_id, with_for_update=lock)
    if s is None:
        raise NotFound(f"no session {session_id!r}")
    return s


def list_for(db: Db, *, workspace: str, owner_id: str | None, active_only: bool) -> list[NotebookSession]:
    query = select(NotebookSession).where(NotebookSession.workspace == workspace)
    if owner_id is not None:
        query = query.where(NotebookSession.owner_id == owner_id)
    if active_only:
        query = query.where(NotebookSession.status.in_(ACTIVE))
    return list(db.execute(query.order_by(NotebookSession.created_at.desc()).limit(500)).scalars())


def active(db: Db) -> list[NotebookSession]:
    return list(db.execute(select(NotebookSession).where(NotebookSession.status.in_(ACTIVE))).scalars())


def layer_image(db: Db, key: str) -> str | None:
    row = db.get(SessionLayer, key)
    return row.session_image if row else None


def remember_layer(db: Db, *, key: str, image: str, session_image: str) -> None:
    if db.get(SessionLayer, key) is None:
        db.add(SessionLayer(key=key, image=image, session_image=session_image, created_at=utcnow()))


def set_image(db: Db, session_id: str, session_image: str) -> NotebookSession:
    s = get(db, session_id, lock=True)
    s.session_image = session_image
    return s


def started(db: Db, session_id: str, *, handle: str, upstream_url: str) -> NotebookSession:
    """The server answers: ``running`` (unless a stop came in meanwhile)."""
    s = get(db, session_id, lock=True)
    s.handle, s.upstream_url = handle, upstream_url
    if s.status == SessionStatus.STARTING:
        s.status, s.started_at, s.last_activity = SessionStatus.RUNNING, utcnow(), utcnow()
        emit(db, s, "started")
    return s


def set_handle(db: Db, session_id: str, handle: str) -> NotebookSession:
    s = get(db, session_id, lock=True)
    s.handle = handle
    return s


def request_stop(db: Db, session_id: str, reason: str = "stopped") -> NotebookSession:
    s = get(db, session_id, lock=True)
    if s.status in (SessionStatus.STARTING, SessionStatus.RUNNING):
        s.status, s.stop_reason = SessionStatus.STOPPING, reason
    return s


def stopped(db: Db, session_id: str) -> NotebookSession:
    s = get(db, session_id, lock=True)
    if s.status not in (SessionStatus.STOPPED, SessionStatus.FAILED):
        s.status, s.stopped_at = SessionStatus.STOPPED, utcnow()
        emit(db, s, "culled" if s.stop_reason == "culled" else "stopped", reason=s.stop_reason)
    return s


def failed(db: Db, session_id: str, error: str) -> NotebookSession:
    s = get(db, session_id, lock=True)
    if s.status not in (SessionStatus.STOPPED, SessionStatus.FAILED):
        s.status, s.error, s.stopped_at = SessionStatus.FAILED, error[:4000], utcnow()
        emit(db, s, "failed")
    return s


def touch(db: Db, session_id: str, at: datetime) -> NotebookSession:
    """Activity at ``at`` (never in the future, never moving backwards)."""
    s = get(db, session_id, lock=True)
    at = min(at, utcnow())
    if at > s.last_activity:
        s.last_activity = at
    return s


def cull_state(s: NotebookSession, now: datetime, warn_seconds: int) -> tuple[bool, int]:
    """(warning, seconds until culled) of a running session; the warning starts ``warn_seconds`` before."""
    if s.status != SessionStatus.RUNNING or s.idle_timeout_seconds <= 0:
        return False, 0
    left = (s.last_activity + timedelta(seconds=s.idle_timeout_seconds) - now).total_seconds()
    left_i = max(0, int(left))
    return left <= min(warn_seconds, s.idle_timeout_seconds / 2), left_i


def policy(db: Db, workspace: str) -> SessionPolicy | None:
    return db.get(SessionPolicy, workspace)


def put_policy(db: Db, *, workspace: str, idle_timeout_seconds: int, max_per_environment: int, network: str,
               updated_by: str, instructors_may_open: bool = False) -> SessionPolicy:
    row = db.get(SessionPolicy, workspace, with_for_update=True)
    if row is None:
        row = SessionPolicy(workspace=workspace)
        db.add(row)
    row.idle_timeout_seconds, row.max_per_environment, row.network = (idle_timeout_seconds, max_per_environment,
                                                                      network)
    row.instructors_may_open = instructors_may_open
    row.updated_by, row.updated_at = updated_by, utcnow()
    # running sessions of the workspace follow the new idle timeout from now on
    for s in db.execute(select(NotebookSession).where(NotebookSession.workspace == workspace,
                                                      NotebookSession.status.in_(ACTIVE))).scalars():
        s.idle_timeout_seconds = idle_timeout_seconds
    db.flush()
    return row
