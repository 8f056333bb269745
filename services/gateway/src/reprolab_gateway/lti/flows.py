"""What a checked launch (or a roster sync) does: provision the user (linked by registration + sub), map
the LMS course to a workspace (made on the first instructor launch), map LMS roles to workspace roles and
keep the membership, record it all in the activity log.

The workspace's members are added by the ``lti`` service actor (a platform-admin actor of the gateway's
own), since the launching student cannot add themself; the workspace is created by the first instructor,
who becomes its admin.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from reprolab.v1 import common_pb2
from reprolab_common.errors import Conflict, NotFound
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..clients import RegistryClient
from ..models import User
from . import audit
from .grades import services_of
from .keys import tool_key
from .launch import AGS_ENDPOINT, NRPS, RESOURCE_LINK, Launch, LaunchRefused
from .models import LtiAccount, LtiContext, LtiLineItem, LtiMember, LtiPlatform
from .services import ServiceFailed

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR_ROLES = frozenset({"Instructor", "Administrator", "ContentDeveloper"})
INSTRUCTOR = "instructor"
STUDENT = "student"
ROLE_VALUES = {INSTRUCTOR: common_pb2.ROLE_INSTRUCTOR, STUDENT: common_pb2.ROLE_STUDENT}
ASSIGNMENT_PARAM = "reprolab_assignment"
ENVIRONMENT_PARAM = "reprolab_environment"


def workspace_role(roles: list[str]) -> str:
    """LMS context roles → ``instructor`` (Instructor, Administrator, ContentDeveloper, and sub-roles of
    Instructor such as TeachingAssistant) or ``student`` (Learner and anything else). Institution and system
    roles do not count: being an administrator of the LMS does not make one an instructor of every course."""
    for role in roles:
        if role.startswith(MEMBERSHIP) and role.removeprefix(MEMBERSHIP) in INSTRUCTOR_ROLES:
            return INSTRUCTOR
        if role.startswith("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#"):
            return INSTRUCTOR
        if role in INSTRUCTOR_ROLES:  # the deprecated short forms
            return INSTRUCTOR
    return STUDENT


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:6]


def username_for(platform: LtiPlatform, subject: str, claims: dict[str, Any]) -> str:
    """A readable, stable username: from the LMS's username, email or name, plus a short hash of the link."""
    email = str(claims.get("email") or "")
    base = _slug(str(claims.get("preferred_username") or email.split("@")[0] or claims.get("name") or ""), 30)
    base = base if len(base) >= 1 and base[0].isalnum() else "lti"
    return f"{base}-{_short_hash(platform.id, subject)}"


def workspace_slug(platform: LtiPlatform, context: dict[str, Any]) -> str:
    label = _slug(str(context.get("label") or context.get("title") or "course"), 40) or "course"
    return f"{label}-{_short_hash(platform.id, str(context['id']))}"


def provision_user(db: Session, app: FastAPI | None, platform: LtiPlatform, subject: str,
                   claims: dict[str, Any]) -> User:
    """The user linked to (registration, sub), created and linked on first sight (``lti.account_linked``)."""
    link = db.scalar(select(LtiAccount).where(LtiAccount.platform_id == platform.id, LtiAccount.subject == subject))
    if link is not None:
        user = db.get(User, link.user_id)
        if user is not None:
            name = str(claims.get("name") or "")[:200]
            if name and user.display_name != name:
                user.display_name = name
                db.commit()
            return user
    username = username_for(platform, subject, claims)
    user = db.scalar(select(User).where(User.username == username))
    n = 1
    while user is not None:  # a name taken by someone else: number it
        n += 1
        username = f"{username.rsplit('-', 1)[0][:28]}-{_short_hash(platform.id, subject)}-{n}"
        user = db.scalar(select(User).where(User.username == username))
    user = User(username=username, display_name=str(claims.get("name") or "")[:200])
    db.add(user)
    db.flush()
    db.add(LtiAccount(platform_id=platform.id, subject=subject, user_id=user.id))
    audit.record(db, app, type="account_linked", subject=f"users/{user.id}", actor=audit.actor_of(user),
                 commit=False, issuer=platform.issuer, client_id=platform.client_id, lms_subject=subject,
                 username=user.username)
    try:
        db.commit()
    except IntegrityError:  # the same person's other tab won the race
        db.rollback()
        link = db.scalar(select(LtiAccount).where(LtiAccount.platform_id == platform.id,
                                                  LtiAccount.subject == subject))
        assert link is not None
        return db.get(User, link.user_id)  # type: ignore[return-value]
    audit.wake(app)
    return user


@dataclass
class CourseMembership:
    context: LtiContext
    user: User
    role: str
    created: bool


def _service_endpoints(context: LtiContext, claims: dict[str, Any]) -> None:
    ags = claims.get(AGS_ENDPOINT)
    if isinstance(ags, dict):
        if isinstance(ags.get("lineitems"), str):
            context.lineitems_url = ags["lineitems"]
        if isinstance(ags.get("scope"), list):
            context.ags_scopes = " ".join(str(s) for s in ags["scope"])
    nrps = claims.get(NRPS)
    if isinstance(nrps, dict) and isinstance(nrps.get("context_memberships_url"), str):
        context.memberships_url = nrps["context_memberships_url"]


async def join_course(db: Session, app: FastAPI, launch: Launch, user: User, *, timeout: float
                      ) -> CourseMembership:
    """Map the launch's course to its workspace (the first instructor launch makes it) and keep the user a
    member with the role the LMS gives them now."""
    platform, claims = launch.platform, launch.claims
    context_claim = launch.context
    role = workspace_role(launch.roles)
    context = db.scalar(select(LtiContext).where(LtiContext.platform_id == platform.id,
                                                 LtiContext.context_id == str(context_claim["id"])))
    created = False
    if context is None:
        if role != INSTRUCTOR:
            raise LaunchRefused("course", "this course has no Reprolab workspace yet: your instructor opens Reprolab "
                                "from the course once, then you can", status=409, platform=platform, claims=claims)
        slug = workspace_slug(platform, context_claim)
        title = str(context_claim.get("title") or context_claim.get("label") or slug)[:200]
        registry = RegistryClient(app.state.nats, audit.actor_of(user), timeout)
        try:
            await registry.create_workspace(slug, title)
            created = True
        except Conflict:
            pass  # made by an earlier launch whose mapping was not saved; the slug is ours (it hashes the course)
        context = LtiContext(platform_id=platform.id, context_id=str(context_claim["id"]),
                             deployment_id=launch.deployment_id, title=title, workspace=slug)
        db.add(context)
        try:
            db.flush()
        except IntegrityError:
            db.rollback()
            context = db.scalar(select(LtiContext).where(LtiContext.platform_id == platform.id,
                                                         LtiContext.context_id == str(context_claim["id"])))
            assert context is not None
            created = False
    _service_endpoints(context, claims)
    link = claims.get(RESOURCE_LINK) or {}
    assignment = str(launch.custom.get(ASSIGNMENT_PARAM) or "")
    ags = claims.get(AGS_ENDPOINT)
    if assignment and isinstance(ags, dict) and isinstance(ags.get("lineitem"), str) and link:
        item = db.scalar(select(LtiLineItem).where(LtiLineItem.context_pk == context.id,
                                                   LtiLineItem.assignment == assignment))
        if item is None:
            db.add(LtiLineItem(context_pk=context.id, assignment=assignment, url=ags["lineitem"]))
    db.commit()
    if created:
        audit.record(db, app, type="course_linked", subject=f"lti/courses/{context.context_id}",
                     actor=audit.actor_of(user), workspace=context.workspace, issuer=platform.issuer,
                     client_id=platform.client_id, deployment_id=launch.deployment_id,
                     context_id=context.context_id, username=user.username, role=role)
    await keep_member(db, app, context, user, launch.subject, role, timeout=timeout, creator=created)
    return CourseMembership(context=context, user=user, role=role, created=created)


async def keep_member(db: Session, app: FastAPI, context: LtiContext, user: User, subject: str, role: str, *,
                      timeout: float, creator: bool = False) -> bool:
    """Add the user to the workspace with ``role`` (True when added). A role the LMS changed is applied to the
    workspace (the registry's ``member.role_changed``) and recorded as ``lti.role_changed``, outcome
    ``applied`` or ``refused`` (e.g. it would demote the workspace's last admin; the LMS role is still noted)."""
    row = db.scalar(select(LtiMember).where(LtiMember.context_pk == context.id, LtiMember.user_id == user.id))
    if row is not None:
        if row.role != role:
            previous, row.role = row.role, role
            outcome, reason = "applied", ""
            registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, timeout)
            try:
                await registry.update_member(context.workspace, user_id=user.id, role=ROLE_VALUES[role])
            except (Conflict, NotFound) as exc:  # the last admin; or no longer a member (removed by hand)
                outcome, reason = "refused", exc.detail
            audit.record(db, app, type="role_changed", subject=f"members/{user.id}", workspace=context.workspace,
                         context_id=context.context_id, username=user.username, role=role,
                         previous_role=previous, outcome=outcome, reason=reason)
        return False
    added = False
    if not creator:
        registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, timeout)
        try:
            await registry.add_member(context.workspace, user_id=user.id, username=user.username,
                                      role=ROLE_VALUES[role])
            added = True
        except Conflict:
            pass  # a member already (added by hand, or by an earlier launch whose record was not saved)
    db.add(LtiMember(context_pk=context.id, user_id=user.id, subject=subject, role=role))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
    return added


async def drop_members(db: Session, app: FastAPI, context: LtiContext, platform: LtiPlatform, active: set[str], *,
                       timeout: float) -> int:
    """Remove from the workspace the people the LMS course no longer lists as active (``lti.member_left``,
    and the registry's ``member.removed``); returns how many were removed. Only members the LTI link keeps:
    a row in ``lti_members`` for this course whose user is an account of this LMS (made by a launch or a
    roster sync); members added by hand or by invite have no such row and are never touched."""
    rows = db.scalars(select(LtiMember).where(LtiMember.context_pk == context.id)).all()
    removed = 0
    registry = RegistryClient(app.state.nats, audit.SERVICE_ACTOR, timeout)
    for row in rows:
        if row.user_id in active:
            continue
        linked = db.scalar(select(LtiAccount.id).where(LtiAccount.platform_id == platform.id,
                                                       LtiAccount.user_id == row.user_id))
        user = db.get(User, row.user_id)
        if linked is None or user is None:
            continue
        outcome, reason = "removed", ""
        try:
            await registry.remove_member(context.workspace, user_id=row.user_id)
            removed += 1
        except NotFound:
            outcome = "removed"  # already gone (removed by hand): forget the link's record of it
        except Conflict as exc:  # the workspace's last admin stays
            outcome, reason = "refused", exc.detail
        if outcome == "removed":
            db.delete(row)
        audit.record(db, app, type="member_left", subject=f"members/{row.user_id}", workspace=context.workspace,
                     context_id=context.context_id, username=user.username, previous_role=row.role,
                     outcome=outcome, reason=reason)
    return removed


def context_of(db: Session, workspace: str) -> LtiContext | None:
    return db.scalar(select(LtiContext).where(LtiContext.workspace == workspace))


async def sync_roster(db: Session, app: FastAPI, context: LtiContext, *, timeout: float) -> dict[str, int]:
    """Names and Role Provisioning: every active member of the LMS course becomes (or stays) a member of the
    workspace with the mapped role (a changed role is applied); the link's members the course no longer lists
    as active are removed (``drop_members``); recorded as ``lti.roster_synced``."""
    platform = db.get(LtiPlatform, context.platform_id)
    assert platform is not None
    if not context.memberships_url:
        raise ServiceFailed("the LMS gave this course no memberships URL (Names and Role Provisioning is not "
                            "enabled for the tool)")
    members = await services_of(app).memberships(platform, tool_key(db), context.memberships_url)
    added = changes = active = 0
    seen: set[str] = set()
    for member in members:
        subject = member.get("user_id")
        if not isinstance(subject, str) or not subject or member.get("status", "Active") != "Active":
            continue
        active += 1
        roles = [str(r) for r in member.get("roles", []) if isinstance(r, str)]
        user = provision_user(db, app, platform, subject, member)
        seen.add(user.id)
        role = workspace_role(roles)
        before = db.scalar(select(LtiMember.role).where(LtiMember.context_pk == context.id,
                                                       LtiMember.user_id == user.id))
        if await keep_member(db, app, context, user, subject, role, timeout=timeout):
            added += 1
        if before is not None and before != role:
            changes += 1
    removed = await drop_members(db, app, context, platform, seen, timeout=timeout)
    audit.record(db, app, type="roster_synced", subject=f"lti/courses/{context.context_id}/members",
                 workspace=context.workspace, context_id=context.context_id, outcome="synced", count=added,
                 issuer=platform.issuer, client_id=platform.client_id)
    return {"members": active, "added": added, "role_changes": changes, "removed": removed}
