"""The ``kubernetes`` serving target: each model version is a Deployment of the run's own image, a
ClusterIP Service and a HorizontalPodAutoscaler in the runs' namespace, plus the ConfigMap holding
``oip_server.py`` and the Secret holding the artifact's presigned GET URL (``manifests``, pure
functions; this module only talks to the API server, like ``targets/kubernetes.py`` for runs).

- The handle is ``"<namespace>/<name>"`` (``manifests.name_for``); ``upstream_url`` is the Service's
  cluster DNS name, which the gateway reaches from inside the cluster.
- Nothing is copied to the runner's host: the pod's init container downloads the artifact from the
  object store by presigned URL and checks its sha256. A URL lives ``kubernetes_model_url_seconds``
  (S3 allows 7 days at most). An init container runs again for every new pod (a reschedule, an
  eviction, a scale-up), not when a container restarts (the artifact stays in the pod's emptyDir),
  so :meth:`KubernetesServing.renew` re-signs the URL (and the kubelet's pull grant for the image,
  when the runner has registry credentials) once less than half of its life is left; the runner's
  deployer calls it every few minutes. The expiry is an annotation on the Deployment (the Secrets
  are written, never read).
- Readiness: the Deployment rolled out and available, which the pods' readiness probe on
  ``/v2/health/ready`` decides. ``alive`` is False, with the reason, when a pod's init or server
  container is in CrashLoopBackOff, cannot pull its image, exited with an error, or the Deployment
  cannot create pods (ReplicaFailure: Pod Security, quota) or gave up progressing.
- ``owned`` lists Deployments by the installation label, so two platforms sharing a namespace never
  stop each other's models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import kubernetes
from kubernetes.client.exceptions import ApiException
from reprolab_common.objectstore import ObjectStore, ObjectStoreUnsupported
from reprolab_common.registrytoken import grant_for

from ..sessions.targets import Started
from ..targets.base import TargetError
from ..targets.kubernetes import _call, _get, _status_of
from . import manifests
from .engine import MODEL_LABEL, ServingSpec, ServingTarget

log = logging.getLogger(__name__)

INIT_CONTAINER = "fetch-artifact"
SERVER_CONTAINER = "server"
KEY_ANNOTATION = "reprolab.org/artifact-key"
EXPIRES_ANNOTATION = "reprolab.org/credentials-expire"
"""Unix time at which the artifact URL (and pull grant) in the model's Secrets expire."""
INSTANCE_LABEL = "app.kubernetes.io/instance"
INSTALLATION_LABEL = "reprolab.org/installation"
FATAL_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
"""Waiting reasons that do not mend by themselves (ErrImagePull turns into ImagePullBackOff)."""


def _parse(handle: str) -> tuple[str, str]:
    namespace, sep, name = handle.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise TargetError(f"not a kubernetes model handle: {handle!r}")
    return namespace, name


class KubernetesServing(ServingTarget):
    name = "kubernetes"
    remote = True
    poll_seconds = 1.0

    def __init__(self, settings: Any, *, installation: str, store: ObjectStore, namespace: str | None = None,
                 api_client: kubernetes.client.ApiClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.installation = installation
        self.store = store
        self.namespace = namespace or getattr(settings, "kubernetes_namespace", "reprolab-runs")
        self.url_seconds = int(getattr(settings, "kubernetes_model_url_seconds", 7 * 24 * 3600))
        self.ready_timeout = float(getattr(settings, "kubernetes_model_ready_seconds", 600.0))
        self.max_replicas = int(getattr(settings, "kubernetes_model_max_replicas", 4))
        # the model pods' egress: the object store, as the run target's fetch pods (the same settings)
        self.policy = {"store_cidrs": list(getattr(settings, "kubernetes_egress_cidrs", [])),
                       "store_ports": list(getattr(settings, "kubernetes_store_ports", [443])),
                       "store_dns": bool(getattr(settings, "kubernetes_allow_dns", True)),
                       "cluster_cidrs": list(getattr(settings, "kubernetes_cluster_cidrs",
                                                     manifests.DEFAULT_CLUSTER_CIDRS))}
        self._api_client = api_client
        self.clock = clock

    # -- the API -----------------------------------------------------------------------------------

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        """From ``kubernetes_kubeconfig``, else the in-cluster service account (as the run target's)."""
        if self._api_client is None:
            kubeconfig = getattr(self.settings, "kubernetes_kubeconfig", "")
            try:
                if kubeconfig:
                    self._api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
                else:
                    kubernetes.config.load_incluster_config()
                    self._api_client = kubernetes.client.ApiClient()
            except (kubernetes.config.ConfigException, OSError) as exc:
                raise TargetError(f"the kubernetes serving target has no cluster: {exc}; set "
                                  "REPROLAB_RUNNER_KUBERNETES_KUBECONFIG or run the runner in the cluster") from None
        return self._api_client

    @property
    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def _apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api_client)

    @property
    def _autoscaling(self) -> kubernetes.client.AutoscalingV2Api:
        return kubernetes.client.AutoscalingV2Api(self.api_client)

    def _verbs(self, kind: str) -> tuple[Any, Any, Any]:
        """(create, patch, delete) of one kind."""
        core, apps, hpa = self._core, self._apps, self._autoscaling
        net = kubernetes.client.NetworkingV1Api(self.api_client)
        return {
            "NetworkPolicy": (net.create_namespaced_network_policy, net.patch_namespaced_network_policy,
                              net.delete_namespaced_network_policy),
            "ConfigMap": (core.create_namespaced_config_map, core.patch_namespaced_config_map,
                          core.delete_namespaced_config_map),
            "Secret": (core.create_namespaced_secret, core.patch_namespaced_secret, core.delete_namespaced_secret),
            "Deployment": (apps.create_namespaced_deployment, apps.patch_namespaced_deployment,
                           apps.delete_namespaced_deployment),
            "Service": (core.create_namespaced_service, core.patch_namespaced_service,
                        core.delete_namespaced_service),
            "HorizontalPodAutoscaler": (hpa.create_namespaced_horizontal_pod_autoscaler,
                                        hpa.patch_namespaced_horizontal_pod_autoscaler,
                                        hpa.delete_namespaced_horizontal_pod_autoscaler),
        }[kind]

    def _apply(self, obj: dict[str, Any]) -> None:
        """Create, or (an earlier attempt's object of the same name) replace its content by a patch."""
        create, patch, _ = self._verbs(obj["kind"])
        try:
            _call(create, self.namespace, obj, _preload_content=False)
        except TargetError as exc:
            if _status_of(exc) != 409:
                raise
            _call(patch, obj["metadata"]["name"], self.namespace, obj, _preload_content=False)

    def _delete(self, kind: str, name: str, namespace: str) -> None:
        _, _, delete = self._verbs(kind)
        try:
            _call(delete, name, namespace, _preload_content=False,
                  body=kubernetes.client.V1DeleteOptions(propagation_policy="Background"))
        except TargetError as exc:
            if _status_of(exc) != 404:
                raise

    # -- credentials the pods use --------------------------------------------------------------

    def _presign(self, key: str) -> str:
        try:
            return self.store.presigned_get_url(key, self.url_seconds)
        except ObjectStoreUnsupported as exc:
            raise TargetError("model servers on kubernetes fetch the artifact by presigned URL, which needs "
                              f"REPROLAB_OBJECT_STORE=s3 ({exc})") from None

    def _grant(self, image: str) -> dict[str, str] | None:
        return grant_for(getattr(self.settings, "registry_auth_file", None), image, self.url_seconds)

    # -- ServingTarget -------------------------------------------------------------------------------

    def start(self, spec: ServingSpec) -> Started:
        if not spec.artifact_key or not spec.artifact_sha256:
            raise TargetError("the kubernetes serving target needs the artifact's object key and sha256")
        name = manifests.name_for(spec)
        handle = f"{self.namespace}/{name}"
        expires = int(self.clock()) + self.url_seconds
        url = self._presign(spec.artifact_key)
        docs = manifests.make_model_manifests(
            spec, namespace=self.namespace, installation=self.installation, artifact_url=url,
            artifact_sha256=spec.artifact_sha256, max_replicas=self.max_replicas, pull_grant=self._grant(spec.image),
            policy=self.policy)
        (dep,) = [d for d in docs if d["kind"] == "Deployment"]
        dep["metadata"]["annotations"] |= {KEY_ANNOTATION: spec.artifact_key, EXPIRES_ANNOTATION: str(expires)}
        try:
            for doc in docs:
                self._apply(doc)
        except TargetError as exc:
            try:
                self.stop(handle)
            except TargetError:
                pass
            raise TargetError(f"cannot start model {spec.model_id} on kubernetes: {exc}") from exc
        return Started(handle=handle, upstream_url=manifests.upstream_url(spec, self.namespace))

    def ready(self, started: Started, http: httpx.Client) -> bool:
        """The Deployment rolled out (as ``kubectl rollout status``) with every updated replica available."""
        namespace, name = _parse(started.handle)
        dep = _get(self._apps.read_namespaced_deployment, name, namespace)
        if dep is None:
            return False
        status, meta = dep.get("status") or {}, dep.get("metadata") or {}
        wanted = (dep.get("spec") or {}).get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        return (status.get("observedGeneration", 0) >= meta.get("generation", 0) and updated >= max(wanted, 1)
                and status.get("replicas", 0) == updated and status.get("availableReplicas", 0) >= updated)

    def alive(self, handle: str) -> tuple[bool, str]:
        namespace, name = _parse(handle)
        dep = _get(self._apps.read_namespaced_deployment, name, namespace)
        if dep is None or (dep.get("metadata") or {}).get("deletionTimestamp"):
            return False, "the model server's Deployment no longer exists"
        status = dep.get("status") or {}
        if status.get("availableReplicas", 0) >= 1:
            return True, ""  # serving, whatever another replica does
        for pod in self._pods(namespace, name):
            why = _pod_failure(pod)
            if why:
                return False, why
        for cond in status.get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                return False, f"the Deployment cannot create pods: {cond.get('message') or cond.get('reason')}"
            if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
                return False, f"the Deployment made no progress: {cond.get('message') or ''}".rstrip(": ")
        return True, ""

    def logs(self, handle: str, tail: int = 30) -> str:
        """The server container's last lines, or the init container's while it has not succeeded (the
        previous run's when the container waits to restart)."""
        namespace, name = _parse(handle)
        try:
            pods = self._pods(namespace, name)
        except TargetError:
            return ""
        if not pods:
            return ""
        pod = next((p for p in pods if _pod_failure(p)), pods[-1])
        status = pod.get("status") or {}
        init = _status(status.get("initContainerStatuses"), INIT_CONTAINER)
        fetched = ((init or {}).get("state") or {}).get("terminated", {}).get("exitCode") == 0
        container, cstatus = (SERVER_CONTAINER, _status(status.get("containerStatuses"), SERVER_CONTAINER)) \
            if fetched else (INIT_CONTAINER, init)
        previous = bool(((cstatus or {}).get("state") or {}).get("waiting")
                        and ((cstatus or {}).get("lastState") or {}).get("terminated"))
        try:
            resp = self._core.read_namespaced_pod_log(pod["metadata"]["name"], namespace, container=container,
                                                      tail_lines=tail, previous=previous, _preload_content=False)
        except (ApiException, kubernetes.client.exceptions.OpenApiException, OSError) as exc:
            log.info("no log of model server %s: %s", handle, exc)
            return ""
        try:
            return resp.data.decode("utf-8", "replace")
        finally:
            resp.release_conn()

    def stop(self, handle: str) -> None:
        namespace, name = _parse(handle)
        for kind, obj in (("HorizontalPodAutoscaler", name), ("Service", name), ("Deployment", name),
                          ("Secret", f"{name}-artifact"), ("Secret", f"{name}-pull"),
                          ("ConfigMap", f"{name}-server"), ("NetworkPolicy", name)):
            self._delete(kind, obj, namespace)

    def owned(self) -> dict[str, str]:
        return {dep["metadata"]["annotations"][MODEL_LABEL]: f"{self.namespace}/{dep['metadata']['name']}"
                for dep in self._deployments()}

    def renew(self) -> int:
        """Re-sign the artifact URL (and the pull grant) of every model whose credentials have less than
        half their life left; returns how many were renewed."""
        now = int(self.clock())
        renewed = 0
        for dep in self._deployments():
            meta = dep["metadata"]
            key = meta["annotations"].get(KEY_ANNOTATION)
            try:
                expires = int(meta["annotations"].get(EXPIRES_ANNOTATION, "0"))
            except ValueError:
                expires = 0
            if not key or expires - now > self.url_seconds // 2:
                continue
            name = meta["name"]
            _call(self._core.patch_namespaced_secret, f"{name}-artifact", self.namespace,
                  {"stringData": {"url": self._presign(key)}}, _preload_content=False)
            pod_spec = dep["spec"]["template"]["spec"]
            if pod_spec.get("imagePullSecrets"):
                grant = self._grant(pod_spec["containers"][0]["image"])
                if grant:
                    _call(self._core.patch_namespaced_secret, f"{name}-pull", self.namespace,
                          {"data": manifests.docker_config(**grant)}, _preload_content=False)
            _call(self._apps.patch_namespaced_deployment, name, self.namespace,
                  {"metadata": {"annotations": {EXPIRES_ANNOTATION: str(now + self.url_seconds)}}},
                  _preload_content=False)
            renewed += 1
        return renewed

    # -- helpers -----------------------------------------------------------------------------------

    def _deployments(self) -> list[dict[str, Any]]:
        """This installation's model Deployments (the selector is the server's job; a lenient server is
        checked here too)."""
        want = {"app.kubernetes.io/name": "reprolab-model", "app.kubernetes.io/managed-by": "reprolab-runner",
                INSTALLATION_LABEL: self.installation}
        found = _call(self._apps.list_namespaced_deployment, self.namespace,
                      label_selector=",".join(f"{k}={v}" for k, v in want.items()), _preload_content=False)
        deps = []
        for dep in found.get("items", []):
            meta = dep.get("metadata") or {}
            if want.items() <= (meta.get("labels") or {}).items() and MODEL_LABEL in (meta.get("annotations") or {}):
                deps.append(dep)
        return deps

    def _pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Deployment's pods, oldest first."""
        pods = _call(self._core.list_namespaced_pod, namespace, label_selector=f"{INSTANCE_LABEL}={name}",
                     _preload_content=False).get("items", [])
        pods = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL) == name]
        pods.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
        return pods


def _status(statuses: list[dict[str, Any]] | None, container: str) -> dict[str, Any] | None:
    return next((s for s in statuses or [] if s.get("name") == container), None)


def _pod_failure(pod: dict[str, Any]) -> str:
    """Why this pod will not serve by itself, or ""."""
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return f"the model server's pod failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
    for kind, statuses in (("init container", status.get("initContainerStatuses")),
                           ("container", status.get("containerStatuses"))):
        for s in statuses or []:
            state, last = s.get("state") or {}, (s.get("lastState") or {}).get("terminated") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
            if waiting.get("reason") in FATAL_WAITING:
                why = f"{kind} {s.get('name')} {waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
                if last.get("exitCode"):
                    why += f"; it exited {last['exitCode']} ({last.get('reason') or 'Error'})" + (
                        f": {last['message'].strip()}" if (last.get("message") or "").strip() else "")
                return why
            if terminated.get("exitCode"):
                detail = (terminated.get("message") or "").strip()
                return (f"{kind} {s.get('name')} exited {terminated['exitCode']} "
                        f"({terminated.get('reason') or 'Error'})" + (f": {detail}" if detail else ""))
    return ""
