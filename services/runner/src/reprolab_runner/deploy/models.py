"""The runner's serving tables (migration 0006_models)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from reprolab_common.db import UTCDateTime, utcnow
from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base


class ModelState(StrEnum):
    DEPLOYING = "deploying"
    SERVING = "serving"
    STOPPED = "stopped"
    FAILED = "failed"


class DeployedModel(Base):
    """One version of a named model: a run's artifact served in the run's image."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("workspace", "name", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(36))
    image: Mapped[str] = mapped_column(String(500))  # pinned by digest
    artifact: Mapped[str] = mapped_column(String(500))
    artifact_path: Mapped[str] = mapped_column(String(1000), default="")  # where the runner copied it
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    target: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(300), default="")
    endpoint: Mapped[str] = mapped_column(String(300), default="")  # upstream URL; never shown to users
    error: Mapped[str] = mapped_column(Text, default="")
    sample_rate: Mapped[float] = mapped_column(Float, default=1.0)
    webhook_url: Mapped[str] = mapped_column(String(1000), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_by_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # when ``state`` last changed (None on rows of before migration 0007: ``created_at`` stands in)
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=utcnow)


class ModelKey(Base):
    """A per-model API key: only its SHA-256 is stored; ``prefix`` tells keys apart."""

    __tablename__ = "model_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ModelAlert(Base):
    """A drift or accuracy alert of one monitoring window (once per model, kind and window)."""

    __tablename__ = "model_alerts"
    __table_args__ = (UniqueConstraint("workspace", "name", "kind", "window_start"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
