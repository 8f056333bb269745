"""The registry's domain logic: plain functions over a SQLAlchemy ``Session`` (keyword ``session``).

Every function authorises the request's ``Actor`` itself (docs/architecture.md, "Roles"); the
caller owns the transaction, so a change and the outbox rows of its events commit together.
Functions raise ``reprolab_common.errors`` exceptions for anything a user can cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath

from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound, ProblemError
from reprolab_common.nats import new_event
from reprolab_common.objectstore import check_key
from reprolab_common.outbox import add_event
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import ColumnElement, Select

from .models import (
    Assignment,
    Dataset,
    Environment,
    EnvKind,
    Member,
    Origin,
    OutboxEvent,
    Role,
    Version,
    VersionImage,
    Visibility,
    Workspace,
    now,
)
from .spec import ValidSpec, check_digest, check_name, invalid, parse_spec_json, sanitize_name

MANAGERS = (Role.ADMIN, Role.INSTRUCTOR)
# Session.info key: slugs of the workspaces a write transaction changed (see handlers.Database.write).
CHANGED_WORKSPACES = "reprolab.changed_workspaces"
MAX_TEXT = 2000


class Unauthenticated(ProblemError):
    status = 401
    title = "Unauthenticated"


@dataclass(frozen=True, slots=True)
class WorkspaceRow:
    """A workspace's columns as read for an access check: plain values, not an ORM instance (building and
    tracking the instance was a third of the check's CPU, and every registry request starts with one)."""

    id: int
    slug: str
    title: str
    created_at: datetime


@dataclass(frozen=True)
class Access:
    """The caller's standing in one workspace. Platform admins act as ``admin`` everywhere."""

    workspace: Workspace | WorkspaceRow
    role: Role
    is_member: bool

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGERS

    @property
    def slug(self) -> str:
        return self.workspace.slug


@dataclass(frozen=True)
class EnvView:
    workspace: str
    env: Environment
    latest: Version | None
    # Whether the caller may create versions of it (and so build them).
    can_change: bool = False


def can_change(acc: Access, actor: common_pb2.Actor, env: Environment) -> bool:
    """Instructors and admins change any environment; a member only their own personal fork."""
    return acc.can_manage or (env.kind == EnvKind.PERSONAL and env.owner_id == actor.user_id)


@dataclass(frozen=True)
class VersionView:
    workspace: str
    environment: str
    version: Version


@dataclass(frozen=True)
class DatasetView:
    workspace: str
    dataset: Dataset
    created: bool = False


def ref(workspace: str, environment: str, number: int) -> str:
    """The lineage reference of a version: ``<workspace>/<env>/v<n>``."""
    return f"{workspace}/{environment}/v{number}"


def _require_actor(actor: common_pb2.Actor) -> None:
    if not actor.user_id:
        raise Unauthenticated("the request carries no actor; the gateway must authenticate the caller")


def _text(value: str, loc: str, *, limit: int = MAX_TEXT, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise invalid([(loc, "is required")], "request")
    if len(value) > limit:
        raise invalid([(loc, f"is {len(value)} characters long; the limit is {limit}")], "request")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise invalid([(loc, "contains control characters")], "request")
    return value


def _emit(
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    type: str,
    subject: str,
    at: datetime,
    **payload: object,
) -> None:
    # the workspaces whose data this transaction changed: the registry tells the gateways after the commit
    session.info.setdefault(CHANGED_WORKSPACES, set()).add(workspace)
    add_event(
        session,
        OutboxEvent,
        new_event(type=type, actor=actor, workspace=workspace, subject=subject, time=at, **payload),
    )


# --- workspaces -----------------------------------------------------------------------------


def _member(session: Session, workspace_id: int, user_id: str) -> Member | None:
    return session.scalar(
        select(Member).where(Member.workspace_id == workspace_id, Member.user_id == user_id)
    )


# Every request starts here, so the statement is built once (building and coercing it cost more CPU
# than running it) and the workspace and the caller's membership come back in one round trip.
_ACCESS = (
    select(Workspace.id, Workspace.slug, Workspace.title, Workspace.created_at, Member.role)
    .outerjoin(Member, and_(Member.workspace_id == Workspace.id, Member.user_id == bindparam("user_id")))
    .where(Workspace.slug == bindparam("slug"))
)


def access(*, session: Session, actor: common_pb2.Actor, workspace: str) -> Access:
    """The caller's access to ``workspace``; 404 when it does not exist or the caller may not know it does."""
    _require_actor(actor)
    row = session.execute(_ACCESS, {"slug": workspace, "user_id": actor.user_id}).first()
    if row is None or (row[4] is None and not actor.platform_admin):
        raise NotFound(f"workspace {workspace!r} not found")
    ws_id, slug, title, created_at, member_role = row
    role = Role.ADMIN if actor.platform_admin else Role(member_role)
    return Access(workspace=WorkspaceRow(ws_id, slug, title, created_at), role=role, is_member=member_role is not None)


def create_workspace(*, session: Session, actor: common_pb2.Actor, slug: str, title: str) -> Access:
    """Create a workspace; the caller becomes its ``admin`` member."""
    _require_actor(actor)
    check_name(slug, "slug", "workspace slug")
    title = _text(title, "title", limit=200) or slug
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)) is not None:
        raise Conflict(f"workspace {slug!r} already exists; choose another slug")
    at = now()
    ws = Workspace(slug=slug, title=title, created_at=at)
    session.add(ws)
    session.flush()
    username = actor.username or actor.user_id
    session.add(
        Member(workspace_id=ws.id, user_id=actor.user_id, username=username, role=Role.ADMIN, added_at=at)
    )
    _emit(
        session,
        actor,
        slug,
        "workspace.created",
        f"workspaces/{slug}",
        at,
        workspace_created=events_pb2.WorkspaceCreated(slug=slug, title=title),
    )
    _emit(
        session,
        actor,
        slug,
        "member.added",
        f"members/{actor.user_id}",
        at,
        member_added=events_pb2.MemberAdded(
            user_id=actor.user_id, username=username, role=common_pb2.ROLE_ADMIN
        ),
    )
    return Access(workspace=ws, role=Role.ADMIN, is_member=True)


def list_workspaces(*, session: Session, actor: common_pb2.Actor) -> list[Access]:
    """Workspaces the caller belongs to; every workspace for a platform admin."""
    _require_actor(actor)
    roles = dict(
        session.execute(select(Member.workspace_id, Member.role).where(Member.user_id == actor.user_id)).all()
    )
    query = select(Workspace).order_by(Workspace.slug)
    if not actor.platform_admin:
        query = query.where(Workspace.id.in_(list(roles)))
    return [
        Access(
            workspace=ws,
            role=Role.ADMIN if actor.platform_admin else Role(roles[ws.id]),
            is_member=ws.id in roles,
        )
        for ws in session.scalars(query)
    ]


def get_workspace(*, session: Session, actor: common_pb2.Actor, workspace: str) -> Access:
    return access(session=session, actor=actor, workspace=workspace)


# --- members --------------------------------------------------------------------------------

ROLE_FROM_PROTO = {
    common_pb2.ROLE_ADMIN: Role.ADMIN,
    common_pb2.ROLE_INSTRUCTOR: Role.INSTRUCTOR,
    common_pb2.ROLE_STUDENT: Role.STUDENT,
}
ROLE_TO_PROTO = {v: k for k, v in ROLE_FROM_PROTO.items()}


def add_member(
    *,
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    user_id: str,
    username: str,
    role: Role | None,
) -> Member:
    """Add a member with an explicit role. Admins and instructors may; only admins may add an admin."""
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(f"adding members to workspace {workspace!r} requires the instructor or admin role")
    errors = []
    if role is None:
        errors.append(("role", "is required: one of admin, instructor, student"))
    if not user_id.strip():
        errors.append(("user_id", "is required"))
    if not username.strip():
        errors.append(("username", "is required"))
    if errors:
        raise invalid(errors, "request")
    user_id = _text(user_id, "user_id", limit=128)
    username = _text(username, "username", limit=128)
    assert role is not None
    if role == Role.ADMIN and acc.role != Role.ADMIN:
        raise Forbidden(f"only an admin of workspace {workspace!r} can add another admin")
    if _member(session, acc.workspace.id, user_id) is not None:
        raise Conflict(f"user {username!r} ({user_id}) is already a member of workspace {workspace!r}")
    at = now()
    member = Member(workspace_id=acc.workspace.id, user_id=user_id, username=username, role=role, added_at=at)
    session.add(member)
    _emit(
        session,
        actor,
        workspace,
        "member.added",
        f"members/{user_id}",
        at,
        member_added=events_pb2.MemberAdded(user_id=user_id, username=username, role=ROLE_TO_PROTO[role]),
    )
    return member


def _managed_member(session: Session, acc: Access, workspace: str, user_id: str, verb: str) -> Member:
    """The member a manager changes or removes (404 when the workspace has no such member)."""
    if not acc.can_manage:
        raise Forbidden(f"{verb} members of workspace {workspace!r} requires the instructor or admin role")
    if not user_id.strip():
        raise invalid([("user_id", "is required")], "request")
    member = _member(session, acc.workspace.id, user_id)
    if member is None:
        raise NotFound(f"workspace {workspace!r} has no member {user_id!r}")
    return member


def _refuse_losing_last_admin(session: Session, member: Member, workspace: str, what: str) -> None:
    if member.role != Role.ADMIN:
        return
    admins = session.scalars(
        select(Member.user_id).where(Member.workspace_id == member.workspace_id, Member.role == Role.ADMIN)
    ).all()
    if len(admins) <= 1:
        raise Conflict(
            f"{member.username!r} is the last admin of workspace {workspace!r}: make another member admin "
            f"before {what} them"
        )


def update_member(
    *, session: Session, actor: common_pb2.Actor, workspace: str, user_id: str, role: Role | None
) -> Member:
    """Change a member's role (``member.role_changed``). Admins and instructors may; only an admin may make
    or unmake an admin; the last admin cannot be demoted (409). The same role again changes nothing."""
    acc = access(session=session, actor=actor, workspace=workspace)
    member = _managed_member(session, acc, workspace, user_id, "changing the roles of")
    if role is None:
        raise invalid([("role", "is required: one of admin, instructor, student")], "request")
    previous = Role(member.role)
    if role == previous:
        return member
    if Role.ADMIN in (role, previous) and acc.role != Role.ADMIN:
        raise Forbidden(f"only an admin of workspace {workspace!r} can make or unmake an admin")
    _refuse_losing_last_admin(session, member, workspace, "demoting")
    member.role = role
    _emit(
        session,
        actor,
        workspace,
        "member.role_changed",
        f"members/{member.user_id}",
        now(),
        member_role_changed=events_pb2.MemberRoleChanged(
            user_id=member.user_id,
            username=member.username,
            role=ROLE_TO_PROTO[role],
            previous_role=ROLE_TO_PROTO[previous],
        ),
    )
    return member


def remove_member(*, session: Session, actor: common_pb2.Actor, workspace: str, user_id: str) -> Member:
    """Remove a member (``member.removed``): admins and instructors may; only an admin may remove an admin;
    never the last admin (409). Their personal forks, builds and runs stay (the lineage keeps them)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    member = _managed_member(session, acc, workspace, user_id, "removing")
    role = Role(member.role)
    if role == Role.ADMIN and acc.role != Role.ADMIN:
        raise Forbidden(f"only an admin of workspace {workspace!r} can remove an admin")
    _refuse_losing_last_admin(session, member, workspace, "removing")
    session.delete(member)
    _emit(
        session,
        actor,
        workspace,
        "member.removed",
        f"members/{member.user_id}",
        now(),
        member_removed=events_pb2.MemberRemoved(
            user_id=member.user_id, username=member.username, role=ROLE_TO_PROTO[role]
        ),
    )
    return member


def list_members(*, session: Session, actor: common_pb2.Actor, workspace: str) -> list[Member]:
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(
            f"listing the members of workspace {workspace!r} requires the instructor or admin role"
        )
    return list(
        session.scalars(
            select(Member)
            .where(Member.workspace_id == acc.workspace.id)
            .order_by(Member.username, Member.user_id)
        )
    )


# --- environments and versions --------------------------------------------------------------


def _visible(manager: bool) -> list[ColumnElement[bool]]:
    """Which environments a caller sees, the workspace and caller as bound parameters (``workspace_id``,
    ``user_id``): a workspace's managers all of them, students the workspace's own and their own forks."""
    conditions: list[ColumnElement[bool]] = [Environment.workspace_id == bindparam("workspace_id")]
    if not manager:
        conditions.append((Environment.kind == EnvKind.WORKSPACE) | (Environment.owner_id == bindparam("user_id")))
    return conditions


def _env_get_statement(manager: bool, lock: bool) -> Select:
    """One environment the caller sees, by name (bound parameter ``name``)."""
    query = select(Environment).where(*_visible(manager), Environment.name == bindparam("name"))
    # FOR UPDATE serialises version numbering on PostgreSQL (SQLite writes are serialised by the caller)
    return query.with_for_update() if lock else query


# Built once per (caller manages the workspace, lock), as _ENV_LIST: most requests name an environment.
_ENV_GET = {(m, lock): _env_get_statement(m, lock) for m in (False, True) for lock in (False, True)}


def _get_env(
    session: Session, acc: Access, actor: common_pb2.Actor, name: str, *, lock: bool = False
) -> Environment:
    env = session.scalar(_ENV_GET[(acc.can_manage, lock)],
                         {"workspace_id": acc.workspace.id, "user_id": actor.user_id, "name": name})
    if env is None:
        raise NotFound(f"environment {name!r} not found in workspace {acc.slug!r}")
    return env


_VERSION_ID = select(Version.id).where(Version.environment_id == bindparam("environment_id"),
                                       Version.number == bindparam("number"))


def _version(session: Session, env: Environment, number: int) -> Version | None:
    return session.scalar(select(Version).where(Version.environment_id == env.id, Version.number == number))


def _stored_spec(version: Version) -> ValidSpec:
    return ValidSpec(
        document=json.loads(version.spec_json), canonical_json=version.spec_json, digest=version.spec_digest
    )


def _check_datasets(session: Session, acc: Access, spec: ValidSpec) -> None:
    """Every dataset a spec mounts must be registered in the workspace (and public, for a student)."""
    wanted = [(f"spec.datasets[{i}].digest", d) for i, d in spec.dataset_digests]
    if spec.repository_digest:
        wanted.append(("spec.repository.digest", spec.repository_digest))
    if not wanted:
        return
    query = select(Dataset.digest).where(
        Dataset.workspace_id == acc.workspace.id, Dataset.digest.in_({d for _, d in wanted})
    )
    if not acc.can_manage:
        query = query.where(Dataset.visibility == Visibility.PUBLIC)
    known = set(session.scalars(query))
    errors = [
        (loc, f"dataset {d} is not registered in workspace {acc.slug!r}") for loc, d in wanted if d not in known
    ]
    if errors:
        raise invalid(errors)


def _add_version(
    session: Session,
    actor: common_pb2.Actor,
    acc: Access,
    env: Environment,
    spec: ValidSpec,
    *,
    origin: Origin,
    parent_id: int | None,
    parent_ref: str,
    rollback_to: int = 0,
    note: str = "",
    at: datetime,
) -> Version:
    env.latest_version += 1
    version = Version(
        environment_id=env.id,
        number=env.latest_version,
        spec_json=spec.canonical_json,
        spec_digest=spec.digest,
        parent_id=parent_id,
        parent_ref=parent_ref,
        origin=origin,
        rollback_to=rollback_to,
        created_by_id=actor.user_id,
        created_by=actor.username or actor.user_id,
        created_at=at,
        note=note,
    )
    session.add(version)  # flushed with its event at the commit: one unit of work, not two
    _emit(
        session,
        actor,
        acc.slug,
        "version.created",
        f"environments/{env.name}/versions/{version.number}",
        at,
        version_created=events_pb2.VersionCreated(
            environment=env.name,
            number=version.number,
            spec_digest=spec.digest,
            parent=parent_ref,
            origin=origin,
            rollback_to=rollback_to,
        ),
    )
    return version


def _add_env(
    session: Session,
    actor: common_pb2.Actor,
    acc: Access,
    *,
    name: str,
    description: str,
    kind: EnvKind,
    forked_from: str,
    at: datetime,
    imported_from: str = "",
    repository_digest: str = "",
) -> Environment:
    if (
        session.scalar(
            select(Environment.id).where(
                Environment.workspace_id == acc.workspace.id, Environment.name == name
            )
        )
        is not None
    ):
        raise Conflict(f"environment {name!r} already exists in workspace {acc.slug!r}; choose another name")
    owner = actor.username or actor.user_id
    env = Environment(
        workspace_id=acc.workspace.id,
        name=name,
        description=description,
        owner_id=actor.user_id,
        owner_name=owner,
        kind=kind,
        forked_from=forked_from,
        latest_version=0,
        created_at=at,
    )
    session.add(env)
    session.flush()
    _emit(
        session,
        actor,
        acc.slug,
        "environment.created",
        f"environments/{name}",
        at,
        environment_created=events_pb2.EnvironmentCreated(
            name=name, owner=owner, forked_from=forked_from, imported_from=imported_from,
            repository_digest=repository_digest,
        ),
    )
    return env


def create_environment(
    *, session: Session, actor: common_pb2.Actor, workspace: str, name: str, description: str, spec_json: str,
    imported_from: str = "", repository_digest: str = "",
) -> EnvView:
    """A workspace environment and its version 1 (origin ``create``). Instructors and admins only; an
    import says where its repository came from (recorded in environment.created)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(
            f"creating environments in workspace {workspace!r} requires the instructor or admin role; "
            "students can fork an environment instead"
        )
    check_name(name, "name", "environment name")
    description = _text(description, "description")
    spec = parse_spec_json(spec_json)
    _check_datasets(session, acc, spec)
    at = now()
    env = _add_env(
        session, actor, acc, name=name, description=description, kind=EnvKind.WORKSPACE, forked_from="", at=at,
        imported_from=_text(imported_from, "imported_from"), repository_digest=_text(repository_digest,
                                                                                    "repository_digest"),
    )
    version = _add_version(
        session, actor, acc, env, spec, origin=Origin.CREATE, parent_id=None, parent_ref="", at=at
    )
    return EnvView(workspace=workspace, env=env, latest=version, can_change=can_change(acc, actor, env))


def _env_list_statement(manager: bool, include_archived: bool) -> Select:
    """The environment list's statement, with the workspace and caller as bound parameters."""
    conditions = _visible(manager)
    if not include_archived:
        conditions.append(Environment.archived_at.is_(None))
    return (
        select(Environment, Version)
        .where(*conditions)
        .outerjoin(
            Version,
            and_(Version.environment_id == Environment.id, Version.number == Environment.latest_version),
        )
        .order_by(Environment.name)
        .options(joinedload(Version.image))  # in the same query, not a second one
    )


# Built once per (caller manages the workspace, archived included), like _ACCESS: building the
# statement (coercing its conditions, the join, the eager load) cost more CPU than running it.
_ENV_LIST = {(m, a): _env_list_statement(m, a) for m in (False, True) for a in (False, True)}


def list_environments(*, session: Session, actor: common_pb2.Actor, workspace: str,
                      include_archived: bool = False) -> list[EnvView]:
    """The environments the caller sees; archived ones only when asked for (issue 17 clean-up)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    rows = (
        session.execute(_ENV_LIST[(acc.can_manage, include_archived)],
                        {"workspace_id": acc.workspace.id, "user_id": actor.user_id})
        .all()  # rows unpack as tuples; Result.tuples() is deprecated in SQLAlchemy 2.1 and warns on every call
    )
    return [EnvView(workspace=workspace, env=env, latest=latest, can_change=can_change(acc, actor, env))
            for env, latest in rows]


def get_environment(
    *, session: Session, actor: common_pb2.Actor, workspace: str, environment: str
) -> EnvView:
    acc = access(session=session, actor=actor, workspace=workspace)
    env = _get_env(session, acc, actor, environment)
    return EnvView(workspace=workspace, env=env, latest=_version(session, env, env.latest_version),
                   can_change=can_change(acc, actor, env))


def create_version(
    *,
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    environment: str,
    spec_json: str | None = None,
    rollback_to: int | None = None,
    note: str = "",
    parent_version: int = 0,
) -> VersionView:
    """A new version from a spec (origin ``update``, parent = ``parent_version``, else the latest) or a
    rollback to version ``rollback_to`` (origin ``rollback``, parent = that version, same spec). A session
    saved as a new version names the version it ran: its lineage must not skip to a later one."""
    acc = access(session=session, actor=actor, workspace=workspace)
    env = _get_env(session, acc, actor, environment, lock=True)
    if env.kind == EnvKind.WORKSPACE and not acc.can_manage:
        raise Forbidden(
            f"creating versions of workspace environment {environment!r} requires the instructor or "
            "admin role; fork it to get your own copy"
        )
    if env.kind == EnvKind.PERSONAL and not acc.can_manage and env.owner_id != actor.user_id:
        raise Forbidden(f"only the owner of environment {environment!r} can create its versions")
    if env.archived_at is not None:
        raise Conflict(f"environment {environment!r} is archived; restore it before making new versions")
    note = _text(note, "note")
    at = now()
    if spec_json is not None:
        spec = parse_spec_json(spec_json)
        _check_datasets(session, acc, spec)
        if parent_version < 0:
            raise invalid([("parent_version", "must be 0 (the latest) or a version number")], "request")
        parent_number = parent_version or env.latest_version
        # only the parent's id is needed: a column read, not a Version (and its image) loaded
        parent_id = session.scalar(_VERSION_ID, {"environment_id": env.id, "number": parent_number})
        if parent_version and parent_id is None:
            raise NotFound(f"environment {environment!r} in workspace {workspace!r} has no version {parent_version}")
        version = _add_version(
            session,
            actor,
            acc,
            env,
            spec,
            origin=Origin.UPDATE,
            parent_id=parent_id,
            parent_ref=ref(workspace, env.name, parent_number) if parent_id is not None else "",
            note=note,
            at=at,
        )
    elif rollback_to is not None:
        target = _version(session, env, rollback_to) if rollback_to > 0 else None
        if target is None:
            raise invalid(
                [
                    (
                        "rollback_to",
                        f"environment {environment!r} has no version {rollback_to} to roll back "
                        f"to (versions are 1 to {env.latest_version})",
                    )
                ],
                "request",
            )
        spec = _stored_spec(target)
        _check_datasets(session, acc, spec)
        version = _add_version(
            session,
            actor,
            acc,
            env,
            spec,
            origin=Origin.ROLLBACK,
            parent_id=target.id,
            parent_ref=ref(workspace, env.name, target.number),
            rollback_to=target.number,
            note=note,
            at=at,
        )
    else:
        raise invalid(
            [("spec_json", "send spec_json (a new spec) or rollback_to (a version number)")], "request"
        )
    return VersionView(workspace=workspace, environment=env.name, version=version)


def list_versions(
    *, session: Session, actor: common_pb2.Actor, workspace: str, environment: str
) -> list[VersionView]:
    acc = access(session=session, actor=actor, workspace=workspace)
    env = _get_env(session, acc, actor, environment)
    versions = session.scalars(
        select(Version).where(Version.environment_id == env.id).order_by(Version.number)
    )
    return [VersionView(workspace=workspace, environment=env.name, version=v) for v in versions]


EXPORT_KINDS = frozenset({"binder", "oci-archive", "publish", "renv-lock"})


def get_version(
    *, session: Session, actor: common_pb2.Actor, workspace: str, environment: str, number: int,
    export_kind: str = "", export_destination: str = "", export_digest: str = "",
) -> VersionView:
    """One version. With ``export_kind`` the read is an export (a Binder folder, an OCI archive, a
    push elsewhere), recorded as ``version.exported`` in the same transaction."""
    acc = access(session=session, actor=actor, workspace=workspace)
    env = _get_env(session, acc, actor, environment)
    version = _version(session, env, number)
    if version is None:
        raise NotFound(f"environment {environment!r} in workspace {workspace!r} has no version {number}")
    if export_kind:
        if export_kind not in EXPORT_KINDS:
            raise invalid([("export_kind", f"{export_kind!r} is not one of {sorted(EXPORT_KINDS)}")], "request")
        _emit(
            session, actor, workspace, "version.exported", f"environments/{env.name}/versions/{number}",
            now(), version_exported=events_pb2.VersionExported(
                environment=env.name, version=number, kind=export_kind,
                destination=_text(export_destination, "export_destination", limit=1000),
                image_digest=export_digest),
        )
    return VersionView(workspace=workspace, environment=env.name, version=version)


def fork_environment(
    *,
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    environment: str,
    version: int = 0,
    new_name: str = "",
    target_workspace: str = "",
) -> EnvView:
    """Fork a version (0 = the latest) into a new environment whose version 1 has the same spec,
    origin ``fork`` and the source version as parent. A student's fork is ``personal`` (theirs);
    an instructor's or admin's is a ``workspace`` environment."""
    src = access(session=session, actor=actor, workspace=workspace)
    src_env = _get_env(session, src, actor, environment)
    if version < 0:
        raise invalid([("version", "must be 0 (the latest) or a version number")], "request")
    number = version or src_env.latest_version
    src_version = _version(session, src_env, number)
    if src_version is None:
        raise NotFound(f"environment {environment!r} in workspace {workspace!r} has no version {number}")
    target = (
        src
        if target_workspace in ("", workspace)
        else access(session=session, actor=actor, workspace=target_workspace)
    )
    if new_name:
        name = check_name(new_name, "new_name", "environment name")
    else:
        name = sanitize_name(f"{src_env.name}-{actor.username or actor.user_id}")
    spec = _stored_spec(src_version)
    _check_datasets(session, target, spec)
    at = now()
    forked_from = ref(workspace, src_env.name, number)
    env = _add_env(
        session,
        actor,
        target,
        name=name,
        description=src_env.description,
        kind=EnvKind.WORKSPACE if target.can_manage else EnvKind.PERSONAL,
        forked_from=forked_from,
        at=at,
    )
    first = _add_version(
        session,
        actor,
        target,
        env,
        spec,
        origin=Origin.FORK,
        parent_id=src_version.id,
        parent_ref=forked_from,
        at=at,
    )
    return EnvView(workspace=target.slug, env=env, latest=first, can_change=True)


# --- datasets -------------------------------------------------------------------------------

VISIBILITIES = {v.value for v in Visibility}


def register_dataset(
    *,
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    name: str,
    digest: str,
    size: int,
    media_type: str = "",
    visibility: str = "",
    object_key: str = "",
) -> DatasetView:
    """Record an uploaded blob. Registering a digest the workspace already has returns that record.
    ``visibility`` defaults to ``hidden``: a forgotten flag must not show evaluation data to students."""
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(
            f"uploading datasets to workspace {workspace!r} requires the instructor or admin role"
        )
    check_digest(digest)
    existing = session.scalar(
        select(Dataset).where(Dataset.workspace_id == acc.workspace.id, Dataset.digest == digest)
    )
    if existing is not None:
        return DatasetView(workspace=workspace, dataset=existing, created=False)
    errors = []
    name = _text(name, "name", limit=200, required=True)
    # runs and specs name datasets: two different files under one name would make "iris.csv" ambiguous
    same_name = session.scalar(
        select(Dataset).where(Dataset.workspace_id == acc.workspace.id, Dataset.name == name)
    )
    if same_name is not None:
        raise Conflict(
            f"a different dataset named {name!r} already exists in workspace {workspace!r} "
            f"({same_name.digest}, uploaded by {same_name.uploaded_by}); upload this file under another name"
        )
    if size < 0:
        errors.append(("size", "must be zero or more bytes"))
    visibility = visibility or Visibility.HIDDEN
    if visibility not in VISIBILITIES:
        errors.append(("visibility", f"{visibility!r} is not one of public, hidden"))
    media_type = _text(media_type, "media_type", limit=255) or "application/octet-stream"
    object_key = object_key or f"datasets/sha256/{digest.removeprefix('sha256:')}"
    try:
        check_key(object_key)
    except ValueError as exc:
        errors.append(("object_key", str(exc)))
    if errors:
        raise invalid(errors, "request")
    at = now()
    dataset = Dataset(
        workspace_id=acc.workspace.id,
        digest=digest,
        name=name,
        size=size,
        media_type=media_type,
        visibility=visibility,
        object_key=object_key,
        uploaded_by_id=actor.user_id,
        uploaded_by=actor.username or actor.user_id,
        created_at=at,
    )
    session.add(dataset)
    _emit(
        session,
        actor,
        workspace,
        "dataset.uploaded",
        f"datasets/{digest}",
        at,
        dataset_uploaded=events_pb2.DatasetUploaded(
            name=name, digest=digest, size=size, visibility=visibility
        ),
    )
    return DatasetView(workspace=workspace, dataset=dataset, created=True)


def list_datasets(*, session: Session, actor: common_pb2.Actor, workspace: str) -> list[DatasetView]:
    """All datasets for instructors and admins; public ones for students."""
    acc = access(session=session, actor=actor, workspace=workspace)
    query = select(Dataset).where(Dataset.workspace_id == acc.workspace.id)
    if not acc.can_manage:
        query = query.where(Dataset.visibility == Visibility.PUBLIC)
    return [
        DatasetView(workspace=workspace, dataset=d)
        for d in session.scalars(query.order_by(Dataset.name, Dataset.created_at))
    ]


def datasets_total_bytes(*, session: Session, actor: common_pb2.Actor, workspace: str) -> int:
    """Bytes of every dataset of the workspace, hidden ones too (members only): what its storage quota
    counts of datasets. Each digest is stored once per workspace, so this is what the store holds."""
    acc = access(session=session, actor=actor, workspace=workspace)
    total = session.scalar(select(func.coalesce(func.sum(Dataset.size), 0)).where(
        Dataset.workspace_id == acc.workspace.id))
    return int(total or 0)


def get_dataset(
    *, session: Session, actor: common_pb2.Actor, workspace: str, digest: str, for_download: bool = False
) -> DatasetView:
    """One dataset (a hidden one is 404 for students). ``for_download`` records ``dataset.downloaded``."""
    acc = access(session=session, actor=actor, workspace=workspace)
    query = select(Dataset).where(Dataset.workspace_id == acc.workspace.id, Dataset.digest == digest)
    if not acc.can_manage:
        query = query.where(Dataset.visibility == Visibility.PUBLIC)
    dataset = session.scalar(query)
    if dataset is None:
        raise NotFound(f"dataset {digest!r} not found in workspace {workspace!r}")
    if for_download:
        _emit(
            session,
            actor,
            workspace,
            "dataset.downloaded",
            f"datasets/{digest}",
            now(),
            dataset_downloaded=events_pb2.DatasetDownloaded(name=dataset.name, digest=digest),
        )
    return DatasetView(workspace=workspace, dataset=dataset)


def record_image(
    *, session: Session, workspace: str, environment: str, number: int, lock_digest: str, image_ref: str,
    image_digest: str,
) -> VersionView:
    """Record the image a build made of a version (called by the builder, not by users; in a cluster
    NATS account permissions keep everyone else off this subject). Idempotent for the same digest;
    a different digest for a version that already has one is refused."""
    row = session.execute(
        select(Version, Environment.name)
        .join(Environment, Version.environment_id == Environment.id)
        .join(Workspace, Environment.workspace_id == Workspace.id)
        .where(Workspace.slug == workspace, Environment.name == environment, Version.number == number)
    ).first()
    if row is None:
        raise NotFound(f"environment {environment!r} in workspace {workspace!r} has no version {number}")
    version, env_name = row
    check_digest(lock_digest, "lock_digest")
    check_digest(image_digest, "image_digest")
    existing = session.execute(select(VersionImage).where(VersionImage.version_id == version.id)).scalar_one_or_none()
    if existing is not None:
        if existing.image_digest != image_digest:
            raise Conflict(f"version {number} of {environment!r} already has image {existing.image_digest}; "
                           "a version never points at two images")
    else:
        session.add(VersionImage(version_id=version.id, lock_digest=lock_digest, image_ref=image_ref,
                                 image_digest=image_digest, recorded_at=now()))
        session.flush()
    session.refresh(version)
    version.image  # noqa: B018 - load the relationship while the session is open
    return VersionView(workspace=workspace, environment=env_name, version=version)


# --- assignments and the leaderboard --------------------------------------------------------

DEFAULT_EVAL_COMMAND = ("python3", "evaluate.py")


@dataclass(frozen=True)
class AssignmentView:
    workspace: str
    assignment: Assignment
    # Whether the object keys and the labels may leave the registry in the reply.
    full: bool


def _predictions_path(value: str) -> str:
    value = value.strip()
    path = PurePosixPath(value)
    if (not value or path.is_absolute() or ".." in path.parts or value.endswith("/")
            or any(ord(c) < 32 for c in value) or len(value) > 255):
        raise invalid([("predictions", f"{value!r} must be a relative file path under /outputs, "
                                       "e.g. predictions.csv")], "request")
    return path.as_posix()


def create_assignment(
    *,
    session: Session,
    actor: common_pb2.Actor,
    workspace: str,
    name: str,
    title: str,
    environment: str,
    version: int,
    code_digest: str,
    code_key: str,
    labels: str,
    predictions: str,
    metric: str,
    higher_is_better: bool,
    command: list[str] | None = None,
) -> AssignmentView:
    """An assignment (instructors and admins). The labels must be a hidden dataset of the workspace:
    a public one would let students read the answers. ``version`` 0 pins the latest version now."""
    acc = access(session=session, actor=actor, workspace=workspace)
    if not acc.can_manage:
        raise Forbidden(f"creating assignments in workspace {workspace!r} requires the instructor or admin role")
    check_name(name, "name", "assignment name")
    title = _text(title, "title", limit=200) or name
    env = _get_env(session, acc, actor, environment)
    number = version or env.latest_version
    if _version(session, env, number) is None:
        raise invalid([("version", f"environment {environment!r} has no version {number}")], "request")
    check_digest(code_digest, "evaluation_code")
    try:
        check_key(code_key)
    except ValueError as exc:
        raise invalid([("evaluation_code", str(exc))], "request") from exc
    query = select(Dataset).where(Dataset.workspace_id == acc.workspace.id)
    query = query.where(Dataset.digest == labels) if labels.startswith("sha256:") else query.where(
        Dataset.name == labels).order_by(Dataset.created_at.desc())
    dataset = session.scalars(query).first()
    if dataset is None:
        raise invalid([("labels", f"no dataset {labels!r} in workspace {workspace!r}")], "request")
    if dataset.visibility != Visibility.HIDDEN:
        raise invalid([("labels", f"dataset {dataset.name!r} is {dataset.visibility}; the labels of an "
                                  "assignment must be a hidden dataset so students never see them")], "request")
    predictions = _predictions_path(predictions)
    metric = _text(metric, "metric", limit=63) or "score"
    command = list(command or DEFAULT_EVAL_COMMAND)
    if len(command) > 64 or any(len(c) > 1000 for c in command):
        raise invalid([("command", "at most 64 arguments of 1000 characters")], "request")
    if session.scalar(select(Assignment.id).where(Assignment.workspace_id == acc.workspace.id,
                                                  Assignment.name == name)) is not None:
        raise Conflict(f"assignment {name!r} already exists in workspace {workspace!r}; choose another name")
    at = now()
    assignment = Assignment(
        workspace_id=acc.workspace.id, name=name, title=title, environment=env.name, version=number,
        code_digest=code_digest, code_key=code_key, labels_id=dataset.id, predictions=predictions,
        metric=metric, higher_is_better=higher_is_better, command_json=json.dumps(command),
        created_by_id=actor.user_id, created_by=actor.username or actor.user_id, created_at=at,
    )
    session.add(assignment)
    session.flush()
    session.refresh(assignment)
    _emit(
        session, actor, workspace, "assignment.created", f"assignments/{name}", at,
        assignment_created=events_pb2.AssignmentCreated(
            name=name, environment=env.name, version=number, evaluation_code_digest=code_digest,
            labels_digest=dataset.digest, metric=metric, higher_is_better=higher_is_better),
    )
    return AssignmentView(workspace=workspace, assignment=assignment, full=True)


def _get_assignment(session: Session, acc: Access, name: str) -> Assignment:
    assignment = session.scalar(select(Assignment).where(Assignment.workspace_id == acc.workspace.id,
                                                         Assignment.name == name))
    if assignment is None:
        raise NotFound(f"assignment {name!r} not found in workspace {acc.slug!r}")
    return assignment


def list_assignments(*, session: Session, actor: common_pb2.Actor, workspace: str) -> list[AssignmentView]:
    acc = access(session=session, actor=actor, workspace=workspace)
    rows = session.scalars(select(Assignment).where(Assignment.workspace_id == acc.workspace.id)
                           .order_by(Assignment.name))
    return [AssignmentView(workspace=workspace, assignment=a, full=acc.can_manage) for a in rows]


def get_assignment(
    *, session: Session, actor: common_pb2.Actor, workspace: str, name: str, for_run: bool = False
) -> AssignmentView:
    """Members see an assignment; the evaluation's object keys and labels only instructors and admins,
    or the gateway resolving it for a run (``for_run``; they go to the runner, never to the student)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    return AssignmentView(workspace=workspace, assignment=_get_assignment(session, acc, name),
                          full=acc.can_manage or for_run)


def parse_score(value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        number = None
    if number is None or not number.is_finite() or len(value) > 64:
        raise invalid([("score", f"{value!r} is not a finite decimal number")], "request")
    return number
