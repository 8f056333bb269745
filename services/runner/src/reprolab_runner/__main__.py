"""``python -m reprolab_runner``: connect to NATS, declare the JOBS consumer, answer PING until stopped.

The run jobs (jobs.run) consumer is declared here so jobs queue durably from day one; consuming them is the
next milestone's work, so this process does not fetch (a fetch it could not honour would only
burn deliveries).
"""

import asyncio
import logging

from reprolab_common import runtime
from reprolab_common.nats import JobSubject, Stream, ensure_consumer
from reprolab_common.subjects import ServiceName

from .config import get_settings

log = logging.getLogger("reprolab_runner")


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    ctx = await runtime.start(ServiceName.RUNNER, settings.common,
                              "Runs student code on local, Kubernetes and cloud targets")
    await ensure_consumer(ctx.js, Stream.JOBS, settings.durable, JobSubject.RUN,
                          ack_wait=settings.ack_wait_seconds, max_deliver=settings.max_deliver)
    log.info("runner ready: consumer %s on %s", settings.durable, JobSubject.RUN.value)
    await stop.wait()
    await ctx.micro.stop()
    await ctx.nc.drain()


if __name__ == "__main__":
    runtime.run("runner", main, get_settings().common.log_level)
