"""What ran in a session: the activity agent's chain, synced into the workspace's activity log.

Inside a session the image's agent (its root daemon, started by ``reprolab init``) keeps its chain in
``/var/lib/reprolab/activity.jsonl``: every executed cell (``cell``: code and output digests, kernel,
status, time; written by the layer's IPython extension) and every install through its pip wrapper. The
student cannot rewrite it (root-owned), and it dies with the container, so the runner copies it out while
the session runs (every culling pass) and once more just before the container is removed.

Each entry becomes one ``agent.<kind>`` event (subject ``sessions/<id>``, origin ``session``) through the
outbox, as a run's chain does (``inside.py``). Event ids derive from (session, chain, seq), so sending an
entry twice (a runner restart forgets what it sent) is deduplicated by the audit service; within one
runner only entries past the last sequence sent are added. A chain that does not verify is still recorded,
flagged ``chain_ok=false``.
"""

from __future__ import annotations

import json
import logging

from reprolab.v1 import common_pb2
from reprolab_common.agentchain import ChainError, check_shape, to_events, verify
from reprolab_common.db import utcnow
from reprolab_common.outbox import add_event
from sqlalchemy.orm import Session as Db

from ..models import OutboxEvent
from .models import NotebookSession

log = logging.getLogger(__name__)

CHAIN_PATH = "/var/lib/reprolab/activity.jsonl"
MAX_BYTES = 4 << 20


def parse(raw: bytes) -> tuple[list[dict], bool]:
    """The chain's entries and whether it verifies; ``ChainError`` when it cannot be read at all."""
    if len(raw) > MAX_BYTES:
        raise ChainError(f"the chain is larger than {MAX_BYTES} bytes")
    try:
        entries = check_shape([json.loads(line) for line in raw.decode().splitlines() if line.strip()])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChainError(str(exc)[:300]) from exc
    ok, why = verify(entries)
    if not ok:
        log.warning("a session's activity chain does not verify: %s", why)
    return entries, ok


def emit(db: Db, s: NotebookSession, entries: list[dict], *, chain_ok: bool, after: int = 0) -> int:
    """Add the entries past sequence ``after`` to the outbox as ``agent.<kind>`` events; the highest
    sequence added (``after`` when none)."""
    new = [e for e in entries if e["seq"] > after]
    if not new:
        return after
    actor = common_pb2.Actor(user_id=s.owner_id, username=s.owner_username)
    # the chain.started entry names the image's lock; keep it with every batch so each event carries it
    started = [e for e in entries if e["kind"] == "chain.started" and e not in new]
    for ev in to_events(started + new, origin="session", scope=s.id, workspace=s.workspace, actor=actor,
                        subject=f"sessions/{s.id}", chain_ok=chain_ok, time=utcnow())[len(started):]:
        add_event(db, OutboxEvent, ev)
    return max(e["seq"] for e in new)
