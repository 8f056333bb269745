"""The registry's tables (SQLAlchemy 2 typed models). Alembic migrations mirror them.

Versions are immutable: nothing updates a row once inserted (a ``before_update`` hook refuses it),
so lineage (``parent_id``) and digests can be trusted forever.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from reprolab_common.db import NAMING_CONVENTION, UTCDateTime
from reprolab_common.outbox import outbox_table
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

MIGRATIONS = Path(__file__).parent / "migrations"

NAMING = NAMING_CONVENTION


class Role(StrEnum):
    ADMIN = "admin"
    INSTRUCTOR = "instructor"
    STUDENT = "student"


class EnvKind(StrEnum):
    WORKSPACE = "workspace"
    PERSONAL = "personal"


class Origin(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ROLLBACK = "rollback"
    FORK = "fork"


class Visibility(StrEnum):
    PUBLIC = "public"
    HIDDEN = "hidden"


def now() -> datetime:
    return datetime.now(UTC)


def _check_in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        CheckConstraint(_check_in("role", Role), name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint(_check_in("kind", EnvKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[str] = mapped_column(String(128))
    owner_name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    # "<workspace>/<env>/v<n>" of the version this environment was forked from, "" otherwise.
    forked_from: Mapped[str] = mapped_column(String(200), default="")
    # Highest version number; bumped under a row lock so concurrent new versions get distinct numbers.
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # Set while archived: left out of lists and run forms; its versions still pull and run.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("environment_id", "number"),
        CheckConstraint(_check_in("origin", Origin), name="origin"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    spec_json: Mapped[str] = mapped_column(Text)
    spec_digest: Mapped[str] = mapped_column(String(71))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    # "<workspace>/<env>/v<n>" of the parent, "" for a first version.
    parent_ref: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(String(16))
    rollback_to: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[VersionImage | None] = relationship(lazy="selectin", viewonly=True)


class VersionImage(Base):
    """The image a successful build made of a version. Append-only like versions: recorded once,
    and a later record must name the same digest (a version never points at two images)."""

    __tablename__ = "version_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), unique=True)
    lock_digest: Mapped[str] = mapped_column(String(71))
    image_ref: Mapped[str] = mapped_column(String(400))
    image_digest: Mapped[str] = mapped_column(String(71))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("workspace_id", "digest"),
        CheckConstraint(_check_in("visibility", Visibility), name="visibility"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(71))
    name: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255))
    visibility: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str] = mapped_column(String(512))
    uploaded_by_id: Mapped[str] = mapped_column(String(128))
    uploaded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Assignment(Base):
    """An evaluation: the instructor's code (an uploaded archive) and a hidden labels dataset,
    run in the image of ``environment`` version ``version``."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    code_digest: Mapped[str] = mapped_column(String(71))
    code_key: Mapped[str] = mapped_column(String(512))
    labels_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    predictions: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(63))
    higher_is_better: Mapped[bool] = mapped_column(Boolean)
    command_json: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    labels: Mapped[Dataset] = relationship(lazy="joined", viewonly=True)
    # How the course runs it (migration 0004): instructions (Markdown), starter code, dates, late
    # policy, a daily submission limit, an anonymous leaderboard, which submission the gradebook counts.
    instructions: Mapped[str] = mapped_column(Text, default="")
    starter_digest: Mapped[str] = mapped_column(String(71), default="")
    starter_key: Mapped[str] = mapped_column(String(512), default="")
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)
    late_policy: Mapped[str] = mapped_column(String(16), default="none")
    late_penalty: Mapped[int] = mapped_column(Integer, default=0)
    daily_limit: Mapped[int] = mapped_column(Integer, default=0)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    grade_by: Mapped[str] = mapped_column(String(8), default="best")
    revision: Mapped[int] = mapped_column(Integer, default=1)


class Score(Base):
    """A run's score on an assignment, recorded by the runner; one per run and evaluation revision,
    never changed (a new evaluation adds a row). ``score`` is the decimal text the evaluation wrote
    (no floats anywhere on the way); ``private_score`` the private split's, when it wrote one."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("run_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    username: Mapped[str] = mapped_column(String(128))
    score: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    private_score: Mapped[str] = mapped_column(String(64), default="")
    revision: Mapped[int] = mapped_column(Integer, default=1)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)


class Submission(Base):
    """A student's admitted submission (counted for the daily limit, with its lateness then)."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class Feedback(Base):
    """An instructor's feedback on a submission (a run); only that run's student and managers read it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


OutboxEvent = outbox_table(Base)


@event.listens_for(VersionImage, "before_update")
@event.listens_for(Version, "before_update")
def _versions_are_immutable(_mapper: Any, _connection: Any, target: Version) -> None:
    raise RuntimeError(f"versions are immutable (tried to update version id {target.id})")
