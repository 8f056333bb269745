"""Where a session's notebook server runs: one ABC, a ``local`` (Docker Engine API: podman) and a
``kubernetes`` implementation. Both keep the home when a session stops: only ``delete_home`` removes it.

The server listens on port 8888 of the container with ``ServerApp.base_url=/sessions/<id>/``, so the
gateway proxies paths unchanged; its token comes in ``JUPYTER_TOKEN`` (never on the command line).
The container starts as root through the image's ENTRYPOINT (``reprolab init``: the activity agent's
daemon starts, then the server runs as the student, uid 1000) with every capability dropped but the
two that switch users.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import docker
import docker.errors
import requests

from ..targets.base import INSTALLATION_LABEL, TargetError
from ..targets.local import LocalTarget

log = logging.getLogger(__name__)

PORT = 8888
HOME = "/home/student"
SESSION_LABEL = "org.reprolab.session"
HOME_LABEL = "org.reprolab.session-home"
INTERNAL_NETWORK = "reprolab-sessions-none"
SERVER = "/opt/reprolab/session/server.py"
NETWORKS = ("none", "index")


@dataclass(frozen=True)
class SessionSpec:
    session_id: str
    workspace: str
    owner_id: str
    image: str
    token: str
    cpu_millis: int
    memory_bytes: int
    pids: int
    network: str  # "none" | "index"

    @property
    def base_url(self) -> str:
        return f"/sessions/{self.session_id}/"


def server_command(spec: SessionSpec) -> list[str]:
    """What the image's ENTRYPOINT runs: JupyterLab on the environment's python3."""
    return ["python3", SERVER, "--config=/opt/reprolab/session/jupyter_server_config.py", "--ip=0.0.0.0",
            f"--port={PORT}", "--port-retries=0", f"--ServerApp.base_url={spec.base_url}",
            f"--ServerApp.root_dir={HOME}", "--no-browser"]


def home_key(installation: str, workspace: str, owner_id: str) -> str:
    """One home per installation, workspace and user; names only carry a digest of them."""
    return hashlib.sha256(f"{installation}|{workspace}|{owner_id}".encode()).hexdigest()[:20]


def handle_for(session_id: str) -> str:
    return "reprolab-session-" + re.sub(r"[^a-z0-9-]", "-", session_id.lower())[:40]


@dataclass(frozen=True)
class Started:
    handle: str
    upstream_url: str


class SessionTarget(ABC):
    name: str

    @abstractmethod
    def start(self, spec: SessionSpec) -> Started:
        """Create the home if new and start the server (returns once created, not once it answers)."""

    @abstractmethod
    def alive(self, handle: str) -> tuple[bool, str]:
        """(still running, why not)."""

    @abstractmethod
    def stop(self, handle: str) -> None:
        """Remove the server's container or pod; the home stays. Idempotent."""

    @abstractmethod
    def activity_chain(self, handle: str) -> bytes:
        """The activity agent's chain in the running server (``activity.CHAIN_PATH``); b"" when none."""

    @abstractmethod
    def capture(self, handle: str) -> bytes:
        """The in-image agent's ``reprolab env capture --json`` in the running server: what was installed
        beyond the image's baseline (its lock). ``TargetError`` saying why when it cannot be read."""

    @abstractmethod
    def owned(self) -> dict[str, str]:
        """session id → handle of every session workload of this installation."""

    @abstractmethod
    def delete_home(self, workspace: str, owner_id: str) -> None:
        """Remove a user's home (when they leave the workspace); not called on stop."""


class LocalSessions(SessionTarget):
    """Sessions as podman containers through its Docker API; homes are named volumes.

    The home volume is created empty on first use and mounted at /home/student: podman copies the
    image's /home/student into a new volume and gives it the directory's owner (uid 1000). Course
    files of later versions reach it by ``home.py``'s copy-if-absent when the server starts.

    Network: ``index`` is podman's default bridge (this target cannot narrow egress to the package
    index: that needs a firewall or the cluster's NetworkPolicy, see ``manifests``); ``none`` is an
    ``internal`` podman network: no route out; the server is reached at the container's address on it.
    On the bridge the port is published on 127.0.0.1 only, on a free port the engine picks.
    """

    name = "local"

    def __init__(self, settings: Any, *, installation: str) -> None:
        self.installation = installation
        # pulls, auth and the engine's API version are the run target's (one code path for both)
        self.images = LocalTarget(settings, installation=installation)

    @property
    def client(self) -> docker.DockerClient:
        return self.images.client

    def volume_name(self, workspace: str, owner_id: str) -> str:
        return f"reprolab-home-{home_key(self.installation, workspace, owner_id)}"

    def _network(self, network: str) -> str:
        if network == "index":
            return "bridge"
        try:
            self.client.networks.get(INTERNAL_NETWORK)
        except docker.errors.NotFound:
            try:
                self.client.networks.create(INTERNAL_NETWORK, internal=True,
                                            labels={HOME_LABEL: "network"})
            except docker.errors.APIError as exc:
                if "exists" not in str(exc).lower():
                    raise
        return INTERNAL_NETWORK

    def start(self, spec: SessionSpec) -> Started:
        if spec.network not in NETWORKS:
            raise TargetError(f"unknown session network {spec.network!r}")
        handle = handle_for(spec.session_id)
        self.images._ensure_image(spec.image)
        volume = self.volume_name(spec.workspace, spec.owner_id)
        labels = {SESSION_LABEL: spec.session_id, HOME_LABEL: volume,
                  **({INSTALLATION_LABEL: self.installation} if self.installation else {})}
        try:
            try:
                self.client.volumes.get(volume)
            except docker.errors.NotFound:
                self.client.volumes.create(volume, labels={HOME_LABEL: volume, **(
                    {INSTALLATION_LABEL: self.installation} if self.installation else {})})
            self.stop(handle)  # a leftover of an earlier attempt of this session
            api = self.client.api
            network = self._network(spec.network)
            host_config = api.create_host_config(
                binds={volume: {"bind": HOME, "mode": "rw"}},
                port_bindings={} if network == INTERNAL_NETWORK else {PORT: ("127.0.0.1", None)},
                network_mode=network,
                tmpfs={"/tmp": "rw,nosuid,nodev,size=512m,mode=1777"},
                cap_drop=["ALL"], cap_add=["SETUID", "SETGID"],
                security_opt=["no-new-privileges"],
                nano_cpus=spec.cpu_millis * 1_000_000,
                mem_limit=spec.memory_bytes, memswap_limit=spec.memory_bytes, pids_limit=spec.pids,
            )
            created = api.create_container(
                spec.image, server_command(spec), name=handle, ports=[PORT], volumes=[HOME],
                environment={"JUPYTER_TOKEN": spec.token, "HOME": HOME}, labels=labels,
                host_config=host_config, detach=True, working_dir=HOME)
            api.start(created["Id"])
            upstream = self._address(api.inspect_container(created["Id"]), network)
        except TargetError:
            self.stop(handle)
            raise
        except (docker.errors.DockerException, requests.RequestException) as exc:
            self.stop(handle)
            raise self.images._api_error(f"cannot start session {spec.session_id}", exc) from exc
        return Started(handle=handle, upstream_url=f"http://{upstream}{spec.base_url}")

    @staticmethod
    def _address(attrs: dict[str, Any], network: str) -> str:
        """host:port the runner and the gateway reach the server at. A port published on an ``internal``
        network forwards nothing (podman 4.3), so there the container's own address on the bridge is
        used: the host is on that bridge (rootful podman), nothing else routes to it."""
        settings = attrs.get("NetworkSettings") or {}
        if network == INTERNAL_NETWORK:
            ip = ((settings.get("Networks") or {}).get(INTERNAL_NETWORK) or {}).get("IPAddress")
            if not ip:
                raise TargetError("the session's container has no address on its network")
            return f"{ip}:{PORT}"
        bound = ((settings.get("Ports") or {}).get(f"{PORT}/tcp") or [{}])[0].get("HostPort")
        if not bound:
            raise TargetError("the engine published no port for the notebook server")
        return f"127.0.0.1:{bound}"

    def alive(self, handle: str) -> tuple[bool, str]:
        try:
            container = self.client.containers.get(handle)
        except docker.errors.NotFound:
            return False, "the session's container no longer exists"
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error(f"cannot inspect session {handle}", exc) from exc
        state = container.attrs.get("State") or {}
        if state.get("Status") == "running":
            return True, ""
        mib = (container.attrs.get("HostConfig") or {}).get("Memory", 0) >> 20
        if state.get("OOMKilled") or state.get("ExitCode") == 137:
            return False, f"the notebook server was killed, most likely out of memory (limit {mib} MiB)"
        return False, f"the notebook server exited (code {state.get('ExitCode')})"

    def logs(self, handle: str, tail: int = 30) -> str:
        try:
            return self.client.containers.get(handle).logs(tail=tail).decode(errors="replace")
        except (docker.errors.DockerException, requests.RequestException):
            return ""

    def stop(self, handle: str) -> None:
        try:
            self.client.containers.get(handle).remove(force=True)  # no v=True: the home volume stays
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # podman answers 500 "no such container" when another stop removed it between get and remove
            if "no such container" not in str(exc).lower():
                raise self.images._api_error(f"cannot stop session {handle}", exc) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error(f"cannot stop session {handle}", exc) from exc

    def activity_chain(self, handle: str) -> bytes:
        from .activity import CHAIN_PATH, MAX_BYTES

        try:
            stream, stat = self.client.containers.get(handle).get_archive(CHAIN_PATH)
            if stat.get("size", 0) > MAX_BYTES:
                return b"\0" * (MAX_BYTES + 1)  # refused by activity.parse, named in the log
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.getmember(PurePosixPath(CHAIN_PATH).name)
                if not member.isfile():
                    return b""
                fh = tar.extractfile(member)
                return fh.read() if fh else b""
        except docker.errors.NotFound:  # no container, or no cell run yet (the agent writes on first use)
            return b""
        except (docker.errors.DockerException, requests.RequestException, tarfile.TarError, KeyError) as exc:
            log.warning("cannot read session %s's activity chain: %s", handle, exc)
            return b""

    def capture(self, handle: str) -> bytes:
        """Run as the container's user (root: the agent reads the root-owned chain and baseline; it also
        looks in /home/*/.local, where the student's ``pip install --user`` goes). Through the engine's
        exec API, as ``podman exec`` does for the CLI's ``env capture``."""
        from reprolab_common.capture import MAX_CAPTURE_BYTES

        try:
            container = self.client.containers.get(handle)
            code, (out, err) = container.exec_run(["reprolab", "env", "capture", "--json"], demux=True)
        except docker.errors.NotFound as exc:
            raise TargetError("the session's container no longer exists") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error(f"cannot inspect session {handle}", exc) from exc
        if code != 0:
            tail = (err or out or b"").decode(errors="replace").strip().splitlines()
            raise TargetError(f"`reprolab env capture` in the session failed (exit {code})"
                              + (f": {tail[-1][:300]}" if tail else ""))
        out = out or b""
        if len(out) > MAX_CAPTURE_BYTES:
            raise TargetError(f"the session's capture is larger than {MAX_CAPTURE_BYTES} bytes")
        return out

    def owned(self) -> dict[str, str]:
        labels = [SESSION_LABEL] + ([f"{INSTALLATION_LABEL}={self.installation}"] if self.installation else [])
        try:
            found = self.client.containers.list(all=True, filters={"label": labels})
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self.images._api_error("cannot list session containers", exc) from exc
        return {c.labels[SESSION_LABEL]: c.name for c in found}

    def delete_home(self, workspace: str, owner_id: str) -> None:
        try:
            self.client.volumes.get(self.volume_name(workspace, owner_id)).remove(force=True)
        except docker.errors.NotFound:
            pass
