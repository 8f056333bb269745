"""``python -m reprolab_registry``: migrate, answer the ``registry.*`` endpoints, ship the outbox.

The NATS client reconnects forever (``reprolab_common.nats.connect``); the outbox publisher keeps
its rows until JetStream acks them, so events committed while NATS is away go out once it is back.
"""

import asyncio
import contextlib
import gc
import logging

from reprolab_common import runtime
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.nats import InFlight
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import ServiceName

from .config import get_settings
from .handlers import add_endpoints, make_handlers
from .models import MIGRATIONS, OutboxEvent

log = logging.getLogger("reprolab_registry")


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    engine = make_engine(settings.common, ServiceName.REGISTRY.value)
    await asyncio.to_thread(migrate, engine, MIGRATIONS)
    sessions = session_factory(engine)
    ctx = await runtime.start(
        ServiceName.REGISTRY,
        settings.common,
        "Workspaces, members, environments, versions, specs and datasets",
    )
    publisher = OutboxPublisher(sessions, OutboxEvent, ctx.js, batch=settings.outbox_batch)
    publishing = asyncio.create_task(publisher.run(ctx.stop), name="outbox")
    in_flight = InFlight()
    await add_endpoints(ctx.micro, make_handlers(sessions, publisher, ctx.nc), in_flight)
    log.info("registry ready on %s (%s)", settings.common.nats_url, engine.dialect.name)
    # What start-up made (modules, mappers, compiled statements) lives as long as the process: frozen, the
    # collector's full passes walk only what requests make, not the whole heap (they were in the p99).
    gc.collect()
    gc.freeze()

    await stop.wait()
    log.info("registry stopping")
    await ctx.micro.stop()
    await in_flight.wait(10.0)
    ctx.stop.set()
    publisher.wake()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(publishing, timeout=5.0)
    # Last chance for events committed by the final requests; whatever remains ships at next start.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(publisher.drain_once(), timeout=settings.shutdown_flush_seconds)
    with contextlib.suppress(Exception):
        await ctx.nc.drain()
    engine.dispose()
    log.info("registry stopped")


if __name__ == "__main__":
    runtime.run("registry", main, get_settings().common.log_level)
