"""Kubernetes manifests of a session: pure functions returning plain dicts (KubeSpawner's pattern).

A session is a Pod (the notebook server), a ClusterIP Service in front of it (the gateway's upstream),
a Secret with the server's token, a NetworkPolicy, and the user's home PVC ``claim-<digest>`` that
outlives every session (KubeSpawner's ``claim-{username}``; a digest of installation, workspace and
user keeps names out of object names).

The pod meets Pod Security "restricted": it runs as uid 1000 (the image's ``student``) from the
start, so ``reprolab init`` (the ENTRYPOINT, kept: only ``args`` are set) starts no root daemon and
runs the server as is; no capability, no privilege escalation, RuntimeDefault seccomp, read-only root
filesystem with ``/tmp`` an emptyDir, no service-account token. ``fsGroup`` makes the PVC writable.
The server's port comes in ``JUPYTER_PORT`` (jupyter_server reads it) so that a node-less test can
move it.

Activity and "save as a new version" without root and without ``pods/exec``: a second container
(``activity``) of the same image, as uid 65534, runs ``layer/agentd.py``. It alone mounts the chain's
emptyDir (``/var/lib/reprolab-activity``); it listens on the agent's socket in a small emptyDir that the notebook
container mounts READ-ONLY at ``/run/reprolab`` (the kernel connects as locally; the student cannot
remove or replace the socket); it mounts the home read-only (``pip install`` in the notebook container
lands in ``~/.local``: the root filesystem is read-only) and serves ``GET /chain`` and ``GET /capture``
on ``AGENT_PORT`` to the bearer of the Secret's ``agent-token`` (a key the notebook container never
gets). The NetworkPolicy opens that port to the runner's pods only.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .targets import HOME, PORT, SERVER, SessionSpec

SESSION_LABEL = "reprolab.org/session-id"
HOME_LABEL = "reprolab.org/home"
INSTALLATION_LABEL = "reprolab.org/installation"
COMPONENT = "session"
MANAGED_BY = "reprolab-runner"
CONTAINER = "notebook"
STUDENT_UID = 1000
AGENT_CONTAINER = "activity"
AGENT_UID = 65534  # nobody: neither the student nor root
AGENT_PORT = 8890
AGENT_TOKEN_KEY = "agent-token"
AGENT_SCRIPT = "/opt/reprolab/session/agentd.py"
CHAIN_DIR = "/var/lib/reprolab-activity"  # only the activity container has it (not in the image: created for it)
SOCKET_DIR = "/run/reprolab"  # the agent's socket (agent.py's SOCKET) is agent.sock in it


def names(session_id: str) -> str:
    """Pod, Service, Secret and NetworkPolicy name of a session (a DNS label)."""
    return f"session-{session_id.lower()}"[:63].rstrip("-")


def claim_name(home_key: str) -> str:
    return f"claim-{home_key}"


def labels(spec: SessionSpec, installation: str, home_key: str) -> dict[str, str]:
    out = {"app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/managed-by": MANAGED_BY,
           SESSION_LABEL: spec.session_id, HOME_LABEL: home_key}
    if installation:
        out[INSTALLATION_LABEL] = installation
    return out


def home_claim(*, home_key: str, namespace: str, size_bytes: int, storage_class: str = "",
               installation: str = "") -> dict[str, Any]:
    meta_labels = {"app.kubernetes.io/component": "session-home", "app.kubernetes.io/managed-by": MANAGED_BY,
                   HOME_LABEL: home_key, **({INSTALLATION_LABEL: installation} if installation else {})}
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": str(size_bytes)}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim_name(home_key), "namespace": namespace, "labels": meta_labels},
            "spec": spec}


def token_secret(spec: SessionSpec, *, namespace: str, installation: str, home_key: str,
                 agent_token: str) -> dict[str, Any]:
    """The notebook server's token (the notebook container's ``JUPYTER_TOKEN``) and the runner's token for
    the activity container (``agent-token``: only that container gets it). ``data``, as the API server
    keeps it and answers it back (the runner reads ``agent-token`` back after a restart)."""
    values = {"token": spec.token, AGENT_TOKEN_KEY: agent_token}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": names(spec.session_id), "namespace": namespace,
                         "labels": labels(spec, installation, home_key)},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def server_args(spec: SessionSpec) -> list[str]:
    return ["python3", SERVER, "--config=/opt/reprolab/session/jupyter_server_config.py", "--ip=0.0.0.0",
            "--port-retries=0", f"--ServerApp.base_url={spec.base_url}", f"--ServerApp.root_dir={HOME}",
            "--no-browser"]


def restricted(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def agent_container(spec: SessionSpec) -> dict[str, Any]:
    """The activity container (see the module's docstring). First in the pod: its socket is there before
    the notebook server, hence any kernel, starts."""
    return {
        "name": AGENT_CONTAINER, "image": spec.image, "command": ["python3", AGENT_SCRIPT],
        "env": [{"name": "REPROLAB_AGENT_PORT", "value": str(AGENT_PORT)},
                {"name": "REPROLAB_ACTIVITY_DIR", "value": CHAIN_DIR},
                {"name": "REPROLAB_AGENT_SOCKET", "value": f"{SOCKET_DIR}/agent.sock"},
                {"name": "REPROLAB_SESSION_COMMAND", "value": json.dumps(server_args(spec))},
                {"name": "REPROLAB_AGENT_TOKEN", "valueFrom": {"secretKeyRef": {"name": names(spec.session_id),
                                                                                "key": AGENT_TOKEN_KEY}}}],
        "ports": [{"name": "agent", "containerPort": AGENT_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": restricted(AGENT_UID),
        "volumeMounts": [{"name": "activity", "mountPath": CHAIN_DIR},
                         {"name": "agent-socket", "mountPath": SOCKET_DIR},
                         {"name": "home", "mountPath": HOME, "readOnly": True}],
    }


def pod(spec: SessionSpec, *, namespace: str, installation: str, home_key: str,
        pull_secret: str = "") -> dict[str, Any]:
    cpu = f"{spec.cpu_millis}m"
    container = {
        "name": CONTAINER, "image": spec.image, "args": server_args(spec), "workingDir": HOME,
        "env": [{"name": "HOME", "value": HOME}, {"name": "JUPYTER_PORT", "value": str(PORT)},
                {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": names(spec.session_id),
                                                                         "key": "token"}}}],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": str(spec.memory_bytes)},
                      "limits": {"cpu": cpu, "memory": str(spec.memory_bytes)}},
        "securityContext": restricted(STUDENT_UID),
        "volumeMounts": [{"name": "home", "mountPath": HOME}, {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "agent-socket", "mountPath": SOCKET_DIR, "readOnly": True}],
        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 2},
    }
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": names(spec.session_id), "namespace": namespace,
                     "labels": labels(spec, installation, home_key),
                     "annotations": {SESSION_LABEL: spec.session_id}},
        "spec": {
            "restartPolicy": "Never",  # a crashed server ends the session (failed); the home stays
            "automountServiceAccountToken": False, "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": STUDENT_UID, "runAsGroup": STUDENT_UID,
                                "fsGroup": STUDENT_UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [agent_container(spec), container],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": claim_name(home_key)}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}},
                        {"name": "activity", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "agent-socket", "emptyDir": {"sizeLimit": "1Mi"}}],
        },
    }
    if pull_secret:
        body["spec"]["imagePullSecrets"] = [{"name": pull_secret}]
    return body


def service(spec: SessionSpec, *, namespace: str, installation: str, home_key: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": names(spec.session_id), "namespace": namespace,
                         "labels": labels(spec, installation, home_key)},
            "spec": {"type": "ClusterIP", "selector": {SESSION_LABEL: spec.session_id},
                     "ports": [{"name": "http", "port": PORT, "targetPort": PORT, "protocol": "TCP"},
                               {"name": "agent", "port": AGENT_PORT, "targetPort": AGENT_PORT, "protocol": "TCP"}]}}


def network_policy(spec: SessionSpec, *, namespace: str, installation: str, home_key: str,
                   index_cidrs: list[str], gateway_labels: dict[str, str],
                   runner_labels: dict[str, str]) -> dict[str, Any]:
    """Ingress: the gateway's pods only, on the server's port; the runner's pods only, on the activity
    container's port. Egress: nothing for ``none``; for
    ``index`` the package index's addresses on 443 (and DNS to resolve its name)."""
    egress: list[dict[str, Any]] = []
    if spec.network == "index":
        egress = [{"to": [{"ipBlock": {"cidr": c}} for c in index_cidrs],
                   "ports": [{"protocol": "TCP", "port": 443}]},
                  {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
        if not index_cidrs:
            egress = egress[1:]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": names(spec.session_id), "namespace": namespace,
                         "labels": labels(spec, installation, home_key)},
            "spec": {"podSelector": {"matchLabels": {SESSION_LABEL: spec.session_id}},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": gateway_labels}}],
                                  "ports": [{"protocol": "TCP", "port": PORT}]},
                                 {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": runner_labels}}],
                                  "ports": [{"protocol": "TCP", "port": AGENT_PORT}]}],
                     "egress": egress}}


def runner_rbac(namespace: str) -> list[dict[str, Any]]:
    """What the runner's service account needs in the sessions' namespace (the chart renders the same)."""
    rules = [{"apiGroups": [""], "resources": ["pods", "services", "secrets", "persistentvolumeclaims"],
              "verbs": ["get", "list", "create", "delete"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
              "verbs": ["get", "list", "create", "delete"]}]
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "reprolab-runner-sessions", "namespace": namespace}, "rules": rules}]
