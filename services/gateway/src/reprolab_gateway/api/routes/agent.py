"""Activity from inside containers: ``reprolab activity sync`` (the agent in an image) posts its chain.

The chain is checked here (size, schema, every link from its first entry) and each entry is published
on EVENTS as an ``agent.<kind>`` event attributed to the token's user, subject ``containers/<chain>``.
The audit service stores them like any other event; the event id is derived from (user, chain, seq),
so syncing the same chain again (the agent always sends it whole, so every link can be checked) adds
only the new entries. A chain that does not verify is refused with the first broken entry named.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from reprolab_common import agentchain
from reprolab_common.agentchain import ChainError, check_shape, to_events, verify
from reprolab_common.errors import Invalid, ServiceUnavailable
from reprolab_common.nats import publish_event

from ..deps import ActorDep, NatsDep, RegistryDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces/{ws}/activity", tags=["activity"])

MAX_BODY_BYTES = 8 << 20

# What ``agentchain.check_shape`` enforces, for the OpenAPI document; that each entry links to the one
# before (``verify``) no schema can say: a chain that does not verify is a 422 naming the entry.
_HEX64 = {"type": "string", "pattern": agentchain._HEX64.pattern}
ENTRY_SCHEMA = {
    "type": "object",
    "required": [*agentchain.BODY_KEYS, "prev", "hash"],
    "additionalProperties": False,
    "properties": {
        "chain": {"type": "string", "pattern": agentchain._CHAIN.pattern},
        "seq": {"type": "integer", "minimum": 1},
        "time": {"type": "string", "maxLength": 40},
        "kind": {"type": "string", "pattern": agentchain._KIND.pattern},
        "details": {"type": "object"},
        "prev": _HEX64,
        "hash": _HEX64,
    },
}


class AgentSyncResult(BaseModel):
    chain: str
    entries: int
    published: int


@router.post(
    "/agent",
    response_model=AgentSyncResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"entries": {"type": "array", "minItems": 1, "maxItems": agentchain.MAX_ENTRIES,
                                           "items": ENTRY_SCHEMA},
                               "image": {"type": "object"}},
                "required": ["entries"]}}},
        }
    },
    responses={422: {"description": "The body is not an agent chain, or the chain does not verify (the first "
                                    "broken entry is named)."}},
)
async def sync_agent_chain(ws: WsPath, request: Request, registry: RegistryDep, actor: ActorDep,
                           link: NatsDep) -> AgentSyncResult:
    """Record a container's activity chain (``reprolab activity sync`` inside an image) in the
    workspace's activity log, attributed to you. The whole chain is sent, from its first entry."""
    await registry.get_workspace(ws)  # 404 unless a member
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Invalid(f"the chain is larger than {MAX_BODY_BYTES} bytes; export and verify it instead")
    body = bytearray()  # grows in place: ``bytes +=`` would copy the whole body per chunk
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Invalid(f"the chain is larger than {MAX_BODY_BYTES} bytes; export and verify it instead")
    try:
        doc: Any = json.loads(body)
    except ValueError as exc:
        raise Invalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise Invalid("the body must be a JSON object with an 'entries' list")
    try:
        entries = check_shape(doc.get("entries"))
    except ChainError as exc:
        raise Invalid(f"not an agent chain: {exc}") from exc
    ok, why = verify(entries)
    if not ok:
        raise Invalid(f"the chain does not verify: {why}")
    chain = entries[0]["chain"]
    events = to_events(entries, origin="sync", scope=actor.user_id, workspace=ws, actor=actor,
                       subject=f"containers/{chain}")
    js = link.client.jetstream()
    try:
        for ev in events:
            await publish_event(js, ev)
    except Exception as exc:
        raise ServiceUnavailable(f"the activity log could not take the entries now ({type(exc).__name__}); "
                                 "sync again, entries already stored are not repeated") from exc
    return AgentSyncResult(chain=chain, entries=len(entries), published=len(events))
