"""Model serving (issue 15): deployed model versions, per-model API keys (hashed), monitoring alerts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("image", sa.String(500), nullable=False),
        sa.Column("artifact", sa.String(500), nullable=False),
        sa.Column("artifact_path", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("handle", sa.String(300), nullable=False),
        sa.Column("endpoint", sa.String(300), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("webhook_url", sa.String(1000), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_by_id", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("workspace", "name", "version"),
    )
    op.create_index("ix_models_workspace", "models", ["workspace"])
    op.create_table(
        "model_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_model_keys_workspace", "model_keys", ["workspace"])
    op.create_table(
        "model_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("window_start", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("workspace", "name", "kind", "window_start"),
    )
    op.create_index("ix_model_alerts_workspace", "model_alerts", ["workspace"])


def downgrade() -> None:
    op.drop_table("model_alerts")
    op.drop_table("model_keys")
    op.drop_table("models")
