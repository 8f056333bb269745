"""Runs: upload code, submit a run of an environment version against datasets, follow it, get results."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from reprolab.v1 import common_pb2, registry_pb2, runner_pb2
from reprolab_common.errors import Conflict, Invalid, NotFound, ProblemError
from reprolab_common.objectstore import ObjectNotFound

from ... import quotas
from ...core.archives import inspect_archive
from ...core.sse import log_events
from ...core.uploads import check_declared_length, spool
from ...schemas import TERMINAL_RUN, CodeUpload, OutputFile, Run, RunCreate, RunList, RunOutputs, _json_object
from ..deps import NatsDep, RegistryDep, RunnerDep, SettingsDep, StoreDep
from ..params import WsPath

router = APIRouter(tags=["runs"])

MANAGERS = (common_pb2.ROLE_ADMIN, common_pb2.ROLE_INSTRUCTOR)
FORMATS = ("tar.gz", "zip")


def code_key(workspace: str, sha256_hex: str, fmt: str) -> str:
    return f"workspaces/{workspace}/code/sha256/{sha256_hex}.{fmt}"


@router.post("/workspaces/{ws}/code", status_code=201, response_model=CodeUpload,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/gzip": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                 "application/zip": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}}}},
             responses={413: {"description": "The upload is larger than REPROLAB_GATEWAY_MAX_UPLOAD_BYTES"},
                        422: {"description": "The body is not a .tar.gz or .zip, or breaks a limit (entries, "
                                             "unpacked size, ratio, links, paths)."}})
async def upload_code(ws: WsPath, request: Request, registry: RegistryDep, store: StoreDep,
                      settings: SettingsDep) -> CodeUpload:
    """A .tar.gz or .zip of the code to run (raw body). Checked before it is kept: entry count, unpacked
    size, compression ratio; only regular files and directories at relative paths without '..'."""
    check_declared_length(request, settings.max_upload_bytes)
    await registry.get_workspace(ws)  # members only
    spooled = await spool(request.stream(), settings.upload_dir(), settings.max_upload_bytes)
    try:
        info = await asyncio.to_thread(inspect_archive, spooled.path)
        key = code_key(ws, spooled.sha256, info.format)
        if not await asyncio.to_thread(store.exists, key):
            await asyncio.to_thread(store.put_file, key, spooled.path)
    finally:
        spooled.remove()
    return CodeUpload(digest=f"sha256:{spooled.sha256}", size=spooled.size, format=info.format,
                      entries=info.entries)


async def _dataset(registry: RegistryDep, ws: str, ref: str, listing: list[registry_pb2.Dataset]
                   ) -> registry_pb2.Dataset:
    if ref.startswith("sha256:"):
        return await registry.get_dataset(ws, ref)
    for d in listing:
        if d.name == ref:
            return d
    raise Invalid(f"no dataset named {ref!r} in {ws!r} that you can use", errors=[("body.datasets", ref)])


async def find_code(ws: str, digest: str, store: StoreDep, loc: str = "body.code") -> str:
    """The object key of an archive uploaded to POST .../code; 422 when there is none."""
    hexdigest = digest.removeprefix("sha256:")
    for fmt in FORMATS:
        if await asyncio.to_thread(store.exists, code_key(ws, hexdigest, fmt)):
            return code_key(ws, hexdigest, fmt)
    raise Invalid(f"no code archive {digest} in {ws!r}; upload it to POST /api/v1/workspaces/{ws}/code",
                  errors=[(loc, "unknown digest")])


def pinned_image(version: registry_pb2.Version) -> str:
    return f"{version.image_ref.rsplit(':', 1)[0]}@{version.image_digest}"


async def _evaluation(registry: RegistryDep, ws: str, name: str) -> tuple[registry_pb2.Assignment,
                                                                          runner_pb2.Evaluation]:
    """The assignment's evaluation for the runner (object keys included: they go to the runner only)."""
    a = await registry.get_assignment(ws, name, for_run=True)
    version = await registry.get_version(ws, a.environment, a.version)
    if not version.image_digest:
        raise Conflict(f"the evaluation environment of assignment {name!r} ({a.environment} v{a.version}) has no "
                       "image yet; an instructor must build it first")
    return a, runner_pb2.Evaluation(
        image=pinned_image(version), code_digest=a.evaluation_code_digest, code_object_key=a.evaluation_code_key,
        labels_digest=a.labels_digest, labels_object_key=a.labels_key, predictions=a.predictions,
        command=a.command, metric=a.metric, revision=a.evaluation_revision or 1)


@router.post("/workspaces/{ws}/runs", status_code=202, response_model=Run,
             responses={409: {"description": "The version has no image yet (build it first), or the workspace "
                                             "is at or over its storage quota."},
                        429: {"description": "Beyond the workspace's concurrent runs quota (or the assignment's "
                                             "daily submissions); Retry-After says when to try again."},
                        422: {"description": "The code, a dataset, the environment version or the assignment does "
                                             "not exist, the target is not enabled, or the body is invalid."}})
async def submit_run(ws: WsPath, body: RunCreate, registry: RegistryDep, runner: RunnerDep, store: StoreDep) -> Run:
    """Run ``command`` in a built version's image with the uploaded code in /work and datasets read-only
    under /data, on a target (``local`` by default): no network unless asked, non-root, limited.
    With ``assignment``, a succeeded run is then scored: the assignment's evaluation reads the file the
    run wrote at /outputs/<predictions> in a separate sandbox (the hidden labels are only mounted there).
    With ``git`` the runner fetches the repository now and pins the run to the commit (an unreachable or
    refused URL is a 422); with ``notebook`` the notebook is executed top to bottom."""
    return await start_run(ws, body, registry, runner, store)


async def start_run(ws: str, body: RunCreate, registry: RegistryDep, runner: RunnerDep, store: StoreDep,
                    source: runner_pb2.CodeSource | None = None) -> Run:
    """Submit ``body`` (``source``: the code's recorded origin when running an earlier run's code again)."""
    if bool(body.code) == bool(body.git):
        raise Invalid("give the run's code either as an uploaded archive (code) or as a Git repository (git)",
                      errors=[("body.code", "exactly one of code, git")])
    if bool(body.command) == bool(body.notebook):
        raise Invalid("give the run either a command or a notebook to execute",
                      errors=[("body.command", "exactly one of command, notebook")])
    evaluation = None
    environment, number = body.environment, body.version
    if body.assignment:
        assignment, evaluation = await _evaluation(registry, ws, body.assignment)
        if not environment:
            environment, number = assignment.environment, number or assignment.version
        elif environment == assignment.environment and not number:
            number = assignment.version
    if not environment:
        raise Invalid("a run needs an environment (or an assignment to take it from)",
                      errors=[("body.environment", "required")])
    env = await registry.get_environment(ws, environment)
    number = number or env.latest_version
    version = await registry.get_version(ws, environment, number)
    if not version.image_digest:
        raise Conflict(f"version {number} of {environment!r} has no image yet; build it first "
                       f"(POST .../environments/{environment}/versions/{number}/builds)")
    key = await find_code(ws, body.code, store) if body.code else ""
    listing = list((await registry.list_datasets(ws)).items) if any(
        not d.startswith("sha256:") for d in body.datasets) else []
    mounts = []
    for ref in body.datasets:
        d = await _dataset(registry, ws, ref, listing)
        mounts.append(runner_pb2.DatasetMount(digest=d.digest, name=d.name, mount=f"/data/{d.name}",
                                              object_key=d.object_key))
    # the outputs of a run are kept: none starts while the workspace is at or over its storage quota (409)
    await quotas.check_storage(ws, registry, runner, adding=0, what="the run")
    if body.assignment:
        # last, once everything else was checked: it counts the submission against the daily limit
        # (429 when none is left), and refuses one before the opening or after a refusing due date (409)
        await registry.admit_submission(ws, body.assignment)
    request = runner_pb2.SubmitRunRequest(
        workspace=ws, environment=environment, version=number, image=pinned_image(version), code_digest=body.code,
        code_object_key=key, datasets=mounts, command=body.command, target=body.target,
        resources=body.resources.to_proto(_json_object(version.spec_json)), network=body.network,
        assignment=body.assignment, source=runner_pb2.CodeSource(
            git_url=body.git.url if body.git else "", git_ref=body.git.ref if body.git else "",
            notebook=body.notebook))
    if source is not None and body.code:  # the earlier run's fetched commit, run again without fetching
        request.source.MergeFrom(runner_pb2.CodeSource(git_url=source.git_url, git_ref=source.git_ref,
                                                       git_commit=source.git_commit))
    if evaluation is not None:
        request.evaluation.CopyFrom(evaluation)
    return Run.of(await quotas.retry_later(runner.submit(request)))  # 429 beyond the concurrent quota


@router.get("/workspaces/{ws}/runs", response_model=RunList)
async def list_runs(ws: WsPath, registry: RegistryDep, runner: RunnerDep) -> RunList:
    """Students see their own runs; instructors and admins every run of the workspace."""
    workspace = await registry.get_workspace(ws)
    runs = await runner.list(ws, own_only=workspace.caller_role not in MANAGERS)
    return RunList(items=[Run.of(r) for r in runs.items])


async def _visible_run(run_id: str, runner: RunnerDep, registry: RegistryDep) -> runner_pb2.Run:
    try:
        run = await runner.get(run_id)
        workspace = await registry.get_workspace(run.workspace)
    except ProblemError as exc:
        if exc.status == 404:
            raise NotFound(f"no run {run_id!r}") from exc
        raise
    if workspace.caller_role not in MANAGERS and run.requested_by != runner.actor.username:
        raise NotFound(f"no run {run_id!r}")
    return run


@router.get("/runs/{run_id}", response_model=Run)
async def get_run(run_id: str, runner: RunnerDep, registry: RegistryDep) -> Run:
    return Run.of(await _visible_run(run_id, runner, registry))


@router.post("/runs/{run_id}/cancel", response_model=Run)
async def cancel_run(run_id: str, runner: RunnerDep, registry: RegistryDep) -> Run:
    await _visible_run(run_id, runner, registry)
    return Run.of(await runner.cancel(run_id))


@router.get("/runs/{run_id}/outputs", response_model=RunOutputs)
async def run_outputs(run_id: str, runner: RunnerDep, registry: RegistryDep) -> RunOutputs:
    """metrics.json, artifacts the run wrote to /outputs, and logs.txt (its stdout and stderr)."""
    await _visible_run(run_id, runner, registry)
    out = await runner.outputs(run_id)
    return RunOutputs(run_id=out.run_id, files=[OutputFile(name=f.name, size=f.size, sha256=f.sha256)
                                                for f in out.files],
                      metrics=_json_object(out.metrics_json) if out.metrics_json else None)


@router.get("/runs/{run_id}/outputs/{name:path}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}})
async def run_output_file(run_id: str, name: str, runner: RunnerDep, registry: RegistryDep,
                          store: StoreDep) -> StreamingResponse:
    await _visible_run(run_id, runner, registry)
    out = await runner.outputs(run_id)
    match = next((f for f in out.files if f.name == name), None)
    if match is None:
        raise NotFound(f"run {run_id} has no output {name!r}")
    try:
        chunks = await asyncio.to_thread(store.open_chunks, match.object_key)
    except ObjectNotFound as exc:
        raise NotFound(f"output {name!r} of run {run_id} is gone from the store") from exc
    return StreamingResponse(chunks, media_type="application/octet-stream", headers={
        "Content-Length": str(match.size), "Content-Disposition": f'attachment; filename="{name.split("/")[-1]}"',
        "X-Content-Type-Options": "nosniff", "ETag": f'"{match.sha256}"'})


@router.get("/runs/{run_id}/logs", responses={200: {"content": {"text/event-stream": {}}}})
async def run_logs(run_id: str, runner: RunnerDep, registry: RegistryDep, link: NatsDep) -> Response:
    """The run's stdout and stderr as Server-Sent Events, from the first line; ends with an ``end`` event."""
    await _visible_run(run_id, runner, registry)

    async def finished() -> str | None:
        status = Run.of(await runner.get(run_id)).status
        return status if status in TERMINAL_RUN else None

    return StreamingResponse(log_events(link.client.jetstream(), f"logs.run.{run_id}", finished),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
