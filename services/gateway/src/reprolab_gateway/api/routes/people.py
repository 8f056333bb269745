"""People: accounts for platform admins (disable, enable, platform admin), a workspace's members with where
they came from, and a class list added from CSV. The domain logic is in ``reprolab_gateway.people``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from reprolab_common.errors import NotFound

from ... import crud, people
from ...core.bodylimit import BodyLimitedRoute
from ...models import User as UserRow
from ...schemas import RoleName, aware, role_name, ts
from ..deps import CurrentUser, PlatformAdmin, RegistryDep, SessionDep, SettingsDep
from ..params import MemberPath, WsPath

router = APIRouter(tags=["people"], route_class=BodyLimitedRoute)

AuthSource = Literal["password", "token", "sso", "ldap", "lms"]
MemberSource = Literal["hand", "csv", "invite", "lms"]


class UserAccount(BaseModel):
    id: str
    username: str
    display_name: str
    email: str
    platform_admin: bool
    disabled: bool
    created_at: datetime
    auth: list[AuthSource] = Field(description="How the account signs in.")

    @classmethod
    def of(cls, user: UserRow, auth: list[str]) -> UserAccount:
        return cls(id=user.id, username=user.username, display_name=user.display_name, email=user.email or "",
                   platform_admin=user.platform_admin, disabled=user.disabled_at is not None,
                   created_at=aware(user.created_at), auth=auth)


class UserAccountList(BaseModel):
    items: list[UserAccount]


class AccountChange(BaseModel):
    disabled: bool | None = Field(default=None, description="true: no sign-in, token or session works.")
    platform_admin: bool | None = Field(default=None, description="Platform admins manage every workspace and "
                                                                  "user.")


class Person(BaseModel):
    username: str
    display_name: str
    role: RoleName | None
    added_at: datetime | None
    source: MemberSource = Field(description="How the member joined: by hand, a CSV class list, an invite "
                                             "link, or the LMS course.")


class PersonList(BaseModel):
    items: list[Person]


class ClassList(BaseModel):
    csv: str = Field(description="The CSV text: a header (email and/or username, name, role), "
                                               "then one line per person.")
    dry_run: bool = Field(default=False, description="Report what each line would do; change nothing.")


class ClassListRow(BaseModel):
    line: int
    who: str
    role: str
    action: Literal["add", "invite", "member", "error"]
    detail: str
    username: str = ""
    invite_url: str = Field(default="", description="The new invite link for this person (shown only here).")


class ClassListReport(BaseModel):
    dry_run: bool
    added: int
    invited: int
    already_members: int
    errors: int
    rows: list[ClassListRow]


@router.get("/users/accounts", response_model=UserAccountList)
def list_accounts(session: SessionDep, _admin: PlatformAdmin) -> UserAccountList:
    """Every account with how it signs in and whether it is disabled (platform admins)."""
    users = crud.list_users(session)
    auth = people.auth_sources(session, users)
    return UserAccountList(items=[UserAccount.of(u, auth[u.id]) for u in users])


@router.patch("/users/{username}", response_model=UserAccount,
              responses={404: {"description": "No user has that name."},
                         409: {"description": "You cannot change yourself so, or it is the last platform admin."}})
def change_account(username: MemberPath, body: AccountChange, request: Request, session: SessionDep,
                   admin: PlatformAdmin) -> UserAccount:
    """Disable or enable an account, make or unmake a platform admin (platform admins). Disabling ends its
    browser sessions and stops its API tokens; enabling gives them back."""
    user = crud.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}; GET /api/v1/users lists them")
    user = people.change_account(session, request, user=user, by=admin, disabled=body.disabled,
                                 platform_admin=body.platform_admin)
    return UserAccount.of(user, people.auth_sources(session, [user])[user.id])


@router.get("/workspaces/{ws}/people", response_model=PersonList)
async def list_people(ws: WsPath, registry: RegistryDep, session: SessionDep) -> PersonList:
    """The members with their names and how each joined (instructors and admins, as the member list)."""
    members = (await registry.list_members(ws)).items

    def load() -> tuple[dict[str, str], dict[str, str]]:
        sources = people.member_sources(session, ws)
        ids = [m.user_id for m in members]
        names = {u.id: u.display_name for u in session.query(UserRow).filter(UserRow.id.in_(ids))} if ids else {}
        return sources, names

    sources, names = await run_in_threadpool(load)
    return PersonList(items=[Person(username=m.username, display_name=names.get(m.user_id, ""),
                                    role=role_name(m.role), added_at=ts(m.added_at),
                                    source=sources.get(m.user_id, "hand")) for m in members])


@router.post("/workspaces/{ws}/class-list", response_model=ClassListReport,
             responses={422: {"description": "The file cannot be read as a class list; the detail names the line."}})
async def add_class_list(ws: WsPath, body: ClassList, request: Request, registry: RegistryDep,
                         session: SessionDep, settings: SettingsDep, user: CurrentUser) -> ClassListReport:
    """Add a class from a CSV list (instructors and admins): people with an account become members, the
    others get a one-use invite link each (in this answer only). Lines that cannot be used are reported
    and the rest still go through; ``dry_run`` shows what would happen."""
    rows = people.parse_class_list(body.csv)
    report = await people.import_class_list(request, session, settings, caller=user, workspace=ws, rows=rows,
                                            dry_run=body.dry_run, registry=registry)
    return ClassListReport(
        dry_run=report.dry_run, added=report.count("add"), invited=report.count("invite"),
        already_members=report.count("member"), errors=report.count("error"),
        rows=[ClassListRow(line=r.line, who=r.who, role=r.role, action=r.action, detail=r.detail,
                           username=r.username, invite_url=r.invite_url) for r in report.rows])
