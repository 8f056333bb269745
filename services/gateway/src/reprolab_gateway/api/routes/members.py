"""Members of a workspace: the gateway turns usernames into user ids, the registry decides."""

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from reprolab_common.errors import Invalid, NotFound

from ... import crud
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import ROLE_VALUES, Member, MemberAdd, MemberList, MemberUpdate
from ..deps import RegistryDep, SessionDep
from ..params import MemberPath, WsPath

router = APIRouter(prefix="/workspaces/{ws}/members", tags=["members"], route_class=BodyLimitedRoute)


@router.post("", status_code=201, response_model=Member,
             responses={422: {"description": "No user has that name, or the body is invalid."}})
async def add_member(ws: WsPath, body: MemberAdd, registry: RegistryDep, session: SessionDep) -> Member:
    """Add a user to the workspace with a role (only a workspace admin can add an admin)."""
    user = await run_in_threadpool(crud.get_user_by_username, session, body.username)
    if user is None:
        raise Invalid(
            f"no user named {body.username!r}; an admin creates users with POST /api/v1/users",
            errors=[("body.username", f"no user named {body.username!r}")],
        )
    member = await registry.add_member(
        ws, user_id=user.id, username=user.username, role=ROLE_VALUES[body.role]
    )
    return Member.of(member)


@router.get("", response_model=MemberList)
async def list_members(ws: WsPath, registry: RegistryDep) -> MemberList:
    reply = await registry.list_members(ws)
    return MemberList(items=[Member.of(m) for m in reply.items])


_MEMBER_ERRORS = {
    404: {"description": "No such workspace, or it has no member of that name."},
    409: {"description": "That would leave the workspace without an admin: make another member admin first."},
}


async def _user_id(session: SessionDep, ws: str, username: str) -> str:
    user = await run_in_threadpool(crud.get_user_by_username, session, username)
    if user is None:
        raise NotFound(f"workspace {ws!r} has no member named {username!r}; GET .../members lists them")
    return user.id


@router.patch("/{member}", response_model=Member, responses=_MEMBER_ERRORS)
async def update_member(ws: WsPath, member: MemberPath, body: MemberUpdate, registry: RegistryDep,
                        session: SessionDep) -> Member:
    """Change a member's role (instructors and admins; only a workspace admin makes or unmakes an admin; the
    last admin cannot be demoted)."""
    user_id = await _user_id(session, ws, member)
    return Member.of(await registry.update_member(ws, user_id=user_id, role=ROLE_VALUES[body.role]))


@router.delete("/{member}", status_code=204, response_class=Response, responses=_MEMBER_ERRORS)
async def remove_member(ws: WsPath, member: MemberPath, registry: RegistryDep, session: SessionDep) -> Response:
    """Remove a member (instructors and admins; only a workspace admin removes an admin; never the last admin).
    Their forks, builds and runs stay in the workspace's lineage."""
    user_id = await _user_id(session, ws, member)
    await registry.remove_member(ws, user_id=user_id)
    return Response(status_code=204)
