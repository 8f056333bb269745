"""Checks on a student's code archive before anything runs it: tar.gz or zip, bounded in entries,
total size and compression ratio, and only plain files and directories at safe relative paths."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from reprolab_common.archivepaths import why_unsafe
from reprolab_common.errors import Invalid


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 10_000
    max_total_bytes: int = 512 * 1024 * 1024
    max_ratio: int = 200


@dataclass(frozen=True)
class ArchiveInfo:
    format: str          # "tar.gz" or "zip"
    entries: int
    total_bytes: int


def _bad(detail: str) -> Invalid:
    return Invalid(f"the code archive is refused: {detail}", errors=[("body", detail)])


def _check_name(name: str) -> None:
    if (problem := why_unsafe(name)) is not None:
        raise _bad(problem)


def inspect_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> ArchiveInfo:
    """Raise Invalid (422) naming the first problem; return what the archive holds otherwise."""
    compressed = max(path.stat().st_size, 1)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return _inspect_tar(path, compressed, limits)
    if magic == b"PK\x03\x04":
        return _inspect_zip(path, compressed, limits)
    raise _bad("it is neither a .tar.gz nor a .zip file")


def _tally(entries: int, total: int, compressed: int, limits: ArchiveLimits) -> None:
    if entries > limits.max_entries:
        raise _bad(f"more than {limits.max_entries} entries")
    if total > limits.max_total_bytes:
        raise _bad(f"it unpacks to more than {limits.max_total_bytes} bytes")
    if total > 1024 * 1024 and total / compressed > limits.max_ratio:
        raise _bad(f"it expands more than {limits.max_ratio} times (a zip bomb?)")


def _inspect_tar(path: Path, compressed: int, limits: ArchiveLimits) -> ArchiveInfo:
    entries = total = 0
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                entries += 1
                _check_name(member.name)
                if not (member.isfile() or member.isdir()):
                    kind = "link" if member.issym() or member.islnk() else "device or special file"
                    raise _bad(f"{member.name!r} is a {kind}; only regular files and directories are allowed")
                total += member.size
                _tally(entries, total, compressed, limits)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _bad(f"it is not a readable tar.gz ({exc})") from exc
    return ArchiveInfo("tar.gz", entries, total)


def _inspect_zip(path: Path, compressed: int, limits: ArchiveLimits) -> ArchiveInfo:
    entries = total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                entries += 1
                _check_name(info.filename)
                # Only the file-type bits decide: writers that record no type (Python's
                # ``zipfile.writestr`` stores just 0o600, Windows tools store 0) mean a plain file;
                # a symlink (S_IFLNK), device, FIFO or socket says so and is refused.
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise _bad(f"{info.filename!r} is a link or special file; only regular files and directories "
                               "are allowed")
                total += info.file_size
                _tally(entries, total, compressed, limits)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _bad(f"it is not a readable zip ({exc})") from exc
    return ArchiveInfo("zip", entries, total)
