"""Tables of the audit service. Entries are only ever inserted: nothing updates or deletes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reprolab_common.db import UTCDateTime
from reprolab_common.outbox import outbox_table
from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("workspace", "seq", name="uq_entries_workspace_seq"),
        UniqueConstraint("event_id", name="uq_entries_event_id"),
        Index("ix_entries_workspace_actor_seq", "workspace", "actor_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_name: Mapped[str] = mapped_column(String(256))
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    canonical: Mapped[str] = mapped_column(Text)
    leaf: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Head(Base):
    """The newest entry of each workspace's chain; its row is the lock appenders take."""

    __tablename__ = "heads"

    workspace: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # Size covered by the newest periodic checkpoint.
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_workspace_size", "workspace", "size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    head: Mapped[str] = mapped_column(String(64))
    # The exact RFC 3339 text that was signed.
    time: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))

    def document(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "size": self.size, "head": self.head, "time": self.time,
                "key_id": self.key_id, "kind": self.kind, "signature": self.signature}


class SigningKey(Base):
    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Outbox = outbox_table(Base)
