"""Modes of what the platform keeps on disk: its data directory 0700, its databases 0600.

The data directory holds every SQLite database (tokens' hashes, users, the activity log), the admin
token, the signing and credential keys and the bus passwords; another local user must read none of it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) with mode 0700, or take an existing one of ours down to 0700:
    the data directory holds every SQLite database, key and token of the platform."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    return path


def private_file(db_path: Path) -> None:
    """A SQLite database readable by its owner only: created 0600 before SQLite opens it (SQLite gives
    its -wal and -shm files the database's mode), and an older world-readable one and its companions
    taken down to 0600."""
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for candidate in (db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")):
        try:
            if stat.S_IMODE(candidate.stat().st_mode) & 0o077:
                os.chmod(candidate, 0o600)
        except FileNotFoundError:
            pass


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never world-readable for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def kept_passwords(path: Path, names: Iterable[str]) -> dict[str, str]:
    """Passwords of ``names``, kept in ``path`` (JSON, mode 0600): read when present so a restarted
    platform keeps them, a new random one for any name missing."""
    creds: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if any(name not in creds for name in names) or not path.exists():
        for name in names:
            creds.setdefault(name, secrets.token_urlsafe(32))
        write_private(path, json.dumps(creds, indent=2))
    os.chmod(path, 0o600)
    return creds
