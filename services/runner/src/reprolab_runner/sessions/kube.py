"""Sessions on Kubernetes: the objects of ``manifests`` created, read and deleted through the API.

The handle is ``"<namespace>/<pod name>"``. ``start`` creates the home PVC if absent (it outlives
sessions), then the NetworkPolicy (first: the pod never runs unconfined), the token Secret, the Pod
and the Service; the upstream is the Service's cluster DNS name. ``stop`` deletes all but the PVC.

Activity and capture come from the pod's ``activity`` container (``manifests``; ``layer/agentd.py``):
``GET /chain`` and ``GET /capture`` on the Service's ``agent`` port, with the Secret's ``agent-token``
(made at start, kept in memory, read back from the Secret after a runner restart; never logged). No
``pods/exec``: the runner's Role stays get/list/create/delete.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import kubernetes

from ..targets.base import TargetError
from ..targets.kubernetes import _call, _default_api_client, _status_of
from . import manifests
from .targets import PORT, SessionSpec, SessionTarget, Started, home_key

log = logging.getLogger(__name__)

GATEWAY_LABELS = {"app.kubernetes.io/component": "gateway"}
RUNNER_LABELS = {"app.kubernetes.io/component": "runner"}
AGENT_TIMEOUT = httpx.Timeout(10.0, read=110.0)  # a capture scans the environment: agentd allows it 100 s


class KubernetesSessions(SessionTarget):
    name = "kubernetes"

    def __init__(self, settings: Any = None, *, installation: str = "", namespace: str = "",
                 api_client: kubernetes.client.ApiClient | None = None, index_cidrs: list[str] | None = None,
                 home_bytes: int = 0, storage_class: str = "",
                 agent_url: Callable[[str], str] | None = None) -> None:
        self.installation = installation
        self.namespace = namespace or getattr(settings, "kubernetes_session_namespace", "reprolab-sessions")
        self.index_cidrs = list(index_cidrs if index_cidrs is not None else
                                getattr(settings, "kubernetes_egress_cidrs", []) or [])
        self.home_bytes = home_bytes or getattr(settings, "kubernetes_session_home_bytes", 5 << 30)
        self.storage_class = storage_class or getattr(settings, "kubernetes_session_storage_class", "")
        self._api_client = api_client
        # where the runner reaches a session's activity container, by pod name (a test points it at a pod)
        self._agent_url = agent_url or (lambda name: f"http://{name}.{self.namespace}.svc:{manifests.AGENT_PORT}")
        self._agent_tokens: dict[str, str] = {}  # pod name -> agent token (the Secret has it after a restart)

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
                spec, index_cidrs=self.index_cidrs, gateway_labels=GATEWAY_LABELS, runner_labels=RUNNER_LABELS,
                **common))
            agent_token = secrets.token_urlsafe(32)
            self._create(self.core.create_namespaced_secret, manifests.token_secret(
                spec, agent_token=agent_token, **common))
            self._agent_tokens[name] = agent_token
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
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        reasons = [((cs.get("state") or {}).get("terminated") or {}).get("reason", "") for cs in statuses]
        if phase in ("Pending", "Running", ""):
            # the activity container ended: cells would go unrecorded (and the pod is no longer Ready)
            for cs in statuses:
                ended = (cs.get("state") or {}).get("terminated")
                if cs.get("name") == manifests.AGENT_CONTAINER and ended:
                    return False, f"the session's activity recorder ended ({ended.get('reason') or 'exited'})"
            return True, ""
        why = ", ".join(r for r in reasons if r) or phase
        return False, f"the notebook server's pod ended ({why})"

    def stop(self, handle: str) -> None:
        name = self._name(handle)
        self._agent_tokens.pop(name, None)
        self._delete(self.core.delete_namespaced_service, name)
        self._delete(self.core.delete_namespaced_pod, name)
        self._delete(self.core.delete_namespaced_secret, name)
        self._delete(self.networking.delete_namespaced_network_policy, name)

    def _agent_token(self, name: str) -> str:
        token = self._agent_tokens.get(name)
        if token:
            return token
        secret = _call(self.core.read_namespaced_secret, name, self.namespace, _preload_content=False)
        encoded = (secret.get("data") or {}).get(manifests.AGENT_TOKEN_KEY)
        if not encoded:
            raise TargetError("the session's Secret has no agent token (a pod of an older runner?)")
        token = base64.b64decode(encoded).decode()
        self._agent_tokens[name] = token
        return token

    def _agent_get(self, handle: str, path: str, limit: int) -> bytes:
        """``GET <agent>/<path>`` with the agent token; the body (at most ``limit`` + 1 bytes read).
        ``TargetError`` naming the agent's answer when it is not 200."""
        name = self._name(handle)
        token = self._agent_token(name)
        url = f"{self._agent_url(name)}/{path}"
        try:
            with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"},
                              timeout=AGENT_TIMEOUT) as r:
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        break
                if r.status_code != 200:
                    try:
                        why = str(json.loads(body).get("error", ""))[:300]
                    except (ValueError, AttributeError):
                        why = ""
                    raise TargetError(f"the session's activity recorder answered {r.status_code}"
                                      + (f": {why}" if why else ""))
                return bytes(body)
        except httpx.HTTPError as exc:
            # the URL holds no secret; the token is in a header and never in the message
            raise TargetError(f"the session's activity recorder is unreachable at {url}: "
                              f"{type(exc).__name__}") from exc

    def activity_chain(self, handle: str) -> bytes:
        """The activity container's chain (``GET /chain``); b"" when it cannot be read (said in the log),
        as the local target does."""
        from .activity import MAX_BYTES

        try:
            return self._agent_get(handle, "chain", MAX_BYTES)  # over MAX_BYTES: refused by activity.parse
        except TargetError as exc:
            if _status_of(exc) == 404:  # no Secret: the session is gone
                return b""
            log.warning("cannot read session %s's activity chain: %s", handle, exc)
            return b""

    def capture(self, handle: str) -> bytes:
        """``reprolab env capture --json`` as the activity container computes it (``GET /capture``) from its
        read-only view of the home, where the notebook container's installs land."""
        from reprolab_common.capture import MAX_CAPTURE_BYTES

        try:
            out = self._agent_get(handle, "capture", MAX_CAPTURE_BYTES)
        except TargetError as exc:
            if _status_of(exc) == 404:
                raise TargetError("the session's pod no longer exists") from exc
            raise
        if len(out) > MAX_CAPTURE_BYTES:
            raise TargetError(f"the session's capture is larger than {MAX_CAPTURE_BYTES} bytes")
        return out

    def owned(self) -> dict[str, str]:
        selector = f"{manifests.SESSION_LABEL}" + (f",{manifests.INSTALLATION_LABEL}={self.installation}"
                                                   if self.installation else "")
        pods = _call(self.core.list_namespaced_pod, self.namespace, label_selector=selector, _preload_content=False)
        return {p["metadata"]["labels"][manifests.SESSION_LABEL]: f"{self.namespace}/{p['metadata']['name']}"
                for p in pods.get("items", [])}

    def delete_home(self, workspace: str, owner_id: str) -> None:
        self._delete(self.core.delete_namespaced_persistent_volume_claim,
                     manifests.claim_name(home_key(self.installation, workspace, owner_id)))
