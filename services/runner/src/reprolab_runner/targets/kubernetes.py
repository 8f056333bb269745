"""Runs as Kubernetes Jobs (the manifests, and the design of the pod, live in ``k8s_manifests``).

The handle is ``"<namespace>/<job name>"``. ``status`` reads the Job's conditions and its pod:

- Job ``Complete``: the run step finished; ``EXITED`` with the exit code its wrapper wrote into the
  run container's termination message (``state.terminated.message``), outputs uploaded.
- Job ``Failed`` with reason ``DeadlineExceeded``: ``EXITED`` with ``timed_out``.
- Job ``Failed`` otherwise (fetch or upload error, OOM, eviction): ``FAILED`` with the pod's
  reasons and messages.
- no Job: ``GONE``.

Outputs never pass through the runner's target: the pod's uploader PUTs ``outputs.tar.gz`` and
``status.json`` to their presigned URLs in ``RunRequest.output_urls`` (the run's transfer area,
``base.transfer_key``), so ``collect`` has nothing to copy and the runner fetches them from the
object store (this target holds no object-store credentials).

Every object carries the installation label too (``reprolab.org/installation``), and ``owned``
lists only this installation's Jobs, so two platforms sharing a namespace never reap each other's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from reprolab_common.registrytoken import grant_for

from . import k8s_manifests as manifests
from .base import Owned, RunRequest, State, Status, Target, TargetError, register

GRANT_SLACK_SECONDS = 3600
"""A run's pull grant outlives its timeout by this much (queueing, scheduling and the pull come first)."""


def _default_api_client() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


INSTALLATION_LABEL = "reprolab.org/installation"
"""``base.INSTALLATION_LABEL`` spelled as a Kubernetes label key."""


@register("kubernetes")
class KubernetesTarget(Target):
    """Each run is a Job (plus, without ``Limits.network``, a NetworkPolicy) in ``namespace``.

    The runner's service account needs :func:`k8s_manifests.make_runner_rbac` in that namespace,
    and the cluster a CNI that enforces NetworkPolicies. ``allowed_egress_cidrs`` (and
    ``allow_dns``) let the fetch/upload steps reach the object store behind the presigned URLs.
    """

    remote = True

    def __init__(self, settings: Any = None, *, namespace: str = "reprolab-runs",
                 api_client: kubernetes.client.ApiClient | None = None,
                 fetcher_image: str = manifests.DEFAULT_FETCHER_IMAGE,
                 allowed_egress_cidrs: Sequence[str] = (), allow_dns: bool = False, installation: str = "",
                 **_: Any) -> None:
        self.settings = settings
        self.installation = installation
        self.namespace = namespace
        self._api_client = api_client
        self.fetcher_image = fetcher_image
        self.allowed_egress_cidrs = tuple(allowed_egress_cidrs)
        self.allow_dns = allow_dns

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        if self._api_client is None:
            self._api_client = _default_api_client()
        return self._api_client

    @property
    def _batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api_client)

    @property
    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def _networking(self) -> kubernetes.client.NetworkingV1Api:
        return kubernetes.client.NetworkingV1Api(self.api_client)

    # -- Target ---------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> str:
        inputs = [(_url(request.code, "code"), manifests.WORK_DIR, request.code.sha256)]
        inputs += [(_url(d, f"dataset {d.mount}"), d.mount, d.sha256) for d in request.datasets]
        labels = {INSTALLATION_LABEL: self.installation} if self.installation else None
        # the kubelet pulls with a grant for this one image (the runner's password stays in the runner)
        grant = grant_for(getattr(self.settings, "registry_auth_file", None), request.image,
                          request.limits.timeout_seconds + GRANT_SLACK_SECONDS)
        try:
            secret = manifests.make_pull_secret(run_id=request.run_id, namespace=self.namespace,
                                                labels=labels, **grant) if grant else None
            job = manifests.make_run_job(
                run_id=request.run_id, namespace=self.namespace, image=request.image, command=request.command,
                inputs=inputs, outputs=request.output_urls, limits=request.limits,
                fetcher_image=self.fetcher_image, env=request.env, labels=labels,
                pull_secret=secret["metadata"]["name"] if secret else None)
            policy = manifests.make_network_policy(
                run_id=request.run_id, namespace=self.namespace, network=request.limits.network,
                allowed_egress_cidrs=self.allowed_egress_cidrs, allow_dns=self.allow_dns, labels=labels)
        except ValueError as exc:
            raise TargetError(str(exc)) from exc
        name = job["metadata"]["name"]
        handle = f"{self.namespace}/{name}"
        # The policy goes first so the pod never runs unconfined; a leftover one from an earlier
        # attempt of the same run is the same policy.
        if policy is not None:
            try:
                _call(self._networking.create_namespaced_network_policy, self.namespace, policy)
            except TargetError as exc:
                if _status_of(exc) != 409:
                    raise
        if secret is not None:
            try:
                _call(self._core.create_namespaced_secret, self.namespace, secret)
            except TargetError as exc:
                if _status_of(exc) != 409:  # an earlier attempt's grant for the same image
                    raise
        try:
            _call(self._batch.create_namespaced_job, self.namespace, job)
        except TargetError as exc:
            if _status_of(exc) == 409 and self._job_run_id(name) == request.run_id:
                return handle  # submitted before a restart: the same run, adopt it
            if policy is not None:
                self._delete(self._networking.delete_namespaced_network_policy, name)
            if secret is not None:
                self._delete(self._core.delete_namespaced_secret, name)
            raise
        return handle

    def status(self, handle: str) -> Status:
        namespace, name = _parse(handle)
        job = _get(self._batch.read_namespaced_job, name, namespace)
        if job is None or job.get("metadata", {}).get("deletionTimestamp"):
            return Status(State.GONE)
        run_id = job.get("metadata", {}).get("labels", {}).get(manifests.RUN_ID_LABEL, "")
        pod = self._pod(namespace, run_id) if run_id else None
        complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
        if complete is not None:
            run = _container_status(pod, manifests.RUN_CONTAINER, init=True)
            message = (((run or {}).get("state") or {}).get("terminated") or {}).get("message", "")
            try:
                return Status(State.EXITED, exit_code=int(message.strip()))
            except ValueError:
                return Status(State.EXITED, reason="the run finished but its exit code is no longer available")
        if failed is not None:
            if failed.get("reason") == "DeadlineExceeded":
                return Status(State.EXITED, timed_out=True,
                              reason=failed.get("message") or "the run exceeded its time limit")
            return Status(State.FAILED, reason=_failure_message(failed, pod))
        run = _container_status(pod, manifests.RUN_CONTAINER, init=True)
        state = (run or {}).get("state") or {}
        if state.get("running") or state.get("terminated") or (pod or {}).get("status", {}).get("phase") == "Running":
            return Status(State.RUNNING)
        return Status(State.PENDING, reason=_waiting_reason(pod))

    def logs(self, handle: str) -> Iterator[str]:
        """The run step's log so far (the student's stdout and stderr); nothing before it starts."""
        namespace, name = _parse(handle)
        job = _get(self._batch.read_namespaced_job, name, namespace)
        run_id = ((job or {}).get("metadata") or {}).get("labels", {}).get(manifests.RUN_ID_LABEL)
        pod = self._pod(namespace, run_id) if run_id else None
        if pod is None:
            return
        try:
            resp = self._core.read_namespaced_pod_log(pod["metadata"]["name"], namespace,
                                                      container=manifests.RUN_CONTAINER, _preload_content=False)
        except ApiException as exc:
            if exc.status in (400, 404):  # not started yet, or already gone
                return
            raise TargetError(f"Kubernetes API error (read_namespaced_pod_log): {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TargetError(f"Kubernetes API server is unreachable (read_namespaced_pod_log): {exc}") from exc
        try:
            text = resp.data.decode("utf-8", "replace")
        finally:
            resp.release_conn()
        yield from text.splitlines()

    def cancel(self, handle: str) -> None:
        namespace, name = _parse(handle)
        self._delete(self._batch.delete_namespaced_job, name, namespace)

    def collect(self, handle: str, dest: Path) -> None:
        """Nothing to copy: the pod's uploader already PUT ``outputs.tar.gz`` and ``status.json``
        to the run's transfer area, where the runner fetches them from the object store."""
        _parse(handle)
        dest.mkdir(parents=True, exist_ok=True)

    def cleanup(self, handle: str) -> None:
        namespace, name = _parse(handle)
        self._delete(self._batch.delete_namespaced_job, name, namespace)
        self._delete(self._networking.delete_namespaced_network_policy, name, namespace)
        self._delete(self._core.delete_namespaced_secret, name, namespace)

    def owned(self) -> list[Owned]:
        selector = f"{manifests.RUN_ID_LABEL},app.kubernetes.io/managed-by={manifests.MANAGED_BY}"
        if self.installation:
            selector += f",{INSTALLATION_LABEL}={self.installation}"
        jobs = _call(self._batch.list_namespaced_job, self.namespace, label_selector=selector, _preload_content=False)
        found = []
        for job in jobs.get("items", []):
            meta = job.get("metadata", {})
            labels = meta.get("labels") or {}
            managed = labels.get("app.kubernetes.io/managed-by") == manifests.MANAGED_BY
            mine = not self.installation or labels.get(INSTALLATION_LABEL) == self.installation
            if manifests.RUN_ID_LABEL not in labels or not managed or not mine:
                continue  # the selector is the server's job; a lenient server (or fake) is checked here
            run_id = (meta.get("annotations") or {}).get(manifests.RUN_ID_ANNOTATION) or labels[manifests.RUN_ID_LABEL]
            found.append(Owned(run_id=run_id, handle=f"{meta.get('namespace', self.namespace)}/{meta['name']}"))
        return found

    # -- helpers --------------------------------------------------------------------------------

    def _pod(self, namespace: str, run_id: str) -> dict[str, Any] | None:
        pods = _call(self._core.list_namespaced_pod, namespace, label_selector=f"{manifests.RUN_ID_LABEL}={run_id}",
                     _preload_content=False).get("items", [])
        pods = [p for p in pods if (p.get("metadata", {}).get("labels") or {}).get(manifests.RUN_ID_LABEL) == run_id]
        # backoffLimit is 0, so there is at most one pod; pick the newest defensively.
        pods.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
        return pods[-1] if pods else None

    def _job_run_id(self, name: str) -> str | None:
        job = _get(self._batch.read_namespaced_job, name, self.namespace)
        return ((job or {}).get("metadata", {}).get("annotations") or {}).get(manifests.RUN_ID_ANNOTATION)

    def _delete(self, fn: Any, name: str, namespace: str | None = None) -> None:
        try:
            _call(fn, name, namespace or self.namespace, _preload_content=False,
                  body=kubernetes.client.V1DeleteOptions(propagation_policy="Background"))
        except TargetError as exc:
            if _status_of(exc) != 404:
                raise


class _ApiError(TargetError):
    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def _status_of(exc: TargetError) -> int | None:
    return exc.status if isinstance(exc, _ApiError) else None


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the API; with ``_preload_content=False`` the answer is the parsed JSON (plain dicts)."""
    try:
        result = fn(*args, **kwargs)
    except ApiException as exc:
        raise _ApiError(f"Kubernetes API error ({fn.__name__}): {exc.status} {exc.reason}"
                        f" {_api_message(exc)}".rstrip(), exc.status) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _ApiError(f"Kubernetes API server is unreachable ({fn.__name__}): {exc}", None) from exc
    if kwargs.get("_preload_content") is False:
        try:
            return json.loads(result.data or b"{}")
        finally:
            result.release_conn()
    return result


def _get(fn: Any, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return _call(fn, name, namespace, _preload_content=False)
    except TargetError as exc:
        if _status_of(exc) == 404:
            return None
        raise


def _api_message(exc: ApiException) -> str:
    """The ``message`` of the Status object the API server answers errors with, if any."""
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:300]
    except (ValueError, AttributeError):
        return ""


def _url(item: Any, what: str) -> str:
    if not item.url:
        raise TargetError(f"the kubernetes target needs a presigned URL for the {what}, not a local path")
    return item.url


def _parse(handle: str) -> tuple[str, str]:
    namespace, sep, name = handle.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise TargetError(f"not a kubernetes run handle: {handle!r}")
    return namespace, name


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = (job.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def _container_status(pod: dict[str, Any] | None, container: str, *, init: bool = False) -> dict[str, Any] | None:
    status = (pod or {}).get("status") or {}
    statuses = status.get("initContainerStatuses" if init else "containerStatuses") or []
    return next((s for s in statuses if s.get("name") == container), None)


def _waiting_reason(pod: dict[str, Any] | None) -> str:
    for container, init in ((manifests.FETCH_CONTAINER, True), (manifests.RUN_CONTAINER, True)):
        waiting = (((_container_status(pod, container, init=init) or {}).get("state") or {}).get("waiting") or {})
        if waiting.get("reason") not in (None, "PodInitializing"):
            return f"{container} {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    return ""


def _failure_message(failed: dict[str, Any], pod: dict[str, Any] | None) -> str:
    parts: list[str] = []
    steps = ((manifests.FETCH_CONTAINER, True), (manifests.RUN_CONTAINER, True), (manifests.UPLOAD_CONTAINER, False))
    for container, init in steps:
        state = (_container_status(pod, container, init=init) or {}).get("state") or {}
        terminated, waiting = state.get("terminated") or {}, state.get("waiting") or {}
        if terminated and (terminated.get("exitCode") or terminated.get("reason") == "OOMKilled"):
            detail = (terminated.get("message") or "").strip()
            parts.append(f"{container} exited {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})"
                         + (f": {detail}" if detail else ""))
        elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
            parts.append(f"{container} {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": "))
    status = (pod or {}).get("status") or {}
    if status.get("reason") or status.get("message"):
        parts.append(f"pod {status.get('reason') or ''}: {status.get('message') or ''}".strip(": "))
    parts.append(f"Job {failed.get('reason') or 'Failed'}: {failed.get('message') or ''}".rstrip(": "))
    return "; ".join(parts)
