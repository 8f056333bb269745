"""Activity: the workspace's audit log (answered by the audit service), its signed checkpoints and
Merkle proofs, export and verification.

Every route asks the registry for the caller's role first (``activity_scope``), which also answers 404
to non-members. Students list and export only their own entries (others' are elided to their leaf
hashes in an export, so the tree still verifies); checkpoints and proofs hold only hashes, so every
member may fetch them.
"""

import asyncio
import logging
import re
from collections.abc import Iterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from reprolab_common.objectstore import ObjectStore

from ...core.throttle import check_quota, spend_quota
from ...flows import activity_scope, verify_bundle
from ...schemas import (
    INT64_MAX,
    ActivityEntry,
    ActivityPage,
    ConsistencyProof,
    InclusionProof,
    VerifyResult,
    ZonedTime,
)
from ..deps import AuditDep, CurrentUser, RegistryDep, SettingsDep, StoreDep
from ..params import WsPath

log = logging.getLogger(__name__)

router = APIRouter(prefix="/workspaces/{ws}/activity", tags=["activity"])

# Each export is a file until it is downloaded: a person may ask for this many per window.
EXPORTS_PER_WINDOW = 10
EXPORT_WINDOW_SECONDS = 600.0


@router.get("", response_model=ActivityPage)
async def list_activity(
    ws: WsPath,
    registry: RegistryDep,
    audit: AuditDep,
    actor: str = Query(default="", max_length=64, description="Only entries by this username."),
    subject: str = Query(
        default="", max_length=256, description="Only entries whose subject starts with this."
    ),
    type: str = Query(
        default="", max_length=128, description="Only entries of this type, e.g. build.succeeded."
    ),
    since: ZonedTime | None = Query(
        default=None, description="Only entries at or after this time (ISO 8601)."
    ),
    until: ZonedTime | None = Query(default=None, description="Only entries before this time (ISO 8601)."),
    after: int = Query(
        default=0, ge=0, le=INT64_MAX, description="Only entries with a greater seq (paging)."
    ),
    limit: int = Query(default=100, ge=1, le=1000),
) -> ActivityPage:
    """Students see their own activity; instructors and admins see the whole workspace's."""
    scope = await activity_scope(registry, ws)
    reply = await audit.query(
        ws,
        scope=scope,
        actor_name=actor,
        subject_prefix=subject,
        type=type,
        since=since,
        until=until,
        after_seq=after,
        limit=limit,
    )
    items = [ActivityEntry.of(e) for e in reply.items]
    next_after = items[-1].seq if len(items) == limit else None
    return ActivityPage(items=items, head_seq=reply.head_seq, next_after=next_after)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "The export bundle (JSON lines)"},
        429: {"description": "Too many exports lately; the Retry-After header says when to ask again"},
    },
)
async def export_activity(
    ws: WsPath, request: Request, user: CurrentUser, registry: RegistryDep, audit: AuditDep, store: StoreDep
) -> StreamingResponse:
    """Download a verifiable bundle (``reprolab-audit/2``): entries, signed checkpoints and the verifier
    keys, as JSON lines (``reprolab audit verify FILE [--against OLD.note]`` checks it offline). At most
    10 exports per person every 10 minutes (429 with Retry-After); the stored copy is removed once sent."""
    scope = await activity_scope(registry, ws)
    check_quota(request, "activity-export", user.id, limit=EXPORTS_PER_WINDOW, window=EXPORT_WINDOW_SECONDS,
                what="activity exports")
    reply = await audit.export(ws, scope=scope)
    spend_quota(request, "activity-export", user.id, window=EXPORT_WINDOW_SECONDS)
    try:
        size = await asyncio.to_thread(store.size, reply.object_key)
        chunks = _then_delete(await asyncio.to_thread(store.open_chunks, reply.object_key), store, reply.object_key)
    except BaseException:
        await asyncio.to_thread(_delete, store, reply.object_key)
        raise
    headers = {
        "Content-Disposition": f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", ws)}-activity.jsonl"',
        "Content-Length": str(size),
        "X-Reprolab-Entries": str(reply.entries),
    }
    if reply.sha256:
        headers["X-Reprolab-Sha256"] = reply.sha256
    return StreamingResponse(chunks, media_type="application/x-ndjson", headers=headers)


def _delete(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception:
        log.exception("could not remove activity export %s (the audit service's sweep will)", key)


def _then_delete(chunks: Iterator[bytes], store: ObjectStore, key: str) -> Iterator[bytes]:
    """The export's bytes, then its removal: when the download ends, or is cut off and the generator closed."""
    try:
        yield from chunks
    finally:
        _delete(store, key)


@router.post("/verify", response_model=VerifyResult)
async def verify_current_log(ws: WsPath, registry: RegistryDep, audit: AuditDep, store: StoreDep) -> VerifyResult:
    """Verify the workspace's log as it stands (what you may see of it), without downloading it: the same
    checks as verifying an export. Not recorded as an export, so checking the log does not add to it."""
    scope = await activity_scope(registry, ws)
    reply = await audit.export(ws, scope=scope, for_verification=True)
    try:
        return VerifyResult.of(await audit.verify(reply.object_key))
    finally:
        try:
            await asyncio.to_thread(store.delete, reply.object_key)
        except Exception:
            log.exception("could not remove verified export %s", reply.object_key)


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "A C2SP signed note (tlog-checkpoint)"}},
)
async def get_checkpoint(ws: WsPath, registry: RegistryDep, audit: AuditDep) -> PlainTextResponse:
    """The log's newest signed checkpoint, covering every entry: keep it, and later check that the
    log only grew (``reprolab audit verify BUNDLE --against it`` or the consistency proof)."""
    await activity_scope(registry, ws)
    cp = await audit.checkpoint(ws)
    headers = {"X-Reprolab-Origin": cp.origin, "X-Reprolab-Size": str(cp.size), "X-Reprolab-Root": cp.root,
               "X-Reprolab-Verifier-Keys": " ".join(cp.verifier_keys)}
    return PlainTextResponse(cp.note, media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/proof/inclusion", response_model=InclusionProof,
            responses={422: {"description": "The index or size is beyond the log's tree (the detail says its size)."}})
async def inclusion_proof(
    ws: WsPath,
    registry: RegistryDep,
    audit: AuditDep,
    index: int = Query(ge=0, le=INT64_MAX, description="0-based leaf index: the entry's seq - 1."),
    size: int = Query(default=0, ge=0, le=INT64_MAX, description="Tree size; 0 (default) is the newest checkpoint's."),
) -> InclusionProof:
    """RFC 9162 inclusion proof of one entry in the tree of ``size`` entries."""
    await activity_scope(registry, ws)
    return InclusionProof.of(await audit.inclusion_proof(ws, index, size))


@router.get("/proof/consistency", response_model=ConsistencyProof,
            responses={422: {"description": "A size is beyond the log's tree, or old is greater than new."}})
async def consistency_proof(
    ws: WsPath,
    registry: RegistryDep,
    audit: AuditDep,
    old: int = Query(ge=0, le=INT64_MAX, description="Size of the older tree (e.g. of a checkpoint you kept)."),
    new: int = Query(default=0, ge=0, le=INT64_MAX, description="Size of the newer tree; 0 (default) is the newest."),
) -> ConsistencyProof:
    """RFC 9162 consistency proof: the tree of ``old`` entries is a prefix of the tree of ``new``."""
    await activity_scope(registry, ws)
    return ConsistencyProof.of(await audit.consistency_proof(ws, old, new))


verify_router = APIRouter(prefix="/activity", tags=["activity"])


@verify_router.post(
    "/verify",
    response_model=VerifyResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string", "format": "binary",
                                                             "minLength": 1}}},
        }
    },
    responses={413: {"description": "The bundle is larger than REPROLAB_GATEWAY_MAX_UPLOAD_BYTES"},
               422: {"description": "The body is empty, or 'against' is not a signed checkpoint."}},
)
async def verify_activity(
    request: Request,
    audit: AuditDep,
    store: StoreDep,
    settings: SettingsDep,
    against: str = Query(
        default="", max_length=4096,
        description="A signed checkpoint you kept (the note text, URL-encoded): the bundle must extend it.",
    ),
) -> VerifyResult:
    """Check an export bundle (the raw body): every leaf, the tree, every checkpoint's signature and
    root, whether the keys are this platform's and its log has the same tree, and, with ``against``,
    that the log only grew since that checkpoint. Answers 200 either way; ``ok`` says whether it verified."""
    return VerifyResult.of(await verify_bundle(request, audit=audit, store=store, settings=settings, against=against))
