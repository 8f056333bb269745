"""A workspace's private and extra Python package indexes, with write-only credentials.

Locks resolve against them and the builder fetches their wheels on its host with the credentials, so
a password or token never enters a build, an image or a lock. The search order and the
dependency-confusion rule are the builder's (``reprolab_builder.indexes``): extra indexes by priority,
then the primary (the workspace's replacement for PyPI, else PyPI); a package found on one index is
taken from that index only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from reprolab_common.errors import Forbidden

from ...core.problems import pattern
from ...flows import UPLOADERS
from ...schemas import ts
from ..deps import BuilderDep, RegistryDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces/{ws}/package-indexes", tags=["package indexes"])

# What the builder's check_name accepts ("pypi" is refused there, with the reason).
NAME_PATTERN = pattern(r"^[a-z][a-z0-9-]{0,39}$", "is not an index name: 1-40 lower-case letters, digits and '-', "
                                                   "starting with a letter")
IndexName = Annotated[str, Path(max_length=40, pattern=NAME_PATTERN, description="The index's name, e.g. corp.")]
_PRINTABLE = pattern(r"^[^\x00-\x1f]*$", "must be printable characters")


class PackageIndexIn(BaseModel):
    url: str = Field(max_length=1000, pattern=pattern(r"^https?://[^\s@/]+(/[^\s?#]*)?$",
                                                      "is not an http(s) index URL without credentials"),
                     description="The PEP 503 simple index, e.g. https://pkgs.example.org/simple (no credentials "
                                 "in it: give them below).")
    kind: Literal["extra", "primary"] = Field(
        default="extra", description="extra: searched before the primary. primary: replaces PyPI for this workspace.")
    priority: int = Field(default=0, ge=0, le=1000, strict=True,
                          description="Among extra indexes, lower is searched first.")
    username: str = Field(default="", max_length=255, pattern=_PRINTABLE,
                          description="Basic-auth user (a token alone is sent as user __token__).")
    password: str = Field(default="", max_length=4096, pattern=_PRINTABLE,
                          description="Basic-auth password; never shown again.")
    token: str = Field(default="", max_length=4096, pattern=_PRINTABLE,
                       description="An access token instead of a password; never shown again.")


class PackageIndexOut(BaseModel):
    name: str
    url: str
    kind: str
    priority: int
    username: str
    has_secret: bool = Field(description="Whether a password or token is stored (it is never returned).")
    created_by: str
    created_at: datetime | None


class PackageIndexList(BaseModel):
    items: list[PackageIndexOut] = Field(description="In search order: extra indexes by priority, the primary last.")


def _out(i) -> PackageIndexOut:  # noqa: ANN001 - a builder_pb2.PackageIndex
    return PackageIndexOut(name=i.name, url=i.url, kind=i.kind, priority=i.priority, username=i.username,
                           has_secret=i.has_secret, created_by=i.created_by, created_at=ts(i.created_at))


async def _managers_only(registry: RegistryDep, ws: str) -> None:
    if (await registry.get_workspace(ws)).caller_role not in UPLOADERS:
        raise Forbidden(f"only an admin or instructor of {ws!r} can manage package indexes")


@router.put("/{name}", response_model=PackageIndexOut,
            responses={422: {"description": "A field is invalid, or a username came without a password or token."}})
async def put_package_index(ws: WsPath, name: IndexName, body: PackageIndexIn, registry: RegistryDep,
                            builder: BuilderDep) -> PackageIndexOut:
    """Add or replace a package index of the workspace; its password or token is encrypted by the builder
    and never shown again. Versions locked from now on resolve against it."""
    await _managers_only(registry, ws)
    return _out(await builder.put_package_index(ws, name, body.url, body.kind, body.priority, body.username,
                                                body.password, body.token))


@router.get("", response_model=PackageIndexList)
async def list_package_indexes(ws: WsPath, registry: RegistryDep, builder: BuilderDep) -> PackageIndexList:
    await _managers_only(registry, ws)
    return PackageIndexList(items=[_out(i) for i in (await builder.list_package_indexes(ws)).items])


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_package_index(ws: WsPath, name: IndexName, registry: RegistryDep, builder: BuilderDep) -> Response:
    await _managers_only(registry, ws)
    await builder.delete_package_index(ws, name)
    return Response(status_code=204)
