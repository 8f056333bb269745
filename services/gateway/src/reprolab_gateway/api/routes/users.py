"""Users: created by platform admins, each with a first API token."""

from fastapi import APIRouter

from ... import crud
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import User, UserCreate, UserCreated, UserList
from ..deps import PlatformAdmin, SessionDep

router = APIRouter(prefix="/users", tags=["users"], route_class=BodyLimitedRoute)


@router.post("", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, session: SessionDep, _admin: PlatformAdmin) -> UserCreated:
    """Create a user and its first API token (shown once). Platform admins only."""
    user, token = crud.create_user(
        session, username=body.username, display_name=body.display_name, platform_admin=body.platform_admin
    )
    return UserCreated(user=User.of(user), token=token)


@router.get("", response_model=UserList)
def list_users(session: SessionDep, _admin: PlatformAdmin) -> UserList:
    """Every user. Platform admins only."""
    return UserList(items=[User.of(u) for u in crud.list_users(session)])
