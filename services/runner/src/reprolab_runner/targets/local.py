"""The ``local`` target: one container per run through a Docker Engine API (Docker itself, or
``podman system service``) on this machine, with the docker SDK.

Layout of a run on the host (``<work root>/<handle>/``, created by the runner, owned by root):

* ``work/``    the unpacked code archive, bind-mounted read-write at ``/work`` (the working directory);
  unpacked here by the runner with the standard library's safe extraction, never by the student's code;
* ``outputs/`` bind-mounted read-write at ``/outputs``; ``collect`` copies it out;
* ``killed``   written by the runner when it kills the run (``timeout`` or ``cancelled``), so that
  ``status`` still tells why after a runner restart.

``work/`` and ``outputs/`` belong to the run user (``65534:65534``, nobody). Datasets are bind-mounted
read-only. The handle is the container name (``reprolab-run-<run id>``), from which the work directory
follows, so every method works with the handle alone.

What the engine reports and what it does not: podman 4.3 on cgroup v1 does not always set
``State.OOMKilled`` although the kernel's memory-cgroup OOM killer killed the process. A run killed by
SIGKILL (exit 137) that the runner did not kill is therefore reported as probably out of memory, since
nothing else in the sandbox sends SIGKILL (apart from the run itself).

What a run's start costs: podman answers ``GET /version`` in about 450 ms (it asks conmon and the OCI
runtime for their versions each time), and the docker SDK's ``version="auto"`` asks it for every new
client. The runner makes a target per run, so the engine's API version and kind are asked once per
process and endpoint (``_engine``) and every later client is made with that version: submit then
costs an image inspect, a create and a start (about the requests ``podman run`` makes itself).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.auth
import docker.constants
import docker.errors
import requests
from reprolab_common.registrytoken import credentials_for

from .base import INSTALLATION_LABEL, LABEL, Owned, RunRequest, State, Status, Target, TargetError, register

log = logging.getLogger(__name__)

RUN_UID = 65534
RUN_GID = 65534
WORKDIR = "/work"
OUTPUTS = "/outputs"
TIMEOUT_LABEL = "org.reprolab.timeout-seconds"
MEMORY_LABEL = "org.reprolab.memory-bytes"
NAME_PREFIX = "reprolab-run-"
DEFAULT_MAX_OUTPUT_BYTES = 1 << 30
DEFAULT_TMP_BYTES = 256 << 20
_HANDLE = re.compile(r"^reprolab-run-[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_KILL_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class _Engine:
    api_version: str
    podman: bool


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> _Engine:
    """The API version and kind of the engine at ``url``, asked once per process (see the module docstring).
    A failed probe is not remembered: the next call asks again."""
    with _ENGINES_LOCK:
        known = _ENGINES.get(url)
        if known is None:
            probe = docker.APIClient(base_url=url, version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=60)
            try:
                info = probe.version(api_version=False)
            finally:
                probe.close()
            components = info.get("Components") or []
            known = _Engine(api_version=info["ApiVersion"],
                            podman=any("podman" in (c.get("Name") or "").lower() for c in components))
            _ENGINES[url] = known
        return known


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None) if settings is not None else None
    return default if value is None else value


def _default_work_root(settings: Any) -> Path:
    """The runner's own work root (``<data_dir>/runner/local``) when the settings know it: one machine may
    hold several installations (a course's and a test's), and a folder shared by all of them would let
    one installation's leftover sweep remove another's live run directory."""
    own = getattr(settings, "work_root", None)
    if callable(own):
        return Path(own()) / "local"
    return Path(tempfile.gettempdir()) / "reprolab-runs"


def _handle_for(run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", run_id)[:64].strip(".-") or "run"
    if safe != run_id:  # sanitising may map two run ids to one name: keep them apart
        safe = f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    return NAME_PREFIX + safe


def _parse_time(value: str) -> float | None:
    """Engine timestamps (RFC 3339 with nanoseconds) as epoch seconds; None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value)
    if not match:
        return None
    base, frac, zone = match.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return stamp + (float(frac) if frac else 0.0)


def _is_loopback_registry(image: str) -> bool:
    host = image.split("/", 1)[0] if "/" in image else ""
    if not host:
        return False
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _give_to_run_user(root: Path) -> None:
    """Make ``root`` and everything under it the run user's (never following symlinks)."""
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        paths += [Path(dirpath, name) for name in (*dirnames, *filenames)]
    for path in paths:
        if os.geteuid() == 0:
            os.chown(path, RUN_UID, RUN_GID, follow_symlinks=False)
        elif not path.is_symlink():  # rootless: let the (mapped) run user write anyway
            mode = path.lstat().st_mode
            path.chmod(stat.S_IMODE(mode) | (0o777 if stat.S_ISDIR(mode) else 0o666))


def unpack_code(archive: Path, dest: Path) -> None:
    """Unpack a .tar(.gz) or .zip into ``dest``, refusing members that would land outside it."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                root = dest.resolve()
                for info in zf.infolist():
                    name = PurePosixPath(info.filename)
                    target = (dest / name).resolve()
                    if name.is_absolute() or ".." in name.parts or not target.is_relative_to(root):
                        raise TargetError(f"code archive member {info.filename!r} points outside /work")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:  # symlinks stay plain files
                        shutil.copyfileobj(src, out)
                    if (info.external_attr >> 16) & 0o111:
                        target.chmod(0o755)
        else:
            with tarfile.open(archive) as tf:
                # The "data" filter refuses absolute paths, links out of dest, devices; drops setuid bits.
                tf.extractall(dest, filter="data")
    except TargetError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise TargetError(f"cannot unpack the code archive {archive.name}: {exc}") from exc


@register("local")
class LocalTarget(Target):
    """Runs each request in a sandboxed container on the local Docker Engine API endpoint.

    Reads from ``settings`` (any object) when present: ``docker_url``, ``work_dir`` (root of the
    per-run directories; default ``<runner work root>/local``, else ``<tempdir>/reprolab-runs``),
    ``max_output_bytes`` (cap of ``collect``), ``tmp_bytes`` (size of the ``/tmp`` tmpfs),
    ``registry_tls_verify`` (False: pull over plain HTTP/unverified TLS from any registry; loopback
    registries always are).
    """

    def __init__(self, settings: Any = None, *, docker_url: str = "unix:///run/podman/podman.sock",
                 client: docker.DockerClient | None = None, installation: str = "", **_: Any) -> None:
        self.docker_url = _setting(settings, "docker_url", docker_url)
        self.installation = installation
        self.work_root = Path(_setting(settings, "work_dir", None) or _default_work_root(settings))
        self.max_output_bytes = int(_setting(settings, "max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES))
        self.tmp_bytes = int(_setting(settings, "tmp_bytes", DEFAULT_TMP_BYTES))
        self.registry_tls_verify = bool(_setting(settings, "registry_tls_verify", True))
        self.registry_auth_file = _setting(settings, "registry_auth_file", None)
        self._client = client
        self._client_is_ours = client is None
        self._podman: bool | None = None
        self._watchdogs: dict[str, threading.Timer] = {}
        self._found: dict[str, Path] = {}  # run directories other replicas made (_found_run_dir)
        self._lock = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                version = _engine(self.docker_url).api_version
            except (docker.errors.DockerException, requests.RequestException, KeyError) as exc:
                raise TargetError(f"Docker Engine API at {self.docker_url} is unreachable: {exc}") from exc
            # Pulls can be slow; nothing else waits on a long read.
            self._client = docker.DockerClient(base_url=self.docker_url, version=version, timeout=600)
        return self._client

    # -- helpers -----------------------------------------------------------------------------------

    def _run_dir(self, handle: str) -> Path:
        if not _HANDLE.match(handle) or ".." in handle:
            raise TargetError(f"not a local run handle: {handle!r}")
        return self.work_root / handle

    def _found_run_dir(self, handle: str) -> Path:
        """The directory of a run that may have been started by another runner replica on this machine
        (one killed while driving it): each replica may have its own work root, and the run's container
        is the record of where its files are, in the host path of its ``/outputs`` bind mount. Without
        this, the replica that resumes the run collects no outputs, loses the ``killed`` marker and
        leaves the directory behind. Only a path ending in ``<handle>/outputs`` is accepted."""
        own = self._run_dir(handle)
        if own.exists() or own.is_symlink():
            return own
        if (found := self._found.get(handle)) is not None:
            return found
        try:
            mounts = self.client.api.inspect_container(handle).get("Mounts") or []
        except (docker.errors.DockerException, requests.RequestException, TargetError):
            return own
        for mount in mounts:
            source = Path(mount.get("Source") or "")
            if (mount.get("Destination") == OUTPUTS and source.is_absolute() and ".." not in source.parts
                    and source.name == "outputs" and source.parent.name == handle):
                self._found[handle] = source.parent
                return source.parent
        return own

    def _container(self, handle: str) -> Any | None:
        self._run_dir(handle)
        try:
            return self.client.containers.get(handle)
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise TargetError(f"Docker Engine API at {self.docker_url} is unreachable: {exc}") from exc

    def _api_error(self, what: str, exc: Exception) -> TargetError:
        if isinstance(exc, docker.errors.APIError):
            return TargetError(f"{what}: {exc.explanation or exc}")
        return TargetError(f"{what}: Docker Engine API at {self.docker_url} is unreachable: {exc}")

    def _ensure_image(self, image: str) -> None:
        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._api_error(f"cannot look up image {image}", exc) from exc
        # Podman 4.3's compat pull (/images/create) ignores tlsVerify; its libpod pull honours it.
        # Docker has no libpod API and treats loopback registries as insecure by default. The SDK's
        # pull() can pass neither, so the request goes through its (underscore) helpers.
        api = self.client.api
        insecure = not self.registry_tls_verify or _is_loopback_registry(image)
        try:
            if self._is_podman():
                path, params = "/libpod/images/pull", {"reference": image, "policy": "missing"}
                if insecure:
                    params["tlsVerify"] = "false"
            else:
                path, params = "/images/create", {"fromImage": image}
            # the runner's own pull credentials, for the image's registry only (never sent elsewhere)
            creds = credentials_for(self.registry_auth_file, image)
            headers = {"X-Registry-Auth": docker.auth.encode_header(
                {"username": creds[0], "password": creds[1], "serveraddress": image.split("/", 1)[0]}).decode()
                } if creds else {}
            resp = api._post(api._url(path), params=params, stream=True, timeout=None, headers=headers)
            api._raise_for_status(resp)
            for event in api._stream_helper(resp, decode=True):
                if "error" in event or "errorDetail" in event:
                    message = (event.get("errorDetail") or {}).get("message") or event.get("error")
                    raise TargetError(f"cannot pull image {image}: {message}")
            self.client.images.get(image)
        except TargetError:
            raise
        except docker.errors.ImageNotFound as exc:
            raise TargetError(f"cannot pull image {image}: the engine has no such image after the pull") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._api_error(f"cannot pull image {image}", exc) from exc

    def _is_podman(self) -> bool:
        if self._podman is None:
            # the engine behind our own client is known; a client a caller passed in is asked
            self._podman = _engine(self.docker_url).podman if self._client_is_ours else any(
                "podman" in (c.get("Name") or "").lower() for c in self.client.version().get("Components") or [])
        return self._podman

    def _prepare(self, request: RunRequest, run_dir: Path) -> dict[str, dict[str, str]]:
        if request.code.path is None:
            raise TargetError("the local target needs the code archive as a local path")
        work, outputs = run_dir / "work", run_dir / "outputs"
        run_dir.mkdir(parents=True, mode=0o700)
        work.mkdir()
        outputs.mkdir()
        unpack_code(Path(request.code.path), work)
        _give_to_run_user(work)
        _give_to_run_user(outputs)
        volumes = {str(work): {"bind": WORKDIR, "mode": "rw"}, str(outputs): {"bind": OUTPUTS, "mode": "rw"}}
        for dataset in request.datasets:
            mount = PurePosixPath(dataset.mount)
            if dataset.path is None:
                raise TargetError(f"the local target needs dataset {dataset.mount} as a local path")
            if not mount.is_absolute() or ".." in mount.parts or str(mount) in (WORKDIR, OUTPUTS, "/", "/tmp"):
                raise TargetError(f"dataset mount point {dataset.mount!r} is not allowed")
            source = Path(dataset.path)
            if not source.exists():
                raise TargetError(f"dataset file {source} for {dataset.mount} does not exist")
            volumes[str(source.resolve())] = {"bind": str(mount), "mode": "ro"}
        return volumes

    def _start_watchdog(self, handle: str, timeout_seconds: int) -> None:
        timer = threading.Timer(timeout_seconds + 0.5, self._watchdog, args=(handle,))
        timer.daemon = True
        with self._lock:
            self._watchdogs[handle] = timer
        timer.start()

    def _stop_watchdog(self, handle: str) -> None:
        with self._lock:
            timer = self._watchdogs.pop(handle, None)
        if timer is not None:
            timer.cancel()

    def _watchdog(self, handle: str) -> None:
        with self._lock:
            self._watchdogs.pop(handle, None)
        try:
            self.status(handle)  # kills the run when it is over time
        except Exception:  # noqa: BLE001 - the next status() call enforces it again
            log.exception("timeout watchdog of %s failed", handle)

    def _mark_killed(self, handle: str, why: str) -> None:
        run_dir = self._found_run_dir(handle)
        if run_dir.is_dir():
            marker = run_dir / "killed"
            if not marker.exists():
                marker.write_text(why)

    def _killed(self, handle: str) -> str:
        try:
            return (self._found_run_dir(handle) / "killed").read_text().strip()
        except OSError:
            return ""

    def _kill(self, container: Any) -> None:
        try:
            container.kill()
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            try:
                container.reload()
            except docker.errors.NotFound:
                return
            if container.attrs["State"].get("Status") in ("running", "paused", "stopping"):
                raise self._api_error(f"cannot kill run container {container.name}", exc) from exc
            return  # it had stopped already: nothing to kill
        except requests.RequestException as exc:
            raise self._api_error(f"cannot kill run container {container.name}", exc) from exc
        deadline = time.monotonic() + _KILL_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                container.reload()
            except docker.errors.NotFound:
                return
            if container.attrs["State"].get("Status") not in ("running", "paused", "stopping"):
                return
            time.sleep(0.1)

    # -- Target ------------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> str:
        handle = _handle_for(request.run_id)
        run_dir = self._run_dir(handle)
        limits = request.limits
        self._ensure_image(request.image)
        # A leftover of an earlier submit of this run (never recorded by the runner) is replaced.
        self.cleanup(handle)
        try:
            volumes = self._prepare(request, run_dir)
            # The low-level calls: the model's containers.create() inspects the new container once
            # more before returning it, a request the run does not need before it starts.
            api = self.client.api
            host_config = api.create_host_config(
                binds=volumes,
                network_mode="bridge" if limits.network else "none",
                read_only=True,
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmp_bytes},mode=1777"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                nano_cpus=limits.cpu_millis * 1_000_000,
                mem_limit=limits.memory_bytes,
                memswap_limit=limits.memory_bytes,
                pids_limit=limits.pids,
            )
            created = api.create_container(
                request.image,
                request.command,
                name=handle,
                working_dir=WORKDIR,
                user=f"{RUN_UID}:{RUN_GID}",
                environment={**request.env, "HOME": "/tmp"},
                volumes=[bind["bind"] for bind in volumes.values()],
                labels={LABEL: request.run_id, TIMEOUT_LABEL: str(limits.timeout_seconds),
                        MEMORY_LABEL: str(limits.memory_bytes),
                        **({INSTALLATION_LABEL: self.installation} if self.installation else {})},
                host_config=host_config,
                detach=True,
            )
            api.start(created["Id"])
        except TargetError:
            self.cleanup(handle)
            raise
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            self.cleanup(handle)
            raise self._api_error(f"cannot start run {request.run_id} in {request.image}", exc) from exc
        self._start_watchdog(handle, limits.timeout_seconds)
        return handle

    def status(self, handle: str) -> Status:
        container = self._container(handle)
        if container is None:
            return Status(State.GONE, reason="the run container no longer exists")
        state = container.attrs.get("State") or {}
        labels = container.labels or {}
        timeout = int(labels.get(TIMEOUT_LABEL, "0") or 0)
        memory = int(labels.get(MEMORY_LABEL, "0") or 0)
        status = state.get("Status", "")
        if status in ("running", "paused", "stopping"):
            started = _parse_time(state.get("StartedAt", ""))
            if timeout and started is not None and time.time() - started > timeout:
                self._mark_killed(handle, "timeout")
                self._kill(container)
                after = self._status_after_kill(handle)
                if after is not None:
                    return after
                return Status(State.RUNNING, timed_out=True, reason=f"timed out after {timeout} s; being killed")
            return Status(State.RUNNING)
        killed = self._killed(handle)
        if status in ("created", "configured", "initialized"):
            if killed == "cancelled":  # cancelled before it started
                return Status(State.EXITED, reason="cancelled")
            return Status(State.PENDING)
        if status in ("exited", "stopped", "dead"):
            self._stop_watchdog(handle)
            code = state.get("ExitCode")
            started, finished = _parse_time(state.get("StartedAt", "")), _parse_time(state.get("FinishedAt", ""))
            if not killed and code == 137 and timeout and started and finished and finished - started >= timeout:
                killed = "timeout"  # the marker is lost (work directory gone) but the timing tells
            if killed == "timeout":
                return Status(State.EXITED, exit_code=code, timed_out=True,
                              reason=f"timed out after {timeout} s; killed")
            if killed == "cancelled":
                return Status(State.EXITED, exit_code=code, reason="cancelled")
            mib = memory >> 20
            if state.get("OOMKilled"):
                return Status(State.EXITED, exit_code=code, reason=f"out of memory (limit {mib} MiB)")
            if code == 137:
                return Status(State.EXITED, exit_code=code,
                              reason=f"killed (SIGKILL), most likely out of memory (limit {mib} MiB)")
            if state.get("Error"):
                return Status(State.FAILED, exit_code=code, reason=f"the container failed: {state['Error']}")
            return Status(State.EXITED, exit_code=code)
        if status == "removing":
            return Status(State.GONE, reason="the run container is being removed")
        return Status(State.FAILED, reason=f"the run container is in state {status!r}")

    def _status_after_kill(self, handle: str) -> Status | None:
        """The status once a kill took effect; None while the container still runs."""
        container = self._container(handle)
        if container is None:
            return Status(State.GONE, reason="the run container no longer exists")
        if container.attrs.get("State", {}).get("Status") in ("running", "paused", "stopping"):
            return None
        return self.status(handle)

    def logs(self, handle: str, *, follow: bool = False) -> Iterator[str]:
        container = self._container(handle)
        if container is None:
            return
        try:
            if not follow:
                yield from container.logs(stdout=True, stderr=True).decode(errors="replace").splitlines()
                return
            pending = b""
            for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if pending:
                yield pending.decode(errors="replace")
        except docker.errors.NotFound:
            return
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._api_error(f"cannot read the logs of {handle}", exc) from exc

    def cancel(self, handle: str) -> None:
        self._stop_watchdog(handle)
        container = self._container(handle)
        if container is None:
            return
        if container.attrs.get("State", {}).get("Status") in ("running", "paused", "stopping", "created"):
            self._mark_killed(handle, "cancelled")
        self._kill(container)

    def collect(self, handle: str, dest: Path, *, max_bytes: int | None = None) -> None:
        """Copy regular files and directories of ``/outputs`` into ``dest``; symlinks, devices and
        FIFOs are skipped and nothing is ever followed out of the outputs directory."""
        limit = self.max_output_bytes if max_bytes is None else max_bytes
        source = self._found_run_dir(handle) / "outputs"
        if not source.is_dir() or source.is_symlink():
            raise TargetError(f"run {handle} has no outputs directory (already cleaned up?)")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        total = 0
        # fwalk works on directory fds and never follows symlinks: a run cannot swap a directory
        # for a link to somewhere else on the host between listing and copying.
        for dirpath, dirnames, filenames, dirfd in os.fwalk(source, follow_symlinks=False):
            rel = Path(dirpath).relative_to(source)
            (dest / rel).mkdir(parents=True, exist_ok=True)
            for name in filenames:
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
                except OSError:  # a symlink (ELOOP) or vanished: skipped
                    continue
                with os.fdopen(fd, "rb") as src:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        continue
                    with open(dest / rel / name, "wb") as out:
                        while chunk := src.read(1 << 20):
                            total += len(chunk)
                            if total > limit:
                                raise TargetError(
                                    f"the run's outputs exceed the limit of {limit} bytes; nothing more was copied")
                            out.write(chunk)
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]

    def cleanup(self, handle: str) -> None:
        self._stop_watchdog(handle)
        run_dir = self._found_run_dir(handle)  # before the container that names it is removed
        try:
            self.client.containers.get(handle).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._api_error(f"cannot remove run container {handle}", exc) from exc
        if run_dir.is_symlink():
            run_dir.unlink()
        elif run_dir.exists():
            shutil.rmtree(run_dir)
        self._found.pop(handle, None)

    def owned(self) -> list[Owned]:
        return [Owned(run_id=c.labels[LABEL], handle=c.name) for c in self._listed() if LABEL in c.labels]

    def _listed(self) -> list[Any]:
        try:
            labels = [LABEL] + ([f"{INSTALLATION_LABEL}={self.installation}"] if self.installation else [])
            return self.client.containers.list(all=True, filters={"label": labels})
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._api_error("cannot list run containers", exc) from exc

    def mounted(self) -> set[Path]:
        """Host paths bind-mounted into this installation's run containers (any replica's, running or
        not): a run directory or downloaded input under one of them is still some run's."""
        paths: set[Path] = set()
        for container in self._listed():
            try:
                mounts = self.client.api.inspect_container(container.id).get("Mounts") or []
            except docker.errors.NotFound:  # removed meanwhile
                continue
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise self._api_error(f"cannot inspect run container {container.name}", exc) from exc
            paths.update(Path(m["Source"]) for m in mounts if m.get("Source"))
        return paths
