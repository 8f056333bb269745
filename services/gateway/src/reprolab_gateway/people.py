"""People: platform admins manage accounts (disable, enable, make or unmake a platform admin); instructors
see where each member came from and add a whole class from a CSV list.

A class list is a CSV file with a header naming its columns: ``email`` or ``username`` (at least one),
``name`` and ``role`` (optional; ``student`` by default). Each row is one person:

- an account matches (by username, else by e-mail): the person is added as a member with the role;
- no account matches: a one-use invite link with the role is made (auth/invites.py); the instructor
  hands it over, and whoever follows it registers or signs in and joins.

A file that cannot be read as such a table (not UTF-8, no usable header, a row with more fields than
the header, a broken quote) is refused whole with 422 naming its line; a row that can be read but not
used (an unknown role, a malformed e-mail, a second row for the same person) is reported with its line
and the other rows still go through. ``dry_run`` reports what each row would do and changes nothing.

Where members came from: ``member_origins`` (``csv`` for a class list, ``invite`` for a link), the LTI
tables for people an LMS course keeps (``lms``); anyone else was added by hand (``hand``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from reprolab_common.errors import Conflict, Invalid, NotFound, ProblemError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .auth import invites, sessions
from .clients import RegistryClient
from .core.config import GatewaySettings
from .core.outbox import account_event, actor_of, emit
from .core.security import forget_tokens
from .lti.models import LtiContext, LtiMember
from .models import ApiToken, ExternalIdentity, MemberOrigin, User
from .schemas import ROLE_VALUES

MAX_ROWS = 2000
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,38}$")
_COLUMNS = {"email", "username", "name", "role"}
_ALIASES = {"e-mail": "email", "mail": "email", "user": "username", "login": "username",
            "full name": "name", "display name": "name", "display_name": "name"}


# --- accounts (platform admins) ------------------------------------------------------------------------

def auth_sources(db: Session, users: list[User]) -> dict[str, list[str]]:
    """How each user can sign in: ``password``, ``token`` (a live API token), ``sso`` (an OIDC provider),
    ``ldap`` (a directory), ``lms`` (LTI launches)."""
    from .lti.models import LtiAccount

    ids = [u.id for u in users]
    out: dict[str, list[str]] = {u.id: (["password"] if u.password_hash else []) for u in users}
    if not ids:
        return out
    for issuer, user_id in db.execute(select(ExternalIdentity.issuer, ExternalIdentity.user_id)
                                      .where(ExternalIdentity.user_id.in_(ids))):
        kind = "ldap" if issuer.startswith("ldap:") else "sso"
        if kind not in out[user_id]:
            out[user_id].append(kind)
    for (user_id,) in db.execute(select(LtiAccount.user_id).where(LtiAccount.user_id.in_(ids)).distinct()):
        out[user_id].append("lms")
    for (user_id,) in db.execute(select(ApiToken.user_id).where(ApiToken.user_id.in_(ids),
                                                                ApiToken.revoked.is_(False)).distinct()):
        out[user_id].append("token")
    return out


def change_account(db: Session, request: Request, *, user: User, by: User, disabled: bool | None,
                   platform_admin: bool | None) -> User:
    """Disable or enable ``user``, make or unmake a platform admin (``account.disabled``,
    ``account.enabled``, ``account.admin_granted``, ``account.admin_revoked``). An admin cannot do either
    to themself (no locking yourself out), and the last enabled platform admin stays one (409)."""
    user = db.get(User, user.id)
    if user.id == by.id and (disabled or platform_admin is False):
        raise Conflict("you cannot disable yourself or take away your own platform admin rights; ask another "
                       "platform admin")
    losing_admin = user.platform_admin and (disabled or platform_admin is False)
    if losing_admin:
        others = db.scalar(select(func.count()).select_from(User).where(
            User.platform_admin.is_(True), User.disabled_at.is_(None), User.id != user.id))
        if not others:
            raise Conflict(f"{user.username!r} is the last platform admin; make someone else platform admin first")
    changes: list[str] = []
    if disabled is not None and disabled != (user.disabled_at is not None):
        user.disabled_at = datetime.now(UTC) if disabled else None
        changes.append("account.disabled" if disabled else "account.enabled")
    if platform_admin is not None and platform_admin != user.platform_admin:
        user.platform_admin = platform_admin
        changes.append("account.admin_granted" if platform_admin else "account.admin_revoked")
    for kind in changes:
        emit(db, type=kind, actor=actor_of(by), subject=f"users/{user.id}",
             account=account_event(user.username, method="admin", address=sessions.client_address(request)))
    db.commit()
    if "account.disabled" in changes:
        sessions.end_user_sessions(db, request, user=user, by=by, reason="account disabled")
    if changes:
        forget_tokens()  # cached tokens and sessions carry the old user (admin flag, enabled)
        outbox = getattr(request.app.state, "outbox", None)
        if outbox is not None:
            outbox.wake()
    db.refresh(user)
    return user


# --- where members came from -----------------------------------------------------------------------------

def member_sources(db: Session, workspace: str) -> dict[str, str]:
    """user id -> ``lms``, ``csv`` or ``invite`` for the members that did not come by hand."""
    out = {user_id: source for user_id, source in db.execute(
        select(MemberOrigin.user_id, MemberOrigin.source).where(MemberOrigin.workspace == workspace))}
    for (user_id,) in db.execute(select(LtiMember.user_id).join(LtiContext, LtiContext.id == LtiMember.context_pk)
                                 .where(LtiContext.workspace == workspace)):
        out[user_id] = "lms"
    return out


def record_origin(db: Session, *, workspace: str, user_id: str, source: str) -> None:
    """Remember how ``user_id`` joined ``workspace`` (the latest way wins)."""
    row = db.scalar(select(MemberOrigin).where(MemberOrigin.workspace == workspace, MemberOrigin.user_id == user_id))
    if row is None:
        db.add(MemberOrigin(workspace=workspace, user_id=user_id, source=source))
    else:
        row.source = source
    try:
        db.commit()
    except IntegrityError:  # the same person joining twice at once: one row is enough
        db.rollback()


# --- class lists -------------------------------------------------------------------------------------------

@dataclass
class ClassRow:
    line: int
    email: str = ""
    username: str = ""
    name: str = ""
    role: str = "student"
    error: str = ""


@dataclass
class RowResult:
    line: int
    who: str
    role: str
    action: str  # add | invite | member (already one) | error
    detail: str = ""
    username: str = ""
    invite_url: str = ""
    invite_id: str = ""


@dataclass
class ClassListReport:
    dry_run: bool
    rows: list[RowResult] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)


def parse_class_list(text: str) -> list[ClassRow]:
    """The rows of a class list; ``Invalid`` (422) naming the line when the file is not a readable table."""
    if text.startswith("\ufeff"):  # a spreadsheet's byte-order mark
        text = text[1:]
    if not text.strip():
        raise Invalid("the class list is empty: give a header line (email,name,role) and one line per person",
                      errors=[("body.csv", "empty")])
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") and "\t" not in sample else (
        "\t" if "\t" in sample.splitlines()[0] else ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _bad_line(1, f"cannot be read: {exc}") from exc
    columns = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    unknown = [h for h in columns if h and h not in _COLUMNS]
    if unknown or ("email" not in columns and "username" not in columns):
        raise _bad_line(1, "must be a header naming the columns: email and/or username, then name and role "
                           f"(found {', '.join(repr(h) for h in header[:6])})")
    if len(set(columns)) != len(columns):
        raise _bad_line(1, "names a column twice")
    rows: list[ClassRow] = []
    seen: dict[str, int] = {}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _bad_line(reader.line_num, f"cannot be read ({exc}); check its quotes") from exc
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(columns):
            raise _bad_line(line, f"has {len(fields)} fields but the header names {len(columns)} columns; "
                                  "quote a value that contains the separator")
        if len(rows) >= MAX_ROWS:
            raise _bad_line(line, f"is past the {MAX_ROWS} people one class list may hold; split the file")
        values = dict(zip(columns, (f.strip() for f in fields), strict=False))
        row = ClassRow(line=line, email=values.get("email", ""), username=values.get("username", "").lower(),
                       name=values.get("name", "")[:200], role=(values.get("role") or "student").lower())
        row.error = _row_problem(row)
        key = row.username or row.email.lower()
        if not row.error and key in seen:
            row.error = f"the same person as line {seen[key]}"
        elif key:
            seen.setdefault(key, line)
        rows.append(row)
    if not rows:
        raise Invalid("the class list has a header but nobody in it", errors=[("body.csv", "no rows")])
    return rows


def _bad_line(line: int, what: str) -> Invalid:
    return Invalid(f"line {line} of the class list {what}", errors=[("body.csv", f"line {line}: {what}")])


def _row_problem(row: ClassRow) -> str:
    if not row.email and not row.username:
        return "no email and no username"
    if row.email and not _EMAIL.match(row.email):
        return f"{row.email!r} is not an e-mail address"
    if row.username and not _USERNAME.match(row.username):
        return f"{row.username!r} is not a valid username (2-39 lower-case letters, digits, '.', '_', '-')"
    if row.role not in ROLE_VALUES:
        return f"unknown role {row.role!r}: use student, instructor or admin"
    return ""


def _find_user(db: Session, row: ClassRow) -> User | None:
    if row.username:
        user = db.scalar(select(User).where(User.username == row.username))
        if user is not None:
            return user
    if row.email:
        return db.scalar(select(User).where(func.lower(User.email) == row.email.lower()))
    return None


async def import_class_list(request: Request, db: Session, settings: GatewaySettings, *, caller: User,
                            workspace: str, rows: list[ClassRow], dry_run: bool,
                            registry: RegistryClient) -> ClassListReport:
    """Add each row's person (or invite them); one row's failure is its own line in the report."""
    # managers only; only a workspace admin brings in admins (the same rule as invites and the registry)
    await invites.check_may_invite(request, caller, workspace, "student")
    current = {m.user_id for m in (await registry.list_members(workspace)).items}
    may_admin = True
    try:
        await invites.check_may_invite(request, caller, workspace, "admin")
    except ProblemError:
        may_admin = False
    report = ClassListReport(dry_run=dry_run)
    for row in rows:
        who = row.username or row.email
        if row.error:
            report.rows.append(RowResult(row.line, who, row.role, "error", row.error))
            continue
        if row.role == "admin" and not may_admin:
            report.rows.append(RowResult(row.line, who, row.role, "error",
                                         "only a workspace admin can add an admin"))
            continue
        user = await run_in_threadpool(_find_user, db, row)
        if user is not None and user.id in current:
            report.rows.append(RowResult(row.line, who, row.role, "member", "already a member; role unchanged "
                                         "(change it in the member list)", username=user.username))
            continue
        if user is not None:
            result = RowResult(row.line, who, row.role, "add", "has an account: added as a member",
                               username=user.username)
            if not dry_run:
                try:
                    await registry.add_member(workspace, user_id=user.id, username=user.username,
                                              role=ROLE_VALUES[row.role])
                    await run_in_threadpool(record_origin, db, workspace=workspace, user_id=user.id, source="csv")
                    current.add(user.id)
                except (Conflict, NotFound, ProblemError) as exc:
                    result.action, result.detail = "error", getattr(exc, "detail", str(exc))
            report.rows.append(result)
            continue
        result = RowResult(row.line, who, row.role, "invite", "no account yet: a one-use invite link "
                           f"for {row.name or who} to register and join")
        if not dry_run:
            url, invite = await run_in_threadpool(
                invites.create_invite, db, request, settings, creator=caller, workspace=workspace, role=row.role,
                expires_in_days=min(14.0, settings.invite_max_days), max_uses=1)
            result.invite_url, result.invite_id = url, invite.id
        report.rows.append(result)
    return report
