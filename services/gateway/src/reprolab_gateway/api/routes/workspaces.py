"""Workspaces (answered by the registry)."""

from fastapi import APIRouter

from ...core.bodylimit import BodyLimitedRoute
from ...schemas import Workspace, WorkspaceCreate, WorkspaceList
from ..deps import RegistryDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces", tags=["workspaces"], route_class=BodyLimitedRoute)


@router.post("", status_code=201, response_model=Workspace)
async def create_workspace(body: WorkspaceCreate, registry: RegistryDep) -> Workspace:
    """Create a workspace; the caller becomes its admin."""
    return Workspace.of(await registry.create_workspace(body.slug, body.title))


@router.get("", response_model=WorkspaceList)
async def list_workspaces(registry: RegistryDep) -> WorkspaceList:
    """The workspaces the caller is a member of (every one for platform admins)."""
    reply = await registry.list_workspaces()
    return WorkspaceList(items=[Workspace.of(w) for w in reply.items])


@router.get("/{ws}", response_model=Workspace)
async def get_workspace(ws: WsPath, registry: RegistryDep) -> Workspace:
    return Workspace.of(await registry.get_workspace(ws, cached=True))
