"""``python -m reprolab_audit``: migrate, load the signing key, consume EVENTS, answer query/export/verify.

Stops cleanly on SIGINT/SIGTERM: endpoints first, then the consumer finishes its batch, a last
timed checkpoint and outbox flush, then the NATS connection drains.
"""

import asyncio
import logging
from pathlib import Path

from reprolab_common import runtime
from reprolab_common.auditlog import Signer
from reprolab_common.db import make_engine, migrate, session_factory
from reprolab_common.objectstore import make_object_store
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import ServiceName

from .api import AuditApi
from .config import AuditSettings, get_settings
from .consumer import EventConsumer, run_checkpointer
from .models import Outbox
from .store import AuditStore

log = logging.getLogger("reprolab_audit")

MIGRATIONS = Path(__file__).parent / "migrations"


def load_signer(settings: AuditSettings) -> Signer:
    if settings.signing_key_file is not None:  # an operator's key: it must exist
        return Signer.from_bytes(settings.signing_key_file.read_bytes())
    return Signer.load_or_create(settings.signing_key_path())


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    common = settings.common
    engine = make_engine(common, ServiceName.AUDIT.value, sqlite_synchronous="FULL")
    await asyncio.to_thread(migrate, engine, MIGRATIONS)
    sessions = session_factory(engine)
    signer = load_signer(settings)
    store = AuditStore(sessions, signer, checkpoint_every=settings.checkpoint_every)
    await asyncio.to_thread(store.register_key)
    objects = make_object_store(common)

    ctx = await runtime.start(ServiceName.AUDIT, common, "Tamper-evident activity log: query, export, verify")
    consumer = EventConsumer(ctx.js, store, durable=settings.durable, batch=settings.batch_size,
                             fetch_timeout=settings.fetch_timeout_seconds, ack_wait=settings.ack_wait_seconds)
    await consumer.declare()
    publisher = OutboxPublisher(sessions, Outbox, ctx.js)
    await AuditApi(store, objects, publisher).register(ctx.micro)
    tasks = [
        asyncio.create_task(consumer.run(ctx.stop), name="consumer"),
        asyncio.create_task(run_checkpointer(store, ctx.stop, settings.checkpoint_seconds),
                            name="checkpointer"),
        asyncio.create_task(publisher.run(ctx.stop), name="outbox"),
    ]
    log.info("audit ready: consumer %s on events.>, signing key %s", settings.durable, signer.key_id)

    await stop.wait()
    log.info("stopping")
    await ctx.micro.stop()
    ctx.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    try:
        await asyncio.to_thread(store.checkpoint_pending)
        await asyncio.wait_for(publisher.drain_once(), timeout=5)
    except Exception as exc:
        log.warning("final checkpoint/outbox flush incomplete: %s", exc)
    log.info("stored %d events (%d duplicates skipped, %d rejected)",
             consumer.stored, consumer.duplicates, consumer.rejected)
    await ctx.nc.drain()
    engine.dispose()


if __name__ == "__main__":
    runtime.run("audit", main, get_settings().common.log_level)
