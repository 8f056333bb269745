"""Assignment scoring of runs: the evaluation, its sandbox's handle, the score or why there is none.

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
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("evaluation_json", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("eval_handle", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("score", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("score_error", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("runs") as batch:
        for name in ("evaluation_json", "eval_handle", "score", "score_error"):
            batch.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("score_error", "score", "eval_handle", "evaluation_json"):
            batch.drop_column(name)
