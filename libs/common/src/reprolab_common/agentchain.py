"""The activity agent's hash chain, read on the platform side: verify it and turn entries into events.

The agent inside images (services/builder/src/reprolab_builder/agent/agent.py) is standard-library
only and self-contained, so the format is restated here rather than imported: an entry is
``{chain, seq, time, kind, details, prev, hash}`` with ``hash = sha256(prev || canonical(body))``,
``body`` the first five fields and the first ``prev`` ``sha256("reprolab-agent/1:" + chain)``;
``canonical`` is ``canonical_json(..., allow_floats=True)``, the agent's ``json.dumps`` form.
tests/builder/test_agent_image.py checks both sides agree on real chains.

Two paths lead here: the runner reads a run's chain from its outputs, the gateway receives a chain a
user syncs. Both check it, cap it, and publish each entry as an ``agent.<kind>`` event whose id is
derived from (origin, scope, chain, seq), so a chain sent again is stored once by the audit service.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from reprolab.v1 import common_pb2, events_pb2

from .canonical import canonical_json
from .nats import new_event

FORMAT = "reprolab-agent/1"
BODY_KEYS = ("chain", "seq", "time", "kind", "details")
MAX_ENTRIES = 5000
MAX_DETAILS_BYTES = 64 * 1024
_KIND = re.compile(r"^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*){0,2}$")
_CHAIN = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SECRET_URL = re.compile(r"(\w+://)[^/\s:@\"]+:[^/\s@\"]+@")
_TOKEN = re.compile(r"\brpl_[A-Za-z0-9_-]+")
_NAMESPACE = uuid.UUID("0f4d6c4e-6f0a-4c8e-9b4b-72657072616c")  # fixed: event ids must repeat


class ChainError(ValueError):
    """The entries are not a well-formed agent chain; the message says what is wrong."""


def canonical(value: Any) -> bytes:
    return canonical_json(value, allow_floats=True)


def genesis(chain: str) -> str:
    return hashlib.sha256(f"{FORMAT}:{chain}".encode()).hexdigest()


def entry_hash(prev: str, body: dict) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()


def check_shape(entries: Any) -> list[dict]:
    """Schema and size limits; raises ChainError naming the first bad entry."""
    if not isinstance(entries, list) or not entries:
        raise ChainError("entries must be a non-empty list")
    if len(entries) > MAX_ENTRIES:
        raise ChainError(f"at most {MAX_ENTRIES} entries per request")
    for i, e in enumerate(entries, start=1):
        if not isinstance(e, dict) or set(e) != {*BODY_KEYS, "prev", "hash"}:
            raise ChainError(f"entry {i}: needs exactly the keys chain, seq, time, kind, details, prev, hash")
        if not isinstance(e["chain"], str) or not _CHAIN.match(e["chain"]):
            raise ChainError(f"entry {i}: chain must be 32 lowercase hex digits")
        if not isinstance(e["seq"], int) or isinstance(e["seq"], bool) or e["seq"] < 1:
            raise ChainError(f"entry {i}: seq must be a positive integer")
        if not isinstance(e["kind"], str) or not _KIND.match(e["kind"]):
            raise ChainError(f"entry {i}: kind {str(e['kind'])[:40]!r} is not a valid kind")
        if not isinstance(e["details"], dict) or len(canonical(e["details"])) > MAX_DETAILS_BYTES:
            raise ChainError(f"entry {i}: details must be a JSON object of at most {MAX_DETAILS_BYTES} bytes")
        if not isinstance(e["time"], str) or len(e["time"]) > 40:
            raise ChainError(f"entry {i}: time must be a string")
        for key in ("prev", "hash"):
            if not isinstance(e[key], str) or not _HEX64.match(e[key]):
                raise ChainError(f"entry {i}: {key} must be 64 lowercase hex digits")
    return entries


def verify(entries: list[dict]) -> tuple[bool, str]:
    """(ok, why): the entries form one chain from its start, each linked to the one before."""
    chain = entries[0]["chain"]
    prev = genesis(chain)
    for i, e in enumerate(entries, start=1):
        if e["chain"] != chain or e["seq"] != i:
            return False, f"entry {i}: wrong chain id or sequence number (a chain is sent from its first entry)"
        if e["prev"] != prev:
            return False, f"entry {i}: does not link to the entry before it"
        if entry_hash(prev, {k: e[k] for k in BODY_KEYS}) != e["hash"]:
            return False, f"entry {i}: its hash does not match its content (edited?)"
        prev = e["hash"]
    return True, f"{len(entries)} entries verified"


def to_events(entries: list[dict], *, origin: str, scope: str, workspace: str, actor: common_pb2.Actor,
              subject: str, run_id: str = "", chain_ok: bool = True,
              time: datetime | None = None) -> list[events_pb2.Event]:
    """One ``agent.<kind>`` event per entry, with ids that repeat when the same entry is sent again."""
    started = next((e for e in entries if e["kind"] == "chain.started"), None)

    def clean(text: str) -> str:  # the agent redacts already; an old or forged agent may not have
        return _TOKEN.sub("rpl_***", _SECRET_URL.sub(r"\1***:***@", text))

    lock = ((started or {}).get("details", {}).get("image") or {}).get("lock_digest") or ""
    events = []
    for e in entries:
        ev = new_event(type=f"agent.{e['kind']}", actor=actor, workspace=workspace, subject=subject, time=time,
                       agent_entry=events_pb2.AgentEntry(
                           chain=e["chain"], seq=e["seq"], kind=e["kind"],
                           details_json=clean(canonical(e["details"]).decode()),
                           entry_time=e["time"], prev_hash=e["prev"], hash=e["hash"], origin=origin, run_id=run_id,
                           lock_digest=str(lock)[:80], chain_ok=chain_ok))
        ev.id = str(uuid.uuid5(_NAMESPACE, f"{origin}:{scope}:{e['chain']}:{e['seq']}"))
        events.append(ev)
    return events
