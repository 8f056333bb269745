"""Streaming uploads: spool to a temporary file while hashing, never holding the body in memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from .problems import PayloadTooLarge

FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse before reading a byte when the client already says the body is too big."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the upload is {declared} bytes; the limit is {limit} bytes (REPROLAB_GATEWAY_MAX_UPLOAD_BYTES)"
        )


async def spool(chunks: AsyncIterator[bytes], directory: Path, limit: int) -> Spooled:
    """Write the stream to a file under ``directory``, counting and hashing as it goes; more than
    ``limit`` bytes raises 413 and leaves nothing behind."""
    fd, name = await asyncio.to_thread(_mkstemp, directory)
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    pending_size = 0

    def _flush(data: bytes) -> None:
        digest.update(data)
        _write_all(fd, data)

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"the upload is larger than {limit} bytes, the limit (REPROLAB_GATEWAY_MAX_UPLOAD_BYTES)"
                )
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= FLUSH_BYTES:
                # Disk writes and hashing off the event loop, in large batches.
                await asyncio.to_thread(_flush, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await asyncio.to_thread(_flush, b"".join(pending))
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return Spooled(path=path, sha256=digest.hexdigest(), size=size)


def _mkstemp(directory: Path) -> tuple[int, str]:
    directory.mkdir(parents=True, exist_ok=True)
    # the pid in the name lets a restarted gateway tell a dead process's half upload from a live one's
    return tempfile.mkstemp(dir=directory, prefix=f"upload-{os.getpid()}-")


def sweep_orphans(directory: Path) -> list[Path]:
    """Remove spool files of gateway processes that are gone (killed mid-upload: nothing else would ever
    remove them). Files of live processes (other uvicorn workers sharing the directory) stay."""
    removed = []
    for path in directory.glob("upload-*") if directory.is_dir() else ():
        owner = path.name.split("-")[1]
        if owner.isdigit() and int(owner) != os.getpid():
            try:
                os.kill(int(owner), 0)
                continue  # alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # alive, someone else's
        elif owner.isdigit():
            continue
        path.unlink(missing_ok=True)  # also the pid-less names of older versions
        removed.append(path)
    return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
