"""Transactional outbox: a change and its event commit together; a publisher ships them later.

Publishing right after a commit would lose the event if NATS is down at that moment (a server
restart, say). Instead the event row commits in the same transaction as the change, and
``OutboxPublisher`` publishes pending rows in order with the event id as ``Nats-Msg-Id``
(JetStream drops a re-publish inside its dedupe window) and deletes a row once JetStream acked it.

A drain writes all its rows' publishes before it waits for any ack (one round trip per drain, not one
per event), in seq order: nats-py's ``request`` appends its message to the connection's write buffer
before its first suspension once the connection has its reply subscription, so tasks started in order
write in order; the publisher's first publish ever, which may set that subscription up, goes alone.
Only the longest prefix of acked rows is deleted; the failed row and every row after it stay and are
published again by the next drain, and JetStream stores again none of those that had landed (the same
``Nats-Msg-Id`` within the stream's duplicate window). A publish that fails before it is written (too
big, reconnect buffer full) stops the drain's later ones from being written. What pipelining cannot
rule out: the server refusing or losing one message while storing a later one of the same drain (a
stream leader change between the two, a limit one message hits and a smaller one does not); the
re-publish then lands after that later one. A dropped connection loses a tail of what was written
(TCP delivers a prefix), which keeps the order.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext
from reprolab.v1 import events_pb2
from sqlalchemy import Integer, LargeBinary, MetaData, String, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .nats import publish_event

log = logging.getLogger(__name__)


def outbox_table(base: type[DeclarativeBase]) -> type:
    """Declare the outbox model on a service's declarative base (each service owns its table)."""

    class OutboxEvent(base):  # type: ignore[valid-type, misc]
        __tablename__ = "outbox"
        seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
        event_id: Mapped[str] = mapped_column(String(64), unique=True)
        payload: Mapped[bytes] = mapped_column(LargeBinary)

    return OutboxEvent


def add_event(session: Session, model: type, event: events_pb2.Event) -> None:
    session.add(model(event_id=event.id, payload=event.SerializeToString()))


class OutboxPublisher:
    """Publishes the outbox in commit order; ``wake()`` after a commit for low latency."""

    def __init__(self, sessions: sessionmaker, model: type, js: JetStreamContext, *, batch: int = 256) -> None:
        self._sessions = sessions
        self._model = model
        self._js = js
        self._batch = batch
        self._wakeup = asyncio.Event()
        # nats-py sets up a connection's reply subscription in the first request: until one publish has
        # succeeded, a drain's first publish is awaited before any other is started (see the module doc)
        self._reply_path_ready = False

    def wake(self) -> None:
        self._wakeup.set()

    def _pending(self) -> list[tuple[int, bytes]]:
        with self._sessions() as s:
            rows = s.execute(select(self._model.seq, self._model.payload)
                             .order_by(self._model.seq).limit(self._batch)).all()
            return [(r[0], r[1]) for r in rows]

    def _done(self, seqs: list[int]) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(self._model).where(self._model.seq.in_(seqs)))

    async def drain_once(self) -> int:
        rows = await asyncio.to_thread(self._pending)
        events = []
        for _, payload in rows:
            ev = events_pb2.Event()
            ev.ParseFromString(payload)
            events.append(ev)
        acked = 0  # rows[:acked] are acked
        failure: BaseException | None = None
        tasks: list[asyncio.Task[None]] = []
        stopped = False

        async def publish(ev: events_pb2.Event) -> None:
            nonlocal stopped
            if stopped:  # an earlier publish failed before it was written: writing this one would overtake it
                raise _NotWritten
            try:
                await publish_event(self._js, ev)
            except BaseException:
                stopped = True
                raise

        try:
            if events and not self._reply_path_ready:
                await publish_event(self._js, events[0])
                acked = 1
                self._reply_path_ready = True
            # created in seq order, the tasks take their first steps (which write the message) in that order
            tasks = [asyncio.create_task(publish(ev)) for ev in events[acked:]]
            for task in tasks:
                task.add_done_callback(_retrieve)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                if not task.done() or task.cancelled():
                    break
                failure = task.exception()
                if failure is not None:
                    break
                acked += 1
            for task in tasks:
                task.cancel()  # only the drain being cancelled leaves any running
            if acked:
                await asyncio.to_thread(self._done, [seq for seq, _ in rows[:acked]])
        if failure is not None:
            raise failure
        return acked

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            # cleared before the drain, not after: a commit that wakes us while rows are being published
            # (its row possibly not among them) must start another drain at once, not wait for the timeout
            self._wakeup.clear()
            try:
                n = await self.drain_once()
                backoff = 0.2
                if n == self._batch:
                    continue
            except Exception as exc:  # NATS down or reconnecting: keep the rows, try again
                log.warning("outbox publish failed, will retry: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=1.0)
            except TimeoutError:
                pass


class _NotWritten(Exception):
    """A publish of a drain not written because an earlier one of the same drain failed first."""


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # the drain reports the first failure; later ones are expected, not "never retrieved"


__all__ = ["outbox_table", "add_event", "OutboxPublisher", "MetaData"]
