"""Two replicas of every service against one PostgreSQL and one NATS, as real processes on this machine.

``Replicated`` starts a ``Platform`` (nats-server, the OCI registry, podman's API and one process per
service) on a private PostgreSQL cluster, then a SECOND process of each of the five services with the
same environment: same database, same bus, same signing keys and credentials (what a cluster's Secrets
give every pod), but each with its own scratch directories (what a pod's emptyDir gives it) and the
second gateway on its own port. Used by tests/faults/test_replicas.py and ``bench/faults.py --replicas``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from reprolab_cli.supervisor import SERVICES, Platform
from reprolab_common.natsserver import free_port
from reprolab_common.pgcluster import PostgresCluster

ENV = {
    "REPROLAB_AUDIT_CHECKPOINT_EVERY": "10", "REPROLAB_AUDIT_CHECKPOINT_SECONDS": "1",
    # a killed replica's job comes back to the survivor after this many seconds without a heartbeat
    "REPROLAB_BUILDER_ACK_WAIT_SECONDS": "10", "REPROLAB_RUNNER_ACK_WAIT_SECONDS": "10",
    # reconcilers run often, so two of them get every chance to fight over live containers
    "REPROLAB_RUNNER_RECONCILE_SECONDS": "2",
}


@dataclass
class Replicated:
    root: Path
    pg: PostgresCluster | None = None
    platform: Platform | None = None
    second: dict[str, subprocess.Popen] = field(default_factory=dict)
    port2: int = 0

    @property
    def urls(self) -> list[str]:
        return [self.platform.url, f"http://127.0.0.1:{self.port2}"]

    def start(self, timeout: float = 90) -> Replicated:
        self.pg = PostgresCluster().init().start()
        data = self.root / "platform"
        # each runner its own work root, where the local target keeps its runs' directories
        self.platform = Platform(data, extra_env={"REPROLAB_DATABASE_URL": self.pg.url, **ENV,
                                                  "REPROLAB_RUNNER_WORK_DIR": str(data.resolve() / "runner")})
        self.platform.start(timeout=timeout)
        self.port2 = free_port()
        for name in SERVICES:
            self.start_second(name)
        self.wait_ready(self.urls[1], timeout)
        return self

    def second_env(self, name: str) -> dict[str, str]:
        own = self.platform.data_dir / "replica-2"
        env = self.platform.service_env(name)
        env.update({"REPROLAB_GATEWAY_PORT": str(self.port2), "REPROLAB_GATEWAY_TMP_DIR": str(own / "gateway-tmp"),
                    "REPROLAB_BUILDER_CACHE_DIR": str(own / "builder"),
                    "REPROLAB_RUNNER_WORK_DIR": str(own / "runner")})
        return env

    def start_second(self, name: str) -> None:
        lifeline = self.platform.lifeline_kwargs()
        env = self.second_env(name)
        env.update(lifeline.pop("env", {}))
        with open(self.platform.log_dir / f"{name}-2.log", "ab") as log:
            self.second[name] = subprocess.Popen([sys.executable, "-m", f"reprolab_{name}"], env=env, stdout=log,
                                                 stderr=log, start_new_session=True, **lifeline)

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.second.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} (replica 2) exited with {proc.returncode}:\n{self.tail(name)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{url} not ready after {timeout:.0f}s")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.platform.log_dir / f"{name}-2.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def procs(self, name: str) -> list[subprocess.Popen]:
        """Both replicas of a service: the platform's first, then the second."""
        return [self.platform.procs[name], self.second[name]]

    def work_dirs(self, name: str) -> list[Path]:
        """Each replica's scratch directory for ``builder`` (build contexts) or ``runner`` (one folder per
        run it is driving): what a replica holds shows there."""
        sub = {"builder": "builder", "runner": "runner"}[name]
        return [self.platform.data_dir / sub, self.platform.data_dir / "replica-2" / sub]

    def restart(self, name: str, proc: subprocess.Popen) -> subprocess.Popen:
        """Start again the replica of ``name`` that ran as ``proc`` (killed), with its environment and
        scratch directories, as a kubelet restarts a killed container in the same pod."""
        if proc is self.platform.procs[name]:
            self.platform.start_service(name)
            return self.platform.procs[name]
        self.start_second(name)
        return self.second[name]

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.second.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.second.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.platform is not None:
            self.platform.stop()
        if self.pg is not None:
            self.pg.remove()


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (a builder running buildah has some)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            out.append(int(entry.name))
    return out
