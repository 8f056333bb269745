"""The runner's session tables (migration 0005_sessions)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from reprolab_common.db import UTCDateTime, utcnow
from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base


class SessionStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


ACTIVE = (SessionStatus.STARTING, SessionStatus.RUNNING, SessionStatus.STOPPING)


class NotebookSession(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)
    environment: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    # the version's image (pinned) and lock; session_image: the same with the notebook layer, pinned
    image: Mapped[str] = mapped_column(String(500))
    lock_digest: Mapped[str] = mapped_column(String(71))
    session_image: Mapped[str] = mapped_column(String(500), default="")
    target: Mapped[str] = mapped_column(String(32))
    cpu_millis: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    pids: Mapped[int] = mapped_column(Integer)
    network: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(String(128), index=True)
    owner_username: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    handle: Mapped[str] = mapped_column(String(300), default="")
    # The notebook server's token: read by runner.session.connect for the gateway only; never in a
    # Session message, an event or a log line.
    server_token: Mapped[str] = mapped_column(String(128))
    upstream_url: Mapped[str] = mapped_column(String(300), default="")
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_activity: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stop_reason: Mapped[str] = mapped_column(String(32), default="")


class SessionLayer(Base):
    """Layers already built: (version image, layer inputs digest) → the pushed session image, pinned."""

    __tablename__ = "session_layers"

    key: Mapped[str] = mapped_column(String(71), primary_key=True)
    image: Mapped[str] = mapped_column(String(500))
    session_image: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SessionPolicy(Base):
    """A workspace's session settings (instructors set them); absent: the runner's defaults."""

    __tablename__ = "session_policies"

    workspace: Mapped[str] = mapped_column(String(63), primary_key=True)
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_per_environment: Mapped[int] = mapped_column(Integer)
    network: Mapped[str] = mapped_column(String(16))
    # the workspace's instructors and admins may open its students' sessions (migration 0008)
    instructors_may_open: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
