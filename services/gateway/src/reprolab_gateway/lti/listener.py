"""Grades sent when a run is scored: a durable consumer of ``run.scored`` events on EVENTS.

The runner records the score on the leaderboard, then emits ``run.scored``; for a workspace linked to an
LMS course, the student's best score (the leaderboard's, which may be an earlier run's) is posted to the
assignment's line item. A post that fails stays visible as a failed grade (``GET .../grades``) and is sent
again by the next score or the batch "send grades"; the event is acknowledged either way, so one LMS outage
does not hold the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from nats.js.api import DeliverPolicy
from reprolab.v1 import events_pb2
from reprolab_common.nats import Stream, ensure_consumer
from sqlalchemy import select

from ..clients import RegistryClient
from ..core.natslink import NatsLink
from ..models import User
from . import audit
from .grades import post_grade, split_comment
from .models import LtiContext, LtiMember

log = logging.getLogger(__name__)

DURABLE = "gateway-lti-grades"
FILTER = "events.*.run.scored"


async def grade_on_score(app: FastAPI, event: events_pb2.Event) -> None:
    """Post the scored student's best score when the run's workspace is an LMS course."""
    assignment = event.run.assignment
    if not assignment or not event.run.score:
        return
    with app.state.sessions() as db:
        context = db.scalar(select(LtiContext).where(LtiContext.workspace == event.workspace))
        if context is None:
            return
        member = db.scalar(select(LtiMember).where(LtiMember.context_pk == context.id,
                                                   LtiMember.user_id == event.actor.user_id))
        user = db.get(User, event.actor.user_id)
        if member is None or user is None:
            return  # not someone the LMS knows in this course (an instructor trying the assignment, say)
        registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, app.state.settings.nats_timeout_seconds)
        board = await registry.leaderboard(event.workspace, assignment)
        best = next((r.score for r in board.rows if r.username == user.username), event.run.score)
        await post_grade(db, app, context, assignment=assignment, user=user, subject=member.subject, score=best,
                         comment=split_comment(board.split))


class GradeListener:
    """Runs once the gateway's NATS link is up; stopped with the app."""

    def __init__(self, app: FastAPI, link: NatsLink) -> None:
        self._app = app
        self._link = link
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lti-grades")

    async def _run(self) -> None:
        sub = None
        while not self._stop.is_set():
            try:
                if not self._link.connected:
                    await asyncio.sleep(0.5)
                    continue
                if sub is None:
                    js = self._link.client.jetstream()
                    # NEW: a first start does not post every score ever recorded
                    await ensure_consumer(js, Stream.EVENTS, DURABLE, FILTER, deliver_policy=DeliverPolicy.NEW)
                    sub = await js.pull_subscribe_bind(durable=DURABLE, stream=Stream.EVENTS.value)
                try:
                    msgs = await sub.fetch(16, timeout=1.0)
                except TimeoutError:
                    continue
                for msg in msgs:
                    event = events_pb2.Event()
                    try:
                        event.ParseFromString(msg.data)
                        await grade_on_score(self._app, event)
                    except Exception:  # a bad event or an outage: logged; the grade's status says the rest
                        log.exception("could not send the grade of %s", msg.subject)
                    await msg.ack()
            except Exception as exc:
                log.warning("LTI grade listener: %s: %s; retrying", type(exc).__name__, exc)
                sub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=2.0)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
