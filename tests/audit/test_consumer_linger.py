"""The consumer's linger (``REPROLAB_AUDIT_LINGER_SECONDS``, off by default): after a fetch that did not fill
a batch it waits that long and takes what arrived meanwhile into the same transaction. Events trickling in
one by one then cost one commit per few events instead of one each, and every event is still stored exactly
once. Real nats-server (its own, so no other test's events reach the consumer) and a real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reprolab_audit.__main__ import MIGRATIONS
from reprolab_audit.consumer import EventConsumer
from reprolab_audit.store import AuditStore
from reprolab_common.auditlog import Signer
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.nats import connect, ensure_streams, publish_event
from reprolab_common.natsserver import NatsServer
from reprolab_common.settings import CommonSettings

from .test_audit_service import events_for

pytestmark = pytest.mark.timeout(120)


async def trickle(tmp_path: Path, name: str, *, linger: float, n: int = 40, gap: float = 0.02) -> tuple[list[int], int]:
    """Publish ``n`` events ``gap`` seconds apart to a running consumer; the batch sizes it committed and
    the log's size once all are in."""
    server = NatsServer(tmp_path / f"js-{name}", log_file=tmp_path / f"nats-{name}.log").start()
    engine = make_engine(CommonSettings(data_dir=tmp_path / name), "audit")
    nc = None
    try:
        migrate(engine, MIGRATIONS)
        store = AuditStore(session_factory(engine), Signer.generate(), checkpoint_every=1000)
        nc = await connect(server.url, "linger-test")
        js = nc.jetstream()
        await ensure_streams(js)
        consumer = EventConsumer(js, store, durable=f"audit-{name}", fetch_timeout=0.2, linger=linger)
        await consumer.declare()
        batches: list[int] = []
        handle = consumer.handle

        async def counted(msgs):  # noqa: ANN001, ANN202
            batches.append(len(msgs))
            await handle(msgs)
        consumer.handle = counted
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        events = events_for("lingerws", n)
        for event in events:
            await publish_event(js, event)
            await asyncio.sleep(gap)
        await publish_event(js, events[0])  # a retried publish: deduplicated by its id, stored once
        for _ in range(200):
            if consumer.stored + consumer.duplicates >= n:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return batches, in_transaction(store.sessions, lambda s: store.head_size(s, "lingerws"))
    finally:
        if nc is not None:
            await nc.close()
        engine.dispose()
        server.stop()


async def test_a_linger_takes_trickling_events_into_fewer_commits_and_loses_none(tmp_path: Path) -> None:
    eager, eager_size = await trickle(tmp_path, "eager", linger=0.0)
    lingering, lingering_size = await trickle(tmp_path, "lingering", linger=0.25)
    assert eager_size == lingering_size == 40  # every event once, the retried publish not again
    assert sum(eager) == sum(lingering) == 40
    # 20 ms apart: without a linger most events are a commit of their own (fewer on a loaded machine, where
    # a commit outlasts the gap); a 0.25 s linger gathers about 12 into each
    assert len(lingering) <= 8 and max(lingering) >= 5, lingering
    assert len(lingering) * 2 < len(eager), (eager, lingering)
