"""The EVENTS consumer: fetch a batch, append it to the workspace logs in one transaction, then ack it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from reprolab.v1 import events_pb2
from reprolab_common.nats import SCHEMA_VERSION, Stream, ensure_consumer

from .store import AuditStore

log = logging.getLogger(__name__)

EVENTS_FILTER = "events.>"


class EventConsumer:
    """Durable pull consumer on EVENTS. Acks only after the batch is committed, so a crash at any
    point means redelivery, and redelivered events are skipped by id: each event is stored once."""

    def __init__(self, js: JetStreamContext, store: AuditStore, *, durable: str, batch: int = 256,
                 fetch_timeout: float = 1.0, ack_wait: float = 30.0, linger: float = 0.0) -> None:
        self.js = js
        self.store = store
        self.durable = durable
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.linger = linger
        self.ack_wait = ack_wait
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0

    async def declare(self) -> None:
        await ensure_consumer(self.js, Stream.EVENTS, self.durable, EVENTS_FILTER, ack_wait=self.ack_wait)

    async def run(self, stop: asyncio.Event) -> None:
        sub = None
        failures = 0
        while not stop.is_set():
            try:
                if sub is None:
                    if failures:
                        await self.declare()  # the consumer (or the whole stream) may be gone
                    sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=Stream.EVENTS.value)
                try:
                    msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
                except TimeoutError:
                    failures = 0
                    continue
                if self.linger and len(msgs) < self.batch:
                    # A commit per trickled-in event was most of this service's CPU under load: wait a
                    # moment and take what came meanwhile into the same transaction.
                    await asyncio.sleep(self.linger)
                    try:
                        msgs += await sub.fetch(self.batch - len(msgs), timeout=self.linger)
                    except TimeoutError:
                        pass
                await self.handle(msgs)
                failures = 0
            except Exception as exc:  # NATS restarting, database unavailable, ...: wait and go on
                failures += 1
                log.warning("consumer error (%d in a row), retrying: %s: %s",
                            failures, type(exc).__name__, exc)
                if failures >= 3 and sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:
                        pass
                    sub = None
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(0.2 * failures, 2.0))
                except TimeoutError:
                    pass
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    async def handle(self, msgs: list[Msg]) -> None:
        events: list[events_pb2.Event] = []
        accepted: list[Msg] = []
        for msg in msgs:
            event = events_pb2.Event()
            try:
                event.ParseFromString(msg.data)
            except DecodeError as exc:
                await self._reject(msg, f"undecodable event: {exc}")
                continue
            if event.schema_version != SCHEMA_VERSION:
                await self._reject(msg, f"unknown schema version {event.schema_version}")
                continue
            if not event.id or not event.workspace:
                await self._reject(msg, "event without id or workspace")
                continue
            events.append(event)
            accepted.append(msg)
        if events:
            result = await self._append(events)
            self.stored += result.stored
            self.duplicates += result.duplicates
            if result.duplicates:
                log.info("skipped %d already stored event(s)", result.duplicates)
        for msg in accepted:  # only now: the batch is committed
            await msg.ack()

    async def _append(self, events: list[events_pb2.Event]):
        # A unique-id clash with a replica that stored the same redelivered event, or a short database
        # outage: retrying the whole batch is safe because appending is idempotent by event id.
        for attempt in range(1, 6):
            try:
                return await asyncio.to_thread(self.store.append, events)
            except Exception as exc:
                if attempt == 5:
                    raise
                log.warning("append failed (attempt %d), retrying: %s", attempt, exc)
                await asyncio.sleep(0.1 * attempt)
        raise AssertionError("unreachable")

    async def _reject(self, msg: Msg, why: str) -> None:
        # term(): redelivering a message we can never read would only loop forever.
        self.rejected += 1
        log.warning("rejected message on %s (%s); %d rejected so far", msg.subject, why, self.rejected)
        try:
            await msg.term()
        except Exception as exc:
            log.warning("could not terminate message on %s: %s", msg.subject, exc)


async def run_checkpointer(store: AuditStore, stop: asyncio.Event, every_seconds: float,
                           before: Callable[[], None] | None = None) -> None:
    """Every T seconds, sign a checkpoint for each workspace with entries newer than its last one
    (``before`` runs first in the same thread: it picks up a rotated signing key)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        except TimeoutError:
            pass
        try:
            if before is not None:
                await asyncio.to_thread(before)
            n = await asyncio.to_thread(store.checkpoint_pending)
            if n:
                log.debug("signed %d timed checkpoint(s)", n)
        except Exception as exc:
            log.warning("timed checkpoint failed, will retry: %s", exc)
