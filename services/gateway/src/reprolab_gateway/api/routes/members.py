"""Members of a workspace: the gateway turns usernames into user ids, the registry decides."""

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from reprolab_common.errors import Invalid

from ... import crud
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import ROLE_VALUES, Member, MemberAdd, MemberList
from ..deps import RegistryDep, SessionDep
from ..params import WsPath

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
