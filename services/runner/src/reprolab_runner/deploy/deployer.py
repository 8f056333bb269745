"""Deploying a version: the server started in the run's image on the serving target chosen by the
runner's ``model_target`` setting, ready → ``serving``. ``local`` first copies the artifact out of the
run's outputs into ``<data_dir>/models/<ws>/<name>/<version>/``; ``kubernetes`` copies nothing to this
host (its pods fetch the artifact by presigned URL) and is ready once its Deployment is available.

``runner.model.deploy`` answers ``deploying`` at once and the caller polls ``runner.model.get``; the
start takes seconds (image already local: it ran the training) and must not hold a NATS reply.

The reconciler (:meth:`Deployer.reconcile_once`, at start and every ``RECONCILE_SECONDS``) makes the
target's servers what the table says: a ``local`` server that is gone or exited (the machine or the
platform restarted, the container was removed, the server died) is started again from the artifact
copy (``model.restarted`` names why); a server whose version is no longer deploying or serving is
removed; a version left ``deploying`` by a runner that died is failed once its deploy could no longer be
under way. A ``kubernetes`` Deployment restarts its own pods: there only the last two apply.
Compare-and-set on the row makes one of several runner replicas restart a server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

from reprolab_common.db import transact, utcnow
from reprolab_common.objectstore import ObjectStore
from sqlalchemy.orm import sessionmaker

from ..targets.base import TargetError
from . import service
from .engine import LocalServing, ServingSpec, ServingTarget, wait_ready
from .models import DeployedModel, ModelState

log = logging.getLogger(__name__)


def spec_id(m: DeployedModel) -> str:
    """The server's label value (``ServingSpec.model_id``) of a version."""
    return f"{m.workspace}/{m.name}/{m.version}"


def model_dir(data_dir: Path, m: DeployedModel) -> Path:
    return data_dir / "models" / m.workspace / m.name / str(m.version)


def copy_artifact(store: ObjectStore, object_key: str, sha256: str, dest: Path) -> None:
    """The run's output, streamed out of the object store and checked against the digest the run recorded."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    tmp = dest.with_suffix(dest.suffix + ".part")
    with tmp.open("wb") as f:
        for chunk in store.open_chunks(object_key):
            h.update(chunk)
            f.write(chunk)
    if sha256 and h.hexdigest() != sha256:
        tmp.unlink()
        raise TargetError(f"the artifact's digest {h.hexdigest()} is not the run's recorded {sha256}")
    tmp.chmod(0o644)  # the server runs as nobody
    tmp.replace(dest)
    dest.parent.chmod(0o755)


TARGETS = ("local", "kubernetes")
RECONCILE_SECONDS = 60.0
"""How often the servers are compared with the table (and restarted, removed or failed)."""
RENEW_SECONDS = 600.0
"""How often the kubernetes target's presigned URLs are checked for renewal (a URL lives days)."""


def serving_target(name: str, settings: Any, store: ObjectStore) -> ServingTarget:
    if name == "local":
        return LocalServing(settings, installation=settings.installation_id())
    if name == "kubernetes":
        from .k8s import KubernetesServing  # the kubernetes client only where it is used

        return KubernetesServing(settings, installation=settings.installation_id(), store=store)
    raise ValueError(f"unknown model target {name!r}; choose one of {', '.join(TARGETS)}")


class Deployer:
    """Deploys on ``target`` (default: the ``model_target`` setting); a version's ``target`` column
    should say ``deployer.target.name``. Stopping a version uses the target it was deployed on."""

    def __init__(self, *, settings: Any, sessions: sessionmaker, store: ObjectStore, wake_outbox: Any,
                 target: ServingTarget | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.wake_outbox = wake_outbox
        self.target = target or serving_target(getattr(settings, "model_target", "local"), settings, store)
        self._targets: dict[str, ServingTarget] = {self.target.name: self.target}
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: set[str] = set()  # model ids this process is deploying or restarting

    def target_for(self, name: str) -> ServingTarget:
        if name not in self._targets:
            self._targets[name] = serving_target(name, self.settings, self.store)
        return self._targets[name]

    def begin(self, model_id: str, object_key: str, sha256: str) -> None:
        self._spawn(model_id, self._deploy(model_id, object_key, sha256))

    def _spawn(self, model_id: str, work: Any) -> None:
        self.busy.add(model_id)
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self.busy.discard(model_id))

    async def _deploy(self, model_id: str, object_key: str, sha256: str) -> None:
        m = await transact(self.sessions, lambda db: db.get(DeployedModel, model_id))
        handle = ""
        target = self.target
        try:
            name = Path(m.artifact).name
            spec = ServingSpec(model_id=spec_id(m), workspace=m.workspace, name=m.name,
                               version=m.version, image=m.image, artifact_name=name, artifact_key=object_key,
                               artifact_sha256=sha256)
            artifact_path = ""
            if not target.remote:  # a remote target's pods fetch the artifact themselves
                d = model_dir(self.settings.common.data_dir, m)
                await asyncio.to_thread(copy_artifact, self.store, object_key, sha256, d / name)
                spec = dataclasses.replace(spec, artifact_dir=d.resolve())
                artifact_path = str(d / name)
            started = await asyncio.to_thread(target.start, spec)
            handle = started.handle
            seconds = await asyncio.to_thread(wait_ready, target, started)
            log.info("model %s ready on %s in %.1f s", spec.model_id, target.name, seconds)
            await transact(self.sessions, lambda db: service.serving(
                db, model_id, handle=started.handle, endpoint=started.upstream_url, artifact_path=artifact_path))
        except Exception as exc:  # noqa: BLE001 - every failure ends in ``failed`` with its reason
            await self._failed(model_id, handle, exc, "model %s failed to deploy")
        self.wake_outbox()

    async def _failed(self, model_id: str, handle: str, exc: Exception, what: str, prefix: str = "") -> None:
        """A deploy or restart that failed: its server (if one was started) removed, the version ``failed``."""
        if not isinstance(exc, TargetError):
            log.exception(what, model_id)
        if handle:
            try:
                await asyncio.to_thread(self.target.stop, handle)
            except TargetError:
                pass
        error = prefix + (str(exc) or type(exc).__name__)
        await transact(self.sessions, lambda db: service.failed(db, model_id, error))

    # --- the reconciler ----------------------------------------------------------------------------

    def stale_after(self) -> float:
        """Seconds after which a version still ``deploying`` and deployed by no live task cannot be under
        way any more (the artifact copy plus the target's whole readiness wait, with a margin)."""
        return self.target.ready_timeout + 120.0

    async def reconcile_once(self) -> dict[str, int]:
        """One pass; returns how many servers were restarted and removed and versions failed."""
        target = self.target
        counts = {"restarted": 0, "removed": 0, "failed": 0}
        owned = await asyncio.to_thread(target.owned)
        live = await transact(self.sessions, lambda db: service.live_on(db, target.name))
        wanted = {spec_id(m): m for m in live}
        for model_id, handle in owned.items():  # servers of versions no longer deploying or serving
            if model_id not in wanted:
                log.info("removing model server %s: its version is no longer deploying or serving", handle)
                await asyncio.to_thread(target.stop, handle)
                counts["removed"] += 1
        now = utcnow()
        for mid, m in wanted.items():
            if m.id in self.busy:
                continue
            if m.state == ModelState.DEPLOYING:
                since = m.state_since or m.created_at
                if (now - since).total_seconds() > self.stale_after():
                    if mid in owned:
                        await asyncio.to_thread(target.stop, owned[mid])
                    await transact(self.sessions, lambda db, m=m: service.failed(
                        db, m.id, "the runner stopped before this version was ready; deploy it again"))
                    counts["failed"] += 1
                continue
            if target.remote:  # a Deployment restarts its own pods
                continue
            alive, why = (False, "its server was removed") if mid not in owned else \
                await asyncio.to_thread(target.alive, owned[mid])
            if alive:
                continue
            if not await transact(self.sessions, lambda db, m=m: service.claim_restart(db, m.id)):
                continue  # another runner is restarting it
            self._spawn(m.id, self._restart(m, why))
            counts["restarted"] += 1
        if counts["failed"]:  # the restarts publish their own events when they end
            self.wake_outbox()
        return counts

    async def _restart(self, m: DeployedModel, why: str) -> None:
        target = self.target
        handle = ""
        try:
            artifact = Path(m.artifact_path)
            if not m.artifact_path or not await asyncio.to_thread(artifact.is_file):
                raise TargetError("the copy of its artifact is gone from the runner's data directory; deploy it "
                                  "again")
            if m.handle:
                await asyncio.to_thread(target.stop, m.handle)
            spec = ServingSpec(model_id=spec_id(m), workspace=m.workspace, name=m.name, version=m.version,
                               image=m.image, artifact_name=artifact.name, artifact_dir=artifact.parent.resolve())
            started = await asyncio.to_thread(target.start, spec)
            handle = started.handle
            seconds = await asyncio.to_thread(wait_ready, target, started)
            log.info("model %s restarted in %.1f s (%s)", spec.model_id, seconds, why)
            await transact(self.sessions, lambda db: service.restarted(
                db, m.id, handle=started.handle, endpoint=started.upstream_url, reason=why))
        except Exception as exc:  # noqa: BLE001 - a restart that fails ends the version in ``failed``
            await self._failed(m.id, handle, exc, "model %s could not be restarted",
                               prefix=f"{why}, and restarting it failed: ")
        self.wake_outbox()

    async def reconcile_forever(self, stop: asyncio.Event, every: float = RECONCILE_SECONDS) -> None:
        """A pass every ``every`` seconds (the runner makes the first one itself as it starts)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
                return
            except TimeoutError:
                pass
            try:
                counts = await self.reconcile_once()
                if any(counts.values()):
                    log.info("model servers reconciled: %s", counts)
            except TargetError as exc:
                log.warning("cannot reconcile the model servers: %s", exc)
            except Exception:  # noqa: BLE001 - the loop outlives a database or engine hiccup
                log.exception("model server reconciliation failed")

    async def stop(self, m: DeployedModel) -> None:
        if m.handle:
            await asyncio.to_thread(self.target_for(m.target or self.target.name).stop, m.handle)

    async def renew_once(self) -> int:
        """Renew the served models' expiring credentials where the target has any (kubernetes)."""
        renew = getattr(self.target, "renew", None)
        return await asyncio.to_thread(renew) if renew else 0

    async def forever(self, stop: asyncio.Event, every: float = RENEW_SECONDS) -> None:
        while not stop.is_set():
            try:
                renewed = await self.renew_once()
                if renewed:
                    log.info("renewed the artifact URLs of %d model server(s)", renewed)
            except TargetError as exc:
                log.warning("cannot renew the model servers' artifact URLs: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
