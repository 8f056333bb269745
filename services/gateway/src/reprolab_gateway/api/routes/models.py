"""Deployed models (issue 15): deploy a run's output as an Open Inference Protocol web service, list its
versions, roll back, stop it, and manage its API keys.

The runner owns the models (``runner.model.*``) and checks what a request may ask for (the run is in the
workspace, succeeded, and has that output); who may ask is decided here. Any member sees a workspace's
models; deploying needs a run the caller can see (a student: their own); rolling back, stopping and the
keys belong to the workspace's instructors and admins and to whoever deployed a version of the model.
Serving itself is the proxy's (``/serve/{ws}/{name}/v2/...``, ``reprolab_gateway.serving``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from reprolab.v1 import registry_pb2, serving_pb2
from reprolab_common.errors import Forbidden, Invalid, NotFound

from ... import quotas
from ...core.bodylimit import BodyLimitedRoute
from ...schemas import (
    CreatedModelKey,
    Model,
    ModelDeploy,
    ModelKey,
    ModelKeyCreate,
    ModelKeyList,
    ModelList,
    ModelMonitoring,
    ModelRollback,
    ModelVersion,
)
from ..deps import RegistryDep, RunnerDep
from ..params import ModelPath, VersionPath, WsPath
from .runs import MANAGERS, _visible_run

router = APIRouter(tags=["models"], route_class=BodyLimitedRoute)

_NOT_MEMBER = {404: {"description": "No such workspace (or you are not a member), model or version."}}
_MANAGE = {403: {"description": "Only the workspace's instructors and admins, or whoever deployed a version of the "
                                "model, may do this."},
           **_NOT_MEMBER}


def model_url(ws: str, name: str) -> str:
    return f"/serve/{ws}/{name}/v2/models/{name}"


def _model(ws: str, name: str, versions: list[serving_pb2.ModelVersion]) -> Model:
    active = next((v.version for v in versions if v.active), None)
    return Model(workspace=ws, name=name, active_version=active, url=model_url(ws, name),
                 versions=[ModelVersion.of(v) for v in versions])


def default_name(artifact: str) -> str:
    """A model name from the artifact's file name (``outputs/Iris_Model.joblib`` → ``iris-model``); for a
    ``score.py`` its directory's name."""
    p = PurePosixPath(artifact)
    stem = p.parent.name if p.name == "score.py" and p.parent.name else p.stem
    name = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
    return name or "model"


async def _versions(ws: str, name: str, runner: RunnerDep) -> list[serving_pb2.ModelVersion]:
    found = list((await runner.list_models(ws, name)).items)
    if not found:
        raise NotFound(f"no model {name!r} in workspace {ws!r}")
    return found


def _may_manage(workspace: registry_pb2.Workspace, versions: list[serving_pb2.ModelVersion],
                username: str) -> bool:
    return workspace.caller_role in MANAGERS or any(v.created_by == username for v in versions)


async def _managed(ws: str, name: str, registry: RegistryDep, runner: RunnerDep, doing: str
                   ) -> list[serving_pb2.ModelVersion]:
    """The model's versions when the caller may manage it: 404 for a non-member or an unknown model (nothing
    revealed), 403 for a member who may only use it."""
    workspace = await registry.get_workspace(ws)
    versions = await _versions(ws, name, runner)
    if not _may_manage(workspace, versions, runner.actor.username):
        raise Forbidden(f"only the workspace's instructors and admins, or whoever deployed {name!r}, can {doing}")
    return versions


def _forget(request: Request, ws: str, name: str) -> None:
    """The serving proxy caches where a model is served; a change made here must not wait for the cache."""
    serve = getattr(request.app.state, "serve", None)
    if serve is not None:
        serve.forget(ws, name)


@router.post("/workspaces/{ws}/models", status_code=202, response_model=ModelVersion,
             responses={**_MANAGE, 422: {"description": "The run has not succeeded or has no such output, the output "
                                                        "is not a model this platform can serve, or the run's image "
                                                        "is not pinned by digest."},
                        429: {"description": "Beyond the workspace's concurrent quota of runs, sessions and model "
                                             "servers: nothing was deployed; Retry-After says when to try again."}})
async def deploy_model(ws: WsPath, body: ModelDeploy, registry: RegistryDep, runner: RunnerDep) -> ModelVersion:
    """Serve a run's output as a web service in the run's own image, so it predicts with exactly the packages it
    was trained with. The answer is the new version in ``deploying``: poll
    ``GET .../models/{name}/versions/{n}`` until ``serving`` (or ``failed``, with the reason). The first version
    of a name is served at the stable URL at once; a later one after ``POST .../rollback`` names it."""
    workspace = await registry.get_workspace(ws)
    if ".." in PurePosixPath(body.artifact).parts:
        raise Invalid("the artifact's path must not contain '..'", errors=[("body.artifact", body.artifact)])
    run = await _visible_run(body.run_id, runner, registry)
    if run.workspace != ws:
        raise NotFound(f"no run {body.run_id!r}")
    name = body.name or default_name(body.artifact)
    existing = list((await runner.list_models(ws, name)).items)
    if existing and not _may_manage(workspace, existing, runner.actor.username):
        raise Forbidden(f"model {name!r} is someone else's: only the workspace's instructors and admins, or whoever "
                        "deployed it, can add a version; choose another name")
    return ModelVersion.of(await quotas.retry_later(runner.deploy_model(serving_pb2.DeployModelRequest(
        workspace=ws, name=name, run_id=run.id, artifact=body.artifact, sample_rate=body.sample_rate,
        webhook_url=body.webhook_url))))  # 429 beyond the workspace's concurrent quota


@router.get("/workspaces/{ws}/models", response_model=ModelList, responses=_NOT_MEMBER)
async def list_models(ws: WsPath, registry: RegistryDep, runner: RunnerDep) -> ModelList:
    """Every model of the workspace with its versions."""
    await registry.get_workspace(ws)  # members only
    by_name: dict[str, list[serving_pb2.ModelVersion]] = {}
    for v in (await runner.list_models(ws)).items:
        by_name.setdefault(v.name, []).append(v)
    return ModelList(items=[_model(ws, name, versions) for name, versions in sorted(by_name.items())])


@router.get("/workspaces/{ws}/models/{name}", response_model=Model, responses=_NOT_MEMBER)
async def get_model(ws: WsPath, name: ModelPath, registry: RegistryDep, runner: RunnerDep) -> Model:
    """The model, its stable URL, the version it serves and every version with its provenance."""
    await registry.get_workspace(ws)
    return _model(ws, name, await _versions(ws, name, runner))


@router.get("/workspaces/{ws}/models/{name}/versions/{n}", response_model=ModelVersion, responses=_NOT_MEMBER)
async def get_model_version(ws: WsPath, name: ModelPath, n: VersionPath, registry: RegistryDep,
                            runner: RunnerDep) -> ModelVersion:
    await registry.get_workspace(ws)
    return ModelVersion.of(await runner.get_model(ws, name, n))


@router.post("/workspaces/{ws}/models/{name}/rollback", response_model=ModelVersion,
             responses={**_MANAGE, 422: {"description": "The version is not serving (still deploying, failed or "
                                                        "stopped)."}})
async def rollback_model(ws: WsPath, name: ModelPath, body: ModelRollback, request: Request, registry: RegistryDep,
                         runner: RunnerDep) -> ModelVersion:
    """Serve ``version`` at the model's stable URL (an older one: a rollback; a newer one: a roll forward).
    Takes effect for the next request."""
    await _managed(ws, name, registry, runner, "change the version it serves")
    m = await runner.activate_model(ws, name, body.version)
    _forget(request, ws, name)
    return ModelVersion.of(m)


@router.delete("/workspaces/{ws}/models/{name}", response_model=Model, responses=_MANAGE)
async def delete_model(ws: WsPath, name: ModelPath, request: Request, registry: RegistryDep,
                       runner: RunnerDep) -> Model:
    """Stop every version of the model: its servers are removed and its stable URL answers 404. The versions stay
    listed (``stopped``) with their provenance; deploying the name again makes a new version."""
    versions = await _managed(ws, name, registry, runner, "stop it")
    _forget(request, ws, name)
    for v in versions:
        if v.state in ("serving", "deploying"):
            await runner.stop_model(ws, name, v.version)
    _forget(request, ws, name)
    return _model(ws, name, await _versions(ws, name, runner))


Window = Annotated[Literal["hour", "day"], Query(description="Length of the report's windows (UTC).")]


@router.get("/workspaces/{ws}/models/{name}/monitoring", response_model=ModelMonitoring, responses=_NOT_MEMBER)
async def get_model_monitoring(ws: WsPath, name: ModelPath, registry: RegistryDep, runner: RunnerDep,
                               window: Window = "hour") -> ModelMonitoring:
    """What the model saw and said, per window, against its training data: feature statistics, input drift
    (Evidently's default tests), class shares, accuracy on late labels, and the alerts raised. The report is the
    last monitoring pass's (they run every few minutes; ``updated`` says when); ``POST`` runs one now."""
    await registry.get_workspace(ws)
    await _versions(ws, name, runner)
    return ModelMonitoring.of(await runner.monitor_model(ws, name, window))


@router.post("/workspaces/{ws}/models/{name}/monitoring", response_model=ModelMonitoring, responses=_MANAGE)
async def run_model_monitoring(ws: WsPath, name: ModelPath, registry: RegistryDep, runner: RunnerDep,
                               window: Window = "hour") -> ModelMonitoring:
    """Run a monitoring pass now (traffic collected in the last few seconds may not be in it yet) and answer its
    report; new alerts go to the activity log and the model's webhook."""
    await _managed(ws, name, registry, runner, "run its monitoring")
    return ModelMonitoring.of(await runner.monitor_model(ws, name, window, run_now=True))


@router.post("/workspaces/{ws}/models/{name}/keys", status_code=201, response_model=CreatedModelKey,
             responses=_MANAGE)
async def create_model_key(ws: WsPath, name: ModelPath, body: ModelKeyCreate, registry: RegistryDep,
                           runner: RunnerDep) -> CreatedModelKey:
    """A new API key of this model, for programs that call it without a Reprolab account
    (``Authorization: Bearer <secret>``). The secret is in this answer only: it is stored hashed."""
    await _managed(ws, name, registry, runner, "create its API keys")
    created = await runner.create_model_key(ws, name, body.label, body.rate_per_minute)
    return CreatedModelKey(**ModelKey.of(created.key).model_dump(), secret=created.secret)


@router.get("/workspaces/{ws}/models/{name}/keys", response_model=ModelKeyList, responses=_MANAGE)
async def list_model_keys(ws: WsPath, name: ModelPath, registry: RegistryDep, runner: RunnerDep) -> ModelKeyList:
    """The model's keys, revoked ones included; each shows its prefix only."""
    await _managed(ws, name, registry, runner, "see its API keys")
    return ModelKeyList(items=[ModelKey.of(k) for k in (await runner.list_model_keys(ws, name)).items])


@router.delete("/workspaces/{ws}/models/{name}/keys/{key_id}", response_model=ModelKey, responses=_MANAGE)
async def revoke_model_key(ws: WsPath, name: ModelPath, key_id: str, request: Request, registry: RegistryDep,
                           runner: RunnerDep) -> ModelKey:
    """Revoke the key: requests with it are refused from now on (401)."""
    await _managed(ws, name, registry, runner, "revoke its API keys")
    key = await runner.revoke_model_key(ws, name, key_id)
    serve = getattr(request.app.state, "serve", None)
    if serve is not None:
        serve.forget_keys()
    return ModelKey.of(key)
