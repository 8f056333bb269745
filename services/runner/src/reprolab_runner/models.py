"""The runner's tables: runs (with the target's handle, so a restarted runner resumes), outputs, users' cloud
credentials (encrypted), outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from reprolab_common.db import NAMING_CONVENTION, UTCDateTime, utcnow
from reprolab_common.outbox import outbox_table
from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS = Path(__file__).parent / "migrations"


class Status(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)
    environment: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(500))
    code_digest: Mapped[str] = mapped_column(String(71))
    code_object_key: Mapped[str] = mapped_column(String(300))
    datasets_json: Mapped[str] = mapped_column(Text, default="[]")
    command_json: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(32))
    cpu_millis: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    pids: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    network: Mapped[int] = mapped_column(Integer, default=0)
    assignment: Mapped[str] = mapped_column(String(63), default="")
    # How to score it (runner_pb2.Evaluation as JSON; "" without an assignment), the evaluation
    # sandbox's handle once started, and the outcome: a decimal score or why there is none.
    evaluation_json: Mapped[str] = mapped_column(Text, default="")
    eval_handle: Mapped[str] = mapped_column(String(300), default="")
    score: Mapped[str] = mapped_column(String(64), default="")
    score_error: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    handle: Mapped[str] = mapped_column(String(300), default="")
    cancel_requested: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    metrics_json: Mapped[str] = mapped_column(Text, default="")
    provenance_json: Mapped[str] = mapped_column(Text, default="")
    # Where the code came from (runner_pb2.CodeSource as JSON: Git URL, ref and pinned commit, notebook); "{}"
    source_json: Mapped[str] = mapped_column(Text, default="{}")
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_by_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Output(Base):
    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(400))


class Credential(Base):
    """One user's credentials for one cloud vendor in one workspace. ``ciphertext`` is an AES-GCM blob
    (see credentials.py) bound to (workspace, id, user_id, vendor); everything else is not secret."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("workspace", "user_id", "vendor"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    vendor: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    # Names of the secret fields that are set (never their values) and the identifier's last 4 chars.
    secret_fields: Mapped[str] = mapped_column(String(300), default="")
    key_hint: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


OutboxEvent = outbox_table(Base)

# the session tables share this metadata (one migration chain per service)
from . import quotas as _quotas  # noqa: E402,F401
from .deploy import models as _deploy_models  # noqa: E402,F401
from .sessions import models as _session_models  # noqa: E402,F401
