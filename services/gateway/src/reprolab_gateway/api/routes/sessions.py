"""JupyterLab sessions: start one in a built version's image, list, read, stop; a workspace's session settings.

The runner owns the sessions (runner.session.*). Who sees what is decided here: a student sees their
own sessions only (another's is a 404, as if absent); instructors and admins every session of their
workspace. Opening a session in the browser is the proxy's (``/sessions/{id}/``), not these routes'.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from reprolab.v1 import registry_pb2, runner_pb2
from reprolab_common.capture import change_lines, derive_spec
from reprolab_common.errors import Conflict, Forbidden, Invalid, NotFound, ProblemError
from reprolab_common.names import sanitize_name

from ... import quotas
from ...core.problems import pattern
from ...schemas import (
    Build,
    Session,
    SessionCreate,
    SessionList,
    SessionPolicy,
    Version,
    _In,
    _json_object,
    cpu_millis,
    memory_bytes,
)
from ..deps import BuilderDep, RegistryDep, RunnerDep, StoreDep
from ..params import WsPath
from .builds import start_build
from .runs import MANAGERS, find_code, pinned_image

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


def _is_open(a: registry_pb2.Assignment, manager: bool) -> bool:
    """Students get an assignment's starter code once it opens, and while it still takes submissions."""
    if manager:
        return True
    if a.HasField("opens_at") and a.opens_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC):
        return False
    return not (a.past_due and a.late_policy == "refuse")


async def _starters(ws: str, body: SessionCreate, env: registry_pb2.Environment, registry: RegistryDep,
                    store: StoreDep) -> list[runner_pb2.SessionStarter]:
    """The starter code the session gets: the named assignment's, else that of every open assignment whose
    environment is the session's or the one it was forked from (a student's fork of the course environment)."""
    manager = (await registry.get_workspace(ws)).caller_role in MANAGERS
    if body.assignment:
        chosen = [await registry.get_assignment(ws, body.assignment)]  # 404 when there is none
        if not _is_open(chosen[0], manager):
            raise Conflict(f"assignment {body.assignment!r} is not open now")
    else:
        origin = env.forked_from.rsplit("/v", 1)[0] if env.forked_from else ""
        chosen = [a for a in (await registry.list_assignments(ws)).items
                  if (a.environment == env.name or origin == f"{ws}/{a.environment}") and _is_open(a, manager)]
    starters = []
    for a in chosen:
        if not a.starter_code_digest:
            continue
        try:
            key = await find_code(ws, a.starter_code_digest, store)
        except ProblemError:  # gone from the store: the session starts without it
            continue
        starters.append(runner_pb2.SessionStarter(assignment=a.name, digest=a.starter_code_digest, object_key=key))
    return starters


@router.post("/workspaces/{ws}/sessions", status_code=201, response_model=Session,
             responses={409: {"description": "The version has no image yet, you already have a session of this "
                                             "environment, or the assignment named is not open yet."},
                        404: {"description": "No such environment, version or assignment in the workspace."},
                        429: {"description": "Beyond the workspace's concurrent runs quota (sessions count); "
                                             "Retry-After says when to try again."}})
async def start_session(ws: WsPath, body: SessionCreate, registry: RegistryDep, runner: RunnerDep,
                        store: StoreDep) -> Session:
    """Start JupyterLab in the version's image (``status`` is ``starting``; poll until ``running``, then open
    ``url``). Your home (/home/student) is kept between sessions of this workspace.

    Starter code: the session opened for an ``assignment`` gets its starter code in ``~/<assignment>/``; without
    one, it gets that of every open assignment that uses this environment, or the environment it was forked
    from. The files are written before the session shows ``running``, only where your home has nothing at that
    path: a resumed session keeps your edits, and a starter file you deleted comes back. ``starter_code`` in the
    answer names the assignments."""
    env = await registry.get_environment(ws, body.environment)
    number = body.version or env.latest_version
    version = await registry.get_version(ws, body.environment, number)
    if not version.image_digest or not version.lock_digest:
        raise Conflict(f"version {number} of {body.environment!r} has no image yet; build it first "
                       f"(POST .../environments/{body.environment}/versions/{number}/builds)")
    starters = await _starters(ws, body, env, registry, store)
    started = Session.of(await quotas.retry_later(runner.start_session(runner_pb2.StartSessionRequest(
        workspace=ws, environment=body.environment, version=number, image=pinned_image(version),
        lock_digest=version.lock_digest, resources=_resources(body, version), starter=starters))))
    started.starter_code = [s.assignment for s in starters]
    return started


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
    """Idle timeout, sessions per student and environment, network of this workspace's sessions, and whether its
    instructors may open students' sessions."""
    await registry.get_workspace(ws)  # members only
    p = await runner.get_session_policy(ws)
    return SessionPolicy(idle_timeout_seconds=p.idle_timeout_seconds, max_per_environment=p.max_per_environment,
                         network=p.network, instructors_may_open=p.instructors_may_open)


@router.put("/workspaces/{ws}/session-settings", response_model=SessionPolicy,
            responses={403: {"description": "Only the workspace's instructors and admins set these."}})
async def put_session_policy(ws: WsPath, body: SessionPolicy, registry: RegistryDep,
                             runner: RunnerDep) -> SessionPolicy:
    workspace = await registry.get_workspace(ws)
    if workspace.caller_role not in MANAGERS:
        raise Forbidden("only the workspace's instructors and admins can change its session settings")
    p = await runner.put_session_policy(runner_pb2.SessionPolicy(
        workspace=ws, idle_timeout_seconds=body.idle_timeout_seconds, max_per_environment=body.max_per_environment,
        network=body.network, instructors_may_open=body.instructors_may_open))
    return SessionPolicy(idle_timeout_seconds=p.idle_timeout_seconds, max_per_environment=p.max_per_environment,
                         network=p.network, instructors_may_open=p.instructors_may_open)


# --- "Save as a new version" (issue 12 item 7) -------------------------------------------------------


class SessionCaptureIn(_In):
    note: str = Field(default="", max_length=1000, pattern=pattern(r"^[^\x00-\x08\x0b-\x1f]*$",
                                                                   "must be printable characters"),
                      description="Your words for the new version (the packages saved are listed after them).")
    build: bool = Field(default=True, description="Start the new version's build at once.")


class SessionCaptured(BaseModel):
    session: Session
    source: str = Field(description="<workspace>/<env>/v<n>: the version the session runs, the new one's lineage.")
    forked: bool = Field(description="True when the version went to your fork (you cannot change the session's "
                                     "environment, e.g. a student in a course environment).")
    changes: dict[str, Any] = Field(description="What was installed, removed or changed beyond the lock, per kind "
                                                "(python, apt, r): added {name: version}, removed, changed [old, new].")
    version: Version = Field(description="The new version (its parent: the session's version or, in a fork, the "
                                         "fork's copy of it).")
    build: Build | None = Field(description="Its build, when requested; follow /api/v1/builds/{id}.")


async def _target_environment(ws: str, s: runner_pb2.Session, registry: RegistryDep,
                              user_id: str, username: str) -> tuple[str, int, bool]:
    """(environment, parent version, forked) the new version goes to.

    Who cannot change the session's environment (a student in a course environment) gets it in their own
    fork, created here, rather than a 409 "fork first": a student has no other way to keep what they
    installed, the fork's first version is a copy of exactly the session's version (parent: that version), so
    the lineage holds, and "Save" stays one click. A fork of that version the caller already owns is reused
    (saving twice does not scatter forks); the new version's parent is then the fork's copy (version 1)."""
    env = await registry.get_environment(ws, s.environment)
    if env.caller_can_change:
        return s.environment, s.version, False
    source = f"{ws}/{s.environment}/v{s.version}"
    for e in (await registry.list_environments(ws)).items:
        if e.forked_from == source and e.caller_can_change and e.owner in (user_id, username):
            return e.name, 1, True
    try:
        forked = await registry.fork_environment(ws, s.environment, version=s.version)
    except ProblemError as exc:
        if exc.status != 409:  # the default name (<env>-<user>) is taken by a fork of another version
            raise
        forked = await registry.fork_environment(ws, s.environment, version=s.version,
                                                 new_name=sanitize_name(f"{s.environment}-{username}-v{s.version}"))
    return forked.name, 1, True


@router.post("/workspaces/{ws}/sessions/{notebook_id}/capture", status_code=201, response_model=SessionCaptured,
             responses={404: {"description": "No such session, or it is not yours (only its owner saves it)."},
                        409: {"description": "The session is not running."},
                        422: {"description": "Nothing was installed beyond the lock: there is nothing to save."}})
async def capture_session(ws: WsPath, notebook_id: str, registry: RegistryDep, runner: RunnerDep,
                          builder: BuilderDep, body: SessionCaptureIn | None = None) -> SessionCaptured:
    """Save what was installed in your running session (``pip install`` in a cell or the terminal) as a new
    version of its environment, derived from the session's version, and start its build.

    The runner asks the image's agent what changed since the image was built (``reprolab env capture``);
    the new spec is the session version's spec with those pins (the same logic as the CLI's ``env
    capture``). If you cannot change the environment (a course environment, as a student) the version goes
    to your fork of it, made on the way. Only the session's owner may save it: an instructor who can see a
    student's session gets a 404, as for a session that is not theirs to change."""
    body = body or SessionCaptureIn()
    s = await visible_session(ws, notebook_id, runner, registry)
    if s.owner != runner.actor.user_id:
        raise NotFound(f"no session {notebook_id!r} of yours")
    if s.status != runner_pb2.SESSION_STATUS_RUNNING:
        raise Conflict(f"session {notebook_id} is not running; start a session, install what you need in it, "
                       "then save it as a new version")
    captured = await runner.capture_session(notebook_id)
    doc = json.loads(captured.capture_json)
    changes = doc.get("changes") or {}
    if not changes:
        raise Invalid("nothing was installed beyond the lock: install packages in the session (e.g. %pip install "
                      "in a notebook cell) before saving it as a new version", errors=[("session", "no changes")])
    source = await registry.get_version(ws, s.environment, s.version)
    spec = derive_spec(_json_object(source.spec_json) or {}, changes)
    target, parent, forked = await _target_environment(ws, s, registry, runner.actor.user_id,
                                                       runner.actor.username)
    chain = doc.get("chain") or {}
    origin = f"saved from session {s.id} of {ws}/{s.environment}/v{s.version}"
    if chain.get("id"):
        origin += f" (activity chain {chain['id']}, entry {chain.get('seq')})"
    note = "\n".join(part for part in (body.note.strip(), origin + ": " + "; ".join(change_lines(changes))) if part)
    version = await registry.create_version(ws, target, spec_json=json.dumps(spec, sort_keys=True),
                                            note=note[:2000], parent_version=parent)
    build = None
    if body.build:
        build = Build.of(await start_build(ws, target, version, registry, builder))
    return SessionCaptured(session=Session.of(captured.session), source=f"{ws}/{s.environment}/v{s.version}",
                           forked=forked, changes=changes, version=Version.of(version), build=build)
