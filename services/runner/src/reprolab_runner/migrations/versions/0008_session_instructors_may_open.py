"""A workspace's session policy says whether its instructors and admins may open its students' sessions
(issue 12: "only the session's owner, and instructors if the workspace allows it"; default no).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_policies") as batch:
        batch.add_column(sa.Column("instructors_may_open", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("session_policies") as batch:
        batch.drop_column("instructors_may_open")
