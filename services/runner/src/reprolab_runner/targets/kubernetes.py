"""Runs as Kubernetes Jobs (the manifests, and the design of the pod, live in ``k8s_manifests``).

The handle is ``"<namespace>/<job name>"``. ``status`` reads the Job's conditions and its pod:

- run Job suspended: ``PENDING`` while the fetch Job works (resumed once it is ``Complete``),
  ``FAILED`` with the fetch pod's reasons if it failed.
- run Job ``Complete`` and upload Job ``Complete``: ``EXITED`` with the exit code the run's wrapper
  wrote into the run container's termination message (``state.terminated.message``), outputs
  uploaded; ``RUNNING`` while the upload Job works (resumed on the first look), ``FAILED`` if it failed.
- run Job ``Failed`` with reason ``DeadlineExceeded``: ``EXITED`` with ``timed_out``.
- run Job ``Failed`` otherwise (OOM of the wrapper, eviction): ``FAILED`` with the pod's reasons.
- no run Job: ``GONE``.

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
    """Each run is three Jobs in ``namespace`` (fetch, run, upload) sharing a claim, with two
    NetworkPolicies (``k8s_manifests``). ``status`` moves a run on: it resumes the suspended run
    Job once the fetch Job is Complete, and the upload Job once the run Job is Complete.

    The runner's service account needs :func:`k8s_manifests.make_runner_rbac` in that namespace,
    and the cluster a CNI that enforces NetworkPolicies (egress included). ``store_cidrs`` (and
    ``store_ports``) are where the fetch/upload steps may reach the object store behind the
    presigned URLs (empty: anywhere outside ``cluster_cidrs``); ``allow_dns`` lets those two steps
    resolve the URLs' host.
    """

    remote = True

    def __init__(self, settings: Any = None, *, namespace: str = "reprolab-runs",
                 api_client: kubernetes.client.ApiClient | None = None,
                 fetcher_image: str = manifests.DEFAULT_FETCHER_IMAGE,
                 allowed_egress_cidrs: Sequence[str] = (), allow_dns: bool = True, installation: str = "",
                 store_ports: Sequence[int] = (443,),
                 cluster_cidrs: Sequence[str] = manifests.DEFAULT_CLUSTER_CIDRS,
                 storage: str = manifests.DEFAULT_STORAGE, storage_class: str = "", **_: Any) -> None:
        self.settings = settings
        self.installation = installation
        self.namespace = namespace
        self._api_client = api_client
        self.fetcher_image = fetcher_image
        self.store_cidrs = tuple(allowed_egress_cidrs)
        self.store_ports = tuple(store_ports)
        self.allow_dns = allow_dns
        self.cluster_cidrs = tuple(cluster_cidrs)
        self.storage = storage
        self.storage_class = storage_class

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

    def _manifests(self, request: RunRequest, owner_uid: str | None) -> manifests.RunManifests:
        inputs = [(_url(request.code, "code"), manifests.WORK_DIR, request.code.sha256)]
        inputs += [(_url(d, f"dataset {d.mount}"), d.mount, d.sha256) for d in request.datasets]
        labels = {INSTALLATION_LABEL: self.installation} if self.installation else None
        # the kubelet pulls with a grant for this one image (the runner's password stays in the runner)
        grant = grant_for(getattr(self.settings, "registry_auth_file", None), request.image,
                          request.limits.timeout_seconds + GRANT_SLACK_SECONDS)
        try:
            secret = manifests.make_pull_secret(run_id=request.run_id, namespace=self.namespace,
                                                labels=labels, **grant) if grant else None
            return manifests.make_run_manifests(
                run_id=request.run_id, namespace=self.namespace, image=request.image, command=request.command,
                inputs=inputs, outputs=request.output_urls, limits=request.limits, owner_uid=owner_uid,
                fetcher_image=self.fetcher_image, env=request.env, labels=labels, pull_secret=secret,
                storage=self.storage, storage_class=self.storage_class, store_cidrs=self.store_cidrs,
                store_ports=self.store_ports, store_dns=self.allow_dns, cluster_cidrs=self.cluster_cidrs)
        except ValueError as exc:
            raise TargetError(str(exc)) from exc

    def submit(self, request: RunRequest) -> str:
        # Everything is built (and refused) before anything is created.
        job = self._manifests(request, None).job
        name = job["metadata"]["name"]
        handle = f"{self.namespace}/{name}"
        # The run Job comes first, suspended: it owns the rest (its uid is in their ownerReferences),
        # and none of the run's pods exists before both NetworkPolicies do.
        try:
            created = _call(self._batch.create_namespaced_job, self.namespace, job, _preload_content=False)
        except TargetError as exc:
            if _status_of(exc) != 409:
                raise
            created = _get(self._batch.read_namespaced_job, name, self.namespace) or {}
            if (created.get("metadata", {}).get("annotations") or {}).get(manifests.RUN_ID_ANNOTATION) != \
                    request.run_id:
                raise
            # submitted before a restart: the same run; create whatever of it is still missing
        uid = (created.get("metadata") or {}).get("uid")
        if not uid:
            raise TargetError(f"the Kubernetes API server answered the creation of Job {name} without a uid")
        run = self._manifests(request, uid)
        creators = {"NetworkPolicy": self._networking.create_namespaced_network_policy,
                    "PersistentVolumeClaim": self._core.create_namespaced_persistent_volume_claim,
                    "Secret": self._core.create_namespaced_secret,
                    "Job": self._batch.create_namespaced_job}
        try:
            for obj in run.owned():
                try:
                    _call(creators[obj["kind"]], self.namespace, obj, _preload_content=False)
                except TargetError as exc:
                    if _status_of(exc) != 409:  # an earlier attempt's object of the same run
                        raise
        except TargetError:
            self.cleanup(handle)
            raise
        return handle

    def _resume(self, name: str, namespace: str) -> None:
        _call(self._batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": False}},
              _preload_content=False)

    def status(self, handle: str) -> Status:
        namespace, name = _parse(handle)
        job = _get(self._batch.read_namespaced_job, name, namespace)
        if job is None or job.get("metadata", {}).get("deletionTimestamp"):
            return Status(State.GONE)
        run_id = job.get("metadata", {}).get("labels", {}).get(manifests.RUN_ID_LABEL, "")
        if (job.get("spec") or {}).get("suspend"):
            return self._fetching(namespace, name, run_id)
        pod = self._pod(namespace, run_id, manifests.RUN_STEP) if run_id else None
        complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
        if failed is not None:
            if failed.get("reason") == "DeadlineExceeded":
                return Status(State.EXITED, timed_out=True,
                              reason=failed.get("message") or "the run exceeded its time limit")
            return Status(State.FAILED, reason=_failure_message(failed, pod))
        if complete is not None:
            return self._uploading(namespace, name, run_id, pod)
        run = _container_status(pod, manifests.RUN_CONTAINER)
        state = (run or {}).get("state") or {}
        if state.get("running") or state.get("terminated") or (pod or {}).get("status", {}).get("phase") == "Running":
            return Status(State.RUNNING)
        return Status(State.PENDING, reason=_waiting_reason(pod, manifests.RUN_CONTAINER))

    def _fetching(self, namespace: str, name: str, run_id: str) -> Status:
        """The run Job is suspended: the fetch step decides."""
        fetch = _get(self._batch.read_namespaced_job, f"{name}-{manifests.FETCH_STEP}", namespace)
        if fetch is None:
            return Status(State.FAILED, reason="the run's fetch-inputs Job is gone")
        failed = _condition(fetch, "Failed")
        if failed is not None:
            pod = self._pod(namespace, run_id, manifests.FETCH_STEP)
            return Status(State.FAILED, reason=_failure_message(failed, pod))
        if _condition(fetch, "Complete") is not None:
            self._resume(name, namespace)
            return Status(State.PENDING, reason="inputs fetched; starting the run")
        pod = self._pod(namespace, run_id, manifests.FETCH_STEP)
        return Status(State.PENDING, reason=_waiting_reason(pod, manifests.FETCH_CONTAINER))

    def _uploading(self, namespace: str, name: str, run_id: str, pod: dict[str, Any] | None) -> Status:
        """The run step is Complete: the upload step decides; the exit code is the run pod's."""
        upload = _get(self._batch.read_namespaced_job, f"{name}-{manifests.UPLOAD_STEP}", namespace)
        if upload is None:
            return Status(State.FAILED, reason="the run's upload-outputs Job is gone")
        failed = _condition(upload, "Failed")
        if failed is not None:
            return Status(State.FAILED, reason=_failure_message(
                failed, self._pod(namespace, run_id, manifests.UPLOAD_STEP)))
        if _condition(upload, "Complete") is None:
            if (upload.get("spec") or {}).get("suspend"):
                self._resume(upload["metadata"]["name"], namespace)
            return Status(State.RUNNING)
        run = _container_status(pod, manifests.RUN_CONTAINER)
        message = (((run or {}).get("state") or {}).get("terminated") or {}).get("message", "")
        try:
            return Status(State.EXITED, exit_code=int(message.strip()))
        except ValueError:
            return Status(State.EXITED, reason="the run finished but its exit code is no longer available")

    def logs(self, handle: str) -> Iterator[str]:
        """The run step's log so far (the student's stdout and stderr); nothing before it starts."""
        namespace, name = _parse(handle)
        job = _get(self._batch.read_namespaced_job, name, namespace)
        run_id = ((job or {}).get("metadata") or {}).get("labels", {}).get(manifests.RUN_ID_LABEL)
        pod = self._pod(namespace, run_id, manifests.RUN_STEP) if run_id else None
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
        """Deletes the run Job, whose dependents the garbage collector removes (ownerReferences), and
        each dependent by name too: a cluster's GC does it eventually, this does it now (and covers
        objects an interrupted ``submit`` created before it knew the owner's uid)."""
        namespace, name = _parse(handle)
        self._delete(self._batch.delete_namespaced_job, name, namespace)
        for step in (manifests.FETCH_STEP, manifests.UPLOAD_STEP):
            self._delete(self._batch.delete_namespaced_job, f"{name}-{step}", namespace)
        for suffix in ("store", "run"):
            self._delete(self._networking.delete_namespaced_network_policy, f"{name}-{suffix}", namespace)
        self._delete(self._core.delete_namespaced_persistent_volume_claim, name, namespace)
        self._delete(self._core.delete_namespaced_secret, name, namespace)

    def owned(self) -> list[Owned]:
        selector = (f"{manifests.RUN_ID_LABEL},app.kubernetes.io/managed-by={manifests.MANAGED_BY},"
                    f"{manifests.STEP_LABEL}={manifests.RUN_STEP}")
        if self.installation:
            selector += f",{INSTALLATION_LABEL}={self.installation}"
        jobs = _call(self._batch.list_namespaced_job, self.namespace, label_selector=selector, _preload_content=False)
        found = []
        for job in jobs.get("items", []):
            meta = job.get("metadata", {})
            labels = meta.get("labels") or {}
            managed = labels.get("app.kubernetes.io/managed-by") == manifests.MANAGED_BY
            mine = not self.installation or labels.get(INSTALLATION_LABEL) == self.installation
            run_step = labels.get(manifests.STEP_LABEL) == manifests.RUN_STEP  # the owner of the rest
            if manifests.RUN_ID_LABEL not in labels or not managed or not mine or not run_step:
                continue  # the selector is the server's job; a lenient server (or fake) is checked here
            run_id = (meta.get("annotations") or {}).get(manifests.RUN_ID_ANNOTATION) or labels[manifests.RUN_ID_LABEL]
            found.append(Owned(run_id=run_id, handle=f"{meta.get('namespace', self.namespace)}/{meta['name']}"))
        return found

    # -- helpers --------------------------------------------------------------------------------

    def _pod(self, namespace: str, run_id: str, step: str) -> dict[str, Any] | None:
        want = {manifests.RUN_ID_LABEL: run_id, manifests.STEP_LABEL: step}
        pods = _call(self._core.list_namespaced_pod, namespace,
                     label_selector=",".join(f"{k}={v}" for k, v in want.items()),
                     _preload_content=False).get("items", [])
        pods = [p for p in pods if want.items() <= (p.get("metadata", {}).get("labels") or {}).items()]
        # backoffLimit is 0, so there is at most one pod; pick the newest defensively.
        pods.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "")
        return pods[-1] if pods else None

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


def _container_status(pod: dict[str, Any] | None, container: str) -> dict[str, Any] | None:
    status = (pod or {}).get("status") or {}
    statuses = status.get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == container), None)


def _waiting_reason(pod: dict[str, Any] | None, container: str) -> str:
    waiting = (((_container_status(pod, container) or {}).get("state") or {}).get("waiting") or {})
    if waiting.get("reason") not in (None, "ContainerCreating"):
        return f"{container} {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    return ""


def _failure_message(failed: dict[str, Any], pod: dict[str, Any] | None) -> str:
    parts: list[str] = []
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        container = status.get("name")
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated") or {}, state.get("waiting") or {}
        if terminated and (terminated.get("exitCode") or terminated.get("reason") == "OOMKilled"):
            detail = (terminated.get("message") or "").strip()
            parts.append(f"{container} exited {terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})"
                         + (f": {detail}" if detail else ""))
        elif waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            parts.append(f"{container} {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": "))
    status = (pod or {}).get("status") or {}
    if status.get("reason") or status.get("message"):
        parts.append(f"pod {status.get('reason') or ''}: {status.get('message') or ''}".strip(": "))
    parts.append(f"Job {failed.get('reason') or 'Failed'}: {failed.get('message') or ''}".rstrip(": "))
    return "; ".join(parts)
