"""Import orchestration: read the repository, detect, store its files, create the environment.

The repository's files are stored once as a canonical tar registered as a (public) dataset of the
workspace, ``<env>-repository.tar``: the builder already fetches datasets by digest and checks
them, and a student who can pull the image could read those files anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reprolab.v1 import registry_pb2
from reprolab_common.errors import Forbidden, Invalid
from reprolab_common.objectstore import ObjectStore

from ..clients import RegistryClient
from ..core.config import GatewaySettings
from ..core.documents import to_json_text
from ..flows import UPLOADERS, dataset_key
from .archive import canonical_tar, read_directory
from .detectors import Detection, detect_repository
from .tree import ImportRefused, RepoTree

MAX_DESCRIPTION = 1000


@dataclass(frozen=True)
class Imported:
    environment: registry_pb2.Environment
    detection: Detection
    spec: dict
    repository_digest: str


def refused(exc: ImportRefused) -> Invalid:
    """422 naming every file and what to change in it."""
    return Invalid("the repository cannot be imported: " + "; ".join(f"{f}: {r}" for f, r in exc.problems[:8]),
                   errors=[(f, r) for f, r in exc.problems])


def tree_from_path(raw: str, settings: GatewaySettings) -> RepoTree:
    """A directory on the gateway's host, only under ``import_roots`` (an operator's choice: the
    gateway must not become a way to read any file on its host)."""
    path = Path(raw)
    if not path.is_absolute():
        raise Invalid("source: a path must be absolute", errors=[("source", "must be an absolute path")])
    resolved = path.resolve()
    roots = [r.resolve() for r in settings.import_roots]
    if not any(resolved == r or r in resolved.parents for r in roots):
        allowed = ", ".join(str(r) for r in roots) or "none (REPROLAB_GATEWAY_IMPORT_ROOTS is empty)"
        raise Invalid(f"source: {raw} is not under a folder the platform imports from ({allowed})",
                      errors=[("source", "not under REPROLAB_GATEWAY_IMPORT_ROOTS")])
    return read_directory(resolved)


def download_archive(url: str, settings: GatewaySettings, dest: Path) -> None:
    """An http(s) archive URL (tar.gz or zip), from hosts the operator allows only."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("source: only http(s) URLs of a .tar.gz or .zip archive are accepted",
                      errors=[("source", "not an http(s) URL")])
    if parts.netloc not in settings.import_url_hosts:
        raise Invalid(f"source: host {parts.netloc!r} is not one the platform imports from "
                      "(REPROLAB_GATEWAY_IMPORT_URL_HOSTS)", errors=[("source", "host not allowed")])
    limit = settings.max_upload_bytes
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:  # noqa: S310 - checked above
            total = 0
            while chunk := resp.read(1 << 16):
                total += len(chunk)
                if total > limit:
                    raise Invalid(f"source: the archive is larger than {limit} bytes",
                                  errors=[("source", "too large")])
                fh.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise Invalid(f"source: {url} could not be fetched: {exc}", errors=[("source", str(exc))]) from exc


def detect_tree(tree: RepoTree) -> Detection:
    try:
        return detect_repository(tree)
    except ImportRefused as exc:
        raise refused(exc) from None


def source_label(source: str) -> str:
    """Where an import came from, for the activity log: ``path <folder>`` or ``url <address>`` with any
    credentials, query and fragment left out (a signed URL's token must not reach the log)."""
    if not source.startswith(("http://", "https://")):
        return f"path {source}"
    parts = urllib.parse.urlsplit(source)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return f"url {urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, '', ''))}"


async def check_importer(registry: RegistryClient, workspace: str) -> None:
    """Before reading a byte: only admins and instructors create a workspace's environments."""
    ws = await registry.get_workspace(workspace)
    if ws.caller_role not in UPLOADERS:
        raise Forbidden(f"only an admin or instructor of {workspace!r} can import environments")


async def import_tree(tree: RepoTree, *, workspace: str, name: str, base: str, description: str, strict: bool,
                      registry: RegistryClient, store: ObjectStore, imported_from: str = "upload") -> Imported:
    """The repository's files become a public dataset of the workspace and the detected spec its new
    environment's version 1; ``imported_from`` (see ``source_label``) goes into environment.created."""
    await check_importer(registry, workspace)
    detection = await asyncio.to_thread(detect_tree, tree)
    if strict and detection.mapped.notes:
        raise Invalid("the repository cannot be imported exactly (strict): " + "; ".join(detection.mapped.notes),
                      errors=[("repository", n) for n in detection.mapped.notes])
    data = await asyncio.to_thread(canonical_tar, tree)
    hexd = hashlib.sha256(data).hexdigest()
    key = dataset_key(workspace, hexd)
    if not await asyncio.to_thread(store.exists, key):
        await asyncio.to_thread(store.put_bytes, key, data)
    digest = f"sha256:{hexd}"
    await registry.register_dataset(workspace, name=f"{name}-repository.tar", digest=digest, size=len(data),
                                    media_type="application/x-tar", visibility="public", object_key=key)
    spec = detection.spec(base=base, repository_digest=digest)
    text = description or (f"Imported from a Binder-ready repository ({detection.buildpack} pack; read "
                           f"{', '.join(detection.mapped.used) or 'no configuration file'})")
    env = await registry.create_environment(workspace, name=name, description=text[:MAX_DESCRIPTION],
                                            spec_json=to_json_text(spec, "spec"), imported_from=imported_from,
                                            repository_digest=digest)
    return Imported(env, detection, spec, digest)
