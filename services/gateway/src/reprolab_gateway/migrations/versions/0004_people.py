"""People: a user can be disabled; how each member came into a workspace (class list, invite)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", TS, nullable=True))
    op.create_table(
        "member_origins",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("workspace", "user_id", name="uq_member_origins_workspace_user"),
    )


def downgrade() -> None:
    op.drop_table("member_origins")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
