"""Images recorded on versions by successful builds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "version_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("lock_digest", sa.String(71), nullable=False),
        sa.Column("image_ref", sa.String(400), nullable=False),
        sa.Column("image_digest", sa.String(71), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_version_images"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_version_images_version_id_versions",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("version_id", name="uq_version_images_version_id"),
    )


def downgrade() -> None:
    op.drop_table("version_images")
