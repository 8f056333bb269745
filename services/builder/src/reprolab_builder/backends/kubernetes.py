"""Build as a Kubernetes Job running rootless buildah (the manifests live in ``k8s_manifests``).

The control loop: tar the context deterministically, put it in the object store, presign a GET
URL, create the Job, poll it until it succeeds, fails or the deadline passes while following the
build container's log, read the pushed digest from the container's termination message, and
delete the Job (and the context object) whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from reprolab_common.objectstore import ObjectStore

from .. import k8s_manifests as manifests
from ..config import BuilderSettings
from .base import BuildBackend, BuildError, BuildResult, LogSink, register

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
CONTEXT_PREFIX = "build-contexts"


def deterministic_tar(context: Path, dest: Path) -> None:
    """Write ``context`` as a tar whose bytes depend only on file names, contents and exec bits."""
    paths = sorted(context.rglob("*"), key=lambda p: p.relative_to(context).as_posix())
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            rel = path.relative_to(context).as_posix()
            st = path.lstat()
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                info.size = st.st_size
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)


def _default_api_client() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


@register("kubernetes")
class KubernetesBackend(BuildBackend):
    """Runs each build as a Job in ``REPROLAB_BUILDER_KUBERNETES_NAMESPACE``.

    Needs an S3 object store the cluster can reach (for the presigned context URL) and a Secret
    ``registry_secret`` with an ``auth.json`` key (containers-auth.json) for the registry.
    ``build_volumes`` cannot be mounted into a pod: the context must be self-contained.
    """

    def __init__(self, settings: BuilderSettings, store: ObjectStore | None = None, *,
                 api_client: kubernetes.client.ApiClient | None = None,
                 registry_secret: str | None = None,
                 resources: dict[str, Any] | None = None,
                 deadline_seconds: int = 3600,
                 poll_interval: float = 2.0,
                 watch_slack_seconds: float = 120.0) -> None:
        self.settings = settings
        self.store = store
        self._api_client = api_client
        self.registry_secret = registry_secret or settings.kubernetes_registry_secret
        self.resources = resources or {"requests": {"cpu": "500m", "memory": "1Gi"},
                                       "limits": {"memory": "4Gi", "ephemeral-storage": "20Gi"}}
        self.deadline_seconds = deadline_seconds
        self.poll_interval = poll_interval
        self.watch_slack_seconds = watch_slack_seconds

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        if self._api_client is None:
            self._api_client = _default_api_client()
        return self._api_client

    def build_and_push(self, context: Path, image_ref: str, *, log: LogSink,
                       build_volumes: dict[str, Path] | None = None, one_layer: bool = False) -> BuildResult:
        # The build Job always commits one layer (``--layers=false``), so ``one_layer`` changes nothing here
        if build_volumes:
            raise ValueError("the kubernetes backend needs a self-contained context; build_volumes are not supported")
        if self.store is None:
            raise ValueError("the kubernetes backend needs an object store for build contexts")
        if not (context / "Containerfile").is_file():
            raise BuildError(f"no Containerfile in build context {context}")

        build_id = uuid.uuid4().hex[:12]
        name = f"reprolab-build-{build_id}"
        namespace = self.settings.kubernetes_namespace
        key = f"{CONTEXT_PREFIX}/{build_id}.tar"
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "context.tar"
            deterministic_tar(context, archive)
            self.store.put_file(key, archive)
        try:
            url = self.store.presigned_get_url(key, expires=self.deadline_seconds + 600)
            job = manifests.make_build_job(
                name=name, namespace=namespace, builder_image=self.settings.kubernetes_builder_image,
                context_url=url, image_ref=image_ref, registry_secret=self.registry_secret,
                labels=manifests.build_labels(build_id), resources=self.resources,
                active_deadline_seconds=self.deadline_seconds,
                insecure_registry=not self.settings.registry_tls_verify,
                seccomp_profile=self.settings.kubernetes_seccomp_profile,
            )
            batch = kubernetes.client.BatchV1Api(self.api_client)
            core = kubernetes.client.CoreV1Api(self.api_client)
            try:
                batch.create_namespaced_job(namespace, job)
            except ApiException as exc:
                raise BuildError(f"could not create build Job {namespace}/{name}: {exc.status} {exc.reason}") from exc
            except urllib3.exceptions.HTTPError as exc:
                raise BuildError(f"Kubernetes API server is unreachable: {exc}") from exc
            log(f"created build Job {namespace}/{name}")
            try:
                digest = self._wait(batch, core, namespace, name, build_id, log)
            finally:
                self._delete_job(batch, namespace, name, log)
        finally:
            self.store.delete(key)
        return BuildResult(image_ref=image_ref, digest=digest)

    # -- the watch loop ------------------------------------------------------------------------

    def _wait(self, batch: Any, core: Any, namespace: str, name: str, build_id: str, log: LogSink) -> str:
        # The Job's own activeDeadlineSeconds kills the pod; this deadline (a little later) guards
        # against a cluster that never schedules it or never reports back.
        deadline = time.monotonic() + self.deadline_seconds + self.watch_slack_seconds
        logged = False
        while True:
            job = self._api(batch.read_namespaced_job, name, namespace)
            pod = self._build_pod(core, namespace, build_id)
            if pod is not None and not logged and _started(pod, manifests.BUILD_CONTAINER):
                self._follow_log(core, namespace, pod.metadata.name, log, deadline)
                logged = True
            status = job.status
            if status is not None and (status.succeeded or 0) > 0:
                pod = self._build_pod(core, namespace, build_id)
                if pod is not None and not logged:
                    self._follow_log(core, namespace, pod.metadata.name, log, deadline)
                return _digest_from(pod)
            if status is not None and ((status.failed or 0) > 0 or _condition(job, "Failed") is not None):
                pod = self._build_pod(core, namespace, build_id)
                if pod is not None and not logged and _started(pod, manifests.BUILD_CONTAINER):
                    self._follow_log(core, namespace, pod.metadata.name, log, deadline)
                raise BuildError(_failure_message(job, pod))
            if time.monotonic() > deadline:
                raise BuildError(f"build Job {namespace}/{name} did not finish within {self.deadline_seconds}s")
            time.sleep(self.poll_interval)

    @staticmethod
    def _api(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise BuildError(f"Kubernetes API error ({fn.__name__}): {exc.status} {exc.reason}"
                             f" {_status_message(exc)}".rstrip()) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise BuildError(f"Kubernetes API server is unreachable ({fn.__name__}): {exc}") from exc

    def _build_pod(self, core: Any, namespace: str, build_id: str) -> Any:
        pods = self._api(core.list_namespaced_pod, namespace,
                         label_selector=f"{manifests.BUILD_ID_LABEL}={build_id}").items
        pods = [p for p in pods if (p.metadata.labels or {}).get(manifests.BUILD_ID_LABEL) == build_id]
        # backoffLimit is 0, so there is at most one pod; pick the newest defensively.
        pods.sort(key=lambda p: (p.metadata.creation_timestamp is not None, p.metadata.creation_timestamp or 0))
        return pods[-1] if pods else None

    def _follow_log(self, core: Any, namespace: str, pod: str, log: LogSink, deadline: float) -> None:
        try:
            resp = core.read_namespaced_pod_log(
                pod, namespace, container=manifests.BUILD_CONTAINER, follow=True, _preload_content=False,
                _request_timeout=max(1.0, deadline - time.monotonic()))
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            log(f"could not read the build log: {exc}")
            return
        buffer = b""
        try:
            for chunk in resp.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    log(line.decode("utf-8", "replace").rstrip("\r"))
            if buffer:
                log(buffer.decode("utf-8", "replace"))
        except Exception as exc:  # a dropped log stream must not fail the build; status decides
            log(f"build log stream ended: {exc}")
        finally:
            resp.release_conn()

    def _delete_job(self, batch: Any, namespace: str, name: str, log: LogSink) -> None:
        try:
            batch.delete_namespaced_job(name, namespace, body=kubernetes.client.V1DeleteOptions(
                propagation_policy="Background"))
        except urllib3.exceptions.HTTPError as exc:
            log(f"could not delete build Job {namespace}/{name}: {exc}")
        except ApiException as exc:
            if exc.status != 404:
                # ttlSecondsAfterFinished removes it eventually; the build result stands.
                log(f"could not delete build Job {namespace}/{name}: {exc.status} {exc.reason}")


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the Status object the API server answers errors with, if any."""
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:300]
    except (ValueError, AttributeError):
        return ""


def _container_status(pod: Any, container: str, *, init: bool = False) -> Any:
    statuses = (pod.status.init_container_statuses if init else pod.status.container_statuses) if pod.status else None
    return next((s for s in statuses or [] if s.name == container), None)


def _started(pod: Any, container: str) -> bool:
    status = _container_status(pod, container)
    return status is not None and status.state is not None and bool(status.state.running or status.state.terminated)


def _condition(job: Any, kind: str) -> Any:
    conditions = job.status.conditions if job.status else None
    return next((c for c in conditions or [] if c.type == kind and c.status == "True"), None)


def _digest_from(pod: Any) -> str:
    status = _container_status(pod, manifests.BUILD_CONTAINER) if pod is not None else None
    terminated = status.state.terminated if status is not None and status.state is not None else None
    message = (terminated.message or "").strip() if terminated is not None else ""
    if not _DIGEST.match(message):
        raise BuildError(f"build Job succeeded but reported no image digest (termination message {message!r})")
    return message


def _failure_message(job: Any, pod: Any) -> str:
    parts: list[str] = []
    if pod is not None:
        for container, init in ((manifests.FETCH_CONTAINER, True), (manifests.BUILD_CONTAINER, False)):
            status = _container_status(pod, container, init=init)
            state = status.state if status is not None else None
            if state is not None and state.terminated is not None and state.terminated.exit_code:
                t = state.terminated
                detail = (t.message or "").strip()
                suffix = f": {detail}" if detail else ""
                parts.append(f"{container} exited {t.exit_code} ({t.reason or 'Error'}){suffix}")
            elif state is not None and state.waiting is not None and state.waiting.reason:
                parts.append(f"{container} {state.waiting.reason}: {state.waiting.message or ''}".rstrip(": "))
        if pod.status is not None and (pod.status.reason or pod.status.message):
            parts.append(f"pod {pod.status.reason or ''}: {pod.status.message or ''}".strip())
    failed = _condition(job, "Failed")
    if failed is not None:
        parts.append(f"Job {failed.reason or 'Failed'}: {failed.message or ''}".rstrip(": "))
    return "build Job failed: " + ("; ".join(parts) or "no reason reported")

