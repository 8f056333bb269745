"""Import a Binder-ready repository as a new environment (detected as repo2docker does)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from reprolab_common.errors import Invalid

from ...core.problems import pattern
from ...core.uploads import check_declared_length, spool
from ...importer.archive import read_archive
from ...importer.flow import check_importer, download_archive, import_tree, source_label, tree_from_path
from ...schemas import Environment
from ..deps import RegistryDep, SettingsDep, StoreDep
from ..params import WsPath

router = APIRouter(prefix="/workspaces/{ws}/environments", tags=["environments"])


class Detected(BaseModel):
    buildpack: str = Field(description="The repo2docker build pack that matched (python, pipfile, conda, r).")
    binder_dir: str = Field(description="'binder', '.binder' or '' (the root): where configuration was read.")
    files: list[str] = Field(description="The configuration files read, in the order they were mapped.")
    notes: list[str] = Field(description="What was mapped only approximately or ignored, as repo2docker would.")
    bit_reproducible: bool = Field(description="False when the spec has build steps (postBuild, installing the "
                                               "project): their lock says so and why.")


class ImportResult(BaseModel):
    environment: Environment
    detected: Detected
    spec: dict[str, Any]
    repository_digest: str


@router.post(
    "/import",
    status_code=201,
    response_model=ImportResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object", "required": ["source"], "properties": {"source": {
                    "type": "string", "minLength": 1,
                    "description": "An absolute path under REPROLAB_GATEWAY_IMPORT_ROOTS or an "
                    "http(s) URL of a .tar.gz/.zip on a host in REPROLAB_GATEWAY_IMPORT_URL_HOSTS"}}}},
            },
        }
    },
    responses={413: {"description": "The upload is larger than REPROLAB_GATEWAY_MAX_UPLOAD_BYTES"},
               422: {"description": "The archive or source cannot be read, or the repository's configuration "
                                    "cannot be mapped to a spec (what and where is named)."}},
)
async def import_environment(
    ws: WsPath,
    request: Request,
    registry: RegistryDep,
    store: StoreDep,
    settings: SettingsDep,
    name: str = Query(pattern=pattern(r"^[a-z0-9][a-z0-9-]{0,53}$", "use 1-54 lower-case letters, digits and '-', "
                                      "starting with a letter or digit"), description="The new environment's name."),
    base: str = Query(default="", description="Base image; default REPROLAB_GATEWAY_IMPORT_BASE."),
    description: str = Query(default="", max_length=1000),
    strict: bool = Query(default=False, description="Refuse (422) anything mapped only approximately too."),
) -> ImportResult:
    """Upload a repository (tar.gz or zip body) or name one (JSON ``{"source": path-or-URL}``); its
    configuration files become the first version's spec, its files go into the image's home folder."""
    check_declared_length(request, settings.max_upload_bytes)
    await check_importer(registry, ws)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    directory = settings.upload_dir()
    origin = "upload"
    if kind == "application/json":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise Invalid(f"body is not JSON: {exc}", errors=[("body", str(exc))]) from None
        source = body.get("source") if isinstance(body, dict) else None
        if not isinstance(source, str) or not source:
            raise Invalid("body.source is required: a path or an http(s) URL", errors=[("body.source", "required")])
        origin = source_label(source)
        if source.startswith(("http://", "https://")):
            directory.mkdir(parents=True, exist_ok=True)
            dest = directory / f"import-{id(request)}"
            try:
                await asyncio.to_thread(download_archive, source, settings, dest)
                tree = await asyncio.to_thread(read_archive, dest)
            finally:
                dest.unlink(missing_ok=True)
        else:
            tree = await asyncio.to_thread(tree_from_path, source, settings)
    else:
        spooled = await spool(request.stream(), directory, settings.max_upload_bytes)
        try:
            tree = await asyncio.to_thread(read_archive, spooled.path)
        finally:
            spooled.remove()
    imported = await import_tree(tree, workspace=ws, name=name, base=base or settings.import_base,
                                 description=description, strict=strict, registry=registry, store=store,
                                 imported_from=origin)
    m = imported.detection.mapped
    return ImportResult(
        environment=Environment.of(imported.environment),
        detected=Detected(buildpack=imported.detection.buildpack, binder_dir=imported.detection.binder_dir,
                          files=m.used, notes=m.notes, bit_reproducible=not m.steps),
        spec=imported.spec,
        repository_digest=imported.repository_digest,
    )
