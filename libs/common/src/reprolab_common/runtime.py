"""The life of a service process: logging, NATS, streams, a micro service for PING, clean stop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.micro import add_service
from nats.micro.service import Service

from . import lifeline
from .nats import connect, credentials, ensure_streams
from .settings import CommonSettings

VERSION = "0.1.0"
# Exit status of a service that gave up on an unreachable NATS (EX_TEMPFAIL: try again later).
NATS_GONE_EXIT = 75
_exit_status = 0


def setup_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.WARNING)


@dataclass
class ServiceContext:
    """What a running service has: its NATS client, JetStream, its micro service and a stop flag."""

    name: str
    nc: Client
    js: JetStreamContext
    micro: Service
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    watchdog: asyncio.Task[None] | None = None


async def start(name: str, common: CommonSettings, description: str) -> ServiceContext:
    nc = await connect(common.nats_url, name, **credentials(common))
    js = nc.jetstream()
    await ensure_streams(js, replicas=common.nats_stream_replicas)
    micro = await add_service(nc, name=name, version=VERSION, description=description)
    ctx = ServiceContext(name=name, nc=nc, js=js, micro=micro)
    ctx.watchdog = asyncio.create_task(watch_nats(name, nc, common.nats_give_up_seconds), name="nats-watchdog")
    return ctx


async def watch_nats(name: str, nc: Client, give_up: float, every: float = 1.0, warn_every: float = 10.0) -> None:
    """Bound how long a service lives without NATS: warn while it is down, give up after ``give_up``
    seconds by stopping the process with ``NATS_GONE_EXIT`` (a supervisor sees the exit and says why)."""
    log = logging.getLogger("reprolab_common.runtime")
    loop = asyncio.get_running_loop()
    down_since: float | None = None
    warned = 0.0
    while not nc.is_closed:
        await asyncio.sleep(every)
        now = loop.time()
        if nc.is_connected:
            if down_since is not None:
                log.info("%s: NATS is back after %.0fs", name, now - down_since)
            down_since = None
            continue
        if down_since is None:
            down_since = warned = now
        elif now - warned >= warn_every:
            warned = now
            log.warning("%s: NATS unreachable for %.0fs; giving up after %.0fs", name, now - down_since, give_up)
        if now - down_since >= give_up:
            log.error("%s: NATS unreachable for %.0fs; exiting with status %d", name, now - down_since,
                      NATS_GONE_EXIT)
            _stop_process(NATS_GONE_EXIT)
            return


def _stop_process(status: int, grace: float = 20.0) -> None:
    """Stop through the normal SIGTERM path, with ``status`` as the exit code; hard exit if it hangs."""
    global _exit_status
    _exit_status = status
    os.kill(os.getpid(), signal.SIGTERM)
    timer = threading.Timer(grace, os._exit, (status,))
    timer.daemon = True
    timer.start()


def run(name: str, main: Callable[[asyncio.Event], Awaitable[None]], level: str = "INFO") -> None:
    """Run ``main(stop)`` until SIGINT/SIGTERM sets ``stop``; exit 0 after a clean shutdown."""
    setup_logging(name, level)
    lifeline.watch()

    async def _wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(_wrapper())
    if _exit_status:
        sys.exit(_exit_status)
