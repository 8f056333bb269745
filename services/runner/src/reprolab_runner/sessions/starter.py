"""Assignments' starter code into a session's home (issue 17 item 1), copy-if-absent.

The gateway names, in ``StartSessionRequest.starter``, the assignments whose starter code the session gets
(the one it was opened for, or the open ones that use its environment or the environment it was forked
from). Once the notebook server answers, and before the session shows ``running``, the runner reads each
archive from the object store and writes its files into ``~/<assignment>/`` through the server's own
contents API (``/api/contents``), as the student: the files are theirs, and it works the same on every
target (the runner reaches the server, never the home's storage).

The rule is ``home.py``'s: a file is written only where the home has nothing at that path. A resumed
session keeps the student's edits; a starter file the student deleted comes back on the next start.
A starter that cannot be read or written is logged and skipped: the session starts anyway.
"""

from __future__ import annotations

import base64
import io
import logging
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

import httpx
from reprolab_common.archivepaths import relative_path

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_BYTES = 64 * 1024 * 1024  # unpacked, per archive: starter code, not data sets


class StarterError(Exception):
    pass


@dataclass(frozen=True)
class StarterFile:
    path: str  # relative, POSIX, no ".."
    data: bytes


def files_of(data: bytes) -> list[StarterFile]:
    """The regular files of a .tar.gz or .zip archive (links, devices and unsafe paths are left out)."""
    files: list[StarterFile] = []
    total = 0

    def add(name: str, read) -> None:  # noqa: ANN001
        nonlocal total
        path = relative_path(name)
        if path is None:
            return
        if len(files) >= MAX_FILES:
            raise StarterError(f"more than {MAX_FILES} files")
        blob = read()
        total += len(blob)
        if total > MAX_BYTES:
            raise StarterError(f"it unpacks to more than {MAX_BYTES} bytes")
        files.append(StarterFile(path, blob))

    try:
        if data[:2] == b"\x1f\x8b":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar:
                    if member.isfile():
                        add(member.name, lambda m=member: tar.extractfile(m).read())
        elif data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    kind = stat.S_IFMT(info.external_attr >> 16)
                    if not info.is_dir() and kind in (0, stat.S_IFREG):
                        add(info.filename, lambda i=info: zf.read(i))
        else:
            raise StarterError("neither a .tar.gz nor a .zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise StarterError(f"unreadable archive ({exc})") from exc
    return sorted(files, key=lambda f: f.path)


def _url(upstream: str, path: str) -> str:
    return f"{upstream}api/contents/{quote(path)}"


async def _kind(http: httpx.AsyncClient, upstream: str, path: str) -> str | None:
    """"file", "directory", "notebook" or None when the home has nothing there."""
    r = await http.get(_url(upstream, path), params={"content": "0"})
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json().get("type")


async def unpack(http: httpx.AsyncClient, upstream: str, folder: str, files: list[StarterFile]) -> int:
    """Write ``files`` under ``folder`` of the home where nothing is yet; the number written.

    ``http`` carries the server's token. A path the home already has (a file, or a file where the starter
    has a folder) is left as it is, with everything the starter has below it."""
    written = 0
    dirs: dict[str, bool] = {}  # directory -> may write into it

    async def ensure_dir(path: str) -> bool:
        if path in dirs:
            return dirs[path]
        parent = str(PurePosixPath(path).parent)
        ok = parent == "." or await ensure_dir(parent)
        if ok:
            kind = await _kind(http, upstream, path)
            if kind is None:
                r = await http.put(_url(upstream, path), json={"type": "directory"})
                r.raise_for_status()
            else:
                ok = kind == "directory"
        dirs[path] = ok
        return ok

    for f in files:
        path = f"{folder}/{f.path}"
        try:
            if not await ensure_dir(str(PurePosixPath(path).parent)) or await _kind(http, upstream, path):
                continue
            r = await http.put(_url(upstream, path), json={
                "type": "file", "format": "base64", "content": base64.b64encode(f.data).decode()})
            r.raise_for_status()
            written += 1
        except httpx.HTTPStatusError as exc:  # e.g. a hidden file the server will not write: the rest go on
            log.warning("starter file %s not written: HTTP %s", path, exc.response.status_code)
    return written
