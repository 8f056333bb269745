"""Lock → pushed image: wheel cache → context (render + wheels + datasets) → backend → registry."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import rcache, rlock
from .backends.base import BuildBackend, BuildError, BuildResult, LogSink
from .config import BuilderSettings
from .lock import lock_digest, one_layer
from .render import UV_CONTEXT, python_delta, render, write_context
from .sbom import InventoryLines
from .wheelcache import ensure, installer_binary, link_wheel, materialize, sha256_file

DatasetSource = Callable[[str, Path], None]
"""Writes the bytes of dataset ``sha256:<hex>`` to the given path."""


def store_dataset_source(store: Any, workspace: str) -> DatasetSource:
    """Datasets from the object store, key ``workspaces/<ws>/datasets/sha256/<hex>``."""
    def fetch(digest: str, dest: Path) -> None:
        key = f"workspaces/{workspace}/datasets/sha256/{digest.removeprefix('sha256:')}"
        try:
            chunks = store.open_chunks(key)
            with open(dest, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
        except KeyError as exc:
            raise BuildError(f"dataset {digest} is not in the object store ({key})") from exc

    return fetch


def link_installer(lock: dict[str, Any], ctx: Path, *, settings: BuilderSettings) -> None:
    """uv's binary, taken out of the locked wheel on this host, at ``uv/uv`` in the context (the
    install step bind-mounts it)."""
    dest = ctx / UV_CONTEXT
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    link_wheel(installer_binary(lock, settings=settings), dest)
    os.chmod(dest, 0o755)


def build_lock(lock: dict[str, Any], *, settings: BuilderSettings, backend: BuildBackend, image_ref: str,
               store: Any | None = None, parent_lock: dict[str, Any] | None = None, log: LogSink = print,
               workspace: str | None = None, datasets: DatasetSource | None = None,
               indexes: list[Any] | None = None) -> BuildResult:
    """Build ``lock`` into ``image_ref`` and push it; returns the registry digest.

    Dataset bytes come from ``datasets(digest, path)`` or else from ``store`` (an ObjectStore)
    under ``workspace``. A derived lock (``lock['parent']`` and ``parent_lock``) builds FROM the
    parent's image and adds only the delta. ``indexes`` (the workspace's package indexes, with
    credentials) are used on this host only, to fetch the wheels the lock names."""
    ensure(lock, settings=settings, log=log, indexes=indexes)
    rcache.ensure(lock, settings=settings, log=log)
    contexts = settings.cache_root() / "contexts"
    contexts.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix=lock_digest(lock).removeprefix("sha256:")[:16] + "-", dir=contexts))
    try:
        files = render(lock, parent_lock=parent_lock)
        write_context(files, ctx)
        if "wheels/requirements.txt" in files:
            install, _removed = python_delta(lock, parent_lock if "parent" in lock else None)
            materialize(lock, ctx / "wheels", settings=settings, packages=install, installer=UV_CONTEXT not in files)
        if UV_CONTEXT in files:
            link_installer(lock, ctx, settings=settings)
        if "rsources/order.json" in files:
            rcache.materialize(rlock.source_delta(lock, parent_lock if "parent" in lock else None),
                               ctx / "rsources", settings=settings)
        wanted = [rel for rel in files if rel.startswith("datasets/")]
        if wanted:
            source = datasets or (store_dataset_source(store, workspace) if store is not None and workspace else None)
            if source is None:
                raise BuildError("the lock mounts datasets but no dataset source (object store and workspace) "
                                 "was given")
            for rel in wanted:
                digest = "sha256:" + rel.removeprefix("datasets/")
                dest = ctx / rel
                source(digest, dest)
                if f"sha256:{sha256_file(dest)}" != digest:
                    raise BuildError(f"dataset {digest}: the stored bytes do not match the digest")
                os.chmod(dest, 0o644)
        log(f"context {ctx} ({len(files)} files); building {image_ref}")
        listed = InventoryLines(log)  # a one-layer build lists what is in the image as its last step
        result = backend.build_and_push(ctx, image_ref, log=listed, one_layer=one_layer(lock))
        return replace(result, inventory=listed.inventory()) if listed.found else result
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


__all__ = ["DatasetSource", "build_lock", "link_installer", "one_layer", "store_dataset_source"]
