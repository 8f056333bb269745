"""Reading a repository (an uploaded tar.gz/zip or a directory) into a ``RepoTree``, and writing
the canonical tar the image gets: same files → same bytes → same digest, whoever uploads them."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

from reprolab_common.errors import Invalid

from ..core.archives import ArchiveLimits, inspect_archive
from .tree import RepoTree

# What a repository may hold: generous for notebooks and small data, small enough to read in memory.
IMPORT_LIMITS = ArchiveLimits(max_entries=20_000, max_total_bytes=256 * 1024 * 1024, max_ratio=200)
REPO_UID = 1000
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints"}


def _bad(detail: str) -> Invalid:
    return Invalid(f"the repository is refused: {detail}", errors=[("body", detail)])


def _skipped(path: str) -> bool:
    return any(part in SKIPPED_DIRS for part in path.split("/"))


def _strip_single_top(files: dict[str, bytes], executable: set[str]) -> tuple[dict[str, bytes], set[str]]:
    """GitHub's and ``git archive --prefix``'s archives put everything under one folder: that folder
    is the repository's root (otherwise ``binder/`` would never be found)."""
    tops = {name.split("/", 1)[0] for name in files}
    # ...unless that folder is a binder folder: a repository may hold nothing else
    if len(tops) == 1 and all("/" in name for name in files) and not tops & {"binder", ".binder"}:
        top = tops.pop() + "/"
        return {k[len(top):]: v for k, v in files.items()}, {k[len(top):] for k in executable}
    return files, executable


def read_archive(path: Path, limits: ArchiveLimits = IMPORT_LIMITS) -> RepoTree:
    """The files of an uploaded tar.gz or zip (checked for '..', links, bombs first)."""
    info = inspect_archive(path, limits)
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    if info.format == "tar.gz":
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                if not member.isfile() or not name or _skipped(name):
                    continue
                fh = tar.extractfile(member)
                files[name] = fh.read() if fh else b""
                if member.mode & 0o111:
                    executable.add(name)
    else:
        with zipfile.ZipFile(path) as zf:
            for zi in zf.infolist():
                name = zi.filename.removeprefix("./").rstrip("/")
                if zi.is_dir() or not name or _skipped(name):
                    continue
                files[name] = zf.read(zi)
                if (zi.external_attr >> 16) & 0o111:
                    executable.add(name)
    if not files:
        raise _bad("it holds no files")
    files, executable = _strip_single_top(files, executable)
    return RepoTree(files, frozenset(executable))


def read_directory(root: Path, limits: ArchiveLimits = IMPORT_LIMITS) -> RepoTree:
    """The regular files under ``root`` (links are not followed: a repository's link could point anywhere)."""
    if not root.is_dir():
        raise _bad(f"{root} is not a directory")
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            st = full.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            rel = full.relative_to(root).as_posix()
            total += st.st_size
            if len(files) >= limits.max_entries or total > limits.max_total_bytes:
                raise _bad(f"it has more than {limits.max_entries} files or {limits.max_total_bytes} bytes")
            files[rel] = full.read_bytes()
            if st.st_mode & 0o111:
                executable.add(rel)
    if not files:
        raise _bad(f"{root} holds no files")
    return RepoTree(files, frozenset(executable))


def canonical_tar(tree: RepoTree) -> bytes:
    """An uncompressed tar (the builder's ``ADD`` unpacks it) with sorted entries, parent folders
    listed, mtime 0, modes 0755/0644 only and owner uid/gid 1000 (the image's user: ``ADD`` keeps an
    archive's owners and ignores ``--chown``): the digest depends on names, bytes and the executable
    bit alone."""
    out = io.BytesIO()
    dirs = sorted({"/".join(p.split("/")[:i]) for p in tree.files for i in range(1, p.count("/") + 1)})
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            info.uid = info.gid = REPO_UID
            tar.addfile(info)
        for name in sorted(tree.files):
            data = tree.files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if name in tree.executable else 0o644
            info.uid = info.gid = REPO_UID
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
