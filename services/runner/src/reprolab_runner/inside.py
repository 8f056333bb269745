"""What happened inside a run's container: the activity agent's chain, turned into the run's events.

Started by the runner (uid 65534, read-only root), the image's agent writes its chain to
``/outputs/.reprolab/activity.jsonl`` when the command goes through ``reprolab run`` or installs
packages. After the run, ``take`` moves that chain out of the collected outputs (it is not a result
of the run) into the run's work directory, and ``emit`` adds one ``agent.<kind>`` event per entry
(subject ``runs/<id>``) to the outbox in the transaction that finishes the run, so the entries reach
the audit log through the usual path (outbox → EVENTS → audit) and show in the run's activity.

The run could write anything into /outputs, so the chain is checked (shape, size, links); a chain
that does not verify is still recorded, flagged ``chain_ok=false``, rather than silently dropped.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from reprolab.v1 import common_pb2
from reprolab_common.agentchain import ChainError, check_shape, to_events, verify
from reprolab_common.db import utcnow
from reprolab_common.outbox import add_event
from sqlalchemy.orm import Session

from .models import OutboxEvent, Run

log = logging.getLogger(__name__)

CHAIN_DIR = ".reprolab"
CHAIN_FILE = "activity.jsonl"
KEPT = "inside-activity.jsonl"
MAX_BYTES = 4 << 20


def take(out_dir: Path, work_dir: Path) -> None:
    """Move the agent's chain out of the collected outputs into ``work_dir``."""
    source = out_dir / CHAIN_DIR
    if not source.is_dir() or source.is_symlink():
        return
    chain = source / CHAIN_FILE
    if chain.is_file() and not chain.is_symlink():
        work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chain, work_dir / KEPT)
    shutil.rmtree(source, ignore_errors=True)


def emit(session: Session, run: Run, work_dir: Path) -> int:
    """Add the run's inside events to the outbox; returns how many."""
    path = work_dir / KEPT
    if not path.is_file():
        return 0
    actor = common_pb2.Actor(user_id=run.requested_by_id, username=run.requested_by)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ChainError(f"the chain is larger than {MAX_BYTES} bytes")
        entries = check_shape([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
        ok, why = verify(entries)
    except (ChainError, ValueError) as exc:
        log.warning("run %s left an unreadable activity chain: %s", run.id, exc)
        entries = [{"chain": "0" * 32, "seq": 1, "time": "", "kind": "chain.unreadable",
                    "details": {"error": str(exc)[:300]}, "prev": "0" * 64, "hash": "0" * 64}]
        ok, why = False, str(exc)
    if not ok:
        log.warning("run %s: activity chain does not verify: %s", run.id, why)
    for ev in to_events(entries, origin="run", scope=run.id, workspace=run.workspace, actor=actor,
                        subject=f"runs/{run.id}", run_id=run.id, chain_ok=ok, time=utcnow()):
        add_event(session, OutboxEvent, ev)
    return len(entries)
