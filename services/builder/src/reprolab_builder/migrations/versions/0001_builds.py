"""Builds, build targets, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lock_digest", sa.String(71), nullable=True),
        sa.Column("lock_json", sa.Text(), nullable=False),
        sa.Column("parent_lock_digest", sa.String(71), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("image_ref", sa.String(400), nullable=False),
        sa.Column("image_digest", sa.String(71), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_by_id", sa.String(128), nullable=False),
        sa.Column("sbom_json", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_builds"),
        sa.UniqueConstraint("lock_digest", name="uq_builds_lock_digest"),
    )
    op.create_table(
        "build_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("build_id", sa.String(36), nullable=False),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("image_ref", sa.String(400), nullable=False),
        sa.Column("recorded", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_build_targets"),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"], name="fk_build_targets_build_id_builds",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("build_id", "workspace", "environment", "version",
                            name="uq_build_targets_build_id_workspace_environment_version"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("build_targets")
    op.drop_table("builds")
