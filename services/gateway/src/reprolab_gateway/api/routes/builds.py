"""Builds: request one for a version, follow its log live (SSE), read its result and SBOM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from reprolab.v1 import builder_pb2, registry_pb2
from reprolab_common.errors import Conflict, Forbidden, NotFound, ProblemError
from reprolab_common.objectstore import ObjectNotFound

from ...buildview import sbom_naming, seen_from
from ...core.sse import log_events
from ...schemas import INT32_MAX, Build, BuildList
from ..deps import BuilderDep, NatsDep, RegistryDep, StoreDep
from ..params import EnvPath, WsPath

router = APIRouter(tags=["builds"])

TERMINAL = (builder_pb2.BUILD_STATUS_SUCCEEDED, builder_pb2.BUILD_STATUS_FAILED)


def _parse_ref(ref: str) -> tuple[str, str, int] | None:
    """``ws/env/v3`` → (ws, env, 3)."""
    parts = ref.split("/")
    if len(parts) == 3 and parts[2].startswith("v") and parts[2][1:].isdigit():
        return parts[0], parts[1], int(parts[2][1:])
    return None


async def start_build(ws: str, env: str, version: registry_pb2.Version, registry: RegistryDep,
                      builder: BuilderDep) -> builder_pb2.Build:
    """Ask the builder for ``version`` (the caller's right to build it is checked by the caller): FROM its
    parent's image when the parent was built and is visible to the caller. Shared with a session's "Save as
    a new version", so a saved version builds exactly as one requested here."""
    parent_lock = ""
    if (parent := _parse_ref(version.parent)) is not None:
        try:
            parent_lock = (await registry.get_version(*parent)).lock_digest
        except ProblemError:
            parent_lock = ""  # the parent is not visible to the caller: build from scratch
    build = await builder.request(ws, env, version.number, version.spec_json, parent_lock)
    return seen_from(build, ws, env, version.number)


@router.post("/workspaces/{ws}/environments/{env}/versions/{n}/builds", status_code=202, response_model=Build,
             responses={422: {"description": "The spec could not be locked (a package that does not exist, "
                                             "conflicting pins, an unknown R package, a missing base image)."}})
async def request_build(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep,
                        n: int = Path(ge=1, le=INT32_MAX)) -> Response:
    """Lock version n's spec and build it into an image (identical locks join one build). Derived
    versions build FROM their parent's image when the parent was built."""
    environment = await registry.get_environment(ws, env)
    if not environment.caller_can_change:
        raise Forbidden(f"building versions of {env!r} requires the instructor or admin role or owning it; "
                        "fork it to build your own")
    build = await start_build(ws, env, await registry.get_version(ws, env, n), registry, builder)
    body = Build.of(build)
    if build.status == builder_pb2.BUILD_STATUS_FAILED and not build.lock_digest:
        problem = ProblemError(f"version {n} of {env!r} cannot be built: {build.error}", status=422,
                               title="The spec cannot be locked").to_dict()
        problem["build_id"] = build.id
        return JSONResponse(problem, status_code=422, media_type="application/problem+json")
    return JSONResponse(body.model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/api/v1/builds/{build.id}"})


@router.get("/workspaces/{ws}/environments/{env}/builds", response_model=BuildList)
async def list_builds(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep,
                      version: int = Query(default=0, ge=0, le=INT32_MAX, description="Only this version's; 0: all."),
                      limit: int = Query(default=100, ge=1, le=500)) -> BuildList:
    """The environment's build history, newest first: every build of its versions (failed ones too, with why),
    each with its log at ``/builds/{id}/logs``. Whoever can see the environment can see its builds."""
    await registry.get_environment(ws, env)  # 404 unless the caller can see it
    reply = await builder.list(ws, env, version, limit)
    return BuildList(items=[Build.of(seen_from(b, ws, env, b.version)) for b in reply.items])


async def _visible_build(build_id: str, builder: BuilderDep, registry: RegistryDep) -> builder_pb2.Build:
    """The build as the caller may see it: seen through the first version it serves whose
    environment the caller can see (a private fork only by its owner and the workspace's instructors), else
    404 whether or not it exists. Identical locks share one build, which may so serve several workspaces;
    the caller sees only its own."""
    try:
        build = await builder.get(build_id)
    except ProblemError as exc:
        if exc.status == 404:
            raise NotFound(f"no build {build_id!r}") from exc
        raise
    visible: dict[tuple[str, str], bool] = {}
    for served in build.serves:
        key = (served.workspace, served.environment)
        if key not in visible:
            try:
                await registry.get_environment(*key)
                visible[key] = True
            except ProblemError as exc:
                if exc.status not in (403, 404):
                    raise
                visible[key] = False
        if visible[key]:
            return seen_from(build, served.workspace, served.environment, served.version)
    raise NotFound(f"no build {build_id!r}")


@router.get("/builds/{build_id}", response_model=Build)
async def get_build(build_id: str, builder: BuilderDep, registry: RegistryDep) -> Build:
    return Build.of(await _visible_build(build_id, builder, registry))


@router.get("/builds/{build_id}/sbom", responses={200: {"content": {"application/vnd.cyclonedx+json": {}}}})
async def get_sbom(build_id: str, builder: BuilderDep, registry: RegistryDep) -> Response:
    """CycloneDX 1.5 inventory of what is really in the image (Debian and Python packages)."""
    build = await _visible_build(build_id, builder, registry)
    sbom = await builder.sbom(build_id)
    return Response(sbom_naming(sbom.cyclonedx_json, build.image_ref), media_type="application/vnd.cyclonedx+json")


@router.get("/builds/{build_id}/lock", responses={200: {"content": {"application/json": {}}}})
async def get_lock(build_id: str, builder: BuilderDep, registry: RegistryDep) -> Response:
    """The lock the build was made from: base digest, exact packages with hashes, apt/R versions."""
    build = await _visible_build(build_id, builder, registry)
    if not build.lock_digest:
        raise ProblemError(f"build {build_id} has no lock: {build.error}", status=404, title="Not found")
    lock = await builder.lock(build.lock_digest)
    return Response(lock.lock_json, media_type="application/json", headers={"Reprolab-Lock-Digest": lock.lock_digest})


def log_key(build_id: str) -> str:
    """Where the builder keeps a finished build's whole log (scrubbed: logstream.LogStream.close)."""
    return f"builds/{build_id}/log.txt"


async def _kept_log(store: StoreDep, build_id: str) -> str | None:
    try:
        return (await asyncio.to_thread(store.read_bytes, log_key(build_id))).decode(errors="replace")
    except ObjectNotFound:
        return None


async def _replay(text: str, status: str) -> AsyncIterator[bytes]:
    for line in text.splitlines():
        yield b"data: " + line.encode() + b"\n\n"
    yield f"event: end\ndata: {status}\n\n".encode()


@router.get("/builds/{build_id}/logs", responses={200: {"content": {"text/event-stream": {}}}})
async def build_logs(build_id: str, builder: BuilderDep, registry: RegistryDep, link: NatsDep,
                     store: StoreDep) -> StreamingResponse:
    """The build's output as Server-Sent Events, from the first line; live while it runs. Ends with an
    ``end`` event whose data is the final status. A finished build's log is read from where the builder
    kept it (the live stream expires after 7 days)."""
    build = await _visible_build(build_id, builder, registry)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if build.status in TERMINAL and (kept := await _kept_log(store, build.id)) is not None:
        return StreamingResponse(_replay(kept, Build.of(build).status), media_type="text/event-stream",
                                 headers=headers)

    async def finished() -> str | None:
        current = await builder.get(build_id)
        return Build.of(current).status if current.status in TERMINAL else None

    events = log_events(link.client.jetstream(), f"logs.build.{build.id}", finished)
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/builds/{build_id}/log.txt", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "The whole log of a finished build"},
                       409: {"description": "The build has not finished: follow /builds/{build_id}/logs."}})
async def build_log_text(build_id: str, builder: BuilderDep, registry: RegistryDep, store: StoreDep) -> Response:
    """A finished build's whole log as text, kept with the build (host paths and workspace names removed)."""
    build = await _visible_build(build_id, builder, registry)
    if build.status not in TERMINAL:
        raise Conflict(f"build {build_id} has not finished; follow its log at /api/v1/builds/{build_id}/logs")
    kept = await _kept_log(store, build.id)
    if kept is None:
        raise NotFound(f"the log of build {build_id} was not kept")
    return Response(kept, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="build-{build.id}.log"'})
