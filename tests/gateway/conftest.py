"""Fixtures of the gateway tests: the app on a real nats-server, and a stand-in for the registry
and audit services that speaks their real NATS contracts.

The stand-in answers only what the gateway's own tests need (workspace roles, dataset registration,
environment creation, activity) and records every request, so tests can check what the gateway
sent. It runs as a real ``nats.micro`` service on a real nats-server; the end-to-end tests run
the real services instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import pytest
from fastapi import FastAPI
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.service import Service
from reprolab.v1 import audit_pb2, common_pb2, registry_pb2, runner_pb2
from reprolab_common.errors import NotFound, ProblemError
from reprolab_common.nats import endpoint
from reprolab_common.natsserver import NatsServer
from reprolab_common.objectstore import LocalObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_common.subjects import Audit, Registry, Runner
from reprolab_gateway.core.config import GatewaySettings
from reprolab_gateway.main import create_app


@dataclass
class FakeServices:
    objects_dir: Path
    # The caller's role the fake registry reports for every workspace except "missing".
    role: int = common_pb2.ROLE_ADMIN
    register_error: ProblemError | None = None
    calls: list[tuple[str, Message]] = field(default_factory=list)
    datasets: dict[str, registry_pb2.Dataset] = field(default_factory=dict)
    nc: Client | None = None
    service: Service | None = None

    def requests(self, subject: str) -> list[Message]:
        return [msg for subj, msg in self.calls if subj == subject]

    async def start(self, url: str) -> FakeServices:
        self.nc = await nats.connect(url)
        # Not named "registry": readiness must not mistake this fake for the real service.
        self.service = await add_service(self.nc, name="gateway-test-fake", version="0.0.1")
        routes = [
            (Registry.WORKSPACE_GET, registry_pb2.GetWorkspaceRequest, self._workspace_get),
            (Registry.DATASET_REGISTER, registry_pb2.RegisterDatasetRequest, self._dataset_register),
            (Registry.DATASET_GET, registry_pb2.GetDatasetRequest, self._dataset_get),
            (Registry.DATASET_LIST, registry_pb2.ListDatasetsRequest, self._dataset_list),
            (Runner.QUOTA_GET, runner_pb2.GetQuotaRequest, self._quota_get),
            (Registry.ENV_CREATE, registry_pb2.CreateEnvironmentRequest, self._env_create),
            (Registry.VERSION_CREATE, registry_pb2.CreateVersionRequest, self._version_create),
            (Audit.QUERY, audit_pb2.QueryActivityRequest, self._audit_query),
            (Audit.EXPORT, audit_pb2.ExportActivityRequest, self._audit_export),
            (Audit.VERIFY, audit_pb2.VerifyActivityRequest, self._audit_verify),
        ]
        for subject, request_type, handler in routes:
            await self.service.add_endpoint(
                name=subject.value.replace(".", "-"),
                subject=subject.value,
                handler=endpoint(request_type, self._recording(subject, handler)),
            )
        return self

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self.nc is not None:
            await self.nc.close()

    def _recording(self, subject: str, handler):
        async def _handle(request: Message) -> Message:
            self.calls.append((subject, request))
            return await handler(request)

        return _handle

    def _workspace(self, slug: str) -> registry_pb2.Workspace:
        if slug == "missing":
            raise NotFound(f"no workspace {slug!r}")
        return registry_pb2.Workspace(
            slug=slug, title=slug.upper(), caller_role=self.role, caller_is_member=True
        )

    async def _workspace_get(self, req: registry_pb2.GetWorkspaceRequest) -> registry_pb2.Workspace:
        return self._workspace(req.workspace)

    async def _dataset_register(self, req: registry_pb2.RegisterDatasetRequest) -> registry_pb2.Dataset:
        if self.register_error is not None:
            raise self.register_error
        ds = registry_pb2.Dataset(
            workspace=req.workspace,
            name=req.name,
            digest=req.digest,
            size=req.size,
            media_type=req.media_type,
            visibility=req.visibility,
            object_key=req.object_key,
            uploaded_by=req.actor.username,
        )
        ds.created_at.GetCurrentTime()
        self.datasets[req.digest] = ds
        return ds

    async def _dataset_get(self, req: registry_pb2.GetDatasetRequest) -> registry_pb2.Dataset:
        if req.digest not in self.datasets:
            raise NotFound(f"no dataset {req.digest}")
        return self.datasets[req.digest]

    async def _dataset_list(self, req: registry_pb2.ListDatasetsRequest) -> registry_pb2.DatasetList:
        items = [d for d in self.datasets.values() if d.workspace == req.workspace]
        return registry_pb2.DatasetList(items=items, total_bytes=sum(d.size for d in items))

    async def _quota_get(self, req: runner_pb2.GetQuotaRequest) -> runner_pb2.QuotaUsage:
        """The runner's answer for a workspace with no quota set (the upload's storage check asks it)."""
        return runner_pb2.QuotaUsage(quota=runner_pb2.WorkspaceQuota(workspace=req.workspace))

    async def _env_create(self, req: registry_pb2.CreateEnvironmentRequest) -> registry_pb2.Environment:
        version = registry_pb2.Version(
            workspace=req.workspace,
            environment=req.name,
            number=1,
            spec_json=req.spec_json,
            spec_digest="sha256:" + "0" * 64,
            created_by=req.actor.username,
        )
        return registry_pb2.Environment(
            kind="workspace",
            workspace=req.workspace,
            name=req.name,
            description=req.description,
            owner=req.actor.username,
            latest_version=1,
            latest=version,
        )

    async def _version_create(self, req: registry_pb2.CreateVersionRequest) -> registry_pb2.Version:
        version = registry_pb2.Version(
            workspace=req.workspace,
            environment=req.environment,
            number=2,
            note=req.note,
            created_by=req.actor.username,
        )
        if req.WhichOneof("source") == "spec_json":
            version.spec_json = req.spec_json
        else:
            version.rollback_to = req.rollback_to
            version.spec_json = "{}"
        return version

    async def _audit_query(self, req: audit_pb2.QueryActivityRequest) -> audit_pb2.ActivityList:
        entry = audit_pb2.ActivityEntry(
            workspace=req.workspace,
            seq=req.after_seq + 1,
            event_id="e1",
            type="workspace.created",
            subject=f"workspace/{req.workspace}",
            actor_id=req.actor.user_id,
            actor_name=req.actor.username,
            canonical_json=json.dumps({"type": "workspace.created"}),
            leaf_hash="11" * 32,
        )
        entry.time.GetCurrentTime()
        return audit_pb2.ActivityList(items=[entry], head_seq=req.after_seq + 1)

    async def _audit_export(self, req: audit_pb2.ExportActivityRequest) -> audit_pb2.ExportActivityReply:
        body = b'{"type":"header"}\n{"type":"entry"}\n'
        key = f"exports/{req.workspace}/bundle.jsonl"
        LocalObjectStore(self.objects_dir).put_bytes(key, body)
        return audit_pb2.ExportActivityReply(object_key=key, entries=1, size_bytes=len(body))

    async def _audit_verify(self, req: audit_pb2.VerifyActivityRequest) -> audit_pb2.VerifyActivityReply:
        lines = LocalObjectStore(self.objects_dir).read_bytes(req.object_key).splitlines()
        return audit_pb2.VerifyActivityReply(
            ok=True, entries=len(lines), checkpoints=0, workspace="cs1", keys_known=True
        )


async def start_named_services(url: str, names: list[str]) -> tuple[Client, list[Service]]:
    """Empty micro services answering PING under the given names (readiness tests)."""
    nc = await nats.connect(url)
    return nc, [await add_service(nc, name=name, version="0.0.1") for name in names]


@dataclass
class Gateway:
    """A running app (lifespan entered) and an HTTP client speaking to it in-process."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings

    @property
    def admin_token(self) -> str:
        assert self.settings.bootstrap_token_file is not None
        return self.settings.bootstrap_token_file.read_text()

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}


def gateway_settings(
    root: Path, nats_url: str, env: dict[str, str] | None = None, **overrides
) -> GatewaySettings:
    """Settings for a gateway under ``root``; ``env`` is a ``database_env`` (REPROLAB_* variables)."""
    common = {k.removeprefix("REPROLAB_").lower(): v for k, v in (env or {}).items()}
    common.setdefault("data_dir", str(root / "data"))
    options = {"bootstrap_token_file": root / "admin-token", "nats_connect_wait_seconds": 5} | overrides
    return GatewaySettings(common=CommonSettings(nats_url=nats_url, **common), **options)


@asynccontextmanager
async def running(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app=app, client=client, settings=settings)


@pytest.fixture
def make_settings(tmp_path: Path, nats_server: NatsServer) -> Callable[..., GatewaySettings]:
    def _make(nats_url: str | None = None, **overrides) -> GatewaySettings:
        return gateway_settings(tmp_path, nats_url or nats_server.url, **overrides)

    return _make


@pytest.fixture
def run_gateway() -> Callable[[GatewaySettings], AsyncIterator[Gateway]]:
    """``async with run_gateway(settings) as gw``: start (and stop) a gateway app."""
    return running


@pytest.fixture
async def gateway(make_settings) -> AsyncIterator[Gateway]:
    async with running(make_settings()) as gw:
        yield gw


@pytest.fixture
async def fake_services(gateway: Gateway, start_fake) -> FakeServices:
    return await start_fake(gateway)


@pytest.fixture
async def start_fake(nats_server: NatsServer) -> AsyncIterator[Callable[[Gateway], Awaitable[FakeServices]]]:
    """``await start_fake(gw)``: stand-in services sharing ``gw``'s object store (stopped after the test)."""
    started: list[FakeServices] = []

    async def _start(gw: Gateway) -> FakeServices:
        fake = await FakeServices(objects_dir=gw.settings.common.objects_dir()).start(nats_server.url)
        started.append(fake)
        return fake

    yield _start
    for fake in started:
        await fake.stop()


@pytest.fixture(scope="module")
def quiet_nats(tmp_path_factory: pytest.TempPathFactory) -> NatsServer:
    """A private nats-server where no service runs unless the test starts it (readiness tests)."""
    root = tmp_path_factory.mktemp("quiet-nats")
    server = NatsServer(root / "js", log_file=root / "nats.log").start()
    yield server
    server.stop()
