"""``python -m reprolab_audit``: migrate, load the signing key, consume EVENTS, answer query/export/verify
and checkpoint/proof requests. ``python -m reprolab_audit rotate-key`` replaces the signing key.

Rotation: the new key is written to the key file (the old one is kept beside it as
``<file>.<key id>.retired``) and recorded in the database with the old key marked retired but still
known, so every checkpoint the old key signed keeps verifying. A running service notices the new key
file on its next checkpoint round and signs with it from then on.

Stops cleanly on SIGINT/SIGTERM: endpoints first, then the consumer finishes its batch, a last
timed checkpoint and outbox flush, then the NATS connection drains.
"""

import asyncio
import logging
import sys
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
from .exports import run_export_sweeper
from .models import Outbox
from .store import AuditStore

log = logging.getLogger("reprolab_audit")

MIGRATIONS = Path(__file__).parent / "migrations"


def load_signer(settings: AuditSettings) -> Signer:
    if settings.signing_key_file is not None:  # an operator's key: it must exist
        return Signer.from_bytes(settings.signing_key_file.read_bytes())
    return Signer.load_or_create(settings.signing_key_path())


def follow_key_file(store: AuditStore, settings: AuditSettings) -> None:
    """Switch to the key in the key file if it was rotated since we loaded it."""
    path = settings.signing_key_path()
    try:
        current = Signer.from_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("cannot read signing key file %s: %s", path, exc)
        return
    if current.key_id != store.signer.key_id:
        store.rotate(current)


def rotate_key(settings: AuditSettings) -> str:
    """Generate a new signing key into the key file, keep the old file as retired, record both."""
    common = settings.common
    engine = make_engine(common, ServiceName.AUDIT.value, sqlite_synchronous="FULL")
    try:
        migrate(engine, MIGRATIONS)
        path = settings.signing_key_path()
        old = Signer.from_bytes(path.read_bytes()) if path.exists() else None
        store = AuditStore(session_factory(engine), old or Signer.generate(), origin_prefix=settings.origin_prefix)
        if old is not None:
            store.register_key()
            path.rename(path.with_name(f"{path.name}.{old.key_id}.retired"))
        new = Signer.generate()
        if not new.write_new(path):
            raise SystemExit(f"{path} appeared while rotating; not overwriting it")
        store.rotate(new)
        return new.key_id
    finally:
        engine.dispose()


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    common = settings.common
    engine = make_engine(common, ServiceName.AUDIT.value, sqlite_synchronous="FULL")
    await asyncio.to_thread(migrate, engine, MIGRATIONS)
    sessions = session_factory(engine)
    signer = load_signer(settings)
    store = AuditStore(sessions, signer, checkpoint_every=settings.checkpoint_every,
                       origin_prefix=settings.origin_prefix)
    await asyncio.to_thread(store.register_key)
    objects = make_object_store(common)

    ctx = await runtime.start(ServiceName.AUDIT, common, "Tamper-evident activity log: query, export, verify")
    consumer = EventConsumer(ctx.js, store, durable=settings.durable, batch=settings.batch_size,
                             fetch_timeout=settings.fetch_timeout_seconds, ack_wait=settings.ack_wait_seconds,
                             linger=settings.linger_seconds)
    await consumer.declare()
    publisher = OutboxPublisher(sessions, Outbox, ctx.js)
    await AuditApi(store, objects, publisher).register(ctx.micro)
    tasks = [
        asyncio.create_task(consumer.run(ctx.stop), name="consumer"),
        asyncio.create_task(run_checkpointer(store, ctx.stop, settings.checkpoint_seconds,
                                             before=lambda: follow_key_file(store, settings)),
                            name="checkpointer"),
        asyncio.create_task(publisher.run(ctx.stop), name="outbox"),
        asyncio.create_task(run_export_sweeper(objects, ctx.stop, every=settings.export_sweep_seconds,
                                               max_age=settings.export_ttl_seconds,
                                               max_total_bytes=settings.export_max_total_bytes),
                            name="export-sweeper"),
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
    if sys.argv[1:] == ["rotate-key"]:
        logging.basicConfig(level=logging.INFO)
        print(f"signing with new key {rotate_key(get_settings())}; the old key stays known")
    elif sys.argv[1:]:
        raise SystemExit("usage: python -m reprolab_audit [rotate-key]")
    else:
        runtime.run("audit", main, get_settings().common.log_level)
