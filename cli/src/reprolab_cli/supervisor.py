"""Run the whole platform on one machine: a private nats-server and the five services as children.

``reprolab up`` and the integration tests both use ``Platform``, so what the tests exercise is
exactly what a user starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from reprolab_common import registrytoken
from reprolab_common.lifeline import Lifeline, die_with_parent
from reprolab_common.localregistry import LocalRegistry, TokenAuth, registry_binary
from reprolab_common.natsserver import NatsServer, bus_credentials, free_port, stop_child
from reprolab_common.privatefiles import private_dir, write_private

from .platformlock import PlatformLock, reap_leftovers

# Start order: the gateway last, so /readyz can succeed as soon as it listens.
SERVICES = ("registry", "audit", "builder", "runner", "gateway")


@dataclass
class Platform:
    data_dir: Path
    port: int = 0
    nats_url: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    nats: NatsServer | None = None
    registry: LocalRegistry | None = None
    podman: subprocess.Popen | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    lock: PlatformLock | None = None
    lifeline: Lifeline | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def admin_token(self) -> str:
        return self.admin_token_file.read_text().strip()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "REPROLAB_DATA_DIR": str(self.data_dir),
            "REPROLAB_NATS_URL": self.nats_url or (self.nats.url if self.nats else ""),
            "REPROLAB_GATEWAY_PORT": str(self.port),
            "REPROLAB_GATEWAY_BOOTSTRAP_TOKEN_FILE": str(self.admin_token_file),
        })
        if self.registry:
            env["REPROLAB_BUILDER_REGISTRY"] = self.registry.address
        if self.podman:
            env["REPROLAB_RUNNER_DOCKER_URL"] = f"unix://{self.podman_socket}"
        env.update(self.extra_env)
        return env

    @property
    def podman_socket(self) -> Path:
        return self.data_dir / "podman.sock"

    def start_podman(self, timeout: float = 15.0) -> None:
        """A Docker-Engine-compatible API (podman's) for the runner's local target, unless one is
        configured or podman is not installed."""
        if "REPROLAB_RUNNER_DOCKER_URL" in {**os.environ, **self.extra_env} or not shutil.which("podman"):
            return
        self.podman_socket.unlink(missing_ok=True)
        log = open(self.log_dir / "podman.log", "ab")  # noqa: SIM115 - owned by the child
        # cwd: conmon writes an "oom" marker into the service's working directory on cgroup v1
        self.podman = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.podman_socket}"],
                                       stdout=log, stderr=log, start_new_session=True, cwd=self.data_dir,
                                       preexec_fn=die_with_parent())
        log.close()
        self._record("podman", self.podman)
        deadline = time.monotonic() + timeout
        while not self.podman_socket.exists():
            if self.podman.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start; see {self.log_dir / 'podman.log'}")
            time.sleep(0.05)

    @property
    def registry_secrets_dir(self) -> Path:
        """The token issuer's key and certificate, the registry's service passwords and the builder's and
        runner's containers-auth.json files (all mode 0600), kept across restarts."""
        return self.data_dir / "registry-auth"

    def registry_auth_file(self, service: str) -> Path:
        return self.registry_secrets_dir / f"{service}-auth.json"

    def start_registry(self) -> None:
        """A local OCI registry for built images, unless one is configured or none is installed. It
        accepts only tokens signed by this platform's gateway (its realm is the gateway's
        /api/v1/registry/token); the builder and runner sign in there with their own passwords."""
        if "REPROLAB_BUILDER_REGISTRY" in {**os.environ, **self.extra_env} or not registry_binary():
            return
        secrets_dir = self.registry_secrets_dir
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        _key, cert = registrytoken.ensure_signing_key(secrets_dir)
        auth = TokenAuth(realm=f"{self.url}/api/v1/registry/token", cert_file=cert)
        port_file = self.data_dir / "registry-port"
        port = int(port_file.read_text()) if port_file.exists() else free_port()
        self.registry = LocalRegistry(self.data_dir / "registry", port=port, log_file=self.log_dir / "registry.log",
                                      auth=auth)
        try:
            self.registry.start()
        except (RuntimeError, TimeoutError):
            self.registry = LocalRegistry(self.data_dir / "registry", log_file=self.log_dir / "registry.log",
                                          auth=auth).start()
        port_file.write_text(str(self.registry.port))
        self._record("docker-registry", self.registry.proc)
        # the registry's address may have changed (a busy port): the auth files name it, so rewrite them
        creds = registrytoken.service_credentials(secrets_dir / "service-credentials.json")
        for service, identity in (("builder", registrytoken.BUILDER), ("runner", registrytoken.RUNNER)):
            write_private(self.registry_auth_file(service),
                          registrytoken.auth_json(self.registry.address, identity, creds[identity]))

    def registry_env(self, name: str) -> dict[str, str]:
        """Each service's part of the registry's authentication, when this platform started the registry:
        the gateway signs tokens, the builder and runner get only their own credentials."""
        if self.registry is None or self.registry.auth is None:
            return {}
        secrets_dir = self.registry_secrets_dir
        if name == "gateway":
            return {"REPROLAB_GATEWAY_REGISTRY_TOKEN_KEY_FILE": str(secrets_dir / "token-key.pem"),
                    "REPROLAB_GATEWAY_REGISTRY_TOKEN_CERT_FILE": str(secrets_dir / "token-cert.pem"),
                    "REPROLAB_GATEWAY_REGISTRY_CREDENTIALS_FILE": str(secrets_dir / "service-credentials.json")}
        if name in ("builder", "runner"):
            return {f"REPROLAB_{name.upper()}_REGISTRY_AUTH_FILE": str(self.registry_auth_file(name))}
        return {}

    @property
    def nats_credentials_file(self) -> Path:
        """Every bus identity's password (mode 0600); ``operator`` is for an operator's own tools."""
        return self.data_dir / "nats-credentials.json"

    def nats_credentials(self) -> dict[str, str]:
        return bus_credentials(self.nats_credentials_file) if self.nats else {}

    def start_nats(self) -> None:
        if self.nats_url:
            return
        port_file = self.data_dir / "nats-port"
        # Reuse the port of the previous run so a restarted platform finds the same server URL.
        port = int(port_file.read_text()) if port_file.exists() else free_port()
        creds = bus_credentials(self.nats_credentials_file)
        self.nats = NatsServer(self.data_dir / "nats", port=port, log_file=self.log_dir / "nats.log",
                               credentials=creds)
        try:
            self.nats.start()
        except (RuntimeError, TimeoutError):
            self.nats = NatsServer(self.data_dir / "nats", log_file=self.log_dir / "nats.log",
                                   credentials=creds).start()
        port_file.write_text(str(self.nats.port))
        self._record("nats-server", self.nats.proc)

    def service_env(self, name: str) -> dict[str, str]:
        """``env()`` plus the service's own NATS identity when this platform started the server."""
        env = self.env()
        creds = self.nats_credentials()
        if name in creds:
            env.update({"REPROLAB_NATS_USER": name, "REPROLAB_NATS_PASSWORD": creds[name]})
        env.update({k: v for k, v in self.registry_env(name).items() if k not in self.extra_env})
        return env

    def start_service(self, name: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        env, lifeline = self.service_env(name), self.lifeline_kwargs()
        env.update(lifeline.pop("env", {}))
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"reprolab_{name}"], env=env, stdout=log, stderr=log,
            start_new_session=True, **lifeline,
        )
        log.close()
        self._record(name, self.procs[name])

    def lifeline_kwargs(self) -> dict:
        """Popen keywords tying a Python service to this supervisor (see ``reprolab_common.lifeline``)."""
        if self.lifeline is None:
            self.lifeline = Lifeline()
        return {"env": self.lifeline.env(), **self.lifeline.popen_kwargs()}

    def _record(self, name: str, proc: subprocess.Popen | None) -> None:
        if self.lock is not None and proc is not None:
            self.lock.record(name, proc.pid)

    def start(self, timeout: float = 60.0) -> Platform:
        private_dir(self.data_dir)  # 0700: databases, keys and tokens live here
        self.log_dir.mkdir(exist_ok=True)
        self.acquire()
        self.start_nats()
        self.start_registry()
        self.start_podman()
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(timeout)
        return self

    def acquire(self) -> None:
        """Take the data directory (refusing one a live platform holds), then stop what a dead platform
        that used it left running: only the processes it recorded, verified by their command line."""
        if self.lock is not None:
            return
        lock = PlatformLock(self.data_dir)
        lock.acquire()  # raises PlatformBusy
        self.lock = lock
        for line in reap_leftovers(lock):
            print(line, file=sys.stderr)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log = self.log_dir / f"{name}.log"
                    raise RuntimeError(f"{name} exited with code {proc.returncode}; see {log}\n{self.tail(name)}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"platform not ready after {timeout:.0f}s: {last}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for name in reversed(SERVICES):
            self.stop_service(name)
        if self.nats:
            self.nats.stop()
            self.nats = None
        if self.registry:
            self.registry.stop()
            self.registry = None
        if self.podman:
            stop_child(self.podman)
            self.podman = None
        if self.lifeline is not None:
            self.lifeline.cut()
            self.lifeline = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
