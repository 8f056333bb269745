"""The gateway's events: written to its outbox in the transaction of the change, shipped to EVENTS.

Sign-ins, sign-outs, password and session changes go to the platform's accounts log (the audit log of
the pseudo-workspace ``platform_accounts``: its ``_`` cannot occur in a workspace slug, so no workspace
can take that name); invites go to their workspace's log. Same transactional outbox as the other
services (``reprolab_common.outbox``); the publisher waits for the gateway's NATS link, which connects
in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.nats import new_event
from reprolab_common.outbox import OutboxPublisher, add_event
from sqlalchemy.orm import Session, sessionmaker

from ..models import OutboxEvent
from .natslink import NatsLink

log = logging.getLogger(__name__)

ACCOUNTS_LOG = "platform_accounts"


def emit(session: Session, *, type: str, actor: common_pb2.Actor, subject: str,
         workspace: str = ACCOUNTS_LOG, **payload) -> None:
    """Add an event to the outbox (committed with the caller's transaction)."""
    add_event(session, OutboxEvent, new_event(type=type, actor=actor, workspace=workspace, subject=subject,
                                              **payload))


class GatewayOutbox:
    """Runs an ``OutboxPublisher`` once the NATS link is up; ``wake()`` after a commit."""

    def __init__(self, sessions: sessionmaker, link: NatsLink) -> None:
        self._sessions = sessions
        self._link = link
        self._publisher: OutboxPublisher | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self._publisher is not None:
            self._publisher.wake()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-outbox")

    async def _run(self) -> None:
        while not self._link.connected:
            if self._stop.is_set():
                return
            await asyncio.sleep(0.2)
        self._publisher = OutboxPublisher(self._sessions, OutboxEvent, self._link.client.jetstream())
        await self._publisher.run(self._stop)

    async def close(self, flush_seconds: float = 3.0) -> None:
        self._stop.set()
        if self._publisher is not None:
            self._publisher.wake()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=flush_seconds)
        if self._publisher is not None and self._link.connected:
            try:  # what was committed just before shutdown
                await asyncio.wait_for(self._publisher.drain_once(), timeout=flush_seconds)
            except Exception as exc:
                log.warning("outbox not flushed at shutdown (kept for the next start): %s", exc)


def actor_of(user) -> common_pb2.Actor:
    return common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)


def account_event(username: str, **fields) -> events_pb2.AccountEvent:
    """An ``AccountEvent`` payload; empty fields are left out."""
    return events_pb2.AccountEvent(username=username, **{k: v for k, v in fields.items() if v})
