"""The outbox publisher against a real nats-server with JetStream (the session's ``nats_server``): the stream
holds every event once, in the order of the outbox rows; after a failure in the middle of a drain only the
acked prefix of rows is deleted and the next drain completes the stream without a duplicate or a reordering,
also when the server refuses one message and would have taken the ones after it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, DiscardPolicy
from nats.js.errors import APIError
from reprolab.v1 import events_pb2
from reprolab_common.nats import MSG_ID, Stream, ensure_streams
from reprolab_common.natsserver import NatsServer
from reprolab_common.outbox import OutboxPublisher, add_event, outbox_table
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    pass


Outbox = outbox_table(Base)
EVENT_TYPE = "outbox_test"


@pytest.fixture
async def streams(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    """The platform's streams, made (and inspected) through a connection of their own, so the publisher's
    connections below have sent no request before their first drain."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js, [Stream.EVENTS])
    yield js
    await nc.close()


@pytest.fixture
async def fresh(nats_server: NatsServer) -> AsyncIterator:
    """Opens connections that have sent nothing yet; closes them after the test."""
    opened: list[Client] = []

    async def _open() -> Client:
        nc = await nats.connect(nats_server.url)
        opened.append(nc)
        return nc

    yield _open
    for nc in opened:
        await nc.close()


@pytest.fixture
def outbox(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@contextlib.asynccontextmanager
async def limited(js: JetStreamContext, **limits) -> AsyncIterator[None]:
    """EVENTS with ``limits`` changed for the block, then as it was."""
    config = (await js.stream_info(Stream.EVENTS.value)).config
    await js.update_stream(dataclasses.replace(config, **limits))
    try:
        yield
    finally:
        await js.update_stream(config)


def commit_events(sessions: sessionmaker, workspace: str, n: int) -> list[str]:
    """``n`` events, one transaction each (as the services commit them); their ids in commit order."""
    ids = []
    for _ in range(n):
        event_id = str(uuid.uuid4())
        with sessions.begin() as s:
            add_event(s, Outbox, events_pb2.Event(id=event_id, type=EVENT_TYPE, workspace=workspace))
        ids.append(event_id)
    return ids


def pending_ids(sessions: sessionmaker) -> list[str]:
    with sessions() as s:
        return list(s.execute(select(Outbox.event_id).order_by(Outbox.seq)).scalars())


async def stored_ids(js: JetStreamContext, workspace: str) -> list[str]:
    """The ids of the workspace's events in EVENTS, in stream order, each as often as it is stored."""
    subject = f"events.{workspace}.>"
    info = await js.stream_info(Stream.EVENTS.value, subjects_filter=subject)
    count = sum((info.state.subjects or {}).values())
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        ids = []
        for _ in range(count):
            msg = await sub.next_msg(timeout=5)
            ev = events_pb2.Event()
            ev.ParseFromString(msg.data)
            assert msg.headers and msg.headers[MSG_ID] == ev.id
            ids.append(ev.id)
        return ids
    finally:
        await sub.unsubscribe()


async def test_drains_store_every_event_once_in_commit_order(streams, fresh, outbox) -> None:
    workspace = f"ws{uuid.uuid4().hex[:8]}"
    ids = commit_events(outbox, workspace, 500)

    # a connection that has sent no request yet: its first publish sets up the reply subscription
    nc = await fresh()
    assert nc._resp_sub_prefix is None  # nats-py's state before a connection's first request
    assert await OutboxPublisher(outbox, Outbox, nc.jetstream(), batch=200).drain_once() == 200
    assert pending_ids(outbox) == ids[200:]
    assert await stored_ids(streams, workspace) == ids[:200]

    # the rest through run() on another new connection: full batches of 64 follow each other at once
    publisher = OutboxPublisher(outbox, Outbox, (await fresh()).jetstream(), batch=64)
    stop = asyncio.Event()
    running = asyncio.create_task(publisher.run(stop))
    try:
        publisher.wake()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while pending_ids(outbox):
            assert loop.time() < deadline, f"{len(pending_ids(outbox))} events still pending"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        publisher.wake()
        await asyncio.wait_for(running, 10)
    assert await stored_ids(streams, workspace) == ids


async def test_a_stream_limit_hit_mid_drain_keeps_the_refused_rows_for_the_next_drain(streams, fresh, outbox) -> None:
    """A real refusal: EVENTS with a message limit and "discard new" refuses the 41st message from now on."""
    workspace = f"ws{uuid.uuid4().hex[:8]}"
    ids = commit_events(outbox, workspace, 100)
    publisher = OutboxPublisher(outbox, Outbox, (await fresh()).jetstream())
    stored = (await streams.stream_info(Stream.EVENTS.value)).state.messages
    async with limited(streams, max_msgs=stored + 40, discard=DiscardPolicy.NEW):
        with pytest.raises(APIError, match="maximum messages"):
            await publisher.drain_once()
    assert pending_ids(outbox) == ids[40:]
    assert await stored_ids(streams, workspace) == ids[:40]

    assert await publisher.drain_once() == 60
    assert pending_ids(outbox) == []
    assert await stored_ids(streams, workspace) == ids


class FailsOnceFor:
    """The real JetStreamContext, except that the publish of one event id raises ``error`` once: before the
    message is written (as nats-py refuses one, e.g. MaxPayloadError) or after it is stored (``stored=True``:
    its ack lost, nats-py's TimeoutError). Injects that one failure; nothing else changes."""

    def __init__(self, js: JetStreamContext, event_id: str, error: type[Exception], *, stored: bool) -> None:
        self.js = js
        self.event_id = event_id
        self.error = error
        self.stored = stored

    async def publish(self, subject: str, payload: bytes, **kwargs):
        failing = kwargs["headers"][MSG_ID] == self.event_id
        if failing:
            self.event_id = ""  # once
        if failing and not self.stored:
            raise self.error
        ack = await self.js.publish(subject, payload, **kwargs)
        if failing:
            raise self.error
        return ack


async def test_a_lost_ack_mid_drain_keeps_later_rows_and_the_next_drain_stores_no_duplicate(
        streams, fresh, outbox) -> None:
    workspace = f"ws{uuid.uuid4().hex[:8]}"
    ids = commit_events(outbox, workspace, 100)
    js = FailsOnceFor((await fresh()).jetstream(), ids[57], NatsTimeout, stored=True)
    publisher = OutboxPublisher(outbox, Outbox, js)  # type: ignore[arg-type]
    with pytest.raises(NatsTimeout):
        await publisher.drain_once()
    # the acked prefix is deleted; the row whose ack was lost stays although it landed, and so do those after it
    assert pending_ids(outbox) == ids[57:]
    assert await stored_ids(streams, workspace) == ids[:58]

    assert await publisher.drain_once() == 43  # its re-publish is a duplicate JetStream drops (same Nats-Msg-Id)
    assert pending_ids(outbox) == []
    assert await stored_ids(streams, workspace) == ids


async def test_a_publish_refused_before_writing_stops_the_later_ones_so_none_overtakes_it(
        streams, fresh, outbox) -> None:
    workspace = f"ws{uuid.uuid4().hex[:8]}"
    ids = commit_events(outbox, workspace, 100)
    js = FailsOnceFor((await fresh()).jetstream(), ids[30], MaxPayloadError, stored=False)
    publisher = OutboxPublisher(outbox, Outbox, js)  # type: ignore[arg-type]
    with pytest.raises(MaxPayloadError):
        await publisher.drain_once()
    assert pending_ids(outbox) == ids[30:]
    assert await stored_ids(streams, workspace) == ids[:30]  # nothing after the refused one was written

    assert await publisher.drain_once() == 70
    assert await stored_ids(streams, workspace) == ids



async def test_a_message_the_stream_refuses_holds_back_the_ones_after_it(streams, fresh, outbox) -> None:
    """A stream with a message size limit refuses one large event and would store the small ones after it:
    publishing them before that event's answer came back (pipelining) would store them first. One ack at a
    time, nothing after it is stored until it is, and the stream keeps the outbox's order."""
    workspace = f"ws{uuid.uuid4().hex[:8]}"
    ids = commit_events(outbox, workspace, 5)
    big = str(uuid.uuid4())
    with outbox.begin() as s:
        add_event(s, Outbox, events_pb2.Event(id=big, type=EVENT_TYPE, workspace=workspace, subject="x" * 4096))
    ids += [big, *commit_events(outbox, workspace, 5)]
    publisher = OutboxPublisher(outbox, Outbox, (await fresh()).jetstream())
    async with limited(streams, max_msg_size=2048):
        with pytest.raises(APIError, match="message size exceeds maximum allowed"):
            await publisher.drain_once()
    assert pending_ids(outbox) == ids[5:]
    assert await stored_ids(streams, workspace) == ids[:5]

    assert await publisher.drain_once() == 6
    assert await stored_ids(streams, workspace) == ids
