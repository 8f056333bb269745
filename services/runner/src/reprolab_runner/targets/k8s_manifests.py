"""Kubernetes manifests of the ``kubernetes`` run target: pure functions returning plain dicts.

Tested as data (schema validation and assertions) and kept apart from the code that talks to the
API server (``kubernetes.py``), like kubespawner's ``objects.py``.

One run is one Job whose single pod runs three steps in order, all under the "restricted" Pod
Security Standard:

1. ``fetch-inputs`` (init container, ``fetcher_image``): downloads the code archive from its
   presigned URL and unpacks it into ``/work``, downloads each dataset to its place under
   ``/data``, and checks every sha256.
2. ``run`` (init container, the student's image): runs the command in ``/work`` behind a small
   ``sh`` wrapper that records the exit code in ``/.reprolab/status.json`` and in the termination
   message, then exits 0. Exiting 0 is what lets the pod go on to step 3 even when the student's
   code failed, and keeps "the code failed" (Job Complete, exit code in the termination message)
   apart from "the platform failed" (Job Failed: fetch error, OOM-kill of the wrapper, eviction).
3. ``upload-outputs`` (the pod's only regular container, ``fetcher_image``): tars ``/outputs`` and
   PUTs ``outputs.tar.gz``, then ``status.json``, each to its own presigned PUT URL (``outputs``,
   ``{name: url}`` as for the VM run agent: S3 signs each key separately, so a prefix URL cannot work).

``activeDeadlineSeconds`` bounds all three steps; when it fires the pod is killed and nothing is
uploaded (the run is reported as timed out). The fetcher image needs ``sh``, ``curl``, ``tar``
(with gzip), ``unzip``, ``sha256sum`` and ``head`` (``curlimages/curl``'s busybox has them).
Kubernetes has no per-container pids limit: ``Limits.pids`` is left to the node's ``podPidsLimit``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .base import Limits

RUN_ID_LABEL = "reprolab.org/run-id"
"""``base.LABEL`` spelled as a Kubernetes label key (on the Job, its pod and the NetworkPolicy)."""
RUN_ID_ANNOTATION = "reprolab.org/run-id"
"""The run id verbatim (label values are limited to 63 characters of ``[-._a-zA-Z0-9]``)."""
COMPONENT = "run"
MANAGED_BY = "reprolab-runner"

FETCH_CONTAINER = "fetch-inputs"
RUN_CONTAINER = "run"
UPLOAD_CONTAINER = "upload-outputs"

WORK_DIR = "/work"
DATA_DIR = "/data"
OUTPUTS_DIR = "/outputs"
TMP_DIR = "/tmp"
STATUS_DIR = "/.reprolab"
STATUS_FILE = f"{STATUS_DIR}/status.json"
UPLOAD_DIR = "/upload"
TERMINATION_LOG = "/dev/termination-log"
OUTPUTS_ARCHIVE = "outputs.tar.gz"
STATUS_OBJECT = "status.json"

RUN_AS_USER = 1000
TTL_SECONDS_AFTER_FINISHED = 3600
DEFAULT_FETCHER_IMAGE = "docker.io/curlimages/curl:8.11.1"
HELPER_RESOURCES = {"cpu": "250m", "memory": "256Mi"}

_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# status.json has the run agent's shape (``agent/run_agent.py``), uploaded last like there.
_NO_STATUS = '{"exit_code": null, "timed_out": false, "error": "the run step recorded no exit code"}'
_CURL = "curl --fail --silent --show-error --location --retry 3"


def job_name(run_id: str) -> str:
    """A DNS-1123 label for the Job (and NetworkPolicy) of a run, stable for one run id."""
    slug = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    name = f"reprolab-run-{slug}"
    if len(name) > 52 or slug != run_id:  # pod names append a suffix; keep odd ids distinct
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        name = f"{name[:43].rstrip('-')}-{digest}"
    return name


def run_labels(run_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Labels of every object of one run; the run-id label selects its pod and finds it again."""
    if not _LABEL_VALUE.match(run_id):
        raise ValueError(f"run id {run_id!r} cannot be a Kubernetes label value")
    return {
        "app.kubernetes.io/name": "reprolab",
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        RUN_ID_LABEL: run_id,
        **(extra or {}),
    }


UPLOADED = {OUTPUTS_ARCHIVE: "OUTPUTS_ARCHIVE_URL", STATUS_OBJECT: "STATUS_URL"}
"""What the uploader PUTs, and the environment variable holding each one's presigned URL."""


def upload_env(outputs: Mapping[str, str]) -> list[dict[str, str]]:
    """The uploader's environment: one presigned PUT URL per uploaded name (URLs stay out of the
    shell text, like the inputs'). Refuses a missing name or a non-http(s) URL."""
    env = []
    for name, var in UPLOADED.items():
        url = outputs.get(name, "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"outputs[{name!r}] must be a presigned http(s) PUT URL, not {url!r}")
        env.append({"name": var, "value": url})
    return env


def restricted_security_context() -> dict[str, Any]:
    """The container half of the "restricted" Pod Security Standard, plus a read-only root."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _data_path(mount: str) -> str:
    """A dataset's file path: relative mounts go under /data; anything escaping /data is refused."""
    path = posixpath.normpath(mount if mount.startswith("/") else posixpath.join(DATA_DIR, mount))
    if not path.startswith(DATA_DIR + "/"):
        raise ValueError(f"dataset mount {mount!r} is not under {DATA_DIR}")
    return path


def fetch_script(inputs: Sequence[tuple[str, str, str]]) -> str:
    """The fetch init container's shell. Input ``i``'s URL comes from ``$INPUT_<i>_URL``; an input
    mounted at ``/work`` is the code archive (tar.gz or zip, told apart by its magic bytes)."""
    lines = [
        "set -eu",
        "verify() {",
        '  [ -z "$2" ] && return 0',
        '  echo "$2  $1" | sha256sum -c - >/dev/null || { echo "sha256 mismatch: $1" >&2; exit 1; }',
        "}",
    ]
    for i, (_url, mount, sha256) in enumerate(inputs):
        if sha256 and not _SHA256.match(sha256):
            raise ValueError(f"input {mount!r}: sha256 must be 64 lowercase hex digits")
        var, digest = f'"$INPUT_{i}_URL"', shlex.quote(sha256)
        if posixpath.normpath(mount) == WORK_DIR:
            archive = f"{WORK_DIR}/.reprolab-code"
            lines += [
                f"{_CURL} -o {archive} {var}",
                f"verify {archive} {digest}",
                f'if [ "$(head -c 2 {archive})" = "PK" ]; then unzip -q -o {archive} -d {WORK_DIR};'
                f" else tar -xzf {archive} -C {WORK_DIR}; fi",
                f"rm -f {archive}",
            ]
        else:
            path = shlex.quote(_data_path(mount))
            lines += [f'mkdir -p "$(dirname {path})"', f"{_CURL} -o {path} {var}", f"verify {path} {digest}"]
    return "\n".join(lines) + "\n"


def run_script(status_file: str = STATUS_FILE, termination_log: str = TERMINATION_LOG) -> str:
    """The run container's wrapper (``sh -c <this> reprolab-run <command...>``): run the command,
    record its exit code, exit 0 so the uploader still runs."""
    status, log = shlex.quote(status_file), shlex.quote(termination_log)
    return (
        '"$@"\n'
        "code=$?\n"
        f"printf '{{\"exit_code\": %d, \"timed_out\": false, \"error\": \"\"}}\\n' \"$code\" > {status}\n"
        f"printf '%d' \"$code\" > {log}\n"
        "exit 0\n"
    )


def upload_script() -> str:
    """The upload container's shell: ``/outputs`` as one tar.gz (a file, so the PUT has a length,
    which presigned S3 PUTs require), then the exit status (``exit_code`` null if the wrapper never
    wrote one)."""
    return (
        "set -eu\n"
        f"tar -czf {UPLOAD_DIR}/{OUTPUTS_ARCHIVE} -C {OUTPUTS_DIR} .\n"
        f'{_CURL} -T {UPLOAD_DIR}/{OUTPUTS_ARCHIVE} "${UPLOADED[OUTPUTS_ARCHIVE]}"\n'
        f"if [ -s {STATUS_FILE} ]; then cp {STATUS_FILE} {UPLOAD_DIR}/{STATUS_OBJECT};"
        f" else echo '{_NO_STATUS}' > {UPLOAD_DIR}/{STATUS_OBJECT}; fi\n"
        f'{_CURL} -T {UPLOAD_DIR}/{STATUS_OBJECT} "${UPLOADED[STATUS_OBJECT]}"\n'
    )


def _resources(limits: Limits) -> dict[str, Any]:
    amounts = {"cpu": f"{limits.cpu_millis}m", "memory": str(limits.memory_bytes)}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def make_run_job(
    *,
    run_id: str,
    namespace: str,
    image: str,
    command: list[str],
    inputs: Sequence[tuple[str, str, str]],
    outputs: Mapping[str, str],
    limits: Limits,
    fetcher_image: str = DEFAULT_FETCHER_IMAGE,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    pull_secret: str | None = None,
) -> dict[str, Any]:
    """A batch/v1 Job running ``command`` in ``image`` once, sandboxed (see the module docstring).
    ``pull_secret`` names the run's own image pull Secret (``make_pull_secret``), if the registry needs one.

    ``inputs`` are ``(presigned GET URL, mount, sha256)``: the one mounted at ``/work`` is the code
    archive, the others are dataset files placed under ``/data`` (read-only for the run).
    ``outputs`` maps ``outputs.tar.gz`` and ``status.json`` to their presigned PUT URLs.
    """
    if not command:
        raise ValueError("a run needs a command")
    uploader_env = upload_env(outputs)
    labels = run_labels(run_id, labels)
    security = restricted_security_context()
    helper_resources = {"requests": dict(HELPER_RESOURCES), "limits": dict(HELPER_RESOURCES)}
    run_env = {"HOME": TMP_DIR, "TMPDIR": TMP_DIR, **(env or {})}
    metadata = {"name": job_name(run_id), "namespace": namespace, "labels": dict(labels),
                "annotations": {RUN_ID_ANNOTATION: run_id}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": limits.timeout_seconds,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {RUN_ID_ANNOTATION: run_id}},
                "spec": {
                    **({"imagePullSecrets": [{"name": pull_secret}]} if pull_secret else {}),
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [
                        {
                            "name": FETCH_CONTAINER,
                            "image": fetcher_image,
                            "command": ["/bin/sh", "-c", fetch_script(inputs)],
                            "env": [{"name": f"INPUT_{i}_URL", "value": url} for i, (url, _, _) in enumerate(inputs)],
                            "securityContext": security,
                            "resources": helper_resources,
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "volumeMounts": [{"name": "work", "mountPath": WORK_DIR},
                                             {"name": "data", "mountPath": DATA_DIR}],
                        },
                        {
                            "name": RUN_CONTAINER,
                            "image": image,
                            "command": ["/bin/sh", "-c", run_script(), "reprolab-run", *command],
                            "workingDir": WORK_DIR,
                            "env": [{"name": k, "value": v} for k, v in run_env.items()],
                            "securityContext": security,
                            "resources": _resources(limits),
                            "terminationMessagePath": TERMINATION_LOG,
                            "terminationMessagePolicy": "File",
                            "volumeMounts": [
                                {"name": "work", "mountPath": WORK_DIR},
                                {"name": "data", "mountPath": DATA_DIR, "readOnly": True},
                                {"name": "tmp", "mountPath": TMP_DIR},
                                {"name": "outputs", "mountPath": OUTPUTS_DIR},
                                {"name": "status", "mountPath": STATUS_DIR},
                            ],
                        },
                    ],
                    "containers": [{
                        "name": UPLOAD_CONTAINER,
                        "image": fetcher_image,
                        "command": ["/bin/sh", "-c", upload_script()],
                        "env": uploader_env,
                        "securityContext": security,
                        "resources": helper_resources,
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "volumeMounts": [
                            {"name": "outputs", "mountPath": OUTPUTS_DIR, "readOnly": True},
                            {"name": "status", "mountPath": STATUS_DIR, "readOnly": True},
                            {"name": "upload", "mountPath": UPLOAD_DIR},
                        ],
                    }],
                    "volumes": [
                        {"name": "work", "emptyDir": {}},
                        {"name": "data", "emptyDir": {}},
                        # /tmp is a tmpfs counted against the run's memory limit, as with the local target.
                        {"name": "tmp", "emptyDir": {"medium": "Memory"}},
                        {"name": "outputs", "emptyDir": {}},
                        {"name": "status", "emptyDir": {"sizeLimit": "1Mi"}},
                        {"name": "upload", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def make_network_policy(
    *,
    run_id: str,
    namespace: str,
    network: bool,
    labels: dict[str, str] | None = None,
    allowed_egress_cidrs: Sequence[str] = (),
    allowed_egress_ports: Sequence[int] = (443,),
    allow_dns: bool = False,
) -> dict[str, Any] | None:
    """The run pod's NetworkPolicy: no ingress and no egress, or ``None`` when the run asked for
    the network (``Limits.network``).

    The policy is per pod, not per container, so the fetch and upload steps need the object store
    let through: ``allowed_egress_cidrs`` (and ``allow_dns`` if the presigned URLs name a host the
    pod must resolve). The run step can then reach the store too, without credentials.
    """
    if network:
        return None
    labels = run_labels(run_id, labels)
    egress: list[dict[str, Any]] = []
    if allowed_egress_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in allowed_egress_cidrs],
                       "ports": [{"protocol": "TCP", "port": p} for p in allowed_egress_ports]})
    if allow_dns:
        egress.append({
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        })
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": job_name(run_id), "namespace": namespace, "labels": dict(labels),
                     "annotations": {RUN_ID_ANNOTATION: run_id}},
        "spec": {
            "podSelector": {"matchLabels": {RUN_ID_LABEL: run_id}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }


def _component_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "reprolab", "app.kubernetes.io/component": "runner",
            "app.kubernetes.io/managed-by": "reprolab"}


def make_pull_secret(*, run_id: str, namespace: str, registry: str, username: str, password: str,
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The run's image pull Secret (``kubernetes.io/dockerconfigjson``, named like its Job): a pull
    grant for the run's one image (``registrytoken.grant_for``), never the runner's own password."""
    import base64
    import json

    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": job_name(run_id), "namespace": namespace, "labels": run_labels(run_id, labels),
                     "annotations": {RUN_ID_ANNOTATION: run_id}},
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }


def make_runner_rbac(namespace: str, name: str = "reprolab-runner") -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of the runner service, confined to ``namespace`` (the
    runs' namespace): run Jobs, read their pods and logs, manage their NetworkPolicies."""
    meta = {"name": name, "namespace": namespace, "labels": _component_labels()}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(meta),
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                 "verbs": ["create", "get", "list", "delete"]},
                # each run's image pull Secret (a grant for its one image): created and deleted, never read
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
