"""``python -m reprolab_builder``: connect to NATS, declare the JOBS consumer, answer PING until stopped.

The build jobs (jobs.build) consumer is declared here so jobs queue durably from day one; consuming them is the
next milestone's work, so this process does not fetch (a fetch it could not honour would only
burn deliveries).
"""

import asyncio
import logging

from reprolab_common import runtime
from reprolab_common.nats import JobSubject, Stream, ensure_consumer
from reprolab_common.subjects import ServiceName

from .config import get_settings

log = logging.getLogger("reprolab_builder")


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    ctx = await runtime.start(ServiceName.BUILDER, settings.common, "Turns locked environment specs into OCI images")
    await ensure_consumer(ctx.js, Stream.JOBS, settings.durable, JobSubject.BUILD,
                          ack_wait=settings.ack_wait_seconds, max_deliver=settings.max_deliver)
    log.info("builder ready: consumer %s on %s", settings.durable, JobSubject.BUILD.value)
    await stop.wait()
    await ctx.micro.stop()
    await ctx.nc.drain()


if __name__ == "__main__":
    runtime.run("builder", main, get_settings().common.log_level)
