"""Clean-up: deleting what a workspace no longer needs, without breaking what still uses it.

A dataset is deleted only when nothing of the workspace names it: no version's spec mounts it and no
assignment scores against it (409 naming them otherwise; versions are immutable, so a version that used
it keeps it for good). The record goes; the activity log keeps its ``dataset.uploaded`` entry and adds a
``dataset.deleted`` one (entries are never removed from the hash chain). The stored bytes are freed by the
gateway only when no other dataset record names the same object (the gateway keeps each workspace's copy
under its own key today; the check keeps deletion safe should keys ever be shared). Runs that mounted the
dataset keep its digest in their provenance: the record of what was used stays, the bytes do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Assignment, Dataset, Environment, Version
from .service import DatasetView, _emit, access, now, ref


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
