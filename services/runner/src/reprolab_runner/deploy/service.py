"""Database functions of deployed models, their keys and alerts. Each takes its SQLAlchemy session as
``db``; events go through the outbox in the same transaction as the change they describe.

A key's secret is returned once by :func:`create_key` and stored only as its SHA-256: no event, log
line or other reply carries it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

from reprolab.v1 import common_pb2, serving_pb2
from reprolab_common.db import utcnow
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.nats import new_event
from reprolab_common.outbox import add_event
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as Db

from ..models import OutboxEvent
from .engine import artifact_kind
from .models import DeployedModel, ModelAlert, ModelKey, ModelState

NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
KEY_PREFIX = "rlm_"


def emit(db: Db, m: DeployedModel, verb: str, actor: common_pb2.Actor | None = None, detail: str = "") -> None:
    add_event(db, OutboxEvent, new_event(
        type=f"model.{verb}", actor=actor or common_pb2.Actor(user_id=m.created_by_id, username=m.created_by),
        workspace=m.workspace, subject=f"models/{m.name}/versions/{m.version}",
        model=serving_pb2.ModelEvent(name=m.name, version=m.version, run_id=m.run_id, image=m.image,
                                     state=m.state, error=m.error, detail=detail),
    ))


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise Invalid("a model name is 1-63 lower-case letters, digits and '-', starting with a letter",
                      errors=[("name", name)])


def create_version(db: Db, *, actor: common_pb2.Actor, workspace: str, name: str, run_id: str, image: str,
                   artifact: str, target: str, sample_rate: float = 1.0, webhook_url: str = "") -> DeployedModel:
    """The next version of ``name`` in ``deploying`` (the first version is also made active)."""
    check_name(name)
    try:
        kind = artifact_kind(artifact)
    except ValueError as exc:
        raise Invalid(str(exc), errors=[("artifact", artifact)]) from exc
    if "@sha256:" not in image:
        raise Invalid("the run's image is not pinned by digest; only runs of built versions can be deployed",
                      errors=[("run_id", run_id)])
    if not 0.0 <= sample_rate <= 1.0:
        raise Invalid("sample_rate must be between 0 and 1", errors=[("sample_rate", str(sample_rate))])
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise Invalid("webhook_url must be an http(s) URL", errors=[("webhook_url", webhook_url)])
    last = db.scalar(select(func.max(DeployedModel.version)).where(
        DeployedModel.workspace == workspace, DeployedModel.name == name)) or 0
    m = DeployedModel(id=str(uuid.uuid4()), workspace=workspace, name=name, version=last + 1, run_id=run_id,
                      image=image, artifact=artifact, kind=kind, state=ModelState.DEPLOYING, active=last == 0,
                      target=target, sample_rate=sample_rate or 1.0, webhook_url=webhook_url,
                      created_by=actor.username, created_by_id=actor.user_id, artifact_path="", handle="",
                      endpoint="", error="", created_at=(now := utcnow()), state_since=now)
    db.add(m)
    db.flush()
    return m


def live_on(db: Db, target: str) -> list[DeployedModel]:
    """Every version deploying or serving on ``target`` (what its servers should be)."""
    return list(db.scalars(select(DeployedModel).where(
        DeployedModel.target == target, DeployedModel.state.in_((ModelState.DEPLOYING, ModelState.SERVING)))))


def versions(db: Db, workspace: str, name: str = "") -> list[DeployedModel]:
    q = select(DeployedModel).where(DeployedModel.workspace == workspace)
    if name:
        q = q.where(DeployedModel.name == name)
    return list(db.scalars(q.order_by(DeployedModel.name, DeployedModel.version)))


def get(db: Db, workspace: str, name: str, version: int = 0) -> DeployedModel:
    """A version, or (``version`` 0) the active one."""
    q = select(DeployedModel).where(DeployedModel.workspace == workspace, DeployedModel.name == name)
    q = q.where(DeployedModel.version == version) if version else q.where(DeployedModel.active.is_(True))
    m = db.scalar(q)
    if m is None:
        what = f"version {version} of model {name!r}" if version else f"an active version of model {name!r}"
        raise NotFound(f"no {what} in workspace {workspace!r}")
    return m


def serving(db: Db, model_id: str, *, handle: str, endpoint: str, artifact_path: str) -> DeployedModel:
    m = db.get(DeployedModel, model_id)
    m.state, m.handle, m.endpoint, m.artifact_path = ModelState.SERVING, handle, endpoint, artifact_path
    m.state_since = utcnow()
    emit(db, m, "deployed")
    return m


def claim_restart(db: Db, model_id: str) -> bool:
    """Move a serving version whose server is gone to ``deploying`` unless another runner did so first
    (compare and set: of two reconcilers, one restarts it)."""
    done = db.execute(update(DeployedModel).where(DeployedModel.id == model_id,
                                                  DeployedModel.state == ModelState.SERVING)
                      .values(state=ModelState.DEPLOYING, state_since=utcnow(), endpoint=""))
    return done.rowcount == 1


def restarted(db: Db, model_id: str, *, handle: str, endpoint: str, reason: str) -> DeployedModel:
    m = db.get(DeployedModel, model_id)
    m.state, m.handle, m.endpoint, m.state_since = ModelState.SERVING, handle, endpoint, utcnow()
    emit(db, m, "restarted", detail=reason)
    return m


def failed(db: Db, model_id: str, error: str) -> DeployedModel:
    m = db.get(DeployedModel, model_id)
    m.state, m.error, m.endpoint, m.state_since = ModelState.FAILED, error[:4000], "", utcnow()
    emit(db, m, "failed")
    return m


def activate(db: Db, *, actor: common_pb2.Actor, workspace: str, name: str, version: int) -> DeployedModel:
    """Make ``version`` the one the stable URL serves (a rollback when it is older)."""
    target = get(db, workspace, name, version)
    if target.state != ModelState.SERVING:
        raise Invalid(f"version {version} of {name!r} is {target.state}, not serving",
                      errors=[("version", str(version))])
    for m in versions(db, workspace, name):
        m.active = m.id == target.id
    emit(db, target, "activated", actor)
    return target


def stopped(db: Db, *, actor: common_pb2.Actor, model_id: str) -> DeployedModel:
    m = db.get(DeployedModel, model_id)
    m.state, m.active, m.endpoint, m.state_since = ModelState.STOPPED, False, "", utcnow()
    emit(db, m, "stopped", actor)
    return m


# --- keys -----------------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Db, *, actor: common_pb2.Actor, workspace: str, name: str, label: str = "",
               rate_per_minute: int = 0) -> tuple[ModelKey, str]:
    """(the key, its secret): the only time the secret exists outside the caller's hands."""
    check_name(name)
    if not 0 <= rate_per_minute <= 1_000_000:
        raise Invalid("rate_per_minute must be between 0 and 1000000", errors=[("rate_per_minute", "")])
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ModelKey(id=str(uuid.uuid4()), workspace=workspace, name=name, secret_sha256=_digest(secret),
                   prefix=secret[:10], label=label[:200], rate_per_minute=rate_per_minute,
                   created_by=actor.username, created_at=utcnow())
    db.add(key)
    db.flush()
    return key, secret


def keys(db: Db, workspace: str, name: str) -> list[ModelKey]:
    return list(db.scalars(select(ModelKey).where(ModelKey.workspace == workspace, ModelKey.name == name)
                           .order_by(ModelKey.created_at)))


def revoke_key(db: Db, *, workspace: str, name: str, key_id: str) -> ModelKey:
    key = db.get(ModelKey, key_id)
    if key is None or key.workspace != workspace or key.name != name:
        raise NotFound(f"no key {key_id!r} of model {name!r}")
    key.revoked_at = key.revoked_at or utcnow()
    return key


def check_key(db: Db, secret: str) -> ModelKey | None:
    """The live key whose secret this is, or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = db.scalar(select(ModelKey).where(ModelKey.secret_sha256 == _digest(secret)))
    return key if key is not None and key.revoked_at is None else None


# --- alerts ---------------------------------------------------------------------------------------


def record_alert(db: Db, m: DeployedModel, *, kind: str, window_start: str, detail: str) -> ModelAlert | None:
    """A new alert (and its event) unless this model already had one of ``kind`` for that window."""
    if db.scalar(select(ModelAlert).where(ModelAlert.workspace == m.workspace, ModelAlert.name == m.name,
                                          ModelAlert.kind == kind, ModelAlert.window_start == window_start)):
        return None
    alert = ModelAlert(id=str(uuid.uuid4()), workspace=m.workspace, name=m.name, version=m.version, kind=kind,
                       window_start=window_start, detail=detail, created_at=utcnow())
    db.add(alert)
    emit(db, m, f"{kind}_alert", detail=detail)
    db.flush()
    return alert


def alerts(db: Db, workspace: str, name: str) -> list[ModelAlert]:
    return list(db.scalars(select(ModelAlert).where(ModelAlert.workspace == workspace, ModelAlert.name == name)
                           .order_by(ModelAlert.created_at)))
