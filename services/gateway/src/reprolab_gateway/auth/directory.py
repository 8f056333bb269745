"""People from an identity provider (OIDC, LDAP): find or create their account by (issuer, subject), keep
name and email current, and give them the workspace roles their groups map to.

An account is linked by (issuer, subject), never by username: a provider may rename people, and a
username that already belongs to a local account is not taken over (the person is told to ask an admin).
Group roles are granted by the registry under a system actor (``sso:<method>``), so the workspace's log
shows ``member.added`` by that actor; a role already held is left as it is (roles are only added).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from fastapi import Request
from reprolab.v1 import common_pb2
from reprolab_common.errors import Conflict, ProblemError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.outbox import account_event, actor_of, emit
from ..models import ExternalIdentity, User
from ..schemas import ROLE_VALUES
from .invites import registry_as
from .sessions import client_address

log = logging.getLogger(__name__)
_BAD = re.compile(r"[^a-z0-9._-]+")


@dataclass
class Person:
    """What a provider says about someone."""

    issuer: str
    subject: str
    username: str
    display_name: str = ""
    email: str = ""
    groups: list[str] = field(default_factory=list)


def clean_username(value: str) -> str:
    """A provider's name as a Reprolab username (lowercase; other characters become '-'), or ''."""
    name = _BAD.sub("-", value.strip().lower().split("@")[0]).strip("-._")[:39]
    return name


def provision(db: Session, request: Request, person: Person, *, method: str) -> User:
    """The account linked to ``person`` (created on first sign-in, ``account.registered``), name and email
    refreshed. Raises Conflict when the username belongs to another account."""
    link = db.scalar(select(ExternalIdentity).where(ExternalIdentity.issuer == person.issuer,
                                                    ExternalIdentity.subject == person.subject))
    if link is not None:
        user = db.get(User, link.user_id)
        if user is not None:
            if person.display_name and user.display_name != person.display_name[:200]:
                user.display_name = person.display_name[:200]
            if person.email and user.email != person.email[:320]:
                user.email = person.email[:320]
            db.flush()
            return user
    username = clean_username(person.username)
    if not username:
        raise ProblemError(f"the {method} account has no usable username; ask an admin", status=403,
                           title="Forbidden")
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"an account named {username!r} already exists here and is not linked to your {method} "
                       "account; ask an admin")
    user = User(username=username, display_name=person.display_name[:200], email=person.email[:320])
    db.add(user)
    try:
        db.flush()
        db.add(ExternalIdentity(user_id=user.id, issuer=person.issuer[:500], subject=person.subject[:255]))
        db.flush()
    except IntegrityError as exc:  # the same person signing in twice at once
        db.rollback()
        raise Conflict("your account is being created by another sign-in; try again") from exc
    emit(db, type="account.registered", actor=actor_of(user), subject=f"users/{user.id}",
         account=account_event(username, method=method, issuer=person.issuer, external_subject=person.subject,
                               address=client_address(request)))
    return user


def mapped_roles(groups: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """workspace -> role for these groups (``{"grp": "ws:role,ws2:role"}``); the highest role wins."""
    rank = {"student": 1, "instructor": 2, "admin": 3}
    roles: dict[str, str] = {}
    for group in groups:
        for item in (mapping.get(group) or "").split(","):
            ws, _, role = item.strip().partition(":")
            if ws and role in rank and rank[role] > rank.get(roles.get(ws, ""), 0):
                roles[ws] = role
    return roles


async def grant_group_roles(request: Request, user: User, groups: list[str], mapping: dict[str, str], *,
                            method: str) -> dict[str, str]:
    """Add ``user`` to the workspaces their groups map to; returns what was granted (workspace -> role).
    A workspace that does not exist, or a membership that exists, is skipped (logged)."""
    granted: dict[str, str] = {}
    roles = mapped_roles(groups, mapping)
    if not roles:
        return granted
    system = common_pb2.Actor(user_id=f"system:{method}", username=f"sso:{method}", platform_admin=True)
    registry = registry_as(request, system)
    for ws, role in sorted(roles.items()):
        try:
            await registry.add_member(ws, user_id=user.id, username=user.username, role=ROLE_VALUES[role])
            granted[ws] = role
        except ProblemError as exc:
            if exc.status != 409:
                log.warning("group role %s in %s for %s not granted: %s", role, ws, user.username, exc.detail)
    if granted:
        await asyncio.to_thread(_record_grants, request, user, granted, method)
    return granted


def _record_grants(request: Request, user: User, granted: dict[str, str], method: str) -> None:
    """``account.role_granted`` in the accounts log, one per workspace (the workspace's own log has the
    registry's ``member.added``)."""
    with request.app.state.sessions() as db:
        for ws, role in granted.items():
            emit(db, type="account.role_granted", actor=actor_of(user), subject=f"users/{user.id}/workspaces/{ws}",
                 account=account_event(user.username, method=method, role=f"{ws}:{role}",
                                       address=client_address(request)))
        db.commit()
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()
