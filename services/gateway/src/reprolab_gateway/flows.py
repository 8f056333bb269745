"""Multi-step operations behind the routes: dataset upload, activity scope, bundle verification."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid

from fastapi import Request
from reprolab.v1 import audit_pb2, common_pb2, registry_pb2
from reprolab_common.errors import Forbidden, Invalid, ProblemError
from reprolab_common.objectstore import ObjectStore, check_key

from . import quotas
from .clients import AuditClient, RegistryClient, RunnerClient
from .core.config import GatewaySettings
from .core.uploads import Spooled, check_declared_length, spool

log = logging.getLogger(__name__)

UPLOADERS = frozenset({common_pb2.ROLE_ADMIN, common_pb2.ROLE_INSTRUCTOR})
OCTET_STREAM = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# What HTTP clients send by default for a raw body (curl --data-binary), not what the data is.
_NOT_A_DATA_TYPE = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def upload_media_type(header: str) -> str:
    """The dataset's media type from the upload's Content-Type, without parameters; anything odd
    becomes application/octet-stream."""
    kind = header.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.match(kind) or kind in _NOT_A_DATA_TYPE:
        return OCTET_STREAM
    return kind


def dataset_key(workspace: str, sha256_hex: str) -> str:
    try:
        return check_key(f"workspaces/{workspace}/datasets/sha256/{sha256_hex}")
    except ValueError as exc:
        raise Invalid(
            f"workspace {workspace!r} cannot name a storage location",
            errors=[("path.ws", "invalid workspace name")],
        ) from exc


def refuse_empty(spooled: Spooled, what: str) -> None:
    """An upload of zero bytes is a mistake (a wrong file name in ``curl --data-binary @file`` sends
    nothing), not an empty dataset or bundle: 422 rather than storing or verifying nothing."""
    if spooled.size == 0:
        raise Invalid(f"the request body is empty; send {what} as the body", errors=[("body", "empty")])


async def upload_dataset(
    request: Request,
    *,
    workspace: str,
    name: str,
    visibility: str,
    registry: RegistryClient,
    store: ObjectStore,
    settings: GatewaySettings,
    runner: RunnerClient | None = None,
) -> registry_pb2.Dataset:
    """Check the caller may upload (before reading a byte), spool and hash the body, store it
    content-addressed, then register it; if registering fails, remove what this upload stored.
    With ``runner``, an upload beyond the workspace's storage quota is refused (409) once spooled, before it
    is kept (bytes the workspace already has add nothing; the spool is bounded by max_upload_bytes)."""
    limit = settings.max_upload_bytes
    check_declared_length(request, limit)
    dataset_key(workspace, "0" * 64)  # a workspace name that cannot be a key fails before any work
    ws = await registry.get_workspace(workspace)
    if ws.caller_role not in UPLOADERS:
        raise Forbidden(f"only an admin or instructor of {workspace!r} can upload datasets")

    spooled = await spool(request.stream(), settings.upload_dir(), limit)
    try:
        refuse_empty(spooled, "the dataset's bytes")
        key = dataset_key(workspace, spooled.sha256)
        existed = await asyncio.to_thread(store.exists, key)
        if runner is not None and not existed:
            await quotas.check_storage(workspace, registry, runner, adding=spooled.size, what="this upload")
        if not existed:
            await asyncio.to_thread(store.put_file, key, spooled.path)
    finally:
        spooled.remove()

    digest = f"sha256:{spooled.sha256}"
    media_type = upload_media_type(request.headers.get("content-type", ""))
    try:
        return await registry.register_dataset(
            workspace,
            name=name,
            digest=digest,
            size=spooled.size,
            media_type=media_type,
            visibility=visibility,
            object_key=key,
        )
    except BaseException:
        if not existed:
            await _forget_unregistered(registry, store, workspace, digest, key)
        raise


async def _forget_unregistered(
    registry: RegistryClient, store: ObjectStore, workspace: str, digest: str, key: str
) -> None:
    # A concurrent upload of the same bytes may have registered them meanwhile; its object is ours too.
    with contextlib.suppress(ProblemError):
        await registry.get_dataset(workspace, digest)
        return
    try:
        await asyncio.to_thread(store.delete, key)
    except Exception:
        log.exception("could not remove unregistered upload %s", key)


async def activity_scope(registry: RegistryClient, workspace: str) -> int:
    """Students see their own activity; instructors, admins and platform admins the workspace's.
    Asking the registry also answers 404 for non-members."""
    ws = await registry.get_workspace(workspace)
    if registry.actor.platform_admin or ws.caller_role in UPLOADERS:
        return audit_pb2.ACTIVITY_SCOPE_WORKSPACE
    return audit_pb2.ACTIVITY_SCOPE_OWN


async def verify_bundle(
    request: Request, *, audit: AuditClient, store: ObjectStore, settings: GatewaySettings, against: str = ""
) -> audit_pb2.VerifyActivityReply:
    """Hand an uploaded export bundle to the audit service through the object store, then drop it."""
    check_declared_length(request, settings.max_upload_bytes)
    spooled = await spool(request.stream(), settings.upload_dir(), settings.max_upload_bytes)
    key = f"uploads/verify/{uuid.uuid4()}.jsonl"
    try:
        refuse_empty(spooled, "the export bundle (reprolab activity export writes one)")
        await asyncio.to_thread(store.put_file, key, spooled.path)
    finally:
        spooled.remove()
    try:
        return await audit.verify(key, against)
    finally:
        try:
            await asyncio.to_thread(store.delete, key)
        except Exception:
            log.exception("could not remove verified bundle %s", key)
