"""Users and API tokens: plain functions over a session (the routes stay thin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reprolab_common.errors import Conflict, NotFound
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .core.security import forget_tokens, hash_token, new_token
from .models import ApiToken, User


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str = "",
    platform_admin: bool = False,
    token_name: str = "initial",
) -> tuple[User, str]:
    """Create a user with a first token; returns the user and the token (shown once)."""
    user = User(username=username, display_name=display_name, platform_admin=platform_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a user named {username!r} already exists") from exc
    token, _ = add_token(session, user=user, name=token_name)
    session.commit()
    return user, token


def add_token(session: Session, *, user: User, name: str) -> tuple[str, ApiToken]:
    """Add a token row (not committed); returns the token text and its row."""
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token))
    session.add(row)
    session.flush()
    return token, row


def create_token(session: Session, *, user: User, name: str) -> tuple[str, ApiToken]:
    token, row = add_token(session, user=user, name=name)
    session.commit()
    return token, row


def list_tokens(session: Session, *, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at, ApiToken.id)
        )
    )


def revoke_token(session: Session, *, user: User, token_id: str, current_token: str = "") -> None:
    """Revoke one of ``user``'s tokens. Refused (409) when it would leave the caller without a way back:
    the token this request is authenticated with (``current_token``), or a platform admin's last live
    token while the admin has no password (nobody could mint a new admin token over the API)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"you have no token with id {token_id!r}; GET /api/v1/me/tokens lists yours")
    if current_token and row.token_hash == hash_token(current_token):
        raise Conflict("this request is authenticated with the token you are revoking, so you would lock "
                       "yourself out; revoke it from another token or a portal session "
                       "(create one with POST /api/v1/me/tokens)")
    if user.platform_admin and not row.revoked and not user.password_hash:
        live = session.scalar(select(func.count()).select_from(ApiToken)
                              .where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False)))
        if live <= 1:
            raise Conflict("this is your last API token and you are a platform admin without a password: "
                           "revoking it would leave no way to sign in as you; create another token first "
                           "(POST /api/v1/me/tokens) or set a password")
    row.revoked = True
    session.commit()
    forget_tokens()


def authenticate(session: Session, token: str, *, touch_every: timedelta) -> User | None:
    """The user owning a live token, or None. ``last_used_at`` is refreshed at most every ``touch_every``."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    now = datetime.now(UTC)
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if last is None or now - last >= touch_every:
        row.last_used_at = now
        session.commit()
    return user
