"""Publish built versions to external OCI registries with per-workspace credentials (write-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from reprolab_common.errors import Forbidden, ProblemError

from ...core.problems import pattern
from ...flows import UPLOADERS
from ...schemas import INT32_MAX, ts
from ..deps import BuilderDep, RegistryDep
from ..params import EnvPath, WsPath

router = APIRouter(prefix="/workspaces/{ws}", tags=["publish"])

# What the builder's check_registry / check_destination accept (reprolab_builder.publish), so the OpenAPI
# document says it and the gateway refuses the rest itself.
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]{1,5})?"
_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
REGISTRY_PATTERN = pattern(f"^{_HOST}$", "is not a registry host[:port] (e.g. 'ghcr.io', 'quay.io', '127.0.0.1:5001')")
DESTINATION_PATTERN = pattern(f"^{_HOST}/{_COMPONENT}(?:/{_COMPONENT})*" + r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
                              "is not a destination like 'ghcr.io/org/image:tag' (a registry host, a lower-case "
                              "path, an optional tag; no digest)")
RegistryHost = Annotated[str, Path(max_length=255, pattern=REGISTRY_PATTERN,
                                   description="The registry's host[:port], e.g. ghcr.io or 127.0.0.1:5001.")]


class RegistryCredentialIn(BaseModel):
    username: str = Field(min_length=1, max_length=255,
                          pattern=pattern(r"^[^\x00-\x1f]*[^\x00-\x1f\s][^\x00-\x1f]*$",
                                          "is required (printable characters, not only spaces)"),
                          description="Printable, not only spaces.")
    password: str = Field(min_length=1, max_length=4096, description="A password or access token; never shown again.")


class RegistryCredentialOut(BaseModel):
    registry: str
    username: str
    created_by: str
    created_at: datetime | None


class RegistryCredentialList(BaseModel):
    items: list[RegistryCredentialOut]


class PublishIn(BaseModel):
    destination: str = Field(pattern=DESTINATION_PATTERN, max_length=1000,
                             description="host[:port]/path[:tag], e.g. ghcr.io/org/course:week1")


class PublishOut(BaseModel):
    destination: str
    digest: str = Field(description="The pushed manifest's digest: the platform's own, preserved.")


def _out(c) -> RegistryCredentialOut:  # noqa: ANN001 - a builder_pb2.RegistryCredential
    return RegistryCredentialOut(registry=c.registry, username=c.username, created_by=c.created_by,
                                 created_at=ts(c.created_at))


async def _managers_only(registry: RegistryDep, ws: str) -> None:
    if (await registry.get_workspace(ws)).caller_role not in UPLOADERS:
        raise Forbidden(f"only an admin or instructor of {ws!r} can manage registry credentials and publish")


@router.put("/registry-credentials/{registry_host}", response_model=RegistryCredentialOut)
async def put_registry_credential(ws: WsPath, registry_host: RegistryHost, body: RegistryCredentialIn,
                                  registry: RegistryDep, builder: BuilderDep) -> RegistryCredentialOut:
    """Store (or replace) the workspace's login to an external registry; the password is encrypted by
    the builder and never shown again."""
    await _managers_only(registry, ws)
    return _out(await builder.put_registry_credential(ws, registry_host, body.username, body.password))


@router.get("/registry-credentials", response_model=RegistryCredentialList)
async def list_registry_credentials(ws: WsPath, registry: RegistryDep, builder: BuilderDep) -> RegistryCredentialList:
    await _managers_only(registry, ws)
    return RegistryCredentialList(items=[_out(c) for c in (await builder.list_registry_credentials(ws)).items])


@router.delete("/registry-credentials/{registry_host}", status_code=204, response_class=Response)
async def delete_registry_credential(ws: WsPath, registry_host: RegistryHost, registry: RegistryDep,
                                     builder: BuilderDep) -> Response:
    await _managers_only(registry, ws)
    await builder.delete_registry_credential(ws, registry_host)
    return Response(status_code=204)


@router.post("/environments/{env}/versions/{n}/publish", response_model=PublishOut,
             responses={409: {"description": "The version has no image yet: build it first."},
                        422: {"description": "The workspace has no credentials for the destination's registry, or "
                                             "the registry refused the push (its answer is named)."}})
async def publish_version(ws: WsPath, env: EnvPath, body: PublishIn, registry: RegistryDep, builder: BuilderDep,
                          n: int = Path(ge=1, le=INT32_MAX, description="Version number")) -> PublishOut:
    """Push version n's image to an external registry with the workspace's credentials for that host;
    the digest stays the platform's. Recorded in the activity log as version.exported (publish)."""
    await _managers_only(registry, ws)
    version = await registry.get_version(ws, env, n)
    if not version.image_digest:
        raise ProblemError(f"version {n} of {env} has no image yet: build it first", status=409, title="Conflict")
    result = await builder.publish(ws, version.image_ref, version.image_digest, body.destination)
    await registry.get_version(ws, env, n, export_kind="publish", export_destination=result.destination,
                               export_digest=result.digest)
    return PublishOut(destination=result.destination, digest=result.digest)
