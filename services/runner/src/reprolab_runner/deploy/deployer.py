"""Deploying a version: artifact out of the run's outputs → ``<data_dir>/models/<ws>/<name>/<version>/``,
the server started in the run's image, ``/v2/health/ready`` answered → ``serving``.

``runner.model.deploy`` answers ``deploying`` at once and the caller polls ``runner.model.get``; the
start takes seconds (image already local: it ran the training) and must not hold a NATS reply.
"""

from __future__ import annotations

import asyncio
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


class Deployer:
    def __init__(self, *, settings: Any, sessions: sessionmaker, store: ObjectStore, wake_outbox: Any,
                 target: ServingTarget | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.wake_outbox = wake_outbox
        self.target = target or LocalServing(settings, installation=settings.installation_id())
        self.tasks: set[asyncio.Task[None]] = set()

    def begin(self, model_id: str, object_key: str, sha256: str) -> None:
        task = asyncio.create_task(self._deploy(model_id, object_key, sha256))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deploy(self, model_id: str, object_key: str, sha256: str) -> None:
        m = await transact(self.sessions, lambda db: db.get(DeployedModel, model_id))
        handle = ""
        try:
            d = model_dir(self.settings.common.data_dir, m)
            name = Path(m.artifact).name
            await asyncio.to_thread(copy_artifact, self.store, object_key, sha256, d / name)
            spec = ServingSpec(model_id=f"{m.workspace}/{m.name}/{m.version}", workspace=m.workspace, name=m.name,
                               version=m.version, image=m.image, artifact_dir=d.resolve(), artifact_name=name)
            started = await asyncio.to_thread(self.target.start, spec)
            handle = started.handle
            seconds = await asyncio.to_thread(wait_ready, self.target, started)
            log.info("model %s ready in %.1f s", spec.model_id, seconds)
            await transact(self.sessions, lambda db: service.serving(
                db, model_id, handle=started.handle, endpoint=started.upstream_url, artifact_path=str(d / name)))
        except Exception as exc:  # noqa: BLE001 - every failure ends in ``failed`` with its reason
            if not isinstance(exc, TargetError):
                log.exception("model %s failed to deploy", model_id)
            if handle:
                try:
                    await asyncio.to_thread(self.target.stop, handle)
                except TargetError:
                    pass
            error = str(exc) or type(exc).__name__
            await transact(self.sessions, lambda db: service.failed(db, model_id, error))
        self.wake_outbox()

    async def stop(self, m: DeployedModel) -> None:
        if m.handle:
            await asyncio.to_thread(self.target.stop, m.handle)
