"""JupyterLab sessions and the notebook layers built for them (issue 12).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(500), nullable=False),
        sa.Column("lock_digest", sa.String(71), nullable=False),
        sa.Column("session_image", sa.String(500), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("cpu_millis", sa.Integer(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("pids", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("owner_username", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("handle", sa.String(300), nullable=False),
        sa.Column("server_token", sa.String(128), nullable=False),
        sa.Column("upstream_url", sa.String(300), nullable=False),
        sa.Column("idle_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
        sa.Column("last_activity", TS, nullable=False),
        sa.Column("stop_reason", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_workspace", "sessions", ["workspace"])
    op.create_index("ix_sessions_owner_id", "sessions", ["owner_id"])
    op.create_table(
        "session_layers",
        sa.Column("key", sa.String(71), nullable=False),
        sa.Column("image", sa.String(500), nullable=False),
        sa.Column("session_image", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_session_layers"),
    )
    op.create_table(
        "session_policies",
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("idle_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("max_per_environment", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace", name="pk_session_policies"),
    )


def downgrade() -> None:
    op.drop_table("session_policies")
    op.drop_table("session_layers")
    op.drop_index("ix_sessions_owner_id", "sessions")
    op.drop_index("ix_sessions_workspace", "sessions")
    op.drop_table("sessions")
