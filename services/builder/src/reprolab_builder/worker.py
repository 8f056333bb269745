"""The build worker: consumes ``jobs.build`` from the JOBS work queue, one build at a time.

Ack only after the terminal state is stored. While a build runs, ``in_progress()`` keeps JetStream
from redelivering it; a worker killed mid-build stops heartbeating, so after ``ack_wait`` the job
is redelivered to the next worker, which builds again (reproducible: the same digest) and records
the result once. A user-caused failure (``BuildError``) ends the build; anything else is retried
with a delay until ``max_deliver`` deliveries, then recorded as failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from reprolab.v1 import jobs_pb2
from reprolab_common.db import transact
from reprolab_common.nats import SCHEMA_VERSION, JobSubject, Stream, ensure_consumer, keep_in_progress
from reprolab_common.objectstore import ObjectStore
from sqlalchemy.orm import sessionmaker

from . import indexes, publish, service
from .api import record_on_registry
from .backends.base import BuildBackend, BuildError, BuildResult
from .build import build_lock
from .config import BuilderSettings
from .logstream import LogStream, Scrubber
from .models import Build, Status
from .sbom import cyclonedx, inventory
from .tagging import copy_tag

log = logging.getLogger(__name__)


def job_for(build: Build) -> jobs_pb2.BuildJob:
    job = jobs_pb2.BuildJob(schema_version=SCHEMA_VERSION, lock_digest=build.lock_digest, workspace=build.workspace,
                            environment=build.environment, version=build.version)
    job.actor.user_id, job.actor.username = build.requested_by_id, build.requested_by
    job.requested_at.FromDatetime(build.created_at)
    return job


class Worker:
    def __init__(self, *, settings: BuilderSettings, sessions: sessionmaker, nc: Any, js: JetStreamContext,
                 backend: BuildBackend, store: ObjectStore, wake_outbox: Any) -> None:
        self.settings = settings
        self.sessions = sessions
        self.nc = nc
        self.js = js
        self.backend = backend
        self.store = store
        self.wake_outbox = wake_outbox
        self.scrub = Scrubber.for_host(settings)

    async def enqueue(self, build: Build) -> None:
        await self.js.publish(JobSubject.BUILD.value, job_for(build).SerializeToString(), stream=Stream.JOBS.value,
                              headers={"Nats-Msg-Id": service.job_msg_id(build)}, timeout=10)

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_consumer(self.js, Stream.JOBS, self.settings.durable, JobSubject.BUILD,
                              ack_wait=self.settings.ack_wait_seconds, max_deliver=self.settings.max_deliver)
        sub = await self.js.pull_subscribe(JobSubject.BUILD.value, durable=self.settings.durable,
                                           stream=Stream.JOBS.value)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                continue
            except Exception as exc:  # NATS restarting: keep trying
                log.warning("fetching build jobs failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self.handle(msg)
        # A pull subscription's inbox collects the server's replies to expired fetches, which no one
        # reads; left subscribed, the connection's drain() waits on them until its timeout.
        try:
            await sub.unsubscribe()
        except Exception as exc:
            log.warning("unsubscribing from build jobs failed: %s", exc)

    async def handle(self, msg: Any) -> None:
        job = jobs_pb2.BuildJob()
        try:
            job.ParseFromString(msg.data)
        except Exception:
            log.error("undecodable build job dropped")
            await msg.term()
            return
        build = await transact(self.sessions, lambda s: service.get_by_lock(session=s, lock_digest=job.lock_digest))
        if build is None or build.status == Status.SUCCEEDED:
            await msg.ack()
            return
        build = await transact(self.sessions, lambda s: service.start(session=s, build_id=build.id))
        self.wake_outbox()
        if build is None:
            await msg.ack()
            return
        heartbeat = asyncio.create_task(keep_in_progress(msg, self.settings.ack_wait_seconds))
        # read from every workspace the build serves: no workspace or environment name, no host path
        scrub = self.scrub.naming(build.image_ref, build.workspace)
        workspace_indexes: list[indexes.Index] = []
        if (json.loads(build.lock_json).get("python") or {}).get("indexes"):
            # the wheels come from the workspace's package indexes; their secrets never reach a log line
            ring = await asyncio.to_thread(publish.keyring, self.settings)
            workspace_indexes = await transact(self.sessions, lambda s: indexes.load(
                s, ring, workspace=build.workspace))
            scrub = Scrubber(scrub.paths.plus({secret: "***" for secret in indexes.secrets_of(workspace_indexes)}))
        logs = LogStream(self.js, f"logs.build.{build.id}", asyncio.get_running_loop(), scrub)
        logs.write(f"build {build.id} (lock {build.lock_digest}, backend {self.backend.name}, "
                   f"delivery {msg.metadata.num_delivered})")
        status = Status.FAILED
        try:
            status = await self._build(build, logs, msg, scrub, workspace_indexes)
        finally:
            heartbeat.cancel()
            await logs.close(status, self.store, f"builds/{build.id}/log.txt")
            self.wake_outbox()

    async def _build(self, build: Build, logs: LogStream, msg: Any, scrub: Scrubber,
                     workspace_indexes: list[Any] | None = None) -> Status:
        lock = json.loads(build.lock_json)
        parent_lock = None
        if build.parent_lock_digest:
            parent = await transact(self.sessions, lambda s: service.get_by_lock(
                session=s, lock_digest=build.parent_lock_digest))
            parent_lock = json.loads(parent.lock_json)
        try:
            result = await asyncio.to_thread(build_lock, lock, settings=self.settings, backend=self.backend,
                                             image_ref=build.image_ref, store=self.store, workspace=build.workspace,
                                             parent_lock=parent_lock, log=logs.write, indexes=workspace_indexes)
            sbom = await asyncio.to_thread(self._sbom, build, result)
        except BuildError as exc:
            error = scrub(str(exc))
            logs.write(f"FAILED: {error}")
            await transact(self.sessions, lambda s: service.fail(session=s, build_id=build.id, error=error))
            await msg.ack()
            return Status.FAILED
        except Exception as exc:
            log.exception("build %s crashed", build.id)
            if msg.metadata.num_delivered >= self.settings.max_deliver:
                error = scrub(f"the builder failed {msg.metadata.num_delivered} times: {type(exc).__name__}: {exc}")
                logs.write(f"FAILED: {error}")
                await transact(self.sessions, lambda s: service.fail(session=s, build_id=build.id, error=error))
                await msg.ack()
                return Status.FAILED
            logs.write(f"internal error, will retry: {type(exc).__name__}: {exc}")
            await msg.nak(delay=5)
            return Status.RUNNING
        await transact(self.sessions, lambda s: service.succeed(
            session=s, build_id=build.id, image_digest=result.digest, sbom_json=sbom))
        await self.publish_targets(build.id)
        await msg.ack()
        return Status.SUCCEEDED

    def _sbom(self, build: Build, result: BuildResult) -> str:
        """From the listing the build made of its image (one-layer locks), else by running the image."""
        inv = result.inventory
        if inv is None:
            wait = getattr(self.backend, "wait_for_local_copies", None)
            if wait is not None:  # run it from local storage, not pulled again without credentials
                wait()
            inv = inventory(result.image_ref)
        doc = cyclonedx(inv, image_ref=result.image_ref, digest=result.digest)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    async def publish_targets(self, build_id: str) -> None:
        """Tag the image for every version served by this build and record it on the registry."""
        build, targets = await transact(self.sessions, lambda s: (service.get_build(session=s, build_id=build_id),
                                                                  service.targets(session=s, build_id=build_id)))
        for target in targets:
            if target.recorded:
                continue
            try:
                if target.image_ref != build.image_ref:
                    await asyncio.to_thread(copy_tag, self.settings, build.image_ref, build.image_digest,
                                            target.image_ref)
                await record_on_registry(self.nc, workspace=target.workspace, environment=target.environment,
                                         version=target.version, lock_digest=build.lock_digest,
                                         image_ref=target.image_ref, image_digest=build.image_digest)
                await transact(self.sessions, lambda s, t=target: service.mark_recorded(session=s, target_id=t.id))
            except Exception as exc:  # recorded on the next request or redelivery
                log.warning("could not record %s on the registry: %s", target.image_ref, exc)
