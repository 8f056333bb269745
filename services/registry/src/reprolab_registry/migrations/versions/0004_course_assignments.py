"""Assignments as courses run them: instructions, starter code, dates, late policy, daily limits,
anonymous leaderboards, best/last grading, private split scores, evaluation revisions, submissions
and feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("instructions", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("starter_digest", sa.String(71), nullable=False, server_default=""))
        batch.add_column(sa.Column("starter_key", sa.String(512), nullable=False, server_default=""))
        batch.add_column(sa.Column("opens_at", TS, nullable=True))
        batch.add_column(sa.Column("due_at", TS, nullable=True))
        batch.add_column(sa.Column("late_policy", sa.String(16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("late_penalty", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("daily_limit", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("anonymous", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("grade_by", sa.String(8), nullable=False, server_default="best"))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("private_score", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("submitted_at", TS, nullable=True))
        batch.drop_constraint("uq_scores_run_id", type_="unique")
        batch.create_unique_constraint("uq_scores_run_id_revision", ["run_id", "revision"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"],
                                name="fk_submissions_assignment_id_assignments", ondelete="CASCADE"),
    )
    op.create_index("ix_submissions_assignment_id", "submissions", ["assignment_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"],
                                name="fk_feedback_assignment_id_assignments", ondelete="CASCADE"),
    )
    op.create_index("ix_feedback_assignment_id", "feedback", ["assignment_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_assignment_id", "feedback")
    op.drop_table("feedback")
    op.drop_index("ix_submissions_assignment_id", "submissions")
    op.drop_table("submissions")
    with op.batch_alter_table("scores") as batch:
        batch.drop_constraint("uq_scores_run_id_revision", type_="unique")
        batch.create_unique_constraint("uq_scores_run_id", ["run_id"])
        for name in ("submitted_at", "revision", "private_score"):
            batch.drop_column(name)
    with op.batch_alter_table("assignments") as batch:
        for name in ("revision", "grade_by", "anonymous", "daily_limit", "late_penalty", "late_policy", "due_at",
                     "opens_at", "starter_key", "starter_digest", "instructions"):
            batch.drop_column(name)
