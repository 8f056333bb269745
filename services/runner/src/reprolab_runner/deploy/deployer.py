"""Deploying a version: the server started in the run's image on the serving target chosen by the
runner's ``model_target`` setting, ready → ``serving``. ``local`` first copies the artifact out of the
run's outputs into ``<data_dir>/models/<ws>/<name>/<version>/``; ``kubernetes`` copies nothing to this
host (its pods fetch the artifact by presigned URL) and is ready once its Deployment is available.

``runner.model.deploy`` answers ``deploying`` at once and the caller polls ``runner.model.get``; the
start takes seconds (image already local: it ran the training) and must not hold a NATS reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

from reprolab_common.db import transact
from reprolab_common.objectstore import ObjectStore
from sqlalchemy.orm import sessionmaker

from ..targets.base import TargetError
from . import service
from .engine import LocalServing, ServingSpec, ServingTarget, wait_ready
from .models import DeployedModel

log = logging.getLogger(__name__)


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

    def target_for(self, name: str) -> ServingTarget:
        if name not in self._targets:
            self._targets[name] = serving_target(name, self.settings, self.store)
        return self._targets[name]

    def begin(self, model_id: str, object_key: str, sha256: str) -> None:
        task = asyncio.create_task(self._deploy(model_id, object_key, sha256))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deploy(self, model_id: str, object_key: str, sha256: str) -> None:
        m = await transact(self.sessions, lambda db: db.get(DeployedModel, model_id))
        handle = ""
        target = self.target
        try:
            name = Path(m.artifact).name
            spec = ServingSpec(model_id=f"{m.workspace}/{m.name}/{m.version}", workspace=m.workspace, name=m.name,
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
            if not isinstance(exc, TargetError):
                log.exception("model %s failed to deploy", model_id)
            if handle:
                try:
                    await asyncio.to_thread(target.stop, handle)
                except TargetError:
                    pass
            error = str(exc) or type(exc).__name__
            await transact(self.sessions, lambda db: service.failed(db, model_id, error))
        self.wake_outbox()

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
