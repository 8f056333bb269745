"""``python -m reprolab_builder``: resolve specs into locks, build and push images, answer ``builder.*``."""

import asyncio
import logging

from reprolab_common import runtime
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.nats import InFlight
from reprolab_common.objectstore import make_object_store
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import ServiceName

from . import backends as _backends  # noqa: F401 - registers the built-in backends
from .api import Api, add_endpoints
from .backends.base import backend_class
from .config import get_settings
from .models import MIGRATIONS, OutboxEvent
from .worker import Worker

log = logging.getLogger("reprolab_builder")


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    engine = make_engine(settings.common, "builder")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    store = make_object_store(settings.common)
    backend = backend_class(settings.backend)(settings, store)
    ctx = await runtime.start(ServiceName.BUILDER, settings.common, "Turns locked environment specs into OCI images")
    publisher = OutboxPublisher(sessions, OutboxEvent, ctx.js)
    worker = Worker(settings=settings, sessions=sessions, nc=ctx.nc, js=ctx.js, backend=backend, store=store,
                    wake_outbox=publisher.wake)
    in_flight = InFlight()
    await add_endpoints(ctx.micro, Api(settings=settings, sessions=sessions, nc=ctx.nc, enqueue=worker.enqueue,
                                       wake_outbox=publisher.wake, publish_targets=worker.publish_targets,
                                       store=store, backend=backend), in_flight)
    tasks = [asyncio.create_task(publisher.run(ctx.stop)), asyncio.create_task(worker.run(ctx.stop))]
    log.info("builder ready: backend %s, registry %s", settings.backend, settings.registry)
    await stop.wait()
    ctx.stop.set()
    await ctx.micro.stop()
    await in_flight.wait(30.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    await publisher.drain_once()
    await ctx.nc.drain()
    engine.dispose()


if __name__ == "__main__":
    runtime.run("builder", main, get_settings().common.log_level)
