"""Assignments (evaluation code + hidden labels) and the scores of runs.

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
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code_digest", sa.String(71), nullable=False),
        sa.Column("code_key", sa.String(512), nullable=False),
        sa.Column("labels_id", sa.Integer(), nullable=False),
        sa.Column("predictions", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(63), nullable=False),
        sa.Column("higher_is_better", sa.Boolean(), nullable=False),
        sa.Column("command_json", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_assignments_workspace_id_workspaces",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["labels_id"], ["datasets.id"], name="fk_assignments_labels_id_datasets"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_assignments_workspace_id_name"),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("score", sa.String(64), nullable=False),
        sa.Column("scored_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], name="fk_scores_assignment_id_assignments",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", name="uq_scores_run_id"),
    )
    op.create_index("ix_scores_assignment_id", "scores", ["assignment_id"])


def downgrade() -> None:
    op.drop_index("ix_scores_assignment_id", "scores")
    op.drop_table("scores")
    op.drop_table("assignments")
