"""The builder's tables: builds (one per lock digest), the versions each build serves, the outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from reprolab_common.db import NAMING_CONVENTION, UTCDateTime, utcnow
from reprolab_common.outbox import outbox_table
from sqlalchemy import ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS = Path(__file__).parent / "migrations"


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Build(Base):
    """At most one build per lock digest: identical requests join it. A failed build may be retried,
    which bumps ``attempt`` (and so the JOBS message id)."""

    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lock_digest: Mapped[str | None] = mapped_column(String(71), unique=True, nullable=True)
    lock_json: Mapped[str] = mapped_column(Text, default="")
    parent_lock_digest: Mapped[str] = mapped_column(String(71), default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(63))
    environment: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    image_ref: Mapped[str] = mapped_column(String(400), default="")
    image_digest: Mapped[str] = mapped_column(String(71), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    backend: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_by_id: Mapped[str] = mapped_column(String(128))
    sbom_json: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BuildTarget(Base):
    """A version that gets this build's image (several versions can share one lock: a rollback, a
    fork before any change)."""

    __tablename__ = "build_targets"
    __table_args__ = (UniqueConstraint("build_id", "workspace", "environment", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"))
    workspace: Mapped[str] = mapped_column(String(63))
    environment: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    image_ref: Mapped[str] = mapped_column(String(400), default="")
    recorded: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(128), default="", server_default="")


OutboxEvent = outbox_table(Base)


class RegistryCredential(Base):
    """A workspace's login to one external registry. ``secret`` is the AES-GCM blob of the password
    (``publish.py``), bound to workspace, host, username and row id."""

    __tablename__ = "registry_credentials"
    __table_args__ = (UniqueConstraint("workspace", "host"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63))
    host: Mapped[str] = mapped_column(String(255))  # the registry's host[:port] ("registry" is SQLAlchemy's)
    username: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PackageIndex(Base):
    """A workspace's Python package index (``indexes.py``): an extra index searched before the primary,
    or the primary that replaces PyPI. ``secret`` is the AES-GCM blob of the password or token ("" for
    an index without credentials), bound to workspace, name, URL, user name and row id."""

    __tablename__ = "package_indexes"
    __table_args__ = (UniqueConstraint("workspace", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))  # "extra" or "primary"
    priority: Mapped[int] = mapped_column(Integer, default=0)
    username: Mapped[str] = mapped_column(String(255), default="")
    secret: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
