"""The ``kubernetes`` serving target as pure functions (tested as data and played with ``podman kube
play``); the code that talks to an API server is apart from them.

A model version is a Deployment of the RUN'S OWN IMAGE (pinned by digest) + a ClusterIP Service + an
HorizontalPodAutoscaler on CPU. Nothing is added to the image: ``oip_server.py`` comes from a ConfigMap
mounted read-only, and an init container — the same image's python3, standard library only — downloads
the artifact through a presigned GET URL (a Secret) into an emptyDir and checks its sha256; the server
container mounts that directory read-only. Every container meets Pod Security "restricted": non-root
(65534), no privilege escalation, every capability dropped, RuntimeDefault seccomp, read-only root.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from ..targets.k8s_manifests import DEFAULT_CLUSTER_CIDRS, DNS_PEERS, DNS_PORTS, _outside
from .engine import ARTIFACT_DIR, MODEL_LABEL, PORT, PYTHON, SERVER_PATH, SERVER_SOURCE, ServingSpec, server_command

UID = 65534
FETCH = (
    "import hashlib, os, sys, urllib.request\n"
    "dest = os.path.join('/model', os.environ['ARTIFACT_NAME'])\n"
    "urllib.request.urlretrieve(os.environ['ARTIFACT_URL'], dest)\n"
    "digest = hashlib.sha256(open(dest, 'rb').read()).hexdigest()\n"
    "if digest != os.environ['ARTIFACT_SHA256']:\n"
    "    sys.exit('artifact digest mismatch: ' + digest)\n"
)


def name_for(spec: ServingSpec) -> str:
    """A DNS-1035 label, unique per workspace, model and version (a digest keeps long names apart)."""
    digest = hashlib.sha256(spec.model_id.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]", "-", f"{spec.workspace}-{spec.name}".lower()).strip("-")[:30].strip("-")
    return f"model-{slug}-v{spec.version}-{digest}"


def labels(spec: ServingSpec, installation: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "reprolab-model", "app.kubernetes.io/instance": name_for(spec),
            "app.kubernetes.io/managed-by": "reprolab-runner", "reprolab.org/installation": installation,
            "reprolab.org/model-version": str(spec.version)}


def _restricted() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def _resources(spec: ServingSpec) -> dict[str, Any]:
    limits = {"cpu": f"{spec.cpu_millis}m", "memory": str(spec.memory_bytes)}
    return {"requests": limits, "limits": limits}


def server_config_map(spec: ServingSpec, *, namespace: str, installation: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name_for(spec)}-server", "namespace": namespace,
                         "labels": labels(spec, installation)},
            "data": {"oip_server.py": SERVER_SOURCE.read_text()}}


def artifact_secret(spec: ServingSpec, *, namespace: str, installation: str, url: str) -> dict[str, Any]:
    """The presigned GET URL of the artifact: a bearer credential, so a Secret, not an env literal."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{name_for(spec)}-artifact", "namespace": namespace,
                         "labels": labels(spec, installation)},
            "stringData": {"url": url}}


def deployment(spec: ServingSpec, *, namespace: str, installation: str, artifact_sha256: str,
               replicas: int = 1) -> dict[str, Any]:
    name = name_for(spec)
    lab = labels(spec, installation)
    server_sha = hashlib.sha256(SERVER_SOURCE.read_bytes()).hexdigest()
    pod_spec = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{
            "name": "fetch-artifact", "image": spec.image, "command": [PYTHON, "-c", FETCH],
            "env": [{"name": "ARTIFACT_NAME", "value": spec.artifact_name},
                    {"name": "ARTIFACT_SHA256", "value": artifact_sha256},
                    {"name": "ARTIFACT_URL", "valueFrom": {"secretKeyRef": {"name": f"{name}-artifact",
                                                                            "key": "url"}}}],
            # a failure's reason (digest mismatch, 403 of an expired URL) shows in the pod's status
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": _restricted(), "resources": _resources(spec),
            "volumeMounts": [{"name": "model", "mountPath": "/model"}, {"name": "tmp", "mountPath": "/tmp"}],
        }],
        "containers": [{
            "name": "server", "image": spec.image, "command": server_command(spec),
            "ports": [{"name": "http", "containerPort": PORT}],
            "env": [{"name": "HOME", "value": "/tmp"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
            "workingDir": ARTIFACT_DIR,
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 2},
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 10,
                              "failureThreshold": 3},
            "securityContext": _restricted(), "resources": _resources(spec),
            "volumeMounts": [
                # the whole ConfigMap as the directory (no subPath: podman 4.3 ignores it for ConfigMaps)
                {"name": "server", "mountPath": str(PurePosixPath(SERVER_PATH).parent), "readOnly": True},
                {"name": "model", "mountPath": ARTIFACT_DIR, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "server", "configMap": {"name": f"{name}-server"}},
                    {"name": "model", "emptyDir": {"sizeLimit": "2Gi"}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": lab,
                         "annotations": {MODEL_LABEL: spec.model_id}},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                     "template": {"metadata": {"labels": lab,
                                               # checksums restart pods when either changes; 16 hex
                                               # digits: podman 4.3 refuses annotation values over 63
                                               "annotations": {"reprolab.org/server-sha256": server_sha[:16],
                                                               "reprolab.org/artifact-sha256": artifact_sha256[:16]}},
                                  "spec": pod_spec}}}


def service(spec: ServingSpec, *, namespace: str, installation: str) -> dict[str, Any]:
    name = name_for(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(spec, installation)},
            "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/instance": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def autoscaler(spec: ServingSpec, *, namespace: str, installation: str, min_replicas: int = 1,
               max_replicas: int = 4, cpu_percent: int = 70) -> dict[str, Any]:
    name = name_for(spec)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(spec, installation)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_percent}}}]}}


def upstream_url(spec: ServingSpec, namespace: str) -> str:
    return f"http://{name_for(spec)}.{namespace}.svc:80"


def pull_secret(spec: ServingSpec, *, namespace: str, installation: str, registry: str, username: str,
                password: str) -> dict[str, Any]:
    """The kubelet's credentials for the run's image (``kubernetes.io/dockerconfigjson``): a pull grant for
    that one repository (``registrytoken.grant_for``), never the runner's own password."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": f"{name_for(spec)}-pull", "namespace": namespace,
                         "labels": labels(spec, installation)},
            "data": docker_config(registry=registry, username=username, password=password)}


def docker_config(*, registry: str, username: str, password: str) -> dict[str, str]:
    """A pull Secret's ``data``."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}})
    return {".dockerconfigjson": base64.b64encode(config.encode()).decode()}


GATEWAY_LABELS = {"app.kubernetes.io/component": "gateway"}  # the chart's gateway pods (as for sessions)


def network_policy(spec: ServingSpec, *, namespace: str, installation: str, store_cidrs: Sequence[str] = (),
                   store_ports: Sequence[int] = (443,), store_dns: bool = True,
                   cluster_cidrs: Sequence[str] = DEFAULT_CLUSTER_CIDRS) -> dict[str, Any]:
    """Ingress: the gateway's pods only, on the server's port, so that nothing in the cluster (a student's run
    with network, another workspace's model) calls a model without the gateway's key check and rate limit.
    Egress: the object store only (its CIDRs on its ports, or anywhere outside the cluster and link-local on
    them when none are given) and DNS: the init container fetches the artifact by presigned URL. A NetworkPolicy
    covers the whole pod, so a ``score.py`` could reach the store's addresses too, with no credentials."""
    peers = [{"ipBlock": {"cidr": c}} for c in store_cidrs] or _outside(cluster_cidrs)
    egress: list[dict[str, Any]] = [{"to": peers, "ports": [{"protocol": "TCP", "port": p} for p in store_ports]}]
    if store_dns:
        egress.append({"to": DNS_PEERS, "ports": DNS_PORTS})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name_for(spec), "namespace": namespace, "labels": labels(spec, installation)},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": name_for(spec)}},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": GATEWAY_LABELS}}],
                                  "ports": [{"protocol": "TCP", "port": PORT}]}],
                     "egress": egress}}


def make_model_manifests(spec: ServingSpec, *, namespace: str, installation: str, artifact_url: str,
                         artifact_sha256: str, max_replicas: int = 4,
                         pull_grant: dict[str, str] | None = None,
                         policy: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Everything one model version needs, in apply order (with ``pull_grant``, a pull Secret too);
    ``policy``: :func:`network_policy`'s keyword arguments (its NetworkPolicy goes first, before any pod)."""
    kw = {"namespace": namespace, "installation": installation}
    docs = [network_policy(spec, **(policy or {}), **kw), server_config_map(spec, **kw),
            artifact_secret(spec, url=artifact_url, **kw),
            deployment(spec, artifact_sha256=artifact_sha256, **kw), service(spec, **kw),
            autoscaler(spec, max_replicas=max_replicas, **kw)]
    if pull_grant:
        secret = pull_secret(spec, **pull_grant, **kw)
        docs[3]["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": secret["metadata"]["name"]}]
        docs.insert(3, secret)
    return docs
