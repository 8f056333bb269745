"""Activity exports do not stay: the gateway removes each one once it has been streamed, and this
sweeper removes whatever was left behind (a download cut off, a gateway killed mid-stream): exports
older than ``export_ttl_seconds`` and, while the folder holds more than ``export_max_total_bytes``, the
oldest ones. It runs when the service starts and every ``export_sweep_seconds``.

Why a sweep of the folder rather than a table of exports: the object store is the only thing that
knows what is really on disk (or in the bucket), and an export is nothing but that file.
"""

from __future__ import annotations

import asyncio
import logging
import time

from reprolab_common.objectstore import ObjectStore

log = logging.getLogger(__name__)

EXPORTS_PREFIX = "exports/"


def sweep_exports(objects: ObjectStore, *, max_age: float, max_total_bytes: int, now: float | None = None) -> int:
    """Remove expired exports, then the oldest until the rest fit in ``max_total_bytes``; the count removed."""
    now = time.time() if now is None else now
    entries = sorted(objects.list_objects(EXPORTS_PREFIX), key=lambda e: (e.modified, e.key))
    total = sum(e.size for e in entries)
    removed = 0
    for entry in entries:
        if now - entry.modified <= max_age and total <= max_total_bytes:
            break  # sorted oldest first: the rest are younger and fit
        objects.delete(entry.key)
        total -= entry.size
        removed += 1
    if removed:
        log.info("removed %d activity export(s) left behind; %d bytes of exports remain", removed, total)
    return removed


async def run_export_sweeper(objects: ObjectStore, stop: asyncio.Event, *, every: float, max_age: float,
                             max_total_bytes: int) -> None:
    """Sweep now, then every ``every`` seconds until ``stop``; a failed sweep is logged and retried."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(sweep_exports, objects, max_age=max_age, max_total_bytes=max_total_bytes)
        except Exception:
            log.exception("sweeping activity exports failed; retrying in %.0f s", every)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass
