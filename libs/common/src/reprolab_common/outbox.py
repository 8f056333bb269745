"""Transactional outbox: a change and its event commit together; a publisher ships them later.

Publishing right after a commit would lose the event if NATS is down at that moment (a server
restart, say). Instead the event row commits in the same transaction as the change, and
``OutboxPublisher`` publishes pending rows in order with the event id as ``Nats-Msg-Id``
(JetStream drops a re-publish inside its dedupe window) and deletes a row once JetStream acked it.
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
        sent: list[int] = []
        try:
            for seq, payload in rows:
                ev = events_pb2.Event()
                ev.ParseFromString(payload)
                await publish_event(self._js, ev)
                sent.append(seq)
        finally:
            if sent:
                await asyncio.to_thread(self._done, sent)
        return len(sent)

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


__all__ = ["outbox_table", "add_event", "OutboxPublisher", "MetaData"]
