"""NATS endpoints of the registry: decode, run the domain function in a worker thread, encode.

One ``nats.micro`` endpoint per ``reprolab_common.subjects.Registry`` subject. Handlers stay thin:
authorisation and validation live in ``service``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from nats.micro.service import Service
from reprolab.v1 import common_pb2, registry_pb2
from reprolab_common.errors import Conflict
from reprolab_common.nats import InFlight, endpoint
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import REGISTRY_CHANGED, Registry, request_workspaces
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from . import cleanup, coursework, service
from .models import Member, Role

log = logging.getLogger(__name__)
T = TypeVar("T")


# --- proto conversion -----------------------------------------------------------------------


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def role_proto(role: Role | str) -> common_pb2.Role.ValueType:
    return service.ROLE_TO_PROTO[Role(role)]


def workspace_proto(acc: service.Access) -> registry_pb2.Workspace:
    ws = acc.workspace
    return registry_pb2.Workspace(
        slug=ws.slug,
        title=ws.title,
        created_at=_ts(ws.created_at),
        caller_role=role_proto(acc.role),
        caller_is_member=acc.is_member,
    )


def member_proto(m: Member) -> registry_pb2.Member:
    return registry_pb2.Member(
        user_id=m.user_id, username=m.username, role=role_proto(m.role), added_at=_ts(m.added_at)
    )


def version_proto(view: service.VersionView) -> registry_pb2.Version:
    v = view.version
    # A version created in this request has no image and its (eager) relationship was never loaded.
    image = sa_inspect(v).dict.get("image")
    return registry_pb2.Version(
        workspace=view.workspace,
        environment=view.environment,
        number=v.number,
        spec_json=v.spec_json,
        spec_digest=v.spec_digest,
        parent=v.parent_ref,
        origin=v.origin,
        rollback_to=v.rollback_to,
        created_by=v.created_by,
        created_at=_ts(v.created_at),
        note=v.note,
        lock_digest=image.lock_digest if image else "",
        image_ref=image.image_ref if image else "",
        image_digest=image.image_digest if image else "",
    )


def environment_proto(view: service.EnvView) -> registry_pb2.Environment:
    env = view.env
    reply = registry_pb2.Environment(
        workspace=view.workspace,
        name=env.name,
        description=env.description,
        owner=env.owner_name,
        forked_from=env.forked_from,
        kind=env.kind,
        caller_can_change=view.can_change,
        latest_version=env.latest_version,
        created_at=_ts(env.created_at),
    )
    if env.archived_at is not None:
        reply.archived_at.CopyFrom(_ts(env.archived_at))
    if view.latest is not None:
        reply.latest.CopyFrom(version_proto(service.VersionView(view.workspace, env.name, view.latest)))
    return reply


def dataset_proto(view: service.DatasetView) -> registry_pb2.Dataset:
    d = view.dataset
    return registry_pb2.Dataset(
        workspace=view.workspace,
        name=d.name,
        digest=d.digest,
        size=d.size,
        media_type=d.media_type,
        visibility=d.visibility,
        object_key=d.object_key,
        uploaded_by=d.uploaded_by,
        created_at=_ts(d.created_at),
    )


def assignment_proto(view: service.AssignmentView) -> registry_pb2.Assignment:
    a = view.assignment
    msg = registry_pb2.Assignment(
        workspace=view.workspace, name=a.name, title=a.title, environment=a.environment, version=a.version,
        predictions=a.predictions, metric=a.metric, higher_is_better=a.higher_is_better,
        command=json.loads(a.command_json), created_by=a.created_by, created_at=_ts(a.created_at),
        instructions=a.instructions, starter_code_digest=a.starter_digest, late_policy=a.late_policy,
        late_penalty_percent=a.late_penalty, daily_limit=a.daily_limit, anonymous=a.anonymous, grade_by=a.grade_by,
        evaluation_revision=a.revision, past_due=coursework.past_due(a),
    )
    if a.opens_at is not None:
        msg.opens_at.CopyFrom(_ts(a.opens_at))
    if a.due_at is not None:
        msg.due_at.CopyFrom(_ts(a.due_at))
    if view.full:
        msg.evaluation_code_digest, msg.evaluation_code_key = a.code_digest, a.code_key
        msg.labels_digest, msg.labels_name, msg.labels_key = a.labels.digest, a.labels.name, a.labels.object_key
        msg.starter_code_key = a.starter_key
    return msg


def leaderboard_proto(view: coursework.Board) -> registry_pb2.Leaderboard:
    a = view.assignment
    return registry_pb2.Leaderboard(
        workspace=view.workspace, assignment=a.name, metric=a.metric, higher_is_better=a.higher_is_better,
        split=view.split, anonymous=a.anonymous,
        rows=[registry_pb2.LeaderboardRow(rank=r.rank, username=r.username, score=r.score, run_id=r.run_id,
                                          scored_at=_ts(r.scored_at), you=r.you, late=r.late) for r in view.rows])


def gradebook_proto(view: coursework.Book, full: bool) -> registry_pb2.Gradebook:
    book = registry_pb2.Gradebook(assignment=assignment_proto(service.AssignmentView(
        workspace=view.workspace, assignment=view.assignment, full=full)))
    for r in view.rows:
        book.rows.append(registry_pb2.GradebookRow(
            user_id=r.user_id, username=r.username, run_id=r.run_id, submitted_at=_ts(r.submitted_at), late=r.late,
            penalty_percent=r.penalty, public_score=r.public_score, private_score=r.private_score,
            final_score=r.final_score, submissions=r.submissions, evaluation_revision=r.revision,
            feedback=[feedback_proto(f) for f in r.feedback]))
    return book


def feedback_proto(f: coursework.FeedbackItem) -> registry_pb2.Feedback:
    return registry_pb2.Feedback(run_id=f.run_id, text=f.text, author=f.author, created_at=_ts(f.created_at))


def update_of(r: registry_pb2.UpdateAssignmentRequest) -> coursework.Update:
    return coursework.Update(
        fields=set(r.fields), title=r.title, instructions=r.instructions, starter_digest=r.starter_code_digest,
        starter_key=r.starter_code_key,
        opens_at=r.opens_at.ToDatetime(tzinfo=UTC) if r.HasField("opens_at") else None,
        due_at=r.due_at.ToDatetime(tzinfo=UTC) if r.HasField("due_at") else None,
        late_policy=r.late_policy, late_penalty=r.late_penalty_percent, daily_limit=r.daily_limit,
        anonymous=r.anonymous, grade_by=r.grade_by, code_digest=r.evaluation_code_digest,
        code_key=r.evaluation_code_key, command=list(r.command))


# --- transactions ---------------------------------------------------------------------------

# The request this task is handling (set by ``add_endpoints``): a committed write names its workspaces.
_REQUEST: contextvars.ContextVar[Message | None] = contextvars.ContextVar("registry_request", default=None)


class Database:
    """Runs a function inside one transaction: on PostgreSQL in a worker thread; on SQLite (the
    embedded default) in the event loop's own thread, reads and writes alike.

    SQLite allows one writer: writes of this process take a lock so they queue here instead of
    failing with "database is locked". A SQLite transaction here is mostly the ORM's Python, under the GIL (WAL with
    synchronous=NORMAL: a commit does not wait for the disk), so a worker thread bought no
    parallelism, only two thread hand-offs per request, and a writer that held the lock while it
    waited for the GIL behind the event loop: the lock's queue, not the CPU, limited version creates
    (bench/gateway.py). The loop waits for another connection's write (the outbox marking events
    sent) through SQLite's busy timeout, a transaction's length. A unique-constraint race (two
    creators of one name) is retried once, when the domain function's own check then answers 409 or
    the idempotent result.

    After a write commits, ``on_change`` is awaited with the workspaces it changed (those its events
    name and those the request names) before the reply goes out: the registry's change notice.
    """

    def __init__(self, sessions: sessionmaker, on_commit: Callable[[], None] = lambda: None,
                 on_change: Callable[[set[str]], Awaitable[None]] | None = None) -> None:
        self._sessions = sessions
        self._on_commit = on_commit
        self._on_change = on_change
        self._sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self._write_lock = threading.Lock()

    def _run(self, fn: Callable[[Session], T], write: bool) -> tuple[T, set[str]]:
        """``fn``'s result and, for a write, the workspaces its committed transaction changed."""
        for attempt in (1, 2):
            try:
                if not write:
                    # a read ends with the session's close (its transaction rolled back), not a commit: the
                    # same snapshot, without the commit's flush and hooks (registry CPU per
                    # workspace read at c=10: 295 -> 255 us)
                    with self._sessions() as session:
                        return fn(session), set()
                # returned from inside the block: the commit runs on the way out, and a failed commit raises
                if self._sqlite:
                    with self._write_lock, self._sessions.begin() as session:
                        return fn(session), set(session.info.get(service.CHANGED_WORKSPACES, ()))
                with self._sessions.begin() as session:
                    return fn(session), set(session.info.get(service.CHANGED_WORKSPACES, ()))
            except IntegrityError as exc:
                if attempt == 2:
                    raise Conflict("the change conflicts with a concurrent change; try again") from exc
            except OperationalError as exc:  # e.g. a PostgreSQL deadlock victim
                if attempt == 2 or "deadlock" not in str(exc).lower():
                    raise
        raise AssertionError("unreachable")

    async def read(self, fn: Callable[[Session], T]) -> T:
        if self._sqlite:
            # A read of the local SQLite file is CPU under the GIL either way (WAL: no writer blocks it);
            # in the loop it saves the two thread hand-offs, a third of a read's CPU here (bench/gateway.py).
            return self._run(fn, False)[0]
        return (await asyncio.to_thread(self._run, fn, False))[0]

    async def write(self, fn: Callable[[Session], T]) -> T:
        if self._sqlite:  # see the class docstring
            result, changed = self._run(fn, True)
        else:
            result, changed = await asyncio.to_thread(self._run, fn, True)
        self._on_commit()
        changed |= request_workspaces(_REQUEST.get())
        if changed and self._on_change is not None:
            await self._on_change(changed)
        return result


def change_notifier(nc: Client) -> Callable[[set[str]], Awaitable[None]]:
    """Publishes ``registry.changed`` (payload: the slug) once per changed workspace. Core NATS, at most
    once: a gateway that may have missed one (it was disconnected) empties its cache on reconnecting,
    and its entries expire after REPROLAB_GATEWAY_READ_CACHE_SECONDS whatever happens."""

    async def notify(workspaces: set[str]) -> None:
        try:
            for slug in sorted(workspaces):
                await nc.publish(REGISTRY_CHANGED, slug.encode())
        except Exception as exc:  # the change is committed: the reply must still go out
            log.warning("change notice for %s not published: %s", sorted(workspaces), exc)

    return notify


# --- endpoints ------------------------------------------------------------------------------


class Handlers:
    """The typed handlers, one per endpoint."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def workspace_create(self, r: registry_pb2.CreateWorkspaceRequest) -> registry_pb2.Workspace:
        acc = await self.db.write(
            lambda s: service.create_workspace(session=s, actor=r.actor, slug=r.slug, title=r.title)
        )
        return workspace_proto(acc)

    async def workspace_list(self, r: registry_pb2.ListWorkspacesRequest) -> registry_pb2.WorkspaceList:
        items = await self.db.read(lambda s: service.list_workspaces(session=s, actor=r.actor))
        return registry_pb2.WorkspaceList(items=[workspace_proto(a) for a in items])

    async def workspace_get(self, r: registry_pb2.GetWorkspaceRequest) -> registry_pb2.Workspace:
        acc = await self.db.read(
            lambda s: service.get_workspace(session=s, actor=r.actor, workspace=r.workspace)
        )
        return workspace_proto(acc)

    async def member_add(self, r: registry_pb2.AddMemberRequest) -> registry_pb2.Member:
        role = service.ROLE_FROM_PROTO.get(r.role)
        member = await self.db.write(
            lambda s: service.add_member(
                session=s,
                actor=r.actor,
                workspace=r.workspace,
                user_id=r.user_id,
                username=r.username,
                role=role,
            )
        )
        return member_proto(member)

    async def member_update(self, r: registry_pb2.UpdateMemberRequest) -> registry_pb2.Member:
        role = service.ROLE_FROM_PROTO.get(r.role)
        member = await self.db.write(
            lambda s: service.update_member(
                session=s, actor=r.actor, workspace=r.workspace, user_id=r.user_id, role=role
            )
        )
        return member_proto(member)

    async def member_remove(self, r: registry_pb2.RemoveMemberRequest) -> registry_pb2.Member:
        member = await self.db.write(
            lambda s: service.remove_member(session=s, actor=r.actor, workspace=r.workspace, user_id=r.user_id)
        )
        return member_proto(member)

    async def member_list(self, r: registry_pb2.ListMembersRequest) -> registry_pb2.MemberList:
        members = await self.db.read(
            lambda s: service.list_members(session=s, actor=r.actor, workspace=r.workspace)
        )
        return registry_pb2.MemberList(items=[member_proto(m) for m in members])

    async def env_create(self, r: registry_pb2.CreateEnvironmentRequest) -> registry_pb2.Environment:
        view = await self.db.write(
            lambda s: service.create_environment(
                session=s,
                actor=r.actor,
                workspace=r.workspace,
                name=r.name,
                description=r.description,
                spec_json=r.spec_json,
                imported_from=r.imported_from,
                repository_digest=r.repository_digest,
            )
        )
        return environment_proto(view)

    async def env_list(self, r: registry_pb2.ListEnvironmentsRequest) -> registry_pb2.EnvironmentList:
        views = await self.db.read(
            lambda s: service.list_environments(session=s, actor=r.actor, workspace=r.workspace,
                                                include_archived=r.include_archived)
        )
        return registry_pb2.EnvironmentList(items=[environment_proto(v) for v in views])

    async def env_get(self, r: registry_pb2.GetEnvironmentRequest) -> registry_pb2.Environment:
        view = await self.db.read(
            lambda s: service.get_environment(
                session=s, actor=r.actor, workspace=r.workspace, environment=r.environment
            )
        )
        return environment_proto(view)

    async def env_archive(self, r: registry_pb2.ArchiveEnvironmentRequest) -> registry_pb2.Environment:
        def archive(s: Session) -> registry_pb2.Environment:
            return environment_proto(cleanup.archive_environment(
                session=s, actor=r.actor, workspace=r.workspace, environment=r.environment, archived=r.archived))

        return await self.db.write(archive)

    async def env_delete(self, r: registry_pb2.DeleteEnvironmentRequest) -> registry_pb2.Environment:
        def delete(s: Session) -> registry_pb2.Environment:
            # the reply is made before the commit: the deleted rows' attributes expire with it
            return environment_proto(cleanup.delete_environment(
                session=s, actor=r.actor, workspace=r.workspace, environment=r.environment, runs=list(r.runs)))

        return await self.db.write(delete)

    async def env_fork(self, r: registry_pb2.ForkEnvironmentRequest) -> registry_pb2.Environment:
        view = await self.db.write(
            lambda s: service.fork_environment(
                session=s,
                actor=r.actor,
                workspace=r.workspace,
                environment=r.environment,
                version=r.version,
                new_name=r.new_name,
                target_workspace=r.target_workspace,
            )
        )
        return environment_proto(view)

    async def version_create(self, r: registry_pb2.CreateVersionRequest) -> registry_pb2.Version:
        source = r.WhichOneof("source")
        view = await self.db.write(
            lambda s: service.create_version(
                session=s,
                actor=r.actor,
                workspace=r.workspace,
                environment=r.environment,
                spec_json=r.spec_json if source == "spec_json" else None,
                rollback_to=r.rollback_to if source == "rollback_to" else None,
                note=r.note,
                parent_version=r.parent_version,
            )
        )
        return version_proto(view)

    async def version_list(self, r: registry_pb2.ListVersionsRequest) -> registry_pb2.VersionList:
        views = await self.db.read(
            lambda s: service.list_versions(
                session=s, actor=r.actor, workspace=r.workspace, environment=r.environment
            )
        )
        return registry_pb2.VersionList(items=[version_proto(v) for v in views])

    async def version_get(self, r: registry_pb2.GetVersionRequest) -> registry_pb2.Version:
        run = self.db.write if r.export_kind else self.db.read
        view = await run(
            lambda s: service.get_version(
                session=s, actor=r.actor, workspace=r.workspace, environment=r.environment, number=r.number,
                export_kind=r.export_kind, export_destination=r.export_destination, export_digest=r.export_digest,
            )
        )
        return version_proto(view)

    async def version_record_image(self, r: registry_pb2.RecordImageRequest) -> registry_pb2.Version:
        view = await self.db.write(
            lambda s: service.record_image(
                session=s, workspace=r.workspace, environment=r.environment, number=r.number,
                lock_digest=r.lock_digest, image_ref=r.image_ref, image_digest=r.image_digest,
            )
        )
        return version_proto(view)

    async def dataset_register(self, r: registry_pb2.RegisterDatasetRequest) -> registry_pb2.Dataset:
        view = await self.db.write(
            lambda s: service.register_dataset(
                session=s,
                actor=r.actor,
                workspace=r.workspace,
                name=r.name,
                digest=r.digest,
                size=r.size,
                media_type=r.media_type,
                visibility=r.visibility,
                object_key=r.object_key,
            )
        )
        return dataset_proto(view)

    async def dataset_list(self, r: registry_pb2.ListDatasetsRequest) -> registry_pb2.DatasetList:
        views, total = await self.db.read(
            lambda s: (service.list_datasets(session=s, actor=r.actor, workspace=r.workspace),
                       service.datasets_total_bytes(session=s, actor=r.actor, workspace=r.workspace))
        )
        return registry_pb2.DatasetList(items=[dataset_proto(v) for v in views], total_bytes=total)

    async def dataset_delete(self, r: registry_pb2.DeleteDatasetRequest) -> registry_pb2.DatasetDeletion:
        def delete(s: Session) -> registry_pb2.DatasetDeletion:
            # the reply is made before the commit: the deleted row's attributes expire with it
            deletion = cleanup.delete_dataset(session=s, actor=r.actor, workspace=r.workspace, digest=r.digest)
            return registry_pb2.DatasetDeletion(dataset=dataset_proto(deletion.view),
                                                object_unreferenced=deletion.object_unreferenced)

        return await self.db.write(delete)

    async def dataset_get(self, r: registry_pb2.GetDatasetRequest) -> registry_pb2.Dataset:
        run = self.db.write if r.for_download else self.db.read
        view = await run(
            lambda s: service.get_dataset(
                session=s, actor=r.actor, workspace=r.workspace, digest=r.digest, for_download=r.for_download
            )
        )
        return dataset_proto(view)

    async def assignment_create(self, r: registry_pb2.CreateAssignmentRequest) -> registry_pb2.Assignment:
        return await self.db.write(
            lambda s: assignment_proto(service.create_assignment(
                session=s, actor=r.actor, workspace=r.workspace, name=r.name, title=r.title,
                environment=r.environment, version=r.version, code_digest=r.evaluation_code_digest,
                code_key=r.evaluation_code_key, labels=r.labels, predictions=r.predictions, metric=r.metric,
                higher_is_better=r.higher_is_better, command=list(r.command),
            ))
        )

    async def assignment_list(self, r: registry_pb2.ListAssignmentsRequest) -> registry_pb2.AssignmentList:
        views = await self.db.read(
            lambda s: [assignment_proto(v) for v in service.list_assignments(
                session=s, actor=r.actor, workspace=r.workspace)]
        )
        return registry_pb2.AssignmentList(items=views)

    async def assignment_get(self, r: registry_pb2.GetAssignmentRequest) -> registry_pb2.Assignment:
        return await self.db.read(
            lambda s: assignment_proto(service.get_assignment(
                session=s, actor=r.actor, workspace=r.workspace, name=r.name, for_run=r.for_run))
        )

    async def assignment_record_score(self, r: registry_pb2.RecordScoreRequest) -> registry_pb2.Score:
        at = r.scored_at.ToDatetime(tzinfo=UTC) if r.HasField("scored_at") else None
        submitted = r.submitted_at.ToDatetime(tzinfo=UTC) if r.HasField("submitted_at") else None
        rec = await self.db.write(
            lambda s: coursework.record_score(
                session=s, workspace=r.workspace, assignment=r.assignment, run_id=r.run_id, user_id=r.user_id,
                username=r.username, score=r.score, scored_at=at, private_score=r.private_score,
                revision=r.evaluation_revision, submitted_at=submitted)
        )
        return registry_pb2.Score(workspace=r.workspace, assignment=r.assignment, run_id=rec.run_id,
                                  user_id=rec.user_id, username=rec.username, score=rec.score,
                                  scored_at=_ts(rec.scored_at))

    async def assignment_leaderboard(self, r: registry_pb2.LeaderboardRequest) -> registry_pb2.Leaderboard:
        return await self.db.read(
            lambda s: leaderboard_proto(coursework.leaderboard(
                session=s, actor=r.actor, workspace=r.workspace, assignment=r.assignment))
        )

    async def assignment_update(self, r: registry_pb2.UpdateAssignmentRequest) -> registry_pb2.RescoreTargets:
        def _update(s: Any) -> registry_pb2.RescoreTargets:
            done = coursework.update_assignment(session=s, actor=r.actor, workspace=r.workspace, name=r.name,
                                                change=update_of(r))
            return registry_pb2.RescoreTargets(
                assignment=assignment_proto(service.AssignmentView(r.workspace, done.assignment, full=True)),
                run_ids=done.rescore)
        return await self.db.write(_update)

    async def assignment_admit(self, r: registry_pb2.AdmitSubmissionRequest) -> registry_pb2.Admission:
        got = await self.db.write(lambda s: coursework.admit(session=s, actor=r.actor, workspace=r.workspace,
                                                             assignment=r.assignment))
        return registry_pb2.Admission(late=got.late, penalty_percent=got.penalty, remaining_today=got.remaining)

    async def assignment_gradebook(self, r: registry_pb2.GradebookRequest) -> registry_pb2.Gradebook:
        def _read(s: Any) -> registry_pb2.Gradebook:
            acc = service.access(session=s, actor=r.actor, workspace=r.workspace)
            return gradebook_proto(coursework.gradebook(session=s, actor=r.actor, workspace=r.workspace,
                                                        assignment=r.assignment), full=acc.can_manage)
        return await self.db.read(_read)

    async def assignment_feedback(self, r: registry_pb2.FeedbackRequest) -> registry_pb2.Feedback:
        return await self.db.write(lambda s: feedback_proto(coursework.give_feedback(
            session=s, actor=r.actor, workspace=r.workspace, assignment=r.assignment, run_id=r.run_id,
            text=r.text)))

    def routes(self) -> dict[Registry, tuple[type[Message], Callable[[Message], Awaitable[Message]]]]:
        """Subject → (request type, handler); every ``Registry`` member must appear exactly once."""
        return {
            Registry.WORKSPACE_CREATE: (registry_pb2.CreateWorkspaceRequest, self.workspace_create),
            Registry.WORKSPACE_LIST: (registry_pb2.ListWorkspacesRequest, self.workspace_list),
            Registry.WORKSPACE_GET: (registry_pb2.GetWorkspaceRequest, self.workspace_get),
            Registry.MEMBER_ADD: (registry_pb2.AddMemberRequest, self.member_add),
            Registry.MEMBER_LIST: (registry_pb2.ListMembersRequest, self.member_list),
            Registry.MEMBER_UPDATE: (registry_pb2.UpdateMemberRequest, self.member_update),
            Registry.MEMBER_REMOVE: (registry_pb2.RemoveMemberRequest, self.member_remove),
            Registry.ENV_CREATE: (registry_pb2.CreateEnvironmentRequest, self.env_create),
            Registry.ENV_LIST: (registry_pb2.ListEnvironmentsRequest, self.env_list),
            Registry.ENV_GET: (registry_pb2.GetEnvironmentRequest, self.env_get),
            Registry.ENV_FORK: (registry_pb2.ForkEnvironmentRequest, self.env_fork),
            Registry.ENV_ARCHIVE: (registry_pb2.ArchiveEnvironmentRequest, self.env_archive),
            Registry.ENV_DELETE: (registry_pb2.DeleteEnvironmentRequest, self.env_delete),
            Registry.VERSION_CREATE: (registry_pb2.CreateVersionRequest, self.version_create),
            Registry.VERSION_LIST: (registry_pb2.ListVersionsRequest, self.version_list),
            Registry.VERSION_GET: (registry_pb2.GetVersionRequest, self.version_get),
            Registry.DATASET_REGISTER: (registry_pb2.RegisterDatasetRequest, self.dataset_register),
            Registry.DATASET_LIST: (registry_pb2.ListDatasetsRequest, self.dataset_list),
            Registry.DATASET_GET: (registry_pb2.GetDatasetRequest, self.dataset_get),
            Registry.DATASET_DELETE: (registry_pb2.DeleteDatasetRequest, self.dataset_delete),
            Registry.VERSION_RECORD_IMAGE: (registry_pb2.RecordImageRequest, self.version_record_image),
            Registry.ASSIGNMENT_CREATE: (registry_pb2.CreateAssignmentRequest, self.assignment_create),
            Registry.ASSIGNMENT_LIST: (registry_pb2.ListAssignmentsRequest, self.assignment_list),
            Registry.ASSIGNMENT_GET: (registry_pb2.GetAssignmentRequest, self.assignment_get),
            Registry.ASSIGNMENT_RECORD_SCORE: (registry_pb2.RecordScoreRequest, self.assignment_record_score),
            Registry.ASSIGNMENT_LEADERBOARD: (registry_pb2.LeaderboardRequest, self.assignment_leaderboard),
            Registry.ASSIGNMENT_UPDATE: (registry_pb2.UpdateAssignmentRequest, self.assignment_update),
            Registry.ASSIGNMENT_ADMIT: (registry_pb2.AdmitSubmissionRequest, self.assignment_admit),
            Registry.ASSIGNMENT_GRADEBOOK: (registry_pb2.GradebookRequest, self.assignment_gradebook),
            Registry.ASSIGNMENT_FEEDBACK: (registry_pb2.FeedbackRequest, self.assignment_feedback),
        }


def endpoint_name(subject: Registry) -> str:
    """``registry.workspace.create`` → ``workspace-create`` (micro endpoint names allow [A-Za-z0-9_-])."""
    return subject.value.removeprefix("registry.").replace(".", "-")


def _naming_request(fn: Callable[[Message], Awaitable[Message]]) -> Callable[[Message], Awaitable[Message]]:
    """Makes the request visible to ``Database.write`` (each request runs in its own task: InFlight)."""

    async def handle(request: Message) -> Message:
        token = _REQUEST.set(request)
        try:
            return await fn(request)
        finally:
            _REQUEST.reset(token)

    return handle


async def add_endpoints(micro: Service, handlers: Handlers, in_flight: InFlight) -> None:
    routes = handlers.routes()
    missing = set(Registry) - set(routes)
    if missing:
        raise RuntimeError(f"registry endpoints without a handler: {sorted(missing)}")
    for subject, (request_type, fn) in routes.items():
        await micro.add_endpoint(
            name=endpoint_name(subject),
            subject=subject.value,
            handler=in_flight.wrap(endpoint(request_type, _naming_request(fn))),
        )


def make_handlers(sessions: sessionmaker, publisher: OutboxPublisher | None, nc: Client | None = None) -> Handlers:
    return Handlers(Database(sessions, on_commit=publisher.wake if publisher is not None else lambda: None,
                             on_change=change_notifier(nc) if nc is not None else None))
