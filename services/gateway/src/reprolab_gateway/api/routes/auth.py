"""Accounts over the API: the caller's password and browser sessions; an admin's password, reset-link and
end-sessions actions on a user; the accounts activity log (sign-ins and account changes)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from reprolab.v1 import audit_pb2
from reprolab_common.errors import NotFound

from ... import crud
from ...auth import accounts, sessions
from ...core.bodylimit import BodyLimitedRoute
from ...core.outbox import ACCOUNTS_LOG
from ...models import User
from ...schemas import ActivityEntry, ActivityPage, aware
from ..deps import AuditDep, CurrentUser, PlatformAdmin, SessionDep, SettingsDep

router = APIRouter(tags=["accounts"], route_class=BodyLimitedRoute)


class PasswordSet(BaseModel):
    password: str = Field(max_length=1024, description="The new password.")


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class ResetLink(BaseModel):
    url: str = Field(description="The one-time link; hand it to the user (shown only here).")
    expires_at: datetime


class SessionInfo(BaseModel):
    id: str
    method: str
    address: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = Field(description="The session this request came with.")


class SignInSessionList(BaseModel):
    items: list[SessionInfo]


class SessionsEnded(BaseModel):
    ended: int


def _user(session, username: str) -> User:
    user = crud.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}; GET /api/v1/users lists them")
    return user


@router.put("/users/{username}/password", status_code=204, response_class=Response)
def set_password(username: str, body: PasswordSet, request: Request, session: SessionDep, settings: SettingsDep,
                 admin: PlatformAdmin) -> Response:
    """Set a user's password (platform admins; the user may change it afterwards)."""
    accounts.set_password(session, request, settings, user=_user(session, username), by=admin,
                          password=body.password)
    return Response(status_code=204)


@router.post("/users/{username}/password-reset", status_code=201, response_model=ResetLink)
def issue_reset(username: str, request: Request, session: SessionDep, settings: SettingsDep,
                admin: PlatformAdmin) -> ResetLink:
    """A one-time link with which the user sets a new password (platform admins). Earlier links stop
    working; the link expires after REPROLAB_GATEWAY_RESET_LINK_HOURS."""
    url, row = accounts.issue_reset(session, request, settings, user=_user(session, username), by=admin)
    return ResetLink(url=url, expires_at=aware(row.expires_at))


@router.delete("/users/{username}/sessions", response_model=SessionsEnded)
def end_user_sessions(username: str, request: Request, session: SessionDep, admin: PlatformAdmin) -> SessionsEnded:
    """Sign a user out of every browser (platform admins); their API tokens are not affected."""
    n = sessions.end_user_sessions(session, request, user=_user(session, username), by=admin,
                                   reason="ended by an admin")
    return SessionsEnded(ended=n)


@router.put("/me/password", status_code=204, response_class=Response)
def change_password(body: PasswordChange, request: Request, session: SessionDep, settings: SettingsDep,
                    user: CurrentUser) -> Response:
    """Change your password; your other browser sessions end."""
    accounts.change_password(session, request, settings, user=user, current=body.current_password,
                             new=body.new_password)
    current = sessions.current_session_row(session, request)
    sessions.end_user_sessions(session, request, user=user, by=user, reason="password changed",
                               keep_id=current.id if current else None)
    return Response(status_code=204)


@router.get("/me/sessions", response_model=SignInSessionList)
def list_sessions(request: Request, session: SessionDep, user: CurrentUser) -> SignInSessionList:
    """Your signed-in browsers."""
    current = sessions.current_session_row(session, request)
    return SignInSessionList(items=[
        SessionInfo(id=r.id, method=r.method, address=r.address, created_at=aware(r.created_at),
                    last_seen_at=aware(r.last_seen_at), expires_at=aware(r.expires_at),
                    current=current is not None and current.id == r.id)
        for r in sessions.list_sessions(session, user)])


@router.delete("/me/sessions/{session_id}", status_code=204, response_class=Response)
def end_session(session_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Sign one of your browsers out."""
    sessions.end_one_session(session, request, user=user, row_id=session_id)
    return Response(status_code=204)


@router.get("/accounts/activity", response_model=ActivityPage)
async def accounts_activity(
    audit: AuditDep, user: CurrentUser,
    type: str = Query(default="", max_length=128, description="Only entries of this type, e.g. "
                      "account.signin_failed."),
    after: int = Query(default=0, ge=0, description="Only entries with a greater seq (paging)."),
    limit: int = Query(default=100, ge=1, le=1000),
) -> ActivityPage:
    """Sign-ins, failed sign-ins and account changes: all of them for platform admins, your own otherwise."""
    scope = audit_pb2.ACTIVITY_SCOPE_WORKSPACE if user.platform_admin else audit_pb2.ACTIVITY_SCOPE_OWN
    reply = await audit.query(ACCOUNTS_LOG, scope=scope, type=type, after_seq=after, limit=limit)
    items = [ActivityEntry.of(e) for e in reply.items]
    return ActivityPage(items=items, head_seq=reply.head_seq, next_after=items[-1].seq if len(items) == limit else None)

