"""The LTI tool's tables (gateway migration 0003)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base, new_id, utcnow


class LtiPlatform(Base):
    """An LMS registration: who signs the launches (issuer, JWKS) and our client id there."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    # JSON list of the deployment ids a launch may carry
    deployment_ids: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiToolKey(Base):
    """The tool's RSA key (made once): signs client assertions and deep-link responses. Private: never
    leaves the gateway; its public half is served at /lti/jwks."""

    __tablename__ = "lti_tool_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiLogin(Base):
    """An OIDC login initiation: its state (sha256 only), nonce, the browser it was started in, where the
    launch may land. Used once."""

    __tablename__ = "lti_logins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(36), ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(64))
    browser_hash: Mapped[str] = mapped_column(String(64))
    target_link_uri: Mapped[str] = mapped_column(String(1000))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)


class LtiAccount(Base):
    """A Reprolab user's identity at an LMS: (registration, sub) is the link, never a name or email."""

    __tablename__ = "lti_accounts"
    __table_args__ = (UniqueConstraint("platform_id", "subject", name="uq_lti_accounts_platform_subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(String(36), ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiContext(Base):
    """An LMS course and the workspace it maps to, with its service endpoints from the latest launch."""

    __tablename__ = "lti_contexts"
    __table_args__ = (UniqueConstraint("platform_id", "context_id", name="uq_lti_contexts_platform_context"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(String(36), ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    deployment_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    workspace: Mapped[str] = mapped_column(String(63))
    lineitems_url: Mapped[str] = mapped_column(String(1000), default="")
    ags_scopes: Mapped[str] = mapped_column(Text, default="")
    memberships_url: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiMember(Base):
    """The role the LMS last gave a user in a course (to notice changes)."""

    __tablename__ = "lti_members"
    __table_args__ = (UniqueConstraint("context_pk", "user_id", name="uq_lti_members_context_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    context_pk: Mapped[str] = mapped_column(String(36), ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))


class LtiLineItem(Base):
    """An assignment's column in the LMS gradebook."""

    __tablename__ = "lti_line_items"
    __table_args__ = (UniqueConstraint("context_pk", "assignment", name="uq_lti_line_items_context_assignment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    context_pk: Mapped[str] = mapped_column(String(36), ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    assignment: Mapped[str] = mapped_column(String(63))
    url: Mapped[str] = mapped_column(String(1000))


class LtiGrade(Base):
    """The last grade posted (or attempted) for a student on an assignment: visible, retried."""

    __tablename__ = "lti_grades"
    __table_args__ = (UniqueConstraint("context_pk", "assignment", "user_id", name="uq_lti_grades_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    context_pk: Mapped[str] = mapped_column(String(36), ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    assignment: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(39))
    score: Mapped[float] = mapped_column(Float)
    # sent | failed | pending
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiDeepLink(Base):
    """A deep-linking request waiting for the instructor's choice (id: sha256 of the page's secret)."""

    __tablename__ = "lti_deep_links"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(36), ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    context_pk: Mapped[str] = mapped_column(String(36), ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    return_url: Mapped[str] = mapped_column(String(1000))
    data: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)
