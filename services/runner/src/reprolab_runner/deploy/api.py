"""The ``runner.model.*`` endpoints. Only the gateway calls them (buspermissions), with the caller as the
actor; membership and role are the gateway's check, the runner checks what a request may ask for (the
run is in the workspace, finished, and has that output)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from nats.micro.service import Service
from reprolab.v1 import serving_pb2
from reprolab_common.db import transact
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.nats import InFlight, endpoint
from reprolab_common.subjects import Runner
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from .. import quotas
from ..models import Output, Run
from ..serving.monitor import Window
from . import service
from .deployer import Deployer
from .models import DeployedModel, ModelKey
from .monitoring import Monitor, webhook_host


def version_proto(m: DeployedModel) -> serving_pb2.ModelVersion:
    """What a caller may see: no endpoint, no handle, no host path."""
    msg = serving_pb2.ModelVersion(
        workspace=m.workspace, name=m.name, version=m.version, run_id=m.run_id, image=m.image,
        artifact=m.artifact, kind=m.kind, state=m.state, active=m.active, target=m.target, error=m.error,
        created_by=m.created_by, webhook_url=webhook_host(m.webhook_url))  # the path may hold the hook's secret
    msg.created.FromDatetime(m.created_at)
    return msg


def key_proto(k: ModelKey) -> serving_pb2.ModelKey:
    msg = serving_pb2.ModelKey(id=k.id, workspace=k.workspace, name=k.name, prefix=k.prefix, label=k.label,
                               created_by=k.created_by, revoked=k.revoked_at is not None,
                               rate_per_minute=k.rate_per_minute)
    msg.created.FromDatetime(k.created_at)
    return msg


@dataclass
class ModelApi:
    settings: object
    sessions: sessionmaker
    deployer: Deployer
    wake_outbox: object
    monitoring: Monitor

    async def deploy(self, r: serving_pb2.DeployModelRequest) -> serving_pb2.ModelVersion:
        def _create(db):  # noqa: ANN001, ANN202
            run = db.get(Run, r.run_id)
            if run is None or run.workspace != r.workspace:
                raise NotFound(f"no run {r.run_id!r} in workspace {r.workspace!r}")
            if run.status != "succeeded":
                raise Invalid(f"run {r.run_id} is {run.status}; deploy a run that succeeded",
                              errors=[("run_id", run.status)])
            out = db.scalar(select(Output).where(Output.run_id == run.id, Output.name == r.artifact))
            if out is None:
                raise Invalid(f"run {r.run_id} has no output {r.artifact!r}", errors=[("artifact", r.artifact)])
            # a model server counts against the workspace's concurrent quota (429 beyond it, nothing made)
            quotas.admit(db, workspace=r.workspace, user_id=r.actor.user_id, what="model server", per_member=False)
            m = service.create_version(db, actor=r.actor, workspace=r.workspace, name=r.name, run_id=run.id,
                                       image=run.image, artifact=r.artifact, target=self.deployer.target.name,
                                       sample_rate=r.sample_rate, webhook_url=r.webhook_url)
            return m, out.object_key, out.sha256

        m, key, sha = await transact(self.sessions, _create)
        self.deployer.begin(m.id, key, sha)
        return version_proto(m)

    async def list(self, r: serving_pb2.ListModelsRequest) -> serving_pb2.ModelList:
        rows = await transact(self.sessions, lambda db: service.versions(db, r.workspace, r.name))
        return serving_pb2.ModelList(items=[version_proto(m) for m in rows])

    async def get(self, r: serving_pb2.GetModelRequest) -> serving_pb2.ModelVersion:
        return version_proto(await transact(self.sessions, lambda db: service.get(db, r.workspace, r.name, r.version)))

    async def activate(self, r: serving_pb2.ActivateModelRequest) -> serving_pb2.ModelVersion:
        m = await transact(self.sessions, lambda db: service.activate(
            db, actor=r.actor, workspace=r.workspace, name=r.name, version=r.version))
        self.wake_outbox()
        return version_proto(m)

    async def stop(self, r: serving_pb2.StopModelRequest) -> serving_pb2.ModelVersion:
        m = await transact(self.sessions, lambda db: service.get(db, r.workspace, r.name, r.version))
        await self.deployer.stop(m)
        m = await transact(self.sessions, lambda db: service.stopped(db, actor=r.actor, model_id=m.id))
        self.wake_outbox()
        return version_proto(m)

    async def route(self, r: serving_pb2.RouteModelRequest) -> serving_pb2.ModelRoute:
        """The gateway's proxy: the active version's server, or (``version``) that version's; a serving one only."""
        m = await transact(self.sessions, lambda db: service.get(db, r.workspace, r.name, r.version))
        route = serving_pb2.ModelRoute(model=version_proto(m), sample_rate=m.sample_rate)
        if m.state == "serving":
            route.upstream_url = m.endpoint
        return route

    async def key_create(self, r: serving_pb2.CreateModelKeyRequest) -> serving_pb2.CreatedModelKey:
        key, secret = await transact(self.sessions, lambda db: service.create_key(
            db, actor=r.actor, workspace=r.workspace, name=r.name, label=r.label, rate_per_minute=r.rate_per_minute))
        return serving_pb2.CreatedModelKey(key=key_proto(key), secret=secret)

    async def key_list(self, r: serving_pb2.ListModelKeysRequest) -> serving_pb2.ModelKeyList:
        rows = await transact(self.sessions, lambda db: service.keys(db, r.workspace, r.name))
        return serving_pb2.ModelKeyList(items=[key_proto(k) for k in rows])

    async def key_revoke(self, r: serving_pb2.RevokeModelKeyRequest) -> serving_pb2.ModelKey:
        return key_proto(await transact(self.sessions, lambda db: service.revoke_key(
            db, workspace=r.workspace, name=r.name, key_id=r.key_id)))

    async def key_check(self, r: serving_pb2.CheckModelKeyRequest) -> serving_pb2.CheckedModelKey:
        key = await transact(self.sessions, lambda db: service.check_key(db, r.secret))
        return serving_pb2.CheckedModelKey(valid=True, key=key_proto(key)) if key else serving_pb2.CheckedModelKey()

    async def monitor(self, r: serving_pb2.ModelMonitorRequest) -> serving_pb2.ModelMonitorReport:
        """The last pass's report of one window (a pass now when asked, or when there has been none) and
        every alert of the model."""
        try:
            window = Window(r.window or "hour")
        except ValueError:
            raise Invalid("window must be 'hour' or 'day'", errors=[("window", r.window)]) from None
        if not await transact(self.sessions, lambda db: service.versions(db, r.workspace, r.name)):
            raise NotFound(f"no model {r.name!r} in workspace {r.workspace!r}")
        stored = None if r.run_now else await asyncio.to_thread(self.monitoring.stored, r.workspace, r.name, window)
        if stored is None:
            stored = (await self.monitoring.run_once(r.workspace, r.name))[str(window)]
        rows = await transact(self.sessions, lambda db: service.alerts(db, r.workspace, r.name))
        report = serving_pb2.ModelMonitorReport(report_json=json.dumps(stored))
        for a in rows:
            alert = report.alerts.add(id=a.id, kind=a.kind, version=a.version, window_start=a.window_start,
                                      detail=a.detail)
            alert.created.FromDatetime(a.created_at)
        return report


async def add_model_endpoints(micro: Service, api: ModelApi, in_flight: InFlight) -> None:
    for subject, req_type, fn in (
        (Runner.MODEL_DEPLOY, serving_pb2.DeployModelRequest, api.deploy),
        (Runner.MODEL_LIST, serving_pb2.ListModelsRequest, api.list),
        (Runner.MODEL_GET, serving_pb2.GetModelRequest, api.get),
        (Runner.MODEL_ACTIVATE, serving_pb2.ActivateModelRequest, api.activate),
        (Runner.MODEL_STOP, serving_pb2.StopModelRequest, api.stop),
        (Runner.MODEL_ROUTE, serving_pb2.RouteModelRequest, api.route),
        (Runner.MODEL_KEY_CREATE, serving_pb2.CreateModelKeyRequest, api.key_create),
        (Runner.MODEL_KEY_LIST, serving_pb2.ListModelKeysRequest, api.key_list),
        (Runner.MODEL_KEY_REVOKE, serving_pb2.RevokeModelKeyRequest, api.key_revoke),
        (Runner.MODEL_KEY_CHECK, serving_pb2.CheckModelKeyRequest, api.key_check),
        (Runner.MODEL_MONITOR, serving_pb2.ModelMonitorRequest, api.monitor),
    ):
        await micro.add_endpoint(name=subject.value.replace(".", "-"), subject=subject.value,
                                 handler=in_flight.wrap(endpoint(req_type, fn)))
