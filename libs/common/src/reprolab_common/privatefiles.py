"""Modes of what the platform keeps on disk: its data directory 0700, its databases 0600.

The data directory holds every SQLite database (tokens' hashes, users, the activity log), the admin
token, the signing and credential keys and the bus passwords; another local user must read none of it.
"""

from __future__ import annotations

import os
import stat
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
