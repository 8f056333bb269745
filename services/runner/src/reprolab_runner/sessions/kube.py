"""Sessions on Kubernetes: the objects of ``manifests`` created, read and deleted through the API.

The handle is ``"<namespace>/<pod name>"``. ``start`` creates the home PVC if absent (it outlives
sessions), then the NetworkPolicy (first: the pod never runs unconfined), the token Secret, the Pod
and the Service; the upstream is the Service's cluster DNS name. ``stop`` deletes all but the PVC.
"""

from __future__ import annotations

from typing import Any

import kubernetes

from ..targets.base import TargetError
from ..targets.kubernetes import _call, _default_api_client, _status_of
from . import manifests
from .targets import PORT, SessionSpec, SessionTarget, Started, home_key

GATEWAY_LABELS = {"app.kubernetes.io/component": "gateway"}


class KubernetesSessions(SessionTarget):
    name = "kubernetes"

    def __init__(self, settings: Any = None, *, installation: str = "", namespace: str = "",
                 api_client: kubernetes.client.ApiClient | None = None, index_cidrs: list[str] | None = None,
                 home_bytes: int = 0, storage_class: str = "") -> None:
        self.installation = installation
        self.namespace = namespace or getattr(settings, "kubernetes_session_namespace", "reprolab-sessions")
        self.index_cidrs = list(index_cidrs if index_cidrs is not None else
                                getattr(settings, "kubernetes_egress_cidrs", []) or [])
        self.home_bytes = home_bytes or getattr(settings, "kubernetes_session_home_bytes", 5 << 30)
        self.storage_class = storage_class or getattr(settings, "kubernetes_session_storage_class", "")
        self._api_client = api_client

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        if self._api_client is None:
            self._api_client = _default_api_client()
        return kubernetes.client.CoreV1Api(self._api_client)

    @property
    def networking(self) -> kubernetes.client.NetworkingV1Api:
        if self._api_client is None:
            self._api_client = _default_api_client()
        return kubernetes.client.NetworkingV1Api(self._api_client)

    def _create(self, fn: Any, body: dict[str, Any], *, exists_ok: bool = False) -> None:
        try:
            _call(fn, self.namespace, body, _preload_content=False)
        except TargetError as exc:
            if not (exists_ok and _status_of(exc) == 409):
                raise

    def _delete(self, fn: Any, name: str) -> None:
        try:
            _call(fn, name, self.namespace, _preload_content=False)
        except TargetError as exc:
            if _status_of(exc) != 404:
                raise

    def start(self, spec: SessionSpec) -> Started:
        key = home_key(self.installation, spec.workspace, spec.owner_id)
        common = {"namespace": self.namespace, "installation": self.installation, "home_key": key}
        name = manifests.names(spec.session_id)
        self._create(self.core.create_namespaced_persistent_volume_claim, manifests.home_claim(
            home_key=key, namespace=self.namespace, size_bytes=self.home_bytes, storage_class=self.storage_class,
            installation=self.installation), exists_ok=True)
        self.stop(f"{self.namespace}/{name}")  # a leftover of an earlier attempt
        try:
            self._create(self.networking.create_namespaced_network_policy, manifests.network_policy(
                spec, index_cidrs=self.index_cidrs, gateway_labels=GATEWAY_LABELS, **common))
            self._create(self.core.create_namespaced_secret, manifests.token_secret(spec, **common))
            self._create(self.core.create_namespaced_pod, manifests.pod(spec, **common))
            self._create(self.core.create_namespaced_service, manifests.service(spec, **common))
        except TargetError:
            self.stop(f"{self.namespace}/{name}")
            raise
        return Started(handle=f"{self.namespace}/{name}",
                       upstream_url=f"http://{name}.{self.namespace}.svc:{PORT}{spec.base_url}")

    def _name(self, handle: str) -> str:
        namespace, _, name = handle.partition("/")
        if namespace != self.namespace or not name.startswith("session-"):
            raise TargetError(f"not a session handle of namespace {self.namespace}: {handle!r}")
        return name

    def alive(self, handle: str) -> tuple[bool, str]:
        try:
            pod = _call(self.core.read_namespaced_pod, self._name(handle), self.namespace, _preload_content=False)
        except TargetError as exc:
            if _status_of(exc) == 404:
                return False, "the session's pod no longer exists"
            raise
        phase = (pod.get("status") or {}).get("phase", "")
        if phase in ("Pending", "Running", ""):
            return True, ""
        reasons = [((cs.get("state") or {}).get("terminated") or {}).get("reason", "")
                   for cs in (pod.get("status") or {}).get("containerStatuses") or []]
        why = ", ".join(r for r in reasons if r) or phase
        return False, f"the notebook server's pod ended ({why})"

    def stop(self, handle: str) -> None:
        name = self._name(handle)
        self._delete(self.core.delete_namespaced_service, name)
        self._delete(self.core.delete_namespaced_pod, name)
        self._delete(self.core.delete_namespaced_secret, name)
        self._delete(self.networking.delete_namespaced_network_policy, name)

    def activity_chain(self, handle: str) -> bytes:
        """Nothing yet: the restricted pod runs as uid 1000 from the start, so no agent daemon keeps a
        root-owned chain in it (recording cells in a cluster needs a sidecar; not built)."""
        return b""

    def capture(self, handle: str) -> bytes:
        """Not built for the cluster yet: it needs an exec into the pod (``pods/exec`` rights for the runner's
        service account), which the chart does not grant. Said plainly instead of an empty capture."""
        raise TargetError("saving a session as a new version is not available on the kubernetes target yet")

    def owned(self) -> dict[str, str]:
        selector = f"{manifests.SESSION_LABEL}" + (f",{manifests.INSTALLATION_LABEL}={self.installation}"
                                                   if self.installation else "")
        pods = _call(self.core.list_namespaced_pod, self.namespace, label_selector=selector, _preload_content=False)
        return {p["metadata"]["labels"][manifests.SESSION_LABEL]: f"{self.namespace}/{p['metadata']['name']}"
                for p in pods.get("items", [])}

    def delete_home(self, workspace: str, owner_id: str) -> None:
        self._delete(self.core.delete_namespaced_persistent_volume_claim,
                     manifests.claim_name(home_key(self.installation, workspace, owner_id)))
