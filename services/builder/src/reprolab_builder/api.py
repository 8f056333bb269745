"""Request/reply endpoints of the builder (``builder.*``): request a build, read builds, SBOMs, locks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.micro.service import Service
from reprolab.v1 import builder_pb2, registry_pb2
from reprolab_common.db import transact
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.nats import InFlight, call, endpoint
from reprolab_common.subjects import Builder, Registry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from . import indexes, publish, service
from .backends.base import BuildError
from .config import BuilderSettings
from .lock import lock_digest, resolve
from .logstream import Scrubber
from .models import Build, BuildTarget, Status
from .session_layer import build_layer, layer_digest

log = logging.getLogger(__name__)

STATUS = {
    Status.QUEUED: builder_pb2.BUILD_STATUS_QUEUED, Status.RUNNING: builder_pb2.BUILD_STATUS_RUNNING,
    Status.SUCCEEDED: builder_pb2.BUILD_STATUS_SUCCEEDED, Status.FAILED: builder_pb2.BUILD_STATUS_FAILED,
}


def _content(lock: dict[str, Any]) -> dict[str, Any]:
    """What a lock puts in an image, leaving out where the build starts from."""
    return {k: v for k, v in lock.items() if k not in ("parent", "image")}


def build_proto(build: Build, *, joined: bool = False, targets: Sequence[BuildTarget] = ()) -> builder_pb2.Build:
    """The build with every version it serves (``serves``): the build's own first, then the joined ones."""
    msg = builder_pb2.Build(
        id=build.id, workspace=build.workspace, environment=build.environment, version=build.version,
        lock_digest=build.lock_digest or "", status=STATUS[Status(build.status)], image_ref=build.image_ref,
        image_digest=build.image_digest, error=build.error, backend=build.backend, requested_by=build.requested_by,
        joined=joined, workspaces=sorted({build.workspace, *(t.workspace for t in targets)}),
    )
    msg.serves.add(workspace=build.workspace, environment=build.environment, version=build.version,
                   image_ref=build.image_ref, requested_by=build.requested_by)
    for t in targets:
        if (t.workspace, t.environment, t.version) != (build.workspace, build.environment, build.version):
            msg.serves.add(workspace=t.workspace, environment=t.environment, version=t.version,
                           image_ref=t.image_ref, requested_by=t.requested_by)
    msg.created_at.FromDatetime(build.created_at)
    if build.finished_at:
        msg.finished_at.FromDatetime(build.finished_at)
    return msg


@dataclass
class Api:
    settings: BuilderSettings
    sessions: sessionmaker
    nc: Any
    enqueue: Callable[[Build], Awaitable[None]]
    wake_outbox: Callable[[], None]
    # Finished builds that a new version joins get their tags and registry records through this.
    publish_targets: Callable[[str], Awaitable[None]]
    store: Any = None  # the object store OCI archives are exported to
    backend: Any = None  # builds session layers (session_layer.py)
    # session layers being built or built by this process, by their inputs (see session_layer)
    _layer_tasks: dict[str, asyncio.Task] = field(default_factory=dict)

    async def request(self, r: builder_pb2.RequestBuildRequest) -> builder_pb2.Build:
        try:
            spec = json.loads(r.spec_json)
        except ValueError as exc:
            raise Invalid(f"spec_json is not JSON: {exc}", errors=[("spec_json", str(exc))]) from exc
        parent_lock = None
        if r.parent_lock_digest:
            parent = await transact(self.sessions, lambda s: service.get_by_lock(
                session=s, lock_digest=r.parent_lock_digest))
            if parent is not None and parent.status == Status.SUCCEEDED:
                parent_lock = json.loads(parent.lock_json)
                parent_lock["image"] = f"{parent.image_ref.rsplit(':', 1)[0]}@{parent.image_digest}"
        common = dict(actor=r.actor, workspace=r.workspace, environment=r.environment, version=r.version,
                      backend=self.settings.backend, registry=self.settings.registry)
        workspace_indexes = await self.package_indexes(r.workspace)
        try:
            lock = await asyncio.to_thread(resolve, spec, settings=self.settings, parent_lock=parent_lock,
                                           log=lambda line: log.info("resolve %s/%s: %s", r.workspace,
                                                                     r.environment, line),
                                           indexes=workspace_indexes)
        except BuildError as exc:
            # no host path and no index secret in what the requester reads
            error = indexes.scrub(Scrubber.for_host(self.settings)(str(exc)), workspace_indexes)
            build = await transact(self.sessions, lambda s: service.record_failed_resolution(
                session=s, error=error, **common))
            self.wake_outbox()
            return build_proto(build)
        if parent_lock is not None and _content(lock) == _content(parent_lock):
            # Nothing changed relative to the parent (a rollback, a fresh fork): same lock, same image.
            lock = {k: v for k, v in parent_lock.items() if k != "image"}
        digest = lock_digest(lock)
        lock_json = json.dumps(lock, sort_keys=True, separators=(",", ":"))

        def _request(s: Any) -> service.Requested:
            return service.request_build(session=s, lock_digest=digest, lock_json=lock_json,
                                         parent_lock_digest=r.parent_lock_digest if parent_lock else "", **common)

        try:
            requested = await transact(self.sessions, _request)
        except IntegrityError:  # an identical request created it a moment ago: join that one
            requested = await transact(self.sessions, _request)
        self.wake_outbox()
        if requested.enqueue:
            await self.enqueue(requested.build)
        elif requested.build.status == Status.SUCCEEDED:
            await self.publish_targets(requested.build.id)
        return build_proto(requested.build, joined=requested.joined,
                           targets=requested.targets)

    async def get(self, r: builder_pb2.GetBuildRequest) -> builder_pb2.Build:
        def _read(s: Any) -> builder_pb2.Build:
            build = service.get_build(session=s, build_id=r.build_id)
            return build_proto(build, targets=service.targets(session=s, build_id=build.id))

        return await transact(self.sessions, _read)

    async def list(self, r: builder_pb2.ListBuildsRequest) -> builder_pb2.BuildList:
        """Build history of an environment (the gateway checked the caller may see it)."""
        if not r.workspace or not r.environment:
            raise Invalid("workspace and environment are required",
                          errors=[("workspace", "required"), ("environment", "required")])
        limit = min(max(r.limit or 100, 1), 500)

        def _read(s: Any) -> builder_pb2.BuildList:
            reply = builder_pb2.BuildList()
            rows = service.history(session=s, workspace=r.workspace, environment=r.environment, version=r.version,
                                   limit=limit)
            served = service.targets_of(session=s, build_ids={build.id for build, _ in rows})
            for build, version in rows:
                item = build_proto(build, joined=build.workspace != r.workspace or build.environment != r.environment
                                   or build.version != version, targets=served[build.id])
                # seen from this environment: the version it served here
                item.workspace, item.environment, item.version = r.workspace, r.environment, version
                reply.items.append(item)
            return reply

        return await transact(self.sessions, _read)

    async def sbom(self, r: builder_pb2.GetSbomRequest) -> builder_pb2.Sbom:
        build = await transact(self.sessions, lambda s: service.get_build(session=s, build_id=r.build_id))
        if build.status != Status.SUCCEEDED or not build.sbom_json:
            raise NotFound(f"build {r.build_id} has no SBOM (status {build.status}); only succeeded builds have one")
        return builder_pb2.Sbom(build_id=build.id, cyclonedx_json=build.sbom_json)

    async def lock(self, r: builder_pb2.GetLockRequest) -> builder_pb2.Lock:
        build = await transact(self.sessions, lambda s: service.get_by_lock(
            session=s, lock_digest=r.lock_digest))
        if build is None:
            raise NotFound(f"no lock {r.lock_digest}")
        return builder_pb2.Lock(lock_digest=build.lock_digest, lock_json=build.lock_json)


    # --- external registries (the gateway checked the caller manages the workspace) -----------

    async def credential_put(self, r: builder_pb2.PutRegistryCredentialRequest) -> builder_pb2.RegistryCredential:
        ring = await asyncio.to_thread(publish.keyring, self.settings)
        return await transact(self.sessions, lambda s: credential_proto(publish.put_credential(
            s, ring, workspace=r.workspace, registry=r.registry, username=r.username, password=r.password,
            actor=r.actor.username)))

    async def credential_list(self, r: builder_pb2.ListRegistryCredentialsRequest
                              ) -> builder_pb2.RegistryCredentialList:
        return await transact(self.sessions, lambda s: builder_pb2.RegistryCredentialList(
            items=[credential_proto(c) for c in publish.list_credentials(s, workspace=r.workspace)]))

    async def credential_delete(self, r: builder_pb2.DeleteRegistryCredentialRequest
                                ) -> builder_pb2.RegistryCredentialList:
        await transact(self.sessions, lambda s: publish.delete_credential(s, workspace=r.workspace,
                                                                          registry=r.registry))
        return await self.credential_list(builder_pb2.ListRegistryCredentialsRequest(workspace=r.workspace))

    async def publish(self, r: builder_pb2.PublishRequest) -> builder_pb2.PublishResult:
        host, _dest = publish.check_destination(r.destination)

        def _credential(s: Any) -> tuple[str, str] | None:
            rows = {c.host: c for c in publish.list_credentials(s, workspace=r.workspace)}
            row = rows.get(host)
            return (row.username, publish.decrypt(publish.keyring(self.settings), row)) if row else None

        credential = await transact(self.sessions, _credential)
        digest = await asyncio.to_thread(
            publish.publish, self.settings, source_ref=r.source_ref, source_digest=r.source_digest,
            destination=r.destination, credential=credential,
            log=lambda line: log.info("publish %s: %s", r.workspace, line))
        return builder_pb2.PublishResult(destination=publish.check_destination(r.destination)[1], digest=digest)


    # --- package indexes (the gateway checked the caller manages the workspace) -----------------

    async def package_indexes(self, workspace: str) -> list[indexes.Index]:
        """The workspace's package indexes with their secrets, for locking and fetching on this host."""
        ring = await asyncio.to_thread(publish.keyring, self.settings)
        return await transact(self.sessions, lambda s: indexes.load(s, ring, workspace=workspace))

    async def index_put(self, r: builder_pb2.PutPackageIndexRequest) -> builder_pb2.PackageIndex:
        ring = await asyncio.to_thread(publish.keyring, self.settings)
        return await transact(self.sessions, lambda s: package_index_proto(indexes.put_index(
            s, ring, workspace=r.workspace, name=r.name, url=r.url, kind=r.kind or "extra", priority=r.priority,
            username=r.username, password=r.password, token=r.token, actor=r.actor.username)))

    async def index_list(self, r: builder_pb2.ListPackageIndexesRequest) -> builder_pb2.PackageIndexList:
        return await transact(self.sessions, lambda s: builder_pb2.PackageIndexList(
            items=[package_index_proto(i) for i in indexes.list_indexes(s, workspace=r.workspace)]))

    async def index_delete(self, r: builder_pb2.DeletePackageIndexRequest) -> builder_pb2.PackageIndexList:
        await transact(self.sessions, lambda s: indexes.delete_index(s, workspace=r.workspace, name=r.name))
        return await self.index_list(builder_pb2.ListPackageIndexesRequest(workspace=r.workspace))

    async def export(self, r: builder_pb2.ExportImageRequest) -> builder_pb2.ExportedImage:
        key, size = await asyncio.to_thread(publish.export_archive, self.settings, self.store,
                                            workspace=r.workspace, source_ref=r.source_ref,
                                            source_digest=r.source_digest)
        return builder_pb2.ExportedImage(object_key=key, size=size, digest=r.source_digest)


    async def session_layer(self, r: builder_pb2.SessionLayerRequest) -> builder_pb2.SessionLayer:
        """The JupyterLab layer FROM a built version's image (runner only; see session_layer.py).

        Answers at once: ``building`` while the build runs in this process (the runner asks again),
        then the pushed image. A failed build is reported once and forgotten, so a retry builds again."""
        key = layer_digest(r.image, r.requirements, dict(r.files), False) + r.lock_digest
        task = self._layer_tasks.get(key)
        if task is None:
            build = await transact(self.sessions, lambda s: service.get_by_lock(session=s,
                                                                                lock_digest=r.lock_digest))
            if build is None or not build.lock_json:
                raise NotFound(f"no lock {r.lock_digest!r} was built here")
            lock = json.loads(build.lock_json)
            scrub = Scrubber.for_host(self.settings)
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def _build() -> builder_pb2.SessionLayer:
                try:
                    result, _digest = await asyncio.to_thread(
                        build_layer, lock=lock, image=r.image, requirements=r.requirements, files=dict(r.files),
                        settings=self.settings, backend=self.backend,
                        log=lambda line: log.info("session layer: %s", scrub(line)))
                except BuildError as exc:
                    raise Invalid(f"the session layer did not build: {scrub(str(exc))}") from exc
                return builder_pb2.SessionLayer(image_ref=result.image_ref, image_digest=result.digest,
                                                seconds=loop.time() - started)

            task = self._layer_tasks[key] = asyncio.create_task(_build())
        if not task.done():
            return builder_pb2.SessionLayer(building=True)
        if task.exception() is not None:
            self._layer_tasks.pop(key, None)
            raise task.exception()
        return task.result()


def credential_proto(row: Any) -> builder_pb2.RegistryCredential:
    msg = builder_pb2.RegistryCredential(workspace=row.workspace, registry=row.host, username=row.username,
                                         created_by=row.created_by)
    msg.created_at.FromDatetime(row.created_at)
    return msg


def package_index_proto(row: Any) -> builder_pb2.PackageIndex:
    """An index's metadata: never its secret, only whether it has one."""
    msg = builder_pb2.PackageIndex(workspace=row.workspace, name=row.name, url=row.url, kind=row.kind,
                                   priority=row.priority, username=row.username, has_secret=bool(row.secret),
                                   created_by=row.created_by)
    msg.created_at.FromDatetime(row.created_at)
    return msg


async def add_endpoints(micro: Service, api: Api, in_flight: InFlight) -> None:
    for subject, req_type, fn in (
        (Builder.REQUEST, builder_pb2.RequestBuildRequest, api.request),
        (Builder.GET, builder_pb2.GetBuildRequest, api.get),
        (Builder.LIST, builder_pb2.ListBuildsRequest, api.list),
        (Builder.SBOM, builder_pb2.GetSbomRequest, api.sbom),
        (Builder.LOCK, builder_pb2.GetLockRequest, api.lock),
        (Builder.REGISTRY_CREDENTIAL_PUT, builder_pb2.PutRegistryCredentialRequest, api.credential_put),
        (Builder.REGISTRY_CREDENTIAL_LIST, builder_pb2.ListRegistryCredentialsRequest, api.credential_list),
        (Builder.REGISTRY_CREDENTIAL_DELETE, builder_pb2.DeleteRegistryCredentialRequest, api.credential_delete),
        (Builder.PUBLISH, builder_pb2.PublishRequest, api.publish),
        (Builder.EXPORT, builder_pb2.ExportImageRequest, api.export),
        (Builder.PACKAGE_INDEX_PUT, builder_pb2.PutPackageIndexRequest, api.index_put),
        (Builder.PACKAGE_INDEX_LIST, builder_pb2.ListPackageIndexesRequest, api.index_list),
        (Builder.PACKAGE_INDEX_DELETE, builder_pb2.DeletePackageIndexRequest, api.index_delete),
        (Builder.SESSION_LAYER, builder_pb2.SessionLayerRequest, api.session_layer),
    ):
        await micro.add_endpoint(name=subject.value.replace(".", "-"), subject=subject.value,
                                 handler=in_flight.wrap(endpoint(req_type, fn)))


async def record_on_registry(nc: Any, *, workspace: str, environment: str, version: int, lock_digest: str,
                             image_ref: str, image_digest: str) -> None:
    await call(nc, Registry.VERSION_RECORD_IMAGE, registry_pb2.RecordImageRequest(
        workspace=workspace, environment=environment, number=version, lock_digest=lock_digest,
        image_ref=image_ref, image_digest=image_digest), registry_pb2.Version)
