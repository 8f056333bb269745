"""Invite links: an instructor (or workspace admin) makes a link to join a workspace with a role, valid
until it expires, is used ``max_uses`` times or is revoked. Whoever follows it registers (when
registration is ``invite`` or ``open``) or signs in, and joins.

Joining is done with the inviter's authority: the registry adds the member with the inviter as actor,
so an invite stops working when its maker loses the right to add members, and only a workspace admin's
invite can make an admin. A use is claimed atomically before the registry is asked (two people
following the last use of a link at once cannot both join) and given back when the registry refuses.
Events in the workspace's log: ``invite.created``, ``invite.revoked``, ``invite.accepted`` (besides the
registry's ``member.added``); never the link itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import Request
from reprolab_common.errors import Conflict, Forbidden, Invalid, NotFound, ProblemError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ..clients import RegistryClient
from ..core.config import GatewaySettings
from ..core.outbox import account_event, actor_of, emit
from ..models import Invite, User
from ..schemas import ROLE_NAMES, ROLE_VALUES
from .accounts import base_url, secret_link_token, sha256
from .sessions import client_address

INVITE_PREFIX = "rin_"
MANAGERS = ("admin", "instructor")


class Gone(ProblemError):
    status = 410
    title = "Gone"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _wake(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def registry_as(request: Request, actor) -> RegistryClient:
    settings: GatewaySettings = request.app.state.settings
    return RegistryClient(request.app.state.nats, actor, settings.nats_timeout_seconds)


async def check_may_invite(request: Request, creator: User, workspace: str, role: str) -> None:
    """The creator must be an instructor or admin of ``workspace``; only an admin invites admins."""
    ws = await registry_as(request, actor_of(creator)).get_workspace(workspace)  # 404 for non-members
    caller = ROLE_NAMES.get(ws.caller_role)
    if caller not in MANAGERS:
        raise Forbidden(f"inviting people to workspace {workspace!r} requires the instructor or admin role")
    if role == "admin" and caller != "admin":
        raise Forbidden(f"only an admin of workspace {workspace!r} can invite another admin")


def create_invite(db: Session, request: Request, settings: GatewaySettings, *, creator: User, workspace: str,
                  role: str, expires_in_days: float, max_uses: int) -> tuple[str, Invite]:
    """Store an invite (after ``check_may_invite``); returns its link (shown once) and row."""
    if role not in ROLE_VALUES:
        raise Invalid(f"unknown role {role!r}: use admin, instructor or student", errors=[("role", "unknown")])
    if not 0 < expires_in_days <= settings.invite_max_days:
        raise Invalid(f"expires_in_days must be more than 0 and at most {settings.invite_max_days}",
                      errors=[("expires_in_days", "out of range")])
    now = datetime.now(UTC)
    token = secret_link_token(INVITE_PREFIX)
    row = Invite(token_hash=sha256(token), workspace=workspace, role=role, created_by=creator.id, created_at=now,
                 expires_at=now + timedelta(days=expires_in_days), max_uses=max_uses, uses=0, revoked=False)
    db.add(row)
    db.flush()
    emit(db, type="invite.created", actor=actor_of(creator), workspace=workspace, subject=f"invites/{row.id}",
         account=account_event("", role=role, ref=row.id, count=max_uses, address=client_address(request),
                               reason=f"expires {row.expires_at.isoformat(timespec='seconds')}"))
    db.commit()
    _wake(request)
    return f"{base_url(request, settings)}/invite/{token}", row


def list_invites(db: Session, workspace: str) -> list[Invite]:
    return list(db.scalars(select(Invite).where(Invite.workspace == workspace).order_by(Invite.created_at.desc())))


def revoke_invite(db: Session, request: Request, *, by: User, workspace: str, invite_id: str) -> None:
    row = db.get(Invite, invite_id)
    if row is None or row.workspace != workspace:
        raise NotFound(f"workspace {workspace!r} has no invite {invite_id!r}")
    if not row.revoked:
        row.revoked = True
        emit(db, type="invite.revoked", actor=actor_of(by), workspace=workspace, subject=f"invites/{row.id}",
             account=account_event("", role=row.role, ref=row.id, address=client_address(request)))
        db.commit()
        _wake(request)


def invite_state(row: Invite) -> str:
    if row.revoked:
        return "revoked"
    if _aware(row.expires_at) <= datetime.now(UTC):
        return "expired"
    if row.uses >= row.max_uses:
        return "used"
    return "open"


def find_invite(db: Session, token: str) -> Invite:
    """The invite of a link, if it can still be used; otherwise 404 (no such link) or 410 saying why."""
    row = db.scalar(select(Invite).where(Invite.token_hash == sha256(token))) if token else None
    if row is None:
        raise NotFound("this invite link is not valid; ask your instructor for a new one")
    state = invite_state(row)
    if state != "open":
        raise Gone(f"this invite link has been {'used up' if state == 'used' else state}; ask your instructor "
                   "for a new one")
    return row


def _claim(sessions: sessionmaker, invite_id: str) -> bool:
    with sessions.begin() as db:
        result = db.execute(update(Invite).where(Invite.id == invite_id, Invite.revoked.is_(False),
                                                 Invite.uses < Invite.max_uses,
                                                 Invite.expires_at > datetime.now(UTC))
                            .values(uses=Invite.uses + 1))
        return (result.rowcount or 0) == 1


def _give_back(sessions: sessionmaker, invite_id: str) -> None:
    with sessions.begin() as db:
        db.execute(update(Invite).where(Invite.id == invite_id, Invite.uses > 0).values(uses=Invite.uses - 1))


async def accept_invite(request: Request, *, token: str, user: User) -> Invite:
    """``user`` joins the invite's workspace with its role (``invite.accepted``). 409 when already a member
    (the invite is not used up by that)."""
    sessions: sessionmaker = request.app.state.sessions

    def load() -> tuple[Invite, User | None]:
        with sessions() as db:
            row = find_invite(db, token)
            return row, db.get(User, row.created_by)

    row, creator = await asyncio.to_thread(load)
    if creator is None:
        raise Gone("the person who made this invite no longer has an account; ask your instructor for a new one")
    if not await asyncio.to_thread(_claim, sessions, row.id):
        raise Gone("this invite link has just been used up or has expired; ask your instructor for a new one")
    try:
        await registry_as(request, actor_of(creator)).add_member(
            row.workspace, user_id=user.id, username=user.username, role=ROLE_VALUES[row.role])
    except ProblemError as exc:
        await asyncio.to_thread(_give_back, sessions, row.id)
        if exc.status == 409:
            raise Conflict(f"you are already a member of workspace {row.workspace!r}") from exc
        if exc.status in (403, 404):
            raise Gone("this invite can no longer be used (its maker may have lost the right to add members); "
                       "ask your instructor for a new one") from exc
        raise

    def record() -> None:
        with sessions() as db:
            emit(db, type="invite.accepted", actor=actor_of(user), workspace=row.workspace,
                 subject=f"invites/{row.id}", account=account_event(user.username, method="invite", role=row.role,
                                                                   ref=row.id, address=client_address(request)))
            db.commit()
            from ..people import record_origin  # people imports this module

            record_origin(db, workspace=row.workspace, user_id=user.id, source="invite")

    await asyncio.to_thread(record)
    _wake(request)
    return row
