"""Users' cloud credentials per workspace and vendor, encrypted at rest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("secret_fields", sa.String(300), nullable=False),
        sa.Column("key_hint", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credentials"),
        sa.UniqueConstraint("workspace", "user_id", "vendor", name="uq_credentials_workspace_user_id_vendor"),
    )
    op.create_index("ix_credentials_user_id", "credentials", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_credentials_user_id", "credentials")
    op.drop_table("credentials")
