"""Clean-up: deleting what a workspace no longer needs, without breaking what still uses it.

A dataset is deleted only when nothing of the workspace names it: no version's spec mounts it and no
assignment scores against it (409 naming them otherwise; versions are immutable, so a version that used
it keeps it for good). The record goes; the activity log keeps its ``dataset.uploaded`` entry and adds a
``dataset.deleted`` one (entries are never removed from the hash chain). The stored bytes are freed by the
gateway only when no other dataset record names the same object (the gateway keeps each workspace's copy
under its own key today; the check keeps deletion safe should keys ever be shared). Runs that mounted the
dataset keep its digest in their provenance: the record of what was used stays, the bytes do not.

An environment is archived rather than deleted while anything still needs it: archived, it leaves lists
and run forms but keeps every version (pull, run again, fork all still work) and can be restored. It is
deleted only when no assignment runs in it and no other environment was forked from one of its versions
(a fork's version points at its parent for good); the gateway adds the runs check (runs live in the
runner). Archiving, restoring and deleting each add an entry to the activity log (payloads 50-52).
"""

from __future__ import annotations

from dataclasses import dataclass

from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Assignment, Dataset, Environment, Version, VersionImage
from .service import DatasetView, EnvView, _emit, _get_env, _version, access, can_change, now, ref


@dataclass(frozen=True)
class DatasetDeletion:
    view: DatasetView
    object_unreferenced: bool


def dataset_users(session: Session, workspace_id: int, slug: str, digest: str) -> list[str]:
    """What in the workspace uses the dataset: ``<ws>/<env>/v<n>`` of versions whose spec mounts it, and
    ``assignment <name>`` of assignments whose hidden labels it is."""
    users = [ref(slug, name, number) for name, number in session.execute(
        select(Environment.name, Version.number).join(Version, Version.environment_id == Environment.id)
        .where(Environment.workspace_id == workspace_id, Version.spec_json.contains(digest))
        .order_by(Environment.name, Version.number))]
    users += [f"assignment {name}" for name in session.scalars(
        select(Assignment.name).join(Dataset, Dataset.id == Assignment.labels_id)
        .where(Assignment.workspace_id == workspace_id, Dataset.digest == digest).order_by(Assignment.name))]
    return users


def delete_dataset(*, session: Session, actor: common_pb2.Actor, workspace: str, digest: str) -> DatasetDeletion:
    """Delete a dataset record (instructors and admins; ``dataset.deleted``)."""
    acc = access(session=session, actor=actor, workspace=workspace)
    query = select(Dataset).where(Dataset.workspace_id == acc.workspace.id, Dataset.digest == digest)
    if not acc.can_manage:
        # a student learns nothing about a hidden dataset: the same 404 as for none
        dataset = session.scalar(query.where(Dataset.visibility == "public"))
        if dataset is None:
            raise NotFound(f"dataset {digest!r} not found in workspace {workspace!r}")
        raise Forbidden(f"deleting datasets of workspace {workspace!r} requires the instructor or admin role")
    dataset = session.scalar(query)
    if dataset is None:
        raise NotFound(f"dataset {digest!r} not found in workspace {workspace!r}")
    users = dataset_users(session, acc.workspace.id, workspace, digest)
    if users:
        raise Conflict(f"dataset {dataset.name!r} ({digest}) is used by {', '.join(users)}; versions never change, "
                       "so it stays while they exist (make a new version without it; delete the assignment)")
    shared = session.scalar(select(Dataset.id).where(Dataset.object_key == dataset.object_key,
                                                     Dataset.id != dataset.id).limit(1))
    view = DatasetView(workspace=workspace, dataset=dataset)
    session.delete(dataset)
    _emit(session, actor, workspace, "dataset.deleted", f"datasets/{digest}", now(),
          dataset_deleted=events_pb2.DatasetDeleted(name=dataset.name, digest=digest, size=dataset.size,
                                                    bytes_freed=shared is None))
    session.flush()
    return DatasetDeletion(view=view, object_unreferenced=shared is None)


def _env_change(env: Environment) -> events_pb2.EnvironmentChange:
    return events_pb2.EnvironmentChange(name=env.name, kind=env.kind, owner=env.owner_name,
                                        forked_from=env.forked_from, versions=env.latest_version)


def _changeable_env(session: Session, actor: common_pb2.Actor, workspace: str, environment: str,
                    verb: str) -> tuple[Environment, EnvView]:
    acc = access(session=session, actor=actor, workspace=workspace)
    env = _get_env(session, acc, actor, environment, lock=True)
    if not can_change(acc, actor, env):
        raise Forbidden(f"{verb} environment {environment!r} requires the instructor or admin role "
                        "(a student may do it only to their own fork)")
    return env, EnvView(workspace=workspace, env=env, latest=_version(session, env, env.latest_version),
                        can_change=True)


def archive_environment(*, session: Session, actor: common_pb2.Actor, workspace: str, environment: str,
                        archived: bool) -> EnvView:
    """Archive (hide from lists and run forms, keep every version) or restore an environment
    (instructors and admins; a student their own fork). Doing it twice changes nothing and logs nothing."""
    env, view = _changeable_env(session, actor, workspace, environment,
                                "archiving" if archived else "restoring")
    if (env.archived_at is not None) == archived:
        return view
    env.archived_at = now() if archived else None
    field = "environment_archived" if archived else "environment_restored"
    _emit(session, actor, workspace, "environment.archived" if archived else "environment.restored",
          f"environments/{env.name}", now(), **{field: _env_change(env)})
    session.flush()
    return view


def environment_users(session: Session, workspace_id: int, slug: str, env: Environment) -> list[str]:
    """What still needs the environment: ``assignment <name>`` of assignments that run in it and
    ``fork <ws>/<env>`` of environments forked from one of its versions (forks in other workspaces are
    counted, not named: the caller may not see them)."""
    users = [f"assignment {name}" for name in session.scalars(
        select(Assignment.name).where(Assignment.workspace_id == workspace_id, Assignment.environment == env.name)
        .order_by(Assignment.name))]
    own = select(Version.id).where(Version.environment_id == env.id)
    forks = session.execute(
        select(Environment.workspace_id, Environment.name).distinct()
        .join(Version, Version.environment_id == Environment.id)
        .where(Version.parent_id.in_(own), Environment.id != env.id).order_by(Environment.name)).all()
    users += [f"fork {slug}/{name}" for ws_id, name in forks if ws_id == workspace_id]
    elsewhere = sum(1 for ws_id, _ in forks if ws_id != workspace_id)
    if elsewhere:
        users.append(f"{elsewhere} fork(s) in other workspaces")
    return users


def delete_environment(*, session: Session, actor: common_pb2.Actor, workspace: str, environment: str,
                       runs: list[str] | tuple[str, ...] = ()) -> EnvView:
    """Delete an environment and its versions (instructors and admins; a student their own fork), refused
    with 409 naming what still needs it: assignments, forks, and the ``runs`` the gateway found."""
    env, view = _changeable_env(session, actor, workspace, environment, "deleting")
    users = environment_users(session, env.workspace_id, workspace, env)
    if runs:
        shown = ", ".join(runs[:5]) + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")
        users.append(f"runs {shown}")
    if users:
        raise Conflict(f"environment {env.name!r} is still used by {'; '.join(users)}; archive it instead "
                       "(it leaves lists and run forms, every version stays reproducible, restore undoes it)")
    change = _env_change(env)
    ids = select(Version.id).where(Version.environment_id == env.id)
    session.execute(VersionImage.__table__.delete().where(VersionImage.version_id.in_(ids)))
    # one statement for all versions: their parent links point inside the environment (checked at its end)
    session.execute(Version.__table__.delete().where(Version.environment_id == env.id))
    session.delete(env)
    _emit(session, actor, workspace, "environment.deleted", f"environments/{change.name}", now(),
          environment_deleted=change)
    session.flush()
    return view
