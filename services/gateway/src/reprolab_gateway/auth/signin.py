"""Password sign-in with throttling, and the record of every attempt.

Throttling has two keys. Per account (in the database, so every gateway replica agrees): after
``signin_account_failures`` failures in a row the account refuses every password for
``signin_lock_seconds``, the right one included, so guessing cannot continue slowly through the lock.
Per address (in this process): more than ``signin_address_failures`` failures within
``signin_window_seconds`` and the address is refused, so one client cannot try one password against
many accounts. Both answer 429 with the time to wait.

Every attempt lands in the accounts log: ``account.signed_in`` (by ``start_session``) or
``account.signin_failed`` with the reason. A failure for a name that is no account records no name
(people type passwords into the username field).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from reprolab.v1 import common_pb2
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.config import GatewaySettings
from ..core.outbox import account_event, actor_of, emit
from ..core.throttle import AddressThrottle
from ..models import User
from .passwords import hash_password, needs_rehash, verify_password

ANONYMOUS = common_pb2.Actor()


class SignInRefused(Exception):
    """A refused sign-in: ``message`` is safe to show (it never says whether the account exists)."""

    def __init__(self, message: str, *, status: int = 401, retry_after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def record_failure(db: Session, *, user: User | None, method: str, address: str, reason: str,
                   issuer: str = "") -> None:
    """``account.signin_failed`` in the accounts log (committed)."""
    actor = actor_of(user) if user is not None else ANONYMOUS
    subject = f"users/{user.id}" if user is not None else "users"
    emit(db, type="account.signin_failed", actor=actor, subject=subject,
         account=account_event(user.username if user else "", method=method, address=address, reason=reason,
                               issuer=issuer))
    db.commit()


def check_address(throttle: AddressThrottle, settings: GatewaySettings, address: str) -> None:
    wait = throttle.wait_seconds(address, limit=settings.signin_address_failures,
                                 window=settings.signin_window_seconds)
    if wait > 0:
        raise SignInRefused(f"too many failed sign-ins from your address; try again in {math.ceil(wait)} s",
                            status=429, retry_after=math.ceil(wait))


def password_signin(db: Session, throttle: AddressThrottle, settings: GatewaySettings, *, username: str,
                    password: str, address: str) -> User:
    """The user whose username and password these are, or ``SignInRefused`` (recorded either way except
    the success, which ``start_session`` records)."""
    check_address(throttle, settings, address)
    user = db.scalar(select(User).where(User.username == username.strip())) if username.strip() else None
    now = datetime.now(UTC)
    locked = _aware(user.locked_until) if user is not None else None
    if user is not None and locked is not None and locked > now:
        wait = math.ceil((locked - now).total_seconds())
        throttle.failed(address, window=settings.signin_window_seconds)
        record_failure(db, user=user, method="password", address=address, reason="account locked")
        raise SignInRefused(f"too many failed sign-ins for this account; try again in {wait} s",
                            status=429, retry_after=wait)
    if user is None or not verify_password(user.password_hash, password):
        throttle.failed(address, window=settings.signin_window_seconds)
        if user is not None:
            user.failed_signins = (user.failed_signins or 0) + 1
            if user.failed_signins >= settings.signin_account_failures:
                user.locked_until = now + timedelta(seconds=settings.signin_lock_seconds)
                user.failed_signins = 0
        reason = "unknown username" if user is None else "wrong password" if user.password_hash else "no password set"
        record_failure(db, user=user, method="password", address=address, reason=reason)
        raise SignInRefused("wrong username or password")
    if user.disabled_at is not None:
        record_failure(db, user=user, method="password", address=address, reason="account disabled")
        raise SignInRefused("this account is disabled; ask a platform admin to enable it again", status=403)
    user.failed_signins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    return user  # the caller starts the session, which commits
