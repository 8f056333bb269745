"""Workspace quotas: concurrent runs (and sessions, model servers) and storage, with what is used now."""

from fastapi import APIRouter
from reprolab.v1 import common_pb2, runner_pb2
from reprolab_common.errors import Forbidden

from ... import quotas
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import STORAGE_COUNTED, QuotaLimits, WorkspaceQuotas
from ..deps import RegistryDep, RunnerDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces/{ws}/quotas", tags=["workspaces"], route_class=BodyLimitedRoute)

MANAGERS = (common_pb2.ROLE_ADMIN, common_pb2.ROLE_INSTRUCTOR)


@router.get("", response_model=WorkspaceQuotas,
            responses={404: {"description": "No such workspace (or not a member)."}},
            description="The workspace's limits (0: none) and what it uses now; every member may read them. "
                        "Concurrent work counts runs queued, starting or running, sessions starting or running "
                        "and model servers deploying or serving; " + STORAGE_COUNTED + ".")
async def get_quotas(ws: WsPath, registry: RegistryDep, runner: RunnerDep) -> WorkspaceQuotas:
    workspace = await registry.get_workspace(ws)
    usage, dataset_bytes = await quotas.usage(ws, registry, runner)
    return WorkspaceQuotas.of(usage, dataset_bytes, workspace.caller_role in MANAGERS)


@router.put("", response_model=WorkspaceQuotas,
            responses={403: {"description": "Only the workspace's instructors and admins change its quotas."},
                       404: {"description": "No such workspace (or not a member)."}})
async def put_quotas(ws: WsPath, body: QuotaLimits, registry: RegistryDep, runner: RunnerDep) -> WorkspaceQuotas:
    """Set the limits (0: no limit). Lowering one below what is used now stops nothing: it refuses what would
    start next (runs and sessions: 429 with Retry-After; uploads beyond storage: 409)."""
    workspace = await registry.get_workspace(ws)
    if workspace.caller_role not in MANAGERS:
        raise Forbidden(f"only the instructors and admins of {ws!r} can change its quotas")
    await runner.put_quota(runner_pb2.WorkspaceQuota(
        workspace=ws, max_concurrent_runs=body.max_concurrent_runs,
        max_concurrent_runs_per_user=body.max_concurrent_runs_per_member, max_storage_bytes=body.max_storage_bytes))
    usage, dataset_bytes = await quotas.usage(ws, registry, runner)
    return WorkspaceQuotas.of(usage, dataset_bytes, True)
