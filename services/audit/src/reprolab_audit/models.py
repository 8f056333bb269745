"""Tables of the audit service. Entries are only ever inserted: nothing updates or deletes them."""

from __future__ import annotations

from datetime import datetime

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
    # RFC 6962 leaf hash (hex) of ``canonical``: level 0 of the workspace's tree, index seq - 1.
    leaf: Mapped[str] = mapped_column(String(64))


class Head(Base):
    """Each workspace's tree: its size and right edge; its row is the lock appenders take."""

    __tablename__ = "heads"

    workspace: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # The compact range: hex roots of the perfect subtrees of the right edge, largest first,
    # concatenated (popcount(size) * 64 hex digits). Appending needs nothing else.
    tree: Mapped[str] = mapped_column(Text)
    # Size covered by the newest checkpoint.
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)


class Node(Base):
    """A perfect subtree's root (level >= 1; level 0 are the entries' leaves), written once when
    completed: inclusion and consistency proofs are made of these."""

    __tablename__ = "tree_nodes"

    workspace: Mapped[str] = mapped_column(String(128), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))


class Checkpoint(Base):
    """Every signed checkpoint ever issued (a C2SP signed note), kept so old ones can be shown again."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_workspace_size", "workspace", "size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKey(Base):
    """Every key that ever signed: its public half stays, so what it signed verifies after rotation."""

    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


Outbox = outbox_table(Base)
