"""Browser sessions: server-side, revocable, one row per signed-in browser.

The cookie carries a random session id (``rls_`` + 32 bytes); the database keeps only its sha256, so
neither a leaked database nor a log can be replayed as a session. A session ends at sign-out, when an
admin ends a user's sessions, ``session_hours`` after sign-in, or ``session_idle_hours`` after its last
use. API tokens (``rpl_``) are never put in a cookie: scripts send them as ``Authorization: Bearer``.

For other sign-in paths (LTI launches, single sign-on): authenticate the person your own way, then call
``start_session(db, user, response, request, method=...)`` on the response you return; pass
``lms=True`` inside an LMS iframe, where the browser sends only ``SameSite=None; Secure`` cookies.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from reprolab.v1 import events_pb2
from reprolab_common.errors import Forbidden, NotFound
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core.config import GatewaySettings
from ..core.outbox import account_event, actor_of, emit
from ..core.security import CSRF_COOKIE, SESSION_COOKIE, forget_tokens, new_csrf_token
from ..models import BrowserSession, User

SESSION_PREFIX = "rls_"
_SESSION = re.compile(r"^rls_[A-Za-z0-9_-]{32,128}$")
ACCOUNT_EVENT = "account"


def new_session_id() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def hash_session_id(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def looks_like_session_id(value: str) -> bool:
    return bool(_SESSION.match(value))


def client_address(request: Request) -> str:
    return (request.client.host if request.client else "")[:64]


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def set_cookie(response: Response, key: str, value: str = "", *, partitioned: bool = False, **kw: Any) -> None:
    """``Response.set_cookie``, plus ``Partitioned`` (CHIPS), which Starlette writes only on Python 3.14+:
    the attribute is appended to the header Starlette just wrote."""
    response.set_cookie(key, value, **kw)
    if partitioned:
        name, header = response.raw_headers[-1]
        assert name == b"set-cookie" and header.startswith(key.encode() + b"="), header
        response.raw_headers[-1] = (name, header + b"; Partitioned")


def set_session_cookies(response: Response, request: Request, session_id: str, *, max_age: int,
                        lms: bool = False) -> None:
    """The session cookie (HttpOnly) and a fresh CSRF cookie (readable by the page: double submit).
    SameSite=Strict normally; inside an LMS iframe ``SameSite=None; Secure`` or the browser drops them,
    each twice: unpartitioned (a browser allowing third-party cookies also sends it when the tool opens in
    its own tab) and ``Partitioned`` (CHIPS: kept under the LMS's site by a browser that blocks
    third-party cookies, so the frame still works there). Both hold the same value."""
    samesite = "none" if lms else "strict"
    secure = True if lms else is_https(request)
    csrf = new_csrf_token()
    for partitioned in (False, True) if lms else (False,):
        set_cookie(response, SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite=samesite,
                   secure=secure, path="/", partitioned=partitioned)
        set_cookie(response, CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite=samesite,
                   secure=secure, path="/", partitioned=partitioned)


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    for name in (SESSION_COOKIE, CSRF_COOKIE):  # an LMS frame's partitioned copies (no-ops elsewhere)
        set_cookie(response, name, "", max_age=0, expires=0, path="/", secure=True, httponly=True, samesite="none",
                   partitioned=True)


def start_session(db: Session, user: User, response: Response, request: Request, *, method: str,
                  lms: bool = False, **event: str) -> BrowserSession:
    """Sign ``user`` in on this browser: store a new session, set its cookies on ``response``, record
    ``account.signed_in`` (with ``method`` and the client's address, plus any AccountEvent fields in
    ``event``, e.g. ``issuer=``) in the accounts log. Commits, and wakes the outbox."""
    if user.disabled_at is not None:  # every way in (password, SSO, LDAP, LTI, invite) passes here
        raise Forbidden(f"the account {user.username!r} is disabled; a platform admin can enable it again")
    settings: GatewaySettings = request.app.state.settings
    session_id = new_session_id()
    now = datetime.now(UTC)
    # the browser's previous session (another account, or the same one again) ends: one live session per
    # browser, and a session id planted before sign-in is never the one signed in (no fixation)
    previous = request.cookies.get(SESSION_COOKIE, "")
    if looks_like_session_id(previous):
        ended = db.execute(update(BrowserSession).where(BrowserSession.id_hash == hash_session_id(previous),
                                                        BrowserSession.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount
        if ended:
            forget_tokens()
    row = BrowserSession(user_id=user.id, id_hash=hash_session_id(session_id), method=method[:20],
                         address=client_address(request), created_at=now, last_seen_at=now,
                         expires_at=now + timedelta(hours=settings.session_hours))
    db.add(row)
    db.flush()
    emit(db, type="account.signed_in", actor=actor_of(user), subject=f"users/{user.id}/sessions/{row.id}",
         account=_account(user, method=method, address=row.address, ref=row.id, **event))
    db.commit()
    _wake(request)
    set_session_cookies(response, request, session_id, max_age=int(settings.session_hours * 3600), lms=lms)
    return row


def resolve_session(db: Session, session_id: str, settings: GatewaySettings) -> User | None:
    """The user of a live session, or None (unknown, signed out, expired, idle too long). ``last_seen_at``
    is written at most every ``token_touch_seconds``."""
    if not looks_like_session_id(session_id):
        return None
    row = db.scalar(select(BrowserSession).where(BrowserSession.id_hash == hash_session_id(session_id)))
    if row is None or row.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    last = _aware(row.last_seen_at) or now
    if _aware(row.expires_at) <= now or now - last > timedelta(hours=settings.session_idle_hours):
        return None
    user = db.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if now - last >= timedelta(seconds=settings.token_touch_seconds):
        row.last_seen_at = now
        db.commit()
    return user


def end_session(db: Session, request: Request, session_id: str) -> bool:
    """Sign-out: revoke the browser's session (``account.signed_out``). False when it was not live."""
    if not looks_like_session_id(session_id):
        return False
    row = db.scalar(select(BrowserSession).where(BrowserSession.id_hash == hash_session_id(session_id)))
    if row is None or row.revoked_at is not None:
        return False
    user = db.get(User, row.user_id)
    row.revoked_at = datetime.now(UTC)
    if user is not None:
        emit(db, type="account.signed_out", actor=actor_of(user), subject=f"users/{user.id}/sessions/{row.id}",
             account=_account(user, method=row.method, address=client_address(request), ref=row.id))
    db.commit()
    forget_tokens()
    _wake(request)
    return True


def end_user_sessions(db: Session, request: Request, *, user: User, by: User, reason: str = "",
                      keep_id: str | None = None) -> int:
    """End every live session of ``user`` (an admin's action, or after a password change, which keeps
    the caller's own session ``keep_id``). Records ``account.sessions_ended``; returns how many ended."""
    now = datetime.now(UTC)
    query = update(BrowserSession).where(BrowserSession.user_id == user.id, BrowserSession.revoked_at.is_(None))
    if keep_id is not None:
        query = query.where(BrowserSession.id != keep_id)
    count = db.execute(query.values(revoked_at=now)).rowcount or 0
    emit(db, type="account.sessions_ended", actor=actor_of(by), subject=f"users/{user.id}/sessions",
         account=_account(user, method="admin" if by.id != user.id else "self", reason=reason, count=count,
                          address=client_address(request)))
    db.commit()
    forget_tokens()
    _wake(request)
    return count


def end_one_session(db: Session, request: Request, *, user: User, row_id: str) -> None:
    """Revoke one of ``user``'s sessions by its row id (from ``list_sessions``)."""
    row = db.get(BrowserSession, row_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"you have no session with id {row_id!r}; GET /api/v1/me/sessions lists yours")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        emit(db, type="account.signed_out", actor=actor_of(user), subject=f"users/{user.id}/sessions/{row.id}",
             account=_account(user, method=row.method, address=client_address(request), ref=row.id,
                              reason="ended from another session"))
        db.commit()
        forget_tokens()
        _wake(request)


def current_session_row(db: Session, request: Request) -> BrowserSession | None:
    value = request.cookies.get(SESSION_COOKIE, "")
    if not looks_like_session_id(value):
        return None
    return db.scalar(select(BrowserSession).where(BrowserSession.id_hash == hash_session_id(value)))


def list_sessions(db: Session, user: User) -> list[BrowserSession]:
    """The user's live sessions, newest first."""
    now = datetime.now(UTC)
    rows = db.scalars(select(BrowserSession).where(BrowserSession.user_id == user.id,
                                                   BrowserSession.revoked_at.is_(None))
                      .order_by(BrowserSession.created_at.desc())).all()
    return [r for r in rows if _aware(r.expires_at) > now]


def _account(user: User, **fields) -> events_pb2.AccountEvent:
    return account_event(user.username, **fields)


def _wake(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()
