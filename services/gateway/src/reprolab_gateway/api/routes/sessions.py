"""JupyterLab sessions: start one in a built version's image, list, read, stop; a workspace's session settings.

The runner owns the sessions (runner.session.*). Who sees what is decided here: a student sees their
own sessions only (another's is a 404, as if absent); instructors and admins every session of their
workspace. Opening a session in the browser is the proxy's (``/sessions/{id}/``), not these routes'.
"""

from __future__ import annotations

from fastapi import APIRouter
from reprolab.v1 import registry_pb2, runner_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound, ProblemError

from ...schemas import Session, SessionCreate, SessionList, SessionPolicy, _json_object, cpu_millis, memory_bytes
from ..deps import RegistryDep, RunnerDep
from ..params import WsPath
from .runs import MANAGERS, pinned_image

router = APIRouter(tags=["sessions"])


def _resources(body: SessionCreate, version: registry_pb2.Version) -> runner_pb2.RunResources:
    """What the request asks for, else the spec's ``resources``, else the runner's session defaults (0)."""
    wanted = _json_object(version.spec_json).get("resources") or {}
    req = body.resources
    cpu = (req.cpu if req else None) or wanted.get("cpu")
    memory = (req.memory if req else None) or wanted.get("memory")
    return runner_pb2.RunResources(cpu_millis=cpu_millis(str(cpu)) if cpu else 0,
                                   memory_bytes=memory_bytes(str(memory)) if memory else 0,
                                   pids=req.pids if req and "pids" in req.model_fields_set else 0)


@router.post("/workspaces/{ws}/sessions", status_code=201, response_model=Session,
             responses={409: {"description": "The version has no image yet, or you already have a session of "
                                             "this environment."},
                        404: {"description": "No such environment or version in the workspace."}})
async def start_session(ws: WsPath, body: SessionCreate, registry: RegistryDep, runner: RunnerDep) -> Session:
    """Start JupyterLab in the version's image (``status`` is ``starting``; poll until ``running``, then open
    ``url``). Your home (/home/student) is kept between sessions of this workspace."""
    env = await registry.get_environment(ws, body.environment)
    number = body.version or env.latest_version
    version = await registry.get_version(ws, body.environment, number)
    if not version.image_digest or not version.lock_digest:
        raise Conflict(f"version {number} of {body.environment!r} has no image yet; build it first "
                       f"(POST .../environments/{body.environment}/versions/{number}/builds)")
    return Session.of(await runner.start_session(runner_pb2.StartSessionRequest(
        workspace=ws, environment=body.environment, version=number, image=pinned_image(version),
        lock_digest=version.lock_digest, resources=_resources(body, version))))


@router.get("/workspaces/{ws}/sessions", response_model=SessionList)
async def list_sessions(ws: WsPath, registry: RegistryDep, runner: RunnerDep, active: bool = False) -> SessionList:
    """Your sessions (instructors and admins: everyone's in the workspace); ``active=true``: not stopped."""
    workspace = await registry.get_workspace(ws)
    found = await runner.list_sessions(ws, own_only=workspace.caller_role not in MANAGERS, active_only=active)
    return SessionList(items=[Session.of(s) for s in found.items])


async def visible_session(ws: str, notebook_id: str, runner: RunnerDep, registry: RegistryDep) -> runner_pb2.Session:
    """The session if the caller may see it: its owner, or an instructor/admin of its workspace; else 404."""
    try:
        s = await runner.get_session(notebook_id)
        workspace = await registry.get_workspace(s.workspace)
    except ProblemError as exc:
        if exc.status in (403, 404):
            raise NotFound(f"no session {notebook_id!r}") from exc
        raise
    if s.workspace != ws or (workspace.caller_role not in MANAGERS and s.owner != runner.actor.user_id):
        raise NotFound(f"no session {notebook_id!r}")
    return s


@router.get("/workspaces/{ws}/sessions/{notebook_id}", response_model=Session)
async def get_session(ws: WsPath, notebook_id: str, registry: RegistryDep, runner: RunnerDep) -> Session:
    return Session.of(await visible_session(ws, notebook_id, runner, registry))


@router.delete("/workspaces/{ws}/sessions/{notebook_id}", response_model=Session)
async def stop_session(ws: WsPath, notebook_id: str, registry: RegistryDep, runner: RunnerDep) -> Session:
    """Stop the session (status ``stopping``, then ``stopped``); the files in your home stay."""
    await visible_session(ws, notebook_id, runner, registry)
    return Session.of(await runner.stop_session(notebook_id))


@router.get("/workspaces/{ws}/session-settings", response_model=SessionPolicy)
async def get_session_policy(ws: WsPath, registry: RegistryDep, runner: RunnerDep) -> SessionPolicy:
    """Idle timeout, sessions per student and environment, network of this workspace's sessions."""
    await registry.get_workspace(ws)  # members only
    p = await runner.get_session_policy(ws)
    return SessionPolicy(idle_timeout_seconds=p.idle_timeout_seconds, max_per_environment=p.max_per_environment,
                         network=p.network)


@router.put("/workspaces/{ws}/session-settings", response_model=SessionPolicy,
            responses={403: {"description": "Only the workspace's instructors and admins set these."}})
async def put_session_policy(ws: WsPath, body: SessionPolicy, registry: RegistryDep,
                             runner: RunnerDep) -> SessionPolicy:
    workspace = await registry.get_workspace(ws)
    if workspace.caller_role not in MANAGERS:
        raise Forbidden("only the workspace's instructors and admins can change its session settings")
    p = await runner.put_session_policy(runner_pb2.SessionPolicy(
        workspace=ws, idle_timeout_seconds=body.idle_timeout_seconds, max_per_environment=body.max_per_environment,
        network=body.network))
    return SessionPolicy(idle_timeout_seconds=p.idle_timeout_seconds, max_per_environment=p.max_per_environment,
                         network=p.network)
