"""Two Open Inference Protocol servers for the same scikit-learn model, as real processes on loopback ports:
MLServer 1.7.1 from its own virtualenv (``.tools/mlserver``, made by ``scripts/mlserver-env.sh``, i.e.
``make test-deps``) and Reprolab's standard-library ``oip_server.py``. Used by
tests/serving/test_oip_mlserver.py (the differential check) and bench/serve.py (the yardstick).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
MLSERVER_VENV = ROOT / ".tools" / "mlserver"
MLSERVER = MLSERVER_VENV / "bin" / "mlserver"
OIP_SERVER = ROOT / "services" / "runner" / "src" / "reprolab_runner" / "serving" / "oip_server.py"
MLSERVER_VERSION = "1.7.1"

TRAIN = """
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(X, y), sys.argv[1])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_mlserver() -> str | None:
    """Why MLServer cannot be started here, or None. The caller fails with this (never skips)."""
    if not MLSERVER.exists():
        return (f"MLServer is not installed in {MLSERVER_VENV}: run `make test-deps` "
                "(or `bash scripts/mlserver-env.sh`) first")
    return None


def train_iris(path: Path, python: str = sys.executable) -> Path:
    """An Iris LogisticRegression written with joblib by ``python`` (a process of its own, as a run would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-c", TRAIN, str(path)], check=True, timeout=120)
    return path


@dataclass
class Served:
    """A started server: its base URL and process; ``stop()`` ends it."""

    what: str
    url: str
    proc: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)

    def wait_ready(self, model: str, timeout: float = 60) -> float:
        """Seconds from start until ``/v2/models/{model}/ready`` answers 200 (MLServer loads the model after
        its HTTP server is up, answering 400 until then)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as http:
            while True:
                try:
                    if http.get(f"{self.url}/v2/models/{model}/ready").status_code == 200:
                        return time.monotonic() - self.started
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.what} exited ({self.proc.returncode}): {self.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.what} not ready after {timeout:.0f} s: {self.tail()}")
                time.sleep(0.1)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_mlserver(root: Path, artifact: Path, name: str = "iris", version: str = "1",
                   extra_settings: dict | None = None) -> Served:
    """``mlserver start`` on a model repository of one model (``mlserver_sklearn.SKLearnModel``) under ``root``:
    REST on a free loopback port, gRPC on another (it cannot be switched off), no metrics server. Otherwise
    MLServer's defaults (one parallel inference worker process)."""
    reason = missing_mlserver()
    if reason:
        raise RuntimeError(reason)
    model_dir = root / name
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        # platform and versions are what the metadata endpoint reports; the version is the one served
        "platform": "sklearn", "versions": [version],
        "parameters": {"uri": str(artifact), "version": version}}))
    port = free_port()
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_endpoint": None,
                "environments_dir": str(root / ".envs"), "metrics_dir": str(root / ".metrics"),
                "debug": False} | (extra_settings or {})
    (root / "settings.json").write_text(json.dumps(settings))
    log = root / "mlserver.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER_", "VIRTUAL_ENV", "PYTHON"))}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(MLSERVER), "start", str(root)], cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    return Served("MLServer", f"http://127.0.0.1:{port}", proc, log)


def start_oip(root: Path, artifact: Path, name: str = "iris", version: str = "1",
              python: str = sys.executable) -> Served:
    """Reprolab's ``oip_server.py`` run directly by ``python`` (the host's), as the runner runs it in a container."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "oip.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([python, str(OIP_SERVER), "--artifact", str(artifact), "--name", name,
                                 "--version", version, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Served("oip_server.py", f"http://127.0.0.1:{port}", proc, log)
