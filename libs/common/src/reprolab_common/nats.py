"""NATS and JetStream: connection, streams, events and request/reply over the NATS services API."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import nats
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from nats.micro import Request
from reprolab.v1 import common_pb2, events_pb2

from .errors import ProblemError, ServiceUnavailable
from .outage import outage_problem

log = logging.getLogger(__name__)

SCHEMA_VERSION = common_pb2.SCHEMA_VERSION_1
MSG_ID = "Nats-Msg-Id"
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
# On the last message of a build's or run's log (LOGS stream): its value is the outcome.
LOG_END_HEADER = "Reprolab-Log-End"


class Stream(StrEnum):
    JOBS = "JOBS"
    EVENTS = "EVENTS"
    LOGS = "LOGS"


class JobSubject(StrEnum):
    BUILD = "jobs.build"
    RUN = "jobs.run"


DAY = 24 * 3600

STREAMS: dict[Stream, StreamConfig] = {
    # Work queue: a message leaves when a worker acks it; a dedupe window of one hour makes a
    # repeated lock digest or run id join the job already queued.
    Stream.JOBS: StreamConfig(
        name="JOBS", subjects=["jobs.>"], retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE, duplicate_window=3600.0, discard=DiscardPolicy.OLD,
    ),
    # Limits retention: every consumer (audit, gateway live status) reads every event.
    Stream.EVENTS: StreamConfig(
        name="EVENTS", subjects=["events.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, duplicate_window=600.0, max_age=30.0 * DAY,
    ),
    Stream.LOGS: StreamConfig(
        name="LOGS", subjects=["logs.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, max_age=7.0 * DAY,
    ),
}


def connect_options(user: str | None = None, password: str | None = None,
                    tls_ca_file: str | Path | None = None) -> dict[str, Any]:
    """Credentials, the identity's own reply inbox prefix (its permissions allow no other) and TLS."""
    from .buspermissions import inbox_prefix

    options: dict[str, Any] = {}
    if user:
        options.update(user=user, password=password or "", inbox_prefix=inbox_prefix(user))
    if tls_ca_file:
        options["tls"] = ssl.create_default_context(cafile=str(tls_ca_file))
    return options


def credentials(common: Any) -> dict[str, Any]:
    """The ``connect`` keywords of a ``CommonSettings`` (its NATS user, password and TLS CA)."""
    password = common.nats_password.get_secret_value() if common.nats_password else None
    return {"user": common.nats_user, "password": password, "tls_ca_file": common.nats_tls_ca_file}


async def connect(url: str, name: str, initial_timeout: float = 120.0, *, user: str | None = None,
                  password: str | None = None, tls_ca_file: str | Path | None = None) -> Client:
    """Connect and keep reconnecting forever: a NATS restart must never take a service down."""

    async def _disconnected() -> None:
        log.warning("%s: disconnected from NATS", name)

    async def _reconnected() -> None:
        log.info("%s: reconnected to NATS", name)

    async def _error(exc: Exception) -> None:
        log.warning("%s: NATS error: %s", name, exc)

    # The first connect is retried too: services may start before NATS (a pod scheduled first).
    deadline = asyncio.get_running_loop().time() + initial_timeout
    delay = 0.2
    while True:
        try:
            return await nats.connect(
                url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                allow_reconnect=True, connect_timeout=5,
                disconnected_cb=_disconnected, reconnected_cb=_reconnected, error_cb=_error,
                **connect_options(user, password, tls_ca_file),
            )
        except Exception as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("%s: NATS at %s not reachable yet (%s); retrying", name, url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_streams(js: JetStreamContext, streams: list[Stream] | None = None, *, replicas: int = 1) -> None:
    """Create or update the streams (``replicas`` copies of each: 3 on a JetStream cluster); safe to call
    from every service at every start."""
    for stream in streams or list(STREAMS):
        cfg = dataclasses.replace(STREAMS[stream], num_replicas=replicas)
        try:
            await js.stream_info(cfg.name)
            await js.update_stream(cfg)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except Exception:  # another service created it between our two calls
                await js.update_stream(cfg)


async def ensure_consumer(js: JetStreamContext, stream: Stream, durable: str, filter_subject: str, *,
                          ack_wait: float = 30.0, max_deliver: int = -1,
                          deliver_policy: DeliverPolicy = DeliverPolicy.ALL) -> None:
    """Create or update a durable pull consumer."""
    cfg = ConsumerConfig(
        durable_name=durable, filter_subject=filter_subject, ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait, max_deliver=max_deliver, deliver_policy=deliver_policy, max_ack_pending=10_000,
    )
    await js.add_consumer(stream.value, cfg)


# --- events ---------------------------------------------------------------------------------

def new_event(*, type: str, actor: common_pb2.Actor, workspace: str, subject: str,
              time: datetime | None = None, **payload: Message) -> events_pb2.Event:
    """Build an event; ``payload`` is one keyword naming the oneof field, e.g. ``workspace_created=...``."""
    ev = events_pb2.Event(schema_version=SCHEMA_VERSION, id=str(uuid.uuid4()), type=type,
                          workspace=workspace, subject=subject)
    ev.actor.CopyFrom(actor)
    ev.time.FromDatetime(time or datetime.now(UTC))
    for field, message in payload.items():
        getattr(ev, field).CopyFrom(message)
    return ev


def event_subject(event: events_pb2.Event) -> str:
    return f"events.{event.workspace}.{event.type}"


async def publish_event(js: JetStreamContext, event: events_pb2.Event, timeout: float = 5.0) -> None:
    """Publish with the event id as ``Nats-Msg-Id`` so a retried publish is stored once."""
    await js.publish(event_subject(event), event.SerializeToString(), timeout=timeout,
                     stream=Stream.EVENTS.value, headers={MSG_ID: event.id})


async def keep_in_progress(msg: Any, ack_wait: float) -> None:
    """Tell JetStream a job is still being worked on every third of ``ack_wait`` until cancelled, so it is
    redelivered only when the worker really died."""
    while True:
        await asyncio.sleep(max(ack_wait / 3, 0.5))
        try:
            await msg.in_progress()
        except Exception as exc:
            log.warning("in_progress failed: %s", exc)


# --- request/reply (NATS services API) -----------------------------------------------------

Req = TypeVar("Req", bound=Message)
Rep = TypeVar("Rep", bound=Message)


def endpoint(request_type: type[Req], handler: Callable[[Req], Awaitable[Message]]
             ) -> Callable[[Request], Awaitable[None]]:
    """Wrap a typed handler as a ``nats.micro`` handler: decode the request, encode the reply,
    and turn a ``ProblemError`` into a services-API error reply carrying a ``Problem``."""

    async def _handle(req: Request) -> None:
        try:
            message = request_type()
            try:
                message.ParseFromString(req.data)
            except DecodeError as exc:
                raise ProblemError(f"undecodable {request_type.__name__}: {exc}", status=400) from exc
            reply = await handler(message)
        except ProblemError as exc:
            await req.respond_error(str(exc.status), exc.title, exc.to_proto().SerializeToString())
            return
        except Exception as exc:
            outage = outage_problem(exc, req.subject.split(".", 1)[0])
            if outage is not None:  # a dependency is down or full: the caller retries, no stack trace
                log.warning("handler for %s: %s", req.subject, outage.detail)
                await req.respond_error(str(outage.status), outage.title, outage.to_proto().SerializeToString())
                return
            log.exception("handler for %s failed", req.subject)
            problem = ProblemError("the service failed while handling this request; it has been logged",
                                   status=500, title="Internal error")
            await req.respond_error("500", problem.title, problem.to_proto().SerializeToString())
            return
        await req.respond(reply.SerializeToString())

    return _handle


class InFlight:
    """Runs each request in its own task: ``nats.micro`` awaits a handler before it takes the next
    message of its endpoint, so without this one slow request (locking a spec takes seconds) would
    hold up every other request to the endpoint. ``wait`` lets a stopping service finish them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def wrap(self, handler: Callable[[Request], Awaitable[None]]) -> Callable[[Request], Awaitable[None]]:
        async def _spawn(req: Request) -> None:
            task = asyncio.create_task(handler(req))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        return _spawn

    async def wait(self, seconds: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=seconds)


async def call(nc: Client, subject: str, request: Message, reply_type: type[Rep], *,
               timeout: float = 10.0) -> Rep:
    """Request/reply to a service endpoint; raises ``ProblemError`` with the service's problem."""
    try:
        msg = await nc.request(subject, request.SerializeToString(), timeout=timeout)
    except (NoRespondersError, NatsTimeout) as exc:
        service = subject.split(".", 1)[0]
        raise ServiceUnavailable(f"the {service} service did not answer ({type(exc).__name__}); try again shortly"
                                 ) from exc
    except Exception as exc:  # connection closed or reconnecting
        raise ServiceUnavailable(f"NATS is unavailable ({type(exc).__name__}); try again shortly") from exc
    headers = msg.headers or {}
    if SERVICE_ERROR_CODE in headers:
        problem = common_pb2.Problem()
        try:
            problem.ParseFromString(msg.data)
        except DecodeError:
            problem = common_pb2.Problem(status=int(headers[SERVICE_ERROR_CODE]), title=headers.get(SERVICE_ERROR, ""))
        if not problem.status:
            problem.status = int(headers[SERVICE_ERROR_CODE])
            problem.title = headers.get(SERVICE_ERROR, "Error")
            problem.detail = problem.detail or problem.title
        raise ProblemError.from_proto(problem)
    reply = reply_type()
    reply.ParseFromString(msg.data)
    return reply


async def ping(nc: Client, service: str, timeout: float = 1.0) -> bool:
    """True when at least one instance of the named micro service answers a PING."""
    try:
        await nc.request(f"$SRV.PING.{service}", b"", timeout=timeout)
        return True
    except Exception:
        return False


async def wait_closed(stop: asyncio.Event) -> None:
    await stop.wait()
