"""A private PostgreSQL cluster (``initdb`` + ``pg_ctl``) in a directory of its own, on a free port.

For fault trials that stop and restart the database: the system PostgreSQL (5432) is shared and must
never be restarted. PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres``
user (``runuser``); its directory is handed to that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .natsserver import free_port


def pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else the newest under /usr/lib/postgresql (Debian)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise FileNotFoundError(f"{name} not found: install postgresql (make test-deps)")
    return str(versions[-1])


class PostgresCluster:
    def __init__(self, root: Path | None = None, port: int | None = None, user: str = "postgres") -> None:
        # default: a fresh directory directly in the temp dir, so the postgres user can reach it (pytest's
        # tmp_path sits under a root-only directory)
        self.root = root or Path(tempfile.mkdtemp(prefix="reprolab-pg-"))
        self.port = port or free_port()
        self.os_user = user if os.geteuid() == 0 else None
        self.data = self.root / "data"
        self.log_file = self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*(["runuser", "-u", self.os_user, "--"] if self.os_user else []), *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> PostgresCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            shutil.chown(self.root, self.os_user, self.os_user)
            self.root.chmod(0o700)
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8")
        return self

    def start(self, timeout: float = 30.0) -> PostgresCluster:
        # fsync off: a test cluster trades durability across power loss for speed; a restart keeps data
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c max_connections=200")
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-o", options,
                  "-w", "-t", str(int(timeout)), "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash (recovery at start)."""
        if (self.data / "postmaster.pid").exists():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_port_closed(self, timeout: float = 10.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL still listening on {self.port}")
