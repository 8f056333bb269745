"""Where a model server runs. One ABC (:class:`ServingTarget`), one implementation per place: ``local``
(here, podman) and ``kubernetes`` (``k8s.KubernetesServing``, a Deployment + Service + HPA).

The model is served in the run's own image digest, so it predicts with exactly the packages it was
trained with. Nothing is installed into that image: ``serving/oip_server.py`` (standard library only)
is bind-mounted read-only at ``/opt/reprolab/serving/oip_server.py`` and started with the image's own
``/usr/bin/python3``; the artifact (copied out of the run's outputs into ``<data_dir>/models/...``) is
mounted read-only beside it (``kubernetes`` copies nothing to this host: its pods fetch the artifact
from the object store by presigned URL). The container gets the local run target's sandbox: read-only root, a
``/tmp`` tmpfs, every capability dropped, no-new-privileges, the nobody user, CPU/memory/pids limits.
Its port is published on 127.0.0.1 only; the runner and the gateway reach it there.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import httpx
import requests

from ..sessions.targets import Started  # a long-lived server's handle and address: same as a session's
from ..targets.base import INSTALLATION_LABEL, TargetError
from ..targets.local import RUN_GID, RUN_UID, LocalTarget

log = logging.getLogger(__name__)

MODEL_LABEL = "org.reprolab.model"
PORT = 8080
SERVER_SOURCE = Path(__file__).resolve().parents[1] / "serving" / "oip_server.py"
SERVER_PATH = "/opt/reprolab/serving/oip_server.py"
ARTIFACT_DIR = "/opt/reprolab/model"
PYTHON = "/usr/bin/python3"
KINDS = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".onnx": "onnx"}


def artifact_kind(artifact: str) -> str:
    """joblib, pickle, onnx or score.py, from the artifact's name; ValueError for anything else."""
    p = PurePosixPath(artifact)
    if p.name == "score.py":
        return "score.py"
    kind = KINDS.get(p.suffix.lower())
    if kind is None:
        raise ValueError(f"cannot serve {p.name!r}: a .joblib, .pkl, .onnx file or a score.py is needed")
    return kind


def handle_for(workspace: str, name: str, version: int) -> str:
    slug = re.sub(r"[^a-z0-9-]", "-", f"{workspace}-{name}".lower())[:40]
    return f"reprolab-model-{slug}-v{version}"


@dataclass(frozen=True)
class ServingSpec:
    model_id: str  # "<workspace>/<name>/<version>": the container's label value
    workspace: str
    name: str
    version: int
    image: str  # the run's image, pinned by digest
    artifact_name: str
    # local: a host directory holding the artifact (and, for score.py, its siblings)
    artifact_dir: Path | None = None
    # kubernetes: the run's output in the object store and the digest the run recorded for it
    artifact_key: str = ""
    artifact_sha256: str = ""
    cpu_millis: int = 1000
    memory_bytes: int = 1 << 30
    pids: int = 256
    max_body_bytes: int = 8 << 20


def server_command(spec: ServingSpec) -> list[str]:
    return [PYTHON, SERVER_PATH, "--artifact", f"{ARTIFACT_DIR}/{spec.artifact_name}", "--name", spec.name,
            "--version", str(spec.version), "--host", "0.0.0.0", "--port", str(PORT),  # noqa: S104
            "--max-body-bytes", str(spec.max_body_bytes)]


class ServingTarget(ABC):
    name: str
    remote: bool = False
    """True when the server runs elsewhere and fetches the artifact itself (``ServingSpec.artifact_key``);
    False: the deployer copies it into a host directory first (``ServingSpec.artifact_dir``)."""
    ready_timeout: float = 60.0
    """How long :func:`wait_ready` waits by default (a cluster may first pull the image)."""
    poll_seconds: float = 0.1

    @abstractmethod
    def start(self, spec: ServingSpec) -> Started:
        """Start the model server (returns once created, not once it answers)."""

    @abstractmethod
    def alive(self, handle: str) -> tuple[bool, str]:
        """(still running, why not)."""

    @abstractmethod
    def logs(self, handle: str, tail: int = 30) -> str:
        """The server's last output lines (why it did not start)."""

    @abstractmethod
    def stop(self, handle: str) -> None:
        """Remove the server. Idempotent."""

    @abstractmethod
    def owned(self) -> dict[str, str]:
        """model id → handle of every model server of this installation."""

    def ready(self, started: Started, http: httpx.Client) -> bool:
        """Whether the server answers ``/v2/health/ready`` with 200 (at ``started.upstream_url``)."""
        try:
            return http.get(f"{started.upstream_url}/v2/health/ready").status_code == 200
        except httpx.HTTPError:
            return False


class LocalServing(ServingTarget):
    """Model servers as podman containers through its Docker API (the local run target's engine)."""

    name = "local"

    def __init__(self, settings: Any, *, installation: str) -> None:
        self.installation = installation
        self.images = LocalTarget(settings, installation=installation)

    @property
    def client(self) -> docker.DockerClient:
        return self.images.client

    def start(self, spec: ServingSpec) -> Started:
        if spec.artifact_dir is None:
            raise TargetError("the local serving target needs the artifact copied into a host directory")
        handle = handle_for(spec.workspace, spec.name, spec.version)
        self.images._ensure_image(spec.image)
        labels = {MODEL_LABEL: spec.model_id,
                  **({INSTALLATION_LABEL: self.installation} if self.installation else {})}
        try:
            self.stop(handle)  # a leftover of an earlier attempt
            api = self.client.api
            host_config = api.create_host_config(
                binds={str(SERVER_SOURCE): {"bind": SERVER_PATH, "mode": "ro"},
                       str(spec.artifact_dir): {"bind": ARTIFACT_DIR, "mode": "ro"}},
                port_bindings={PORT: ("127.0.0.1", None)},
                network_mode="bridge",
                read_only=True,
                tmpfs={"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"},
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
                nano_cpus=spec.cpu_millis * 1_000_000,
                mem_limit=spec.memory_bytes, memswap_limit=spec.memory_bytes, pids_limit=spec.pids,
            )
            created = api.create_container(
                spec.image, server_command(spec), name=handle, ports=[PORT], user=f"{RUN_UID}:{RUN_GID}",
                environment={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}, labels=labels,
                volumes=[SERVER_PATH, ARTIFACT_DIR], host_config=host_config, detach=True,
                working_dir=ARTIFACT_DIR, entrypoint=[])
            api.start(created["Id"])
            attrs = api.inspect_container(created["Id"])
        except (docker.errors.DockerException, requests.RequestException) as exc:
            self.stop(handle)
            raise self.images._api_error(f"cannot start model {spec.model_id}", exc) from exc
        bound = (((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{PORT}/tcp") or [{}])[0]
        if not bound.get("HostPort"):
            self.stop(handle)
            raise TargetError("the engine published no port for the model server")
        return Started(handle=handle, upstream_url=f"http://127.0.0.1:{bound['HostPort']}")

    def alive(self, handle: str) -> tuple[bool, str]:
        try:
            container = self.client.containers.get(handle)
        except docker.errors.NotFound:
            return False, "the model server's container no longer exists"
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error(f"cannot inspect model server {handle}", exc) from exc
        state = container.attrs.get("State") or {}
        if state.get("Status") == "running":
            return True, ""
        if state.get("OOMKilled"):
            return False, "the model server ran out of memory and was killed"
        if state.get("ExitCode") == 137:
            return False, "the model server was killed (SIGKILL: its memory limit, or a stop from outside)"
        return False, f"the model server exited (code {state.get('ExitCode')})"

    def logs(self, handle: str, tail: int = 30) -> str:
        try:
            return self.client.containers.get(handle).logs(tail=tail).decode(errors="replace")
        except (docker.errors.DockerException, requests.RequestException):
            return ""

    def stop(self, handle: str) -> None:
        try:
            self.client.containers.get(handle).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "no such container" not in str(exc).lower():
                raise self.images._api_error(f"cannot stop model server {handle}", exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error(f"cannot stop model server {handle}", exc) from exc

    def owned(self) -> dict[str, str]:
        labels = [MODEL_LABEL] + ([f"{INSTALLATION_LABEL}={self.installation}"] if self.installation else [])
        try:
            found = self.client.containers.list(all=True, filters={"label": labels})
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error("cannot list model servers", exc) from exc
        return {c.labels[MODEL_LABEL]: c.name for c in found}


def wait_ready(target: ServingTarget, started: Started, *, timeout: float | None = None) -> float:
    """Poll ``target.ready`` until it is; returns the seconds waited. Fails fast when the server dies.

    ``local`` asks ``/v2/health/ready`` itself; ``kubernetes`` asks the API server whether the Deployment
    is rolled out and available, which its pods' readiness probe on ``/v2/health/ready`` decides (the
    Service's cluster DNS name resolves only inside the cluster)."""
    timeout = target.ready_timeout if timeout is None else timeout
    t0 = time.monotonic()
    with httpx.Client(timeout=2.0) as http:
        while True:
            if target.ready(started, http):
                return time.monotonic() - t0
            alive, why = target.alive(started.handle)
            if not alive:
                tail = target.logs(started.handle)
                raise TargetError(why + (f"; its last output: {tail[-1500:]}" if tail else ""))
            if time.monotonic() - t0 > timeout:
                raise TargetError(f"the model server did not answer within {timeout:.0f} s")
            time.sleep(target.poll_seconds)
