"""The life of a service process: logging, NATS, streams, a micro service for PING, clean stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.micro import add_service
from nats.micro.service import Service

from .nats import connect, credentials, ensure_streams
from .settings import CommonSettings

VERSION = "0.1.0"


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


async def start(name: str, common: CommonSettings, description: str) -> ServiceContext:
    nc = await connect(common.nats_url, name, **credentials(common))
    js = nc.jetstream()
    await ensure_streams(js)
    micro = await add_service(nc, name=name, version=VERSION, description=description)
    return ServiceContext(name=name, nc=nc, js=js, micro=micro)


def run(name: str, main: Callable[[asyncio.Event], Awaitable[None]], level: str = "INFO") -> None:
    """Run ``main(stop)`` until SIGINT/SIGTERM sets ``stop``; exit 0 after a clean shutdown."""
    setup_logging(name, level)

    async def _wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(_wrapper())
