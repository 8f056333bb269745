"""The builder's database functions: create or join a build by lock digest, move it through its states.

Each takes its session as a keyword argument; the caller owns the transaction. Events go through the
outbox in the same transaction as the state change they describe.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.db import utcnow
from reprolab_common.errors import NotFound
from reprolab_common.nats import new_event
from reprolab_common.outbox import add_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Build, BuildTarget, OutboxEvent, Status


def image_ref(registry: str, workspace: str, environment: str, version: int) -> str:
    return f"{registry}/{workspace}/{environment}:v{version}"


def job_msg_id(build: Build) -> str:
    """``Nats-Msg-Id`` of the build's job: the lock digest, with the attempt after a failed try so
    the retry is not dropped as a duplicate inside the JOBS dedupe window."""
    return build.lock_digest if build.attempt == 1 else f"{build.lock_digest}#{build.attempt}"


def _actor(build: Build) -> common_pb2.Actor:
    return common_pb2.Actor(user_id=build.requested_by_id, username=build.requested_by)


def emit(session: Session, build: Build, verb: str, actor: common_pb2.Actor | None = None) -> None:
    add_event(session, OutboxEvent, new_event(
        type=f"build.{verb}", actor=actor or _actor(build), workspace=build.workspace, subject=f"builds/{build.id}",
        build=events_pb2.BuildEvent(
            build_id=build.id, environment=build.environment, version=build.version,
            lock_digest=build.lock_digest or "", image_ref=build.image_ref, image_digest=build.image_digest,
            error=build.error,
        ),
    ))


@dataclass(frozen=True)
class Requested:
    build: Build
    joined: bool
    enqueue: bool   # publish a job for it
    targets: list[BuildTarget]


def request_build(*, session: Session, actor: common_pb2.Actor, workspace: str, environment: str, version: int,
                  lock_digest: str, lock_json: str, parent_lock_digest: str, backend: str, registry: str,
                  ) -> Requested:
    """Create the build of a lock, or join the one that exists (adding this version as a target)."""
    build = session.execute(
        select(Build).where(Build.lock_digest == lock_digest).with_for_update()).scalar_one_or_none()
    joined = build is not None
    enqueue = False
    if build is None:
        build = Build(id=str(uuid.uuid4()), lock_digest=lock_digest, lock_json=lock_json,
                      parent_lock_digest=parent_lock_digest, status=Status.QUEUED, workspace=workspace,
                      environment=environment, version=version,
                      image_ref=image_ref(registry, workspace, environment, version), backend=backend,
                      requested_by=actor.username, requested_by_id=actor.user_id, created_at=utcnow())
        session.add(build)
        session.flush()
        emit(session, build, "queued", actor)
        enqueue = True
    elif build.status == Status.FAILED:
        # A failed build (the index was down, the registry too) may be tried again.
        build.attempt += 1
        build.status, build.error, build.finished_at, build.started_at = Status.QUEUED, "", None, None
        emit(session, build, "queued", actor)
        enqueue = True
    target = session.execute(select(BuildTarget).where(
        BuildTarget.build_id == build.id, BuildTarget.workspace == workspace, BuildTarget.environment == environment,
        BuildTarget.version == version)).scalar_one_or_none()
    if target is None:
        target = BuildTarget(build_id=build.id, workspace=workspace, environment=environment, version=version,
                             image_ref=image_ref(registry, workspace, environment, version),
                             requested_by=actor.username)
        session.add(target)
        session.flush()
        if joined:  # the build's own events go to its first requester's workspace: this one records the request
            add_event(session, OutboxEvent, new_event(
                type="build.joined", actor=actor, workspace=workspace, subject=f"builds/{build.id}",
                build=events_pb2.BuildEvent(
                    build_id=build.id, environment=environment, version=version, lock_digest=build.lock_digest or "",
                    image_ref=target.image_ref, image_digest=build.image_digest, error=build.error)))
    targets = list(session.execute(select(BuildTarget).where(BuildTarget.build_id == build.id)).scalars())
    return Requested(build=build, joined=joined, enqueue=enqueue, targets=targets)


def record_failed_resolution(*, session: Session, actor: common_pb2.Actor, workspace: str, environment: str,
                             version: int, error: str, backend: str, registry: str) -> Build:
    """A spec that cannot be locked still leaves a failed build a person can look at."""
    build = Build(id=str(uuid.uuid4()), lock_digest=None, status=Status.FAILED, workspace=workspace,
                  environment=environment, version=version,
                  image_ref=image_ref(registry, workspace, environment, version), backend=backend,
                  requested_by=actor.username, requested_by_id=actor.user_id, error=error, created_at=utcnow(),
                  finished_at=utcnow())
    session.add(build)
    session.flush()
    emit(session, build, "failed", actor)
    return build


def get_build(*, session: Session, build_id: str) -> Build:
    build = session.get(Build, build_id)
    if build is None:
        raise NotFound(f"no build {build_id!r}")
    return build


def history(*, session: Session, workspace: str, environment: str, version: int = 0,
            limit: int = 100) -> list[tuple[Build, int]]:
    """An environment's builds, newest first, each with the version it served here: the builds it
    requested (a spec that could not be locked has no target row, only the build's own fields) and the
    ones an identical lock let it join."""
    targeted = select(BuildTarget.build_id, BuildTarget.version).where(
        BuildTarget.workspace == workspace, BuildTarget.environment == environment)
    own = select(Build.id, Build.version).where(Build.workspace == workspace, Build.environment == environment)
    if version:
        targeted = targeted.where(BuildTarget.version == version)
        own = own.where(Build.version == version)
    served = {(build_id, n) for build_id, n in session.execute(targeted.union(own))}
    builds = {b.id: b for b in session.scalars(select(Build).where(Build.id.in_({i for i, _ in served})))}
    rows = sorted(((builds[i], n) for i, n in served), key=lambda bn: (bn[0].created_at, bn[1]), reverse=True)
    return rows[:limit]


def get_by_lock(*, session: Session, lock_digest: str) -> Build | None:
    return session.execute(select(Build).where(Build.lock_digest == lock_digest)).scalar_one_or_none()


def start(*, session: Session, build_id: str) -> Build | None:
    """Mark running; None when the build already finished (a redelivered job after success)."""
    build = session.get(Build, build_id, with_for_update=True)
    if build is None or build.status in (Status.SUCCEEDED,):
        return None
    if build.status != Status.RUNNING:
        build.status, build.started_at = Status.RUNNING, utcnow()
        emit(session, build, "started")
    return build


def succeed(*, session: Session, build_id: str, image_digest: str, sbom_json: str) -> Build:
    build = session.get(Build, build_id, with_for_update=True)
    if build.status != Status.SUCCEEDED:
        build.status, build.image_digest, build.sbom_json, build.finished_at = (
            Status.SUCCEEDED, image_digest, sbom_json, utcnow())
        emit(session, build, "succeeded")
    return build


def fail(*, session: Session, build_id: str, error: str) -> Build:
    build = session.get(Build, build_id, with_for_update=True)
    if build.status not in (Status.SUCCEEDED, Status.FAILED):
        build.status, build.error, build.finished_at = Status.FAILED, error, utcnow()
        emit(session, build, "failed")
    return build


def targets(*, session: Session, build_id: str) -> list[BuildTarget]:
    return list(session.execute(select(BuildTarget).where(BuildTarget.build_id == build_id)
                                .order_by(BuildTarget.id)).scalars())


def targets_of(*, session: Session, build_ids: set[str]) -> dict[str, list[BuildTarget]]:
    """The versions each of several builds serves, in one query."""
    found: dict[str, list[BuildTarget]] = {i: [] for i in build_ids}
    for t in session.execute(select(BuildTarget).where(BuildTarget.build_id.in_(build_ids))
                             .order_by(BuildTarget.id)).scalars():
        found[t.build_id].append(t)
    return found


def mark_recorded(*, session: Session, target_id: int) -> None:
    session.get(BuildTarget, target_id).recorded = 1
