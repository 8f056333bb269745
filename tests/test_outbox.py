"""The transactional outbox's publisher: a commit made while a drain is publishing is shipped at once
after it, not at the next timeout (the wake-up used to be cleared after the drain, losing it)."""

from __future__ import annotations

import asyncio
import contextlib

from reprolab.v1 import events_pb2
from reprolab_common.outbox import OutboxPublisher, add_event, outbox_table
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    pass


Outbox = outbox_table(Base)


class SlowJetStream:
    """Acks each publish after ``delay`` seconds; remembers the event ids in order."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.ids: list[str] = []
        self.publishing = asyncio.Event()
        self.published = asyncio.Event()

    async def publish(self, subject: str, payload: bytes, **_: object) -> None:
        self.publishing.set()
        await asyncio.sleep(self.delay)
        ev = events_pb2.Event()
        ev.ParseFromString(payload)
        self.ids.append(ev.id)
        self.published.set()


def _commit(sessions: sessionmaker, event_id: str) -> None:
    with sessions.begin() as s:
        add_event(s, Outbox, events_pb2.Event(id=event_id, type="t", workspace="w"))


async def test_a_commit_during_a_drain_is_published_without_waiting_for_the_timeout(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    js = SlowJetStream(delay=0.2)
    publisher = OutboxPublisher(sessions, Outbox, js)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(publisher.run(stop))
    try:
        _commit(sessions, "first")
        publisher.wake()
        await asyncio.wait_for(js.publishing.wait(), 2)  # the drain of "first" has read its rows
        _commit(sessions, "second")  # committed mid-drain: not among the rows being published
        publisher.wake()
        loop = asyncio.get_running_loop()
        start = loop.time()
        with contextlib.suppress(TimeoutError):
            while "second" not in js.ids:
                js.published.clear()
                await asyncio.wait_for(js.published.wait(), 2)
        # one more publish (0.2 s) after the first drain ends; the lost wake-up made it wait the 1 s timeout
        assert js.ids == ["first", "second"]
        assert loop.time() - start < 0.7
    finally:
        stop.set()
        publisher.wake()
        await asyncio.wait_for(running, 5)
        engine.dispose()
