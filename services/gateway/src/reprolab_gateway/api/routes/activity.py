"""Activity: the workspace's audit log (answered by the audit service), export and verification."""

import asyncio
import re
from datetime import datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ...flows import activity_scope, verify_bundle
from ...schemas import INT64_MAX, ActivityEntry, ActivityPage, VerifyResult
from ..deps import AuditDep, RegistryDep, SettingsDep, StoreDep

router = APIRouter(prefix="/workspaces/{ws}/activity", tags=["activity"])


@router.get("", response_model=ActivityPage)
async def list_activity(
    ws: str,
    registry: RegistryDep,
    audit: AuditDep,
    actor: str = Query(default="", max_length=64, description="Only entries by this username."),
    subject: str = Query(
        default="", max_length=256, description="Only entries whose subject starts with this."
    ),
    type: str = Query(
        default="", max_length=128, description="Only entries of this type, e.g. build.succeeded."
    ),
    since: datetime | None = Query(
        default=None, description="Only entries at or after this time (ISO 8601)."
    ),
    until: datetime | None = Query(default=None, description="Only entries before this time (ISO 8601)."),
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
        200: {"content": {"application/x-ndjson": {}}, "description": "The export bundle (JSON lines)"}
    },
)
async def export_activity(
    ws: str, registry: RegistryDep, audit: AuditDep, store: StoreDep
) -> StreamingResponse:
    """Download a verifiable bundle: entries, signed checkpoints and the public key, as JSON lines
    (``reprolab audit verify FILE`` checks it offline)."""
    scope = await activity_scope(registry, ws)
    reply = await audit.export(ws, scope=scope)
    size = await asyncio.to_thread(store.size, reply.object_key)
    chunks = await asyncio.to_thread(store.open_chunks, reply.object_key)
    headers = {
        "Content-Disposition": f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", ws)}-activity.jsonl"',
        "Content-Length": str(size),
        "X-Reprolab-Entries": str(reply.entries),
    }
    if reply.sha256:
        headers["X-Reprolab-Sha256"] = reply.sha256
    return StreamingResponse(chunks, media_type="application/x-ndjson", headers=headers)


verify_router = APIRouter(prefix="/activity", tags=["activity"])


@verify_router.post(
    "/verify",
    response_model=VerifyResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def verify_activity(
    request: Request, audit: AuditDep, store: StoreDep, settings: SettingsDep
) -> VerifyResult:
    """Check an export bundle (the raw body): chain, checkpoints' signatures, and whether the keys
    are this platform's. Answers 200 either way; ``ok`` says whether it verified."""
    return VerifyResult.of(await verify_bundle(request, audit=audit, store=store, settings=settings))
