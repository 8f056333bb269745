"""Environments and their versions. Spec bodies may be JSON or YAML (same shape)."""

from fastapi import APIRouter, Path, Query, Request

from ...core.documents import openapi_document_body, read_document, to_json_text
from ...schemas import (
    INT32_MAX,
    Environment,
    EnvironmentCreate,
    EnvironmentList,
    ForkRequest,
    Version,
    VersionCreate,
    VersionList,
)
from ..deps import RegistryDep, SettingsDep
from ..params import EnvPath, WsPath

router = APIRouter(prefix="/workspaces/{ws}/environments", tags=["environments"])


@router.post(
    "", status_code=201, response_model=Environment, openapi_extra=openapi_document_body(EnvironmentCreate),
    responses={422: {"description": "The spec is invalid (each bad field named), or the body is."}},
)
async def create_environment(
    ws: WsPath, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Environment:
    """Create an environment with its first version. The registry validates the spec."""
    body = await read_document(request, EnvironmentCreate, settings.max_document_bytes)
    env = await registry.create_environment(
        ws, name=body.name, description=body.description, spec_json=to_json_text(body.spec, "body.spec")
    )
    return Environment.of(env)


@router.get("", response_model=EnvironmentList)
async def list_environments(
    ws: WsPath, registry: RegistryDep,
    archived: bool = Query(False, description="Include archived environments (their archived_at is set)."),
) -> EnvironmentList:
    reply = await registry.list_environments(ws, include_archived=archived, cached=True)
    return EnvironmentList(items=[Environment.of(e) for e in reply.items])


@router.get("/{env}", response_model=Environment)
async def get_environment(ws: WsPath, env: EnvPath, registry: RegistryDep) -> Environment:
    return Environment.of(await registry.get_environment(ws, env, cached=True))


@router.post(
    "/{env}/versions",
    status_code=201,
    response_model=Version,
    openapi_extra=openapi_document_body(VersionCreate),
    responses={422: {"description": "The spec is invalid (each bad field named), rollback_to names no version, "
                                    "or the body is invalid."}},
)
async def create_version(
    ws: WsPath, env: EnvPath, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Version:
    """A new version from a spec, or ``{"rollback_to": n}`` to make one equal to version n."""
    body = await read_document(request, VersionCreate, settings.max_document_bytes)
    if body.spec is not None:
        version = await registry.create_version(
            ws, env, spec_json=to_json_text(body.spec, "body.spec"), note=body.note
        )
    else:
        version = await registry.create_version(ws, env, rollback_to=body.rollback_to, note=body.note)
    return Version.of(version)


@router.get("/{env}/versions", response_model=VersionList)
async def list_versions(ws: WsPath, env: EnvPath, registry: RegistryDep) -> VersionList:
    reply = await registry.list_versions(ws, env, cached=True)
    return VersionList(items=[Version.of(v) for v in reply.items])


@router.get("/{env}/versions/{n}", response_model=Version)
async def get_version(
    ws: WsPath, env: EnvPath, registry: RegistryDep, n: int = Path(ge=1, le=INT32_MAX, description="Version number")
) -> Version:
    return Version.of(await registry.get_version(ws, env, n, cached=True))


@router.post(
    "/{env}/fork",
    status_code=201,
    response_model=Environment,
    openapi_extra=openapi_document_body(ForkRequest, required=False),
)
async def fork_environment(
    ws: WsPath, env: EnvPath, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Environment:
    """Fork into a new environment whose first version's parent is the forked version. The body
    may be empty (latest version, default name, same workspace)."""
    body = await read_document(request, ForkRequest, settings.max_document_bytes)
    forked = await registry.fork_environment(
        ws, env, version=body.version or 0, new_name=body.name or "", target_workspace=body.workspace or ""
    )
    return Environment.of(forked)
