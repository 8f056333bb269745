"""``python -m reprolab_runner``: run students' code on a target, record outcomes, answer ``runner.*``.

``python -m reprolab_runner rotate-credentials`` re-encrypts every stored cloud credential under the
keyring's current key and prints how many; see docs/architecture.md ("Cloud credentials") for the
rotation steps.
"""

import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from reprolab_common import runtime
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.nats import InFlight
from reprolab_common.objectstore import make_object_store
from reprolab_common.outbox import OutboxPublisher
from reprolab_common.subjects import ServiceName

from . import targets as _targets  # noqa: F401 - registers the targets
from .api import Api, add_endpoints
from .config import get_settings
from .deploy.api import ModelApi, add_model_endpoints
from .deploy.deployer import Deployer
from .deploy.monitoring import Monitor
from .models import MIGRATIONS, OutboxEvent
from .quotas import QuotaApi, add_quota_endpoints
from .sessions.api import SessionApi, add_session_endpoints
from .sessions.manager import SessionManager
from .worker import Worker

log = logging.getLogger("reprolab_runner")


def size_thread_pool(concurrency: int) -> None:
    """Every supervised run may hold a thread in a blocking target call (a container start takes
    seconds on a busy machine), and asyncio's default pool has cpu_count + 4 threads: with more
    runs than that, the API's transactions (a POST /runs) queued behind them. One thread per run,
    and room for the rest. A process-wide choice, so it is made here and not in the worker."""
    workers = concurrency + 8
    if workers > min(32, (os.cpu_count() or 1) + 4):
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runner"))


async def main(stop: asyncio.Event) -> None:
    settings = get_settings()
    size_thread_pool(settings.concurrency)
    engine = make_engine(settings.common, "runner")
    migrate(engine, MIGRATIONS)
    sessions = session_factory(engine)
    store = make_object_store(settings.common)
    ctx = await runtime.start(ServiceName.RUNNER, settings.common,
                              "Runs student code on local, Kubernetes and cloud targets")
    publisher = OutboxPublisher(sessions, OutboxEvent, ctx.js)
    worker = Worker(settings=settings, sessions=sessions, js=ctx.js, store=store, wake_outbox=publisher.wake,
                    nc=ctx.nc)
    in_flight = InFlight()
    await add_endpoints(ctx.micro, Api(settings=settings, sessions=sessions, enqueue=worker.enqueue,
                                       wake_outbox=publisher.wake, store=store), in_flight)
    sessions_mgr = SessionManager(settings=settings, sessions=sessions, nc=ctx.nc, wake_outbox=publisher.wake,
                                  store=store)
    await add_session_endpoints(ctx.micro, SessionApi(settings=settings, sessions=sessions, manager=sessions_mgr,
                                                      wake_outbox=publisher.wake), in_flight)
    await add_quota_endpoints(ctx.micro, QuotaApi(sessions=sessions), in_flight)
    deployer = Deployer(settings=settings, sessions=sessions, store=store, wake_outbox=publisher.wake)
    model_monitor = Monitor(settings=settings, sessions=sessions, store=store, wake_outbox=publisher.wake)
    await add_model_endpoints(ctx.micro, ModelApi(settings=settings, sessions=sessions, deployer=deployer,
                                                  wake_outbox=publisher.wake, monitoring=model_monitor), in_flight)
    await sessions_mgr.resume()
    # leftovers of runs that ended while no runner watched go first
    removed = await worker.reconcile()
    log.info("runner ready (reconciler removed %d leftovers)", removed)

    async def reconcile_models_now() -> None:  # in the background: an engine or API server that is slow to
        try:  # answer must not hold up the runner's start
            log.info("model servers at start: %s", await deployer.reconcile_once())
        except Exception:  # noqa: BLE001 - the periodic pass tries again
            log.exception("model server reconciliation at start failed")

    tasks = [asyncio.create_task(publisher.run(ctx.stop)), asyncio.create_task(worker.run(ctx.stop)),
             asyncio.create_task(worker.reconcile_forever(ctx.stop)),
             asyncio.create_task(sessions_mgr.cull_forever(ctx.stop)),
             asyncio.create_task(model_monitor.forever(ctx.stop)), asyncio.create_task(deployer.forever(ctx.stop)),
             asyncio.create_task(deployer.reconcile_forever(ctx.stop, settings.model_reconcile_seconds)),
             asyncio.create_task(reconcile_models_now())]
    await stop.wait()
    ctx.stop.set()
    await ctx.micro.stop()
    await in_flight.wait(10.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    # runs in flight stay unacked: JetStream redelivers them to the next runner, which resumes by handle
    for task in [*worker.tasks, *sessions_mgr.tasks, *deployer.tasks]:
        task.cancel()
    await publisher.drain_once()
    await ctx.nc.drain()
    engine.dispose()


def rotate_credentials() -> int:
    """Re-encrypt all credentials in one transaction (all or nothing); print the count."""

    from . import credstore
    from .credentials import CredentialError

    settings = get_settings()
    engine = make_engine(settings.common, "runner")
    try:
        migrate(engine, MIGRATIONS)
        keyring = credstore.keyring_for(settings)
        count = in_transaction(session_factory(engine), lambda s: credstore.rotate_all(s, keyring))
    except CredentialError as exc:
        print(f"rotate-credentials: {exc}; nothing was changed", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"re-encrypted {count} credential(s) under key {keyring.current!r}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        runtime.run("runner", main, get_settings().common.log_level)
    elif command == "rotate-credentials":
        sys.exit(rotate_credentials())
    else:
        sys.exit(f"usage: python -m reprolab_runner [serve | rotate-credentials] (unknown command {command!r})")
