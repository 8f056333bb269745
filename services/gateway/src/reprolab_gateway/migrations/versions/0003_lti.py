"""LTI 1.3: platform registrations, the tool's key, logins, accounts, courses, line items, grades

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _platform_fk() -> sa.Column:
    return sa.Column("platform_id", sa.String(36), sa.ForeignKey("lti_platforms.id", ondelete="CASCADE"),
                     nullable=False)


def _context_fk() -> sa.Column:
    return sa.Column("context_pk", sa.String(36), sa.ForeignKey("lti_contexts.id", ondelete="CASCADE"),
                     nullable=False)


def _user_fk() -> sa.Column:
    return sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "lti_platforms",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_login_url", sa.String(1000), nullable=False),
        sa.Column("token_url", sa.String(1000), nullable=False),
        sa.Column("jwks_url", sa.String(1000), nullable=False),
        sa.Column("deployment_ids", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),
    )
    op.create_table(
        "lti_tool_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "lti_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        _platform_fk(),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("target_link_uri", sa.String(1000), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )
    op.create_table(
        "lti_accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        _platform_fk(),
        sa.Column("subject", sa.String(255), nullable=False),
        _user_fk(),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("platform_id", "subject", name="uq_lti_accounts_platform_subject"),
    )
    op.create_index("ix_lti_accounts_user_id", "lti_accounts", ["user_id"])
    op.create_table(
        "lti_contexts",
        sa.Column("id", sa.String(36), primary_key=True),
        _platform_fk(),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("deployment_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("lineitems_url", sa.String(1000), nullable=False),
        sa.Column("ags_scopes", sa.Text(), nullable=False),
        sa.Column("memberships_url", sa.String(1000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("platform_id", "context_id", name="uq_lti_contexts_platform_context"),
    )
    op.create_table(
        "lti_members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _context_fk(),
        _user_fk(),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.UniqueConstraint("context_pk", "user_id", name="uq_lti_members_context_user"),
    )
    op.create_table(
        "lti_line_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _context_fk(),
        sa.Column("assignment", sa.String(63), nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.UniqueConstraint("context_pk", "assignment", name="uq_lti_line_items_context_assignment"),
    )
    op.create_table(
        "lti_grades",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _context_fk(),
        sa.Column("assignment", sa.String(63), nullable=False),
        _user_fk(),
        sa.Column("username", sa.String(39), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("context_pk", "assignment", "user_id", name="uq_lti_grades_key"),
    )
    op.create_table(
        "lti_deep_links",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        _platform_fk(),
        _context_fk(),
        sa.Column("deployment_id", sa.String(255), nullable=False),
        sa.Column("return_url", sa.String(1000), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _user_fk(),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )


def downgrade() -> None:
    for table in ("lti_deep_links", "lti_grades", "lti_line_items", "lti_members", "lti_contexts"):
        op.drop_table(table)
    op.drop_index("ix_lti_accounts_user_id", table_name="lti_accounts")
    for table in ("lti_accounts", "lti_logins", "lti_tool_keys", "lti_platforms"):
        op.drop_table(table)
