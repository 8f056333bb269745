"""Account changes: passwords set, changed and reset by an admin-issued one-time link, registration.

Each change is recorded in the accounts log (``account.password_set``, ``account.password_changed``,
``account.reset_issued``, ``account.reset_used``, ``account.registered``); never the password or link.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Request
from reprolab_common.errors import Conflict, Forbidden, Invalid, NotFound
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.config import GatewaySettings
from ..core.outbox import account_event, actor_of, emit
from ..models import PasswordReset, User
from .passwords import hash_password, password_problems, verify_password
from .sessions import client_address

RESET_PREFIX = "rrs_"
# secrets that travel in URL paths (invite and reset links): cut from every log line
_LINK_SECRET = re.compile(r"\b(rin_|rrs_)[A-Za-z0-9_-]{8,}")


class RedactLinkSecrets(logging.Filter):
    """Replaces invite and reset link secrets in a record (uvicorn's access log prints request paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # every request's access line passes here: the substring tests skip the regex for almost all
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


def _redact(text: str) -> str:
    if "rin_" not in text and "rrs_" not in text:
        return text
    return _LINK_SECRET.sub(r"\1[redacted]", text)


def redact_link_secrets_in_logs() -> None:
    """Install the filter on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinkSecrets) for f in access.filters):
        access.addFilter(RedactLinkSecrets())
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,38}$")


def secret_link_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def base_url(request: Request, settings: GatewaySettings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def check_new_password(settings: GatewaySettings, password: str, username: str, loc: str = "password") -> None:
    problems = password_problems(password, min_length=settings.password_min_length, username=username)
    if problems:
        raise Invalid(f"the new password {'; '.join(problems)}", errors=[(loc, p) for p in problems])


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise Invalid(f"{username!r} is not a valid username: use 1-39 lowercase letters, digits, '.', '_' and "
                      "'-', starting with a letter or digit", errors=[("username", "invalid")])
    return username


def _wake(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def set_password(db: Session, request: Request, settings: GatewaySettings, *, user: User, by: User,
                 password: str) -> None:
    """An admin sets ``user``'s password (``account.password_set``)."""
    check_new_password(settings, password, user.username)
    user.password_hash = hash_password(password)
    user.failed_signins = 0
    user.locked_until = None
    emit(db, type="account.password_set", actor=actor_of(by), subject=f"users/{user.id}",
         account=account_event(user.username, method="admin", address=client_address(request)))
    db.commit()
    _wake(request)


def change_password(db: Session, request: Request, settings: GatewaySettings, *, user: User, current: str,
                    new: str) -> None:
    """The user changes their own password; the current one is required (``account.password_changed``)."""
    if not user.password_hash:
        raise Forbidden("your account has no password yet (it signs in through single sign-on or a token); "
                        "ask an admin for a reset link to set one")
    if not verify_password(user.password_hash, current):
        raise Forbidden("the current password is wrong", errors=[("current_password", "wrong password")])
    check_new_password(settings, new, user.username, "new_password")
    db.get(User, user.id).password_hash = hash_password(new)  # the request's user may be a cached copy
    emit(db, type="account.password_changed", actor=actor_of(user), subject=f"users/{user.id}",
         account=account_event(user.username, method="self", address=client_address(request)))
    db.commit()
    _wake(request)


def issue_reset(db: Session, request: Request, settings: GatewaySettings, *, user: User, by: User
                ) -> tuple[str, PasswordReset]:
    """A one-time link for ``user`` to set a new password; earlier unused links stop working. Returns the
    link (shown once to the admin, who hands it over) and its row (``account.reset_issued``)."""
    now = datetime.now(UTC)
    db.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
               .values(used_at=now))
    token = secret_link_token(RESET_PREFIX)
    row = PasswordReset(user_id=user.id, token_hash=sha256(token), created_by=by.id, created_at=now,
                        expires_at=now + timedelta(hours=settings.reset_link_hours))
    db.add(row)
    db.flush()
    emit(db, type="account.reset_issued", actor=actor_of(by), subject=f"users/{user.id}",
         account=account_event(user.username, method="admin", ref=row.id, address=client_address(request)))
    db.commit()
    _wake(request)
    return f"{base_url(request, settings)}/reset/{token}", row


def find_reset(db: Session, token: str) -> tuple[PasswordReset, User]:
    """The live reset link ``token`` and its user, or NotFound saying why it cannot be used."""
    row = db.scalar(select(PasswordReset).where(PasswordReset.token_hash == sha256(token))) if token else None
    if row is None:
        raise NotFound("this reset link is not valid; ask an admin for a new one")
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if row.used_at is not None or expires <= datetime.now(UTC):
        raise NotFound("this reset link has been used or has expired; ask an admin for a new one")
    user = db.get(User, row.user_id)
    if user is None:
        raise NotFound("this reset link is not valid; ask an admin for a new one")
    return row, user


def use_reset(db: Session, request: Request, settings: GatewaySettings, *, token: str, password: str) -> User:
    """Set the password through a reset link (once); every session of the user ends (``account.reset_used``)."""
    row, user = find_reset(db, token)
    check_new_password(settings, password, user.username)
    row.used_at = datetime.now(UTC)
    user.password_hash = hash_password(password)
    user.failed_signins = 0
    user.locked_until = None
    emit(db, type="account.reset_used", actor=actor_of(user), subject=f"users/{user.id}",
         account=account_event(user.username, method="reset", ref=row.id, address=client_address(request)))
    db.commit()
    _wake(request)
    return user


def register(db: Session, request: Request, settings: GatewaySettings, *, username: str, password: str,
             display_name: str = "", email: str = "", method: str = "password", ref: str = "") -> User:
    """Create an account with a password (``account.registered``); the caller checked it may."""
    username = check_username(username.strip())
    check_new_password(settings, password, username)
    user = User(username=username, display_name=display_name.strip()[:200], email=email.strip()[:320],
                password_hash=hash_password(password))
    db.add(user)
    try:
        db.flush()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict(f"the username {username!r} is taken; choose another",
                       errors=[("username", "taken")]) from exc
    emit(db, type="account.registered", actor=actor_of(user), subject=f"users/{user.id}",
         account=account_event(username, method=method, ref=ref, address=client_address(request)))
    db.commit()
    _wake(request)
    return user
