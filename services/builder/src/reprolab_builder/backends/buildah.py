"""Local, daemonless builds with buildah (the default on Linux), pushed with ``buildah push``."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import lock as _lock  # module import: lock imports backends.base (cycle-safe)
from ..config import BuilderSettings
from .base import BuildBackend, BuildError, BuildResult, LogSink, register

BUILD_TIMEOUT = 3600
logger = logging.getLogger(__name__)
# One-layer builds go straight to the registry; a thread then pulls each into local storage (by digest).
_LOCAL_COPIES: dict[str, threading.Thread] = {}
_COPIES_LOCK = threading.Lock()


def _repository(image_ref: str) -> str:
    """``host/ws/env:v1`` → ``host/ws/env`` (the tag goes; a port stays)."""
    name = image_ref.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def _from_ref(context: Path) -> str | None:
    """The Containerfile's FROM image."""
    try:
        text = (context / "Containerfile").read_text()
    except OSError:
        return None
    return next((line.split()[1] for line in text.splitlines() if line.startswith("FROM ")), None)


def _stream(cmd: list[str], log: LogSink, timeout: float = BUILD_TIMEOUT,
            on_line: Callable[[str], None] | None = None) -> tuple[int, list[str]]:
    """Run ``cmd``, passing each output line to ``log`` (and ``on_line``); return (exit code, last lines)."""
    tail: list[str] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                errors="replace")
    except FileNotFoundError as exc:
        raise BuildError(f"{cmd[0]} is not installed on the builder host") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        log(line)
        tail = (tail + [line])[-40:]
        if on_line is not None:
            on_line(line)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise BuildError(f"{Path(cmd[0]).name} did not finish within {timeout} s") from None
    return code, tail


@register("buildah")
class BuildahBackend(BuildBackend):
    def __init__(self, settings: BuilderSettings, store: object | None = None) -> None:
        self.settings = settings
        self.store = store

    def _insecure(self, ref: str) -> bool:
        host = _lock.registry_host(ref) or ""
        return host.startswith(("127.", "localhost")) and not self.settings.registry_tls_verify

    def remote_manifest(self, image_ref: str) -> tuple[str, dict] | None:
        """(digest, manifest) the tag points at in the registry; None if the tag does not exist.
        Raises BuildError when the registry cannot be reached."""
        host = _lock.registry_host(image_ref) or "docker.io"
        proc = subprocess.run(["skopeo", "inspect", "--raw", "--retry-times", "0",
                               f"--tls-verify={'true' if self.settings.registry_tls_verify else 'false'}",
                               *_lock.auth_flag(self.settings), f"docker://{image_ref}"],
                              capture_output=True, timeout=120)
        if proc.returncode == 0:
            return "sha256:" + hashlib.sha256(proc.stdout).hexdigest(), json.loads(proc.stdout)
        err = proc.stderr.decode(errors="replace")
        if re.search(r"manifest unknown|name unknown|not found|404", err, re.I) and \
                not re.search(r"connection refused|no such host|timeout|dial tcp", err, re.I):
            return None
        raise BuildError(f"registry {host} is unreachable: {_lock._tool_error(err)}")

    def build_and_push(self, context: Path, image_ref: str, *, log: LogSink,
                       build_volumes: dict[str, Path] | None = None, one_layer: bool = False) -> BuildResult:
        existing = self.remote_manifest(image_ref)  # also: fail fast when the registry is down
        self._await_local_copy(_from_ref(context), log)
        if existing is not None:  # built again: its local copy (if one is being made) first
            self._await_local_copy(f"{_repository(image_ref)}@{existing[0]}", log)
        if one_layer and existing is None:
            return self._build_into_registry(context, image_ref, log=log, build_volumes=build_volumes)
        cmd = self._bud(context, image_ref, ["--layers=false" if one_layer else "--layers",
                                             *self._pull_flags(context)], build_volumes)
        log(f"$ {' '.join(cmd)}")
        # The push starts as soon as buildah has tagged the image: buildah then still removes its build
        # containers (for a large Python layer, a second or more of deleting files), and the push needs
        # none of that. The bytes pushed are the same; only the waiting goes.
        early: list[tuple[threading.Thread, dict[str, object]]] = []
        tagged = f"Successfully tagged {image_ref}"

        def on_line(line: str) -> None:
            if existing is None and not early and line.strip() == tagged:
                outcome: dict[str, object] = {}
                thread = threading.Thread(target=self._push_into, args=(image_ref, log, outcome),
                                          name="reprolab-push", daemon=True)
                thread.start()
                early.append((thread, outcome))

        code, tail = _stream(cmd, log, on_line=on_line)
        if early:
            thread, outcome = early[0]
            thread.join()
        if code != 0:
            raise BuildError(f"image build failed: {_build_failure(tail)}")
        if existing is not None:
            digest, manifest = existing
            if manifest.get("config", {}).get("digest") == self._local_id(image_ref):
                log(f"{image_ref} is already in the registry as {digest}; not pushing again")
                return BuildResult(image_ref=image_ref, digest=digest)
            raise BuildError(f"tag {image_ref} already points at a different image ({digest}) in the registry; "
                             "a tag never points at two images")
        if early:
            if "error" in outcome:
                raise outcome["error"]  # type: ignore[misc]
            digest = str(outcome["digest"])
        else:
            digest = self._push(image_ref, log)
        log(f"pushed {image_ref}@{digest}")
        return BuildResult(image_ref=image_ref, digest=digest)

    def _bud(self, context: Path, target: str, flags: list[str],
             build_volumes: dict[str, Path] | None) -> list[str]:
        """The reproducible ``buildah bud`` of ``context`` into ``target`` (a local name or docker://...)."""
        cmd = ["buildah", "bud", "--timestamp", "0", "--identity-label=false", "--format", "oci", *flags,
               *_lock.auth_flag(self.settings)]
        for inside, host_dir in sorted((build_volumes or {}).items()):
            cmd += ["--volume", f"{host_dir}:{inside}:ro"]
        return cmd + ["-f", str(context / "Containerfile"), "-t", target, str(context)]

    def _build_into_registry(self, context: Path, image_ref: str, *, log: LogSink,
                             build_volumes: dict[str, Path] | None) -> BuildResult:
        """A one-layer build committed straight to the registry (``-t docker://...``): buildah writes the
        layer once, as it compresses and uploads it, instead of unpacking it into local storage and then
        reading it back to push it (issue 14 item 5: for 28 scientific packages that was 6 s of a 16 s
        build and push). The local copy that a derived build starts FROM follows in the background."""
        tls = "false" if (not self.settings.registry_tls_verify or self._pull_flags(context)) else "true"
        cmd = self._bud(context, f"docker://{image_ref}", ["--layers=false", f"--tls-verify={tls}"], build_volumes)
        log(f"$ {' '.join(cmd)}")
        code, tail = _stream(cmd, log)
        if code != 0:
            _raise_if_registry_down(image_ref, tail)
            raise BuildError(f"image build failed: {_build_failure(tail)}")
        pushed = self.remote_manifest(image_ref)
        if pushed is None:
            raise BuildError(f"buildah reported {image_ref} committed, but the registry does not have it")
        digest, manifest = pushed
        log(f"pushed {image_ref}@{digest}")
        self._keep_local_copy(image_ref, digest, manifest.get("config", {}).get("digest"))
        return BuildResult(image_ref=image_ref, digest=digest)

    def _keep_local_copy(self, image_ref: str, digest: str, config: str | None) -> None:
        """Pull what was just pushed into local storage, on a thread: a derived build starts FROM it (and
        waits for this pull rather than pulling again). It is pulled by its tag, so that removing the tag
        removes the image, and kept only if its config is the one just pushed. The build's log is closed
        by then: the thread reports to the service's logger."""
        pinned = f"{_repository(image_ref)}@{digest}"

        def pull() -> None:
            t0 = time.monotonic()
            tls = "true" if self.settings.registry_tls_verify else "false"
            cmd = ["buildah", "pull", "--quiet", f"--tls-verify={tls}", *_lock.auth_flag(self.settings), image_ref]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
                if proc.returncode != 0:  # a derived build FROM it pulls it itself
                    logger.warning("no local copy of %s: %s", pinned, _lock._tool_error(proc.stderr))
                elif config and self._local_id(image_ref) != config:
                    subprocess.run(["buildah", "rmi", image_ref], capture_output=True, timeout=120)
                    logger.warning("no local copy of %s: the tag %s moved while it was pulled", pinned, image_ref)
                else:
                    logger.info("local copy of %s kept (%.1f s)", pinned, time.monotonic() - t0)
            except (OSError, subprocess.SubprocessError) as exc:
                logger.warning("no local copy of %s: %s", pinned, exc)
            finally:
                with _COPIES_LOCK:
                    if _LOCAL_COPIES.get(pinned) is threading.current_thread():
                        del _LOCAL_COPIES[pinned]

        thread = threading.Thread(target=pull, name="reprolab-local-copy", daemon=True)
        with _COPIES_LOCK:
            _LOCAL_COPIES[pinned] = thread
        thread.start()

    def _await_local_copy(self, from_ref: str | None, log: LogSink) -> None:
        """Wait for the background local copy of the FROM image, if one is under way."""
        with _COPIES_LOCK:
            thread = _LOCAL_COPIES.get(from_ref or "")
        if thread is not None and thread.is_alive():
            t0 = time.monotonic()
            thread.join()
            log(f"waited {time.monotonic() - t0:.1f} s for the local copy of {from_ref}")

    @staticmethod
    def wait_for_local_copies(timeout: float | None = None) -> None:
        """Block until every background local copy under way has finished (tests, benchmarks)."""
        with _COPIES_LOCK:
            threads = list(_LOCAL_COPIES.values())
        for thread in threads:
            thread.join(timeout)

    def _push_into(self, image_ref: str, log: LogSink, outcome: dict[str, object]) -> None:
        try:
            outcome["digest"] = self._push(image_ref, log)
        except Exception as exc:  # handed to the build's thread, which raises it
            outcome["error"] = exc

    def _push(self, image_ref: str, log: LogSink) -> str:
        """``buildah push`` of the local ``image_ref`` to the same name in the registry; its digest."""
        with tempfile.TemporaryDirectory(prefix="reprolab-push-") as tmp:
            digestfile = Path(tmp) / "digest"
            push = ["buildah", "push", "--digestfile", str(digestfile),
                    f"--tls-verify={'true' if self.settings.registry_tls_verify else 'false'}",
                    *_lock.auth_flag(self.settings), image_ref, f"docker://{image_ref}"]
            log(f"$ {' '.join(push)}")
            code, tail = _stream(push, log)
            if code != 0:
                _raise_if_registry_down(image_ref, tail)
                raise BuildError(f"push of {image_ref} failed: {_lock._short(tail[-1] if tail else '', 300)}")
            return digestfile.read_text().strip()

    def _pull_flags(self, context: Path) -> list[str]:
        """``--tls-verify=false`` when the FROM image lives in an insecure (loopback) registry."""
        ref = _from_ref(context)
        if ref and (self._insecure(ref) or (_lock.registry_host(ref) == self.settings.registry
                                            and not self.settings.registry_tls_verify)):
            return ["--tls-verify=false"]
        return []

    def _local_id(self, image_ref: str) -> str | None:
        proc = subprocess.run(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", image_ref],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        return "sha256:" + proc.stdout.strip().removeprefix("sha256:")


def _raise_if_registry_down(image_ref: str, tail: list[str]) -> None:
    """A BuildError naming the registry when buildah's last lines say it could not be reached."""
    if re.search(r"connection refused|no such host|dial tcp|i/o timeout", "\n".join(tail), re.I):
        raise BuildError(f"registry {_lock.registry_host(image_ref)} is unreachable: {_lock._short(tail[-1], 300)}")


def _build_failure(tail: list[str]) -> str:
    errors = [ln for ln in tail if re.match(r"^(error|Error|ERROR|E:)", ln)]
    return _lock._short((errors[-1] if errors else (tail[-1] if tail else "buildah failed")), 400)
