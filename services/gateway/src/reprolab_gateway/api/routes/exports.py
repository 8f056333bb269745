"""Take a built version out: a Binder-ready folder (zip), an OCI archive. Every export is in the activity log."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile

from fastapi import APIRouter, Path, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from reprolab_common.errors import ProblemError

from ...flows import dataset_key
from ...importer.binder_export import binder_folder, zip_folder
from ...importer.renv import renv_lock
from ...importer.tree import RepoTree
from ...schemas import INT32_MAX
from ..deps import BuilderDep, RegistryDep, StoreDep
from ..params import EnvPath, WsPath

router = APIRouter(prefix="/workspaces/{ws}/environments/{env}/versions/{n}", tags=["environments"])


def _repository(data: bytes) -> RepoTree:
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isfile():
                fh = tar.extractfile(member)
                files[member.name] = fh.read() if fh else b""
                if member.mode & 0o111:
                    executable.add(member.name)
    return RepoTree(files, frozenset(executable))


@router.get("/binder", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "A Binder-ready folder as a zip"}})
async def export_binder(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep, store: StoreDep,
                        n: int = Path(ge=1, le=INT32_MAX, description="Version number")) -> Response:
    """requirements.txt with hashes, apt.txt and runtime.txt from the version's lock (plus postBuild
    for its build steps and the imported repository's files): repo2docker builds the same packages."""
    version = await registry.get_version(ws, env, n)
    if not version.lock_digest:
        raise ProblemError(f"version {n} of {env} has not been built: build it first (its lock pins the versions "
                           "the folder names)", status=409, title="Conflict")
    lock = json.loads((await builder.lock(version.lock_digest)).lock_json)
    repository = None
    digest = (lock.get("repository") or {}).get("digest")
    if digest:
        data = await asyncio.to_thread(store.read_bytes, dataset_key(ws, digest.removeprefix("sha256:")))
        repository = await asyncio.to_thread(_repository, data)
    files = binder_folder(lock, environment=env, version=n, repository=repository)
    body = zip_folder(files, repository.executable if repository else frozenset())
    filename = f"{env}-v{n}-binder.zip"
    await registry.get_version(ws, env, n, export_kind="binder", export_destination=filename,
                               export_digest=version.image_digest)
    return Response(body, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/renv.lock", response_class=Response,
            responses={200: {"content": {"application/json": {}},
                             "description": "The version's R packages as renv.lock"}})
async def export_renv_lock(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep,
                           n: int = Path(ge=1, le=INT32_MAX, description="Version number")) -> Response:
    """The R version, repository and exact R package versions of version n's lock as an ``renv.lock``
    (``renv::restore()`` reads it; importing it gives the same lock)."""
    version = await registry.get_version(ws, env, n)
    if not version.lock_digest:
        raise ProblemError(f"version {n} of {env} has not been built: build it first (its lock pins the R "
                           "packages)", status=409, title="Conflict")
    doc = renv_lock(json.loads((await builder.lock(version.lock_digest)).lock_json))
    filename = f"{env}-v{n}-renv.lock"
    await registry.get_version(ws, env, n, export_kind="renv-lock", export_destination=filename,
                               export_digest=version.image_digest)
    return Response(json.dumps(doc, indent=2) + "\n", media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/image.tar", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-tar": {}},
                             "description": "The image as an OCI archive: `podman load -i` / `docker load -i`"}})
async def export_oci_archive(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep, store: StoreDep,
                             n: int = Path(ge=1, le=INT32_MAX, description="Version number")) -> Response:
    """Version n's image as an OCI archive for offline classrooms (same manifest digest as the
    platform's image). Made once per image by the builder, then streamed from the object store."""
    version = await registry.get_version(ws, env, n)
    if not version.image_digest:
        raise ProblemError(f"version {n} of {env} has no image yet: build it first", status=409, title="Conflict")
    exported = await builder.export_image(ws, version.image_ref, version.image_digest)
    filename = f"{env}-v{n}.oci.tar"
    await registry.get_version(ws, env, n, export_kind="oci-archive", export_destination=filename,
                               export_digest=version.image_digest)
    chunks = await asyncio.to_thread(store.open_chunks, exported.object_key)
    return StreamingResponse(chunks, media_type="application/x-tar", headers={
        "Content-Length": str(exported.size), "Reprolab-Image-Digest": version.image_digest,
        "Content-Disposition": f'attachment; filename="{filename}"'})


class ImageFile(BaseModel):
    """A version's image file, made and ready to download."""

    filename: str = Field(description="The name the download is saved under")
    size: int = Field(description="Bytes")
    digest: str = Field(description="The image's manifest digest (the same as the platform's image)")


@router.post("/image.tar/prepare", response_model=ImageFile,
             responses={409: {"description": "The version has no image yet: build it first."},
                        503: {"description": "The image file could not be made now (the platform's registry did "
                                             "not answer); nothing was kept: try again later."}})
async def prepare_oci_archive(ws: WsPath, env: EnvPath, registry: RegistryDep, builder: BuilderDep,
                              n: int = Path(ge=1, le=INT32_MAX, description="Version number")) -> ImageFile:
    """Make version n's image file (once per image) without downloading it: the portal asks first, so it can
    say why a file cannot be made instead of the browser saving an error under the file's name. Records
    nothing in the activity log; the download itself does."""
    version = await registry.get_version(ws, env, n)
    if not version.image_digest:
        raise ProblemError(f"version {n} of {env} has no image yet: build it first", status=409, title="Conflict")
    exported = await builder.export_image(ws, version.image_ref, version.image_digest)
    return ImageFile(filename=f"{env}-v{n}.oci.tar", size=exported.size, digest=version.image_digest)
