"""Kubernetes manifests of the ``kubernetes`` run target: pure functions returning plain dicts.

Tested as data (schema validation and assertions), executed with ``podman kube play``
(``tests/kube/test_run_pods.py``) and kept apart from the code that talks to the API server
(``kubernetes.py``), like kubespawner's ``objects.py``.

A NetworkPolicy selects pods, not containers: every container of a pod shares its network. So a run
is three Jobs, one pod each, in order, sharing one per-run PersistentVolumeClaim (subPaths ``work``,
``data``, ``outputs``, ``status``), all under the "restricted" Pod Security Standard:

1. ``fetch-inputs`` (Job ``<name>-fetch``, ``fetcher_image``): downloads the code archive from its
   presigned URL and unpacks it into ``/work``, downloads each dataset to its place under ``/data``,
   and checks every sha256. Its NetworkPolicy (``<name>-store``, shared with step 3) lets it reach
   only the object store (``store_cidrs`` on ``store_ports``, and DNS), nothing in the cluster.
2. ``run`` (Job ``<name>``, the student's image, created suspended and resumed by the runner once
   step 1 is Complete): runs the command in ``/work`` behind a small ``sh`` wrapper that records the
   exit code in ``/.reprolab/status.json`` and in the termination message, then exits 0, keeping
   "the code failed" (Job Complete, exit code in the termination message) apart from "the platform
   failed" (Job Failed: OOM-kill of the wrapper, eviction). Its NetworkPolicy (``<name>-run``)
   denies all ingress and egress, or, when the run asked for the network (``Limits.network``),
   allows egress anywhere except the cluster's own ranges (``cluster_cidrs``) and link-local
   addresses (cloud metadata at 169.254.169.254), plus DNS.
3. ``upload-outputs`` (Job ``<name>-upload``, ``fetcher_image``, created suspended and resumed once
   step 2 is Complete): tars ``/outputs`` and PUTs ``outputs.tar.gz``, then ``status.json``, each to
   its own presigned PUT URL (S3 signs each key separately, so a prefix URL cannot work).

The run Job is the owner (``ownerReferences``) of everything else of the run (the other two Jobs,
the claim, both policies, the pull Secret): deleting it, or its ``ttlSecondsAfterFinished``, lets
the garbage collector remove them all, so nothing of an ended run leaks even if the runner is gone.
It is created first, suspended, so nothing of the run executes before its policies exist.

``activeDeadlineSeconds`` bounds each step (the run step by ``Limits.timeout_seconds``; the run Job's
timer starts when it is resumed); when the run step's fires, nothing is uploaded (the run is
reported as timed out). Disk: the claim's size bounds what a run can write where its storage driver
enforces capacity, each container has an ``ephemeral-storage`` limit (logs, writable layer) and each
emptyDir a ``sizeLimit``. The fetcher image needs ``sh``, ``curl``, ``tar`` (with gzip), ``unzip``,
``sha256sum`` and ``head``. Kubernetes has no per-container pids limit: ``Limits.pids`` is left to
the node's ``podPidsLimit``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

STEP_LABEL = "reprolab.org/step"
"""Which of the run's three pods (``fetch``, ``run``, ``upload``): the NetworkPolicies select by it."""
FETCH_STEP, RUN_STEP, UPLOAD_STEP = "fetch", "run", "upload"
VOLUME = "run"
"""The pod volume of the run's claim; each step mounts subPaths of it."""

RUN_AS_USER = 1000
TTL_SECONDS_AFTER_FINISHED = 3600
STEP_DEADLINE_SECONDS = 1800
"""How long the fetch or the upload step may take (the run step has the run's own timeout)."""
DEFAULT_FETCHER_IMAGE = "docker.io/curlimages/curl:8.11.1"
HELPER_RESOURCES = {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "64Mi"}
RUN_EPHEMERAL_STORAGE = "256Mi"
"""The run container's node disk besides the claim: its logs (the root file system is read-only)."""
DEFAULT_STORAGE = "10Gi"
"""Size of a run's claim: code, datasets, outputs and the outputs' archive during the upload."""
DEFAULT_CLUSTER_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
"""What a run with network may not reach: every private range, where pod, service and node CIDRs of
kubeadm (10.244/16, 10.96/12), k3s (10.42/16, 10.43/16), GKE, EKS and AKS clusters live. Configurable
(``REPROLAB_RUNNER_KUBERNETES_CLUSTER_CIDRS``) for a cluster on public addresses."""
ALWAYS_BLOCKED_CIDRS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")
"""Link-local addresses, where clouds serve instance metadata and credentials (169.254.169.254,
AWS's fd00:ec2::254): blocked for every run whatever ``cluster_cidrs`` says."""
DNS_PEERS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
              "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]

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
    amounts = {"cpu": f"{limits.cpu_millis}m", "memory": str(limits.memory_bytes),
               "ephemeral-storage": RUN_EPHEMERAL_STORAGE}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _helper_resources() -> dict[str, Any]:
    return {"requests": dict(HELPER_RESOURCES), "limits": dict(HELPER_RESOURCES)}


def step_job_name(run_id: str, step: str) -> str:
    """The Job (and NetworkPolicy) name of one step: the run step's is ``job_name`` itself."""
    base = job_name(run_id)
    return base if step == RUN_STEP else f"{base}-{step}"


def owner_reference(owner: Mapping[str, str]) -> dict[str, Any]:
    """An ownerReference to the run Job (``{"name", "uid"}`` as the API server answered its creation):
    the garbage collector deletes the owned object with it. ``blockOwnerDeletion`` is off, so the
    runner needs no ``jobs/finalizers`` permission."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": owner["name"], "uid": owner["uid"],
            "controller": False, "blockOwnerDeletion": False}


def _metadata(name: str, run_id: str, namespace: str, labels: dict[str, str],
              owner: Mapping[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels),
                            "annotations": {RUN_ID_ANNOTATION: run_id}}
    if owner:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def _pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _claim_mount(sub_path: str, mount_path: str, *, read_only: bool = False) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": VOLUME, "mountPath": mount_path, "subPath": sub_path}
    if read_only:
        mount["readOnly"] = True
    return mount


def _step_job(*, run_id: str, namespace: str, step: str, labels: dict[str, str], container: dict[str, Any],
              volumes: list[dict[str, Any]], deadline: int, suspend: bool, owner: Mapping[str, str] | None,
              pull_secret: str | None = None) -> dict[str, Any]:
    step_labels = {**labels, STEP_LABEL: step}
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": deadline,
        "template": {
            "metadata": {"labels": dict(step_labels), "annotations": {RUN_ID_ANNOTATION: run_id}},
            "spec": {
                **({"imagePullSecrets": [{"name": pull_secret}]} if pull_secret else {}),
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": _pod_security_context(),
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if suspend:
        spec["suspend"] = True
    if step == RUN_STEP:  # the owner of the rest: its TTL removes the whole run
        spec["ttlSecondsAfterFinished"] = TTL_SECONDS_AFTER_FINISHED
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": _metadata(step_job_name(run_id, step), run_id, namespace, step_labels, owner), "spec": spec}


def _claim_volume(run_id: str) -> dict[str, Any]:
    return {"name": VOLUME, "persistentVolumeClaim": {"claimName": job_name(run_id)}}


def make_run_pvc(*, run_id: str, namespace: str, storage: str = DEFAULT_STORAGE, storage_class: str = "",
                 labels: dict[str, str] | None = None, owner: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run's claim, shared by its three pods one after the other (ReadWriteOnce is enough: they
    never overlap). ``storage_class`` empty: the cluster's default class."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _metadata(job_name(run_id), run_id, namespace, run_labels(run_id, labels), owner),
            "spec": spec}


def make_fetch_job(*, run_id: str, namespace: str, inputs: Sequence[tuple[str, str, str]],
                   fetcher_image: str = DEFAULT_FETCHER_IMAGE, labels: dict[str, str] | None = None,
                   owner: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Step 1: ``inputs`` are ``(presigned GET URL, mount, sha256)``; the one mounted at ``/work`` is
    the code archive, the others are dataset files placed under ``/data``."""
    container = {
        "name": FETCH_CONTAINER,
        "image": fetcher_image,
        "command": ["/bin/sh", "-c", fetch_script(inputs)],
        "env": [{"name": f"INPUT_{i}_URL", "value": url} for i, (url, _, _) in enumerate(inputs)],
        "securityContext": restricted_security_context(),
        "resources": _helper_resources(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [_claim_mount("work", WORK_DIR), _claim_mount("data", DATA_DIR)],
    }
    return _step_job(run_id=run_id, namespace=namespace, step=FETCH_STEP, labels=run_labels(run_id, labels),
                     container=container, volumes=[_claim_volume(run_id)], deadline=STEP_DEADLINE_SECONDS,
                     suspend=False, owner=owner)


def make_run_job(
    *,
    run_id: str,
    namespace: str,
    image: str,
    command: list[str],
    limits: Limits,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    pull_secret: str | None = None,
    suspend: bool = True,
) -> dict[str, Any]:
    """Step 2, the owner of the run's other objects: ``command`` in ``image`` once, sandboxed (see the
    module docstring). Created suspended; the runner resumes it when the fetch step is Complete.
    ``pull_secret`` names the run's own image pull Secret (``make_pull_secret``), if the registry needs one."""
    if not command:
        raise ValueError("a run needs a command")
    run_env = {"HOME": TMP_DIR, "TMPDIR": TMP_DIR, **(env or {})}
    container = {
        "name": RUN_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", run_script(), "reprolab-run", *command],
        "workingDir": WORK_DIR,
        "env": [{"name": k, "value": v} for k, v in run_env.items()],
        "securityContext": restricted_security_context(),
        "resources": _resources(limits),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            _claim_mount("work", WORK_DIR),
            _claim_mount("data", DATA_DIR, read_only=True),
            {"name": "tmp", "mountPath": TMP_DIR},
            _claim_mount("outputs", OUTPUTS_DIR),
            _claim_mount("status", STATUS_DIR),
        ],
    }
    volumes = [
        _claim_volume(run_id),
        # /tmp is a tmpfs counted against the run's memory limit, as with the local target.
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": str(limits.memory_bytes)}},
    ]
    return _step_job(run_id=run_id, namespace=namespace, step=RUN_STEP, labels=run_labels(run_id, labels),
                     container=container, volumes=volumes, deadline=limits.timeout_seconds, suspend=suspend,
                     owner=None, pull_secret=pull_secret)


def make_upload_job(*, run_id: str, namespace: str, outputs: Mapping[str, str],
                    fetcher_image: str = DEFAULT_FETCHER_IMAGE, storage: str = DEFAULT_STORAGE,
                    labels: dict[str, str] | None = None, owner: Mapping[str, str] | None = None,
                    suspend: bool = True) -> dict[str, Any]:
    """Step 3: ``outputs`` maps ``outputs.tar.gz`` and ``status.json`` to their presigned PUT URLs.
    Created suspended with the rest; the runner resumes it when the run step is Complete."""
    container = {
        "name": UPLOAD_CONTAINER,
        "image": fetcher_image,
        "command": ["/bin/sh", "-c", upload_script()],
        "env": upload_env(outputs),
        "securityContext": restricted_security_context(),
        "resources": _helper_resources(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            _claim_mount("outputs", OUTPUTS_DIR, read_only=True),
            _claim_mount("status", STATUS_DIR, read_only=True),
            {"name": "upload", "mountPath": UPLOAD_DIR},
        ],
    }
    # The archive is at most what /outputs holds, which the claim bounds.
    volumes = [_claim_volume(run_id), {"name": "upload", "emptyDir": {"sizeLimit": storage}}]
    return _step_job(run_id=run_id, namespace=namespace, step=UPLOAD_STEP, labels=run_labels(run_id, labels),
                     container=container, volumes=volumes, deadline=STEP_DEADLINE_SECONDS, suspend=suspend,
                     owner=owner)


def _split_cidrs(cidrs: Sequence[str]) -> tuple[list[str], list[str]]:
    v4 = [c for c in cidrs if ":" not in c]
    return v4, [c for c in cidrs if ":" in c]


def _outside(cluster_cidrs: Sequence[str]) -> list[dict[str, Any]]:
    """ipBlocks for "anywhere but the cluster and link-local" (IPv4 and IPv6)."""
    v4, v6 = _split_cidrs([*cluster_cidrs, *ALWAYS_BLOCKED_CIDRS])
    # fd00:ec2::254 lies inside fc00::/7: an except must be inside its cidr, and one inside another is redundant
    v6 = [c for c in v6 if not (c == "fd00:ec2::254/128" and "fc00::/7" in v6)]
    return [{"ipBlock": {"cidr": "0.0.0.0/0", "except": v4}}, {"ipBlock": {"cidr": "::/0", "except": v6}}]


def make_network_policies(
    *,
    run_id: str,
    namespace: str,
    network: bool,
    labels: dict[str, str] | None = None,
    owner: Mapping[str, str] | None = None,
    store_cidrs: Sequence[str] = (),
    store_ports: Sequence[int] = (443,),
    store_dns: bool = True,
    cluster_cidrs: Sequence[str] = DEFAULT_CLUSTER_CIDRS,
) -> list[dict[str, Any]]:
    """The run's two NetworkPolicies, no ingress in either:

    - ``<name>-store`` selects the fetch and upload pods: egress to the object store only
      (``store_cidrs`` on ``store_ports``; without ``store_cidrs``, anywhere outside the cluster on
      those ports, for a store on the internet), plus DNS (``store_dns``) for the URLs' host. Only
      the platform's fetcher runs there, with the run's own presigned URLs.
    - ``<name>-run`` selects the run pod: no egress at all, or with ``network`` egress anywhere but
      ``cluster_cidrs`` and link-local (cloud metadata), plus DNS.
    """
    labels = run_labels(run_id, labels)
    store_peers = [{"ipBlock": {"cidr": c}} for c in store_cidrs] or _outside(cluster_cidrs)
    store_egress: list[dict[str, Any]] = [
        {"to": store_peers, "ports": [{"protocol": "TCP", "port": p} for p in store_ports]}]
    if store_dns:
        store_egress.append({"to": DNS_PEERS, "ports": DNS_PORTS})
    run_egress = [{"to": _outside(cluster_cidrs)}, {"to": DNS_PEERS, "ports": DNS_PORTS}] if network else []
    store_selector = {"matchLabels": {RUN_ID_LABEL: run_id},
                      "matchExpressions": [{"key": STEP_LABEL, "operator": "In",
                                            "values": [FETCH_STEP, UPLOAD_STEP]}]}
    run_selector = {"matchLabels": {RUN_ID_LABEL: run_id, STEP_LABEL: RUN_STEP}}
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": _metadata(f"{job_name(run_id)}-store", run_id, namespace, labels, owner),
         "spec": {"podSelector": store_selector, "policyTypes": ["Ingress", "Egress"], "ingress": [],
                  "egress": store_egress}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": _metadata(f"{job_name(run_id)}-run", run_id, namespace, labels, owner),
         "spec": {"podSelector": run_selector, "policyTypes": ["Ingress", "Egress"], "ingress": [],
                  "egress": run_egress}},
    ]


@dataclass(frozen=True)
class RunManifests:
    """Everything of one run, in creation order after ``job`` (which owns the rest)."""

    job: dict[str, Any]
    claim: dict[str, Any]
    policies: list[dict[str, Any]]
    fetch: dict[str, Any]
    upload: dict[str, Any]
    pull_secret: dict[str, Any] | None = None

    def owned(self) -> list[dict[str, Any]]:
        """The objects owned by the run Job, in the order they must be created (the policies before
        any pod of the run exists)."""
        secret = [self.pull_secret] if self.pull_secret else []
        return [*self.policies, self.claim, *secret, self.upload, self.fetch]


def make_run_manifests(
    *,
    run_id: str,
    namespace: str,
    image: str,
    command: list[str],
    inputs: Sequence[tuple[str, str, str]],
    outputs: Mapping[str, str],
    limits: Limits,
    owner_uid: str | None = None,
    fetcher_image: str = DEFAULT_FETCHER_IMAGE,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    pull_secret: dict[str, Any] | None = None,
    storage: str = DEFAULT_STORAGE,
    storage_class: str = "",
    store_cidrs: Sequence[str] = (),
    store_ports: Sequence[int] = (443,),
    store_dns: bool = True,
    cluster_cidrs: Sequence[str] = DEFAULT_CLUSTER_CIDRS,
) -> RunManifests:
    """All objects of one run. ``owner_uid`` is the run Job's uid once the API server created it
    (``None`` before: the owned objects then carry no ownerReferences yet)."""
    job = make_run_job(run_id=run_id, namespace=namespace, image=image, command=command, limits=limits,
                       labels=labels, env=env,
                       pull_secret=pull_secret["metadata"]["name"] if pull_secret else None)
    owner = {"name": job["metadata"]["name"], "uid": owner_uid} if owner_uid else None
    if pull_secret and owner:
        pull_secret = {**pull_secret, "metadata": {**pull_secret["metadata"],
                                                   "ownerReferences": [owner_reference(owner)]}}
    return RunManifests(
        job=job,
        claim=make_run_pvc(run_id=run_id, namespace=namespace, storage=storage, storage_class=storage_class,
                           labels=labels, owner=owner),
        policies=make_network_policies(run_id=run_id, namespace=namespace, network=limits.network, labels=labels,
                                       owner=owner, store_cidrs=store_cidrs, store_ports=store_ports,
                                       store_dns=store_dns, cluster_cidrs=cluster_cidrs),
        fetch=make_fetch_job(run_id=run_id, namespace=namespace, inputs=inputs, fetcher_image=fetcher_image,
                             labels=labels, owner=owner),
        upload=make_upload_job(run_id=run_id, namespace=namespace, outputs=outputs, fetcher_image=fetcher_image,
                               storage=storage, labels=labels, owner=owner),
        pull_secret=pull_secret,
    )


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
    runs' namespace): run Jobs, read their pods and logs, manage their NetworkPolicies and claims."""
    meta = {"name": name, "namespace": namespace, "labels": _component_labels()}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(meta),
            "rules": [
                # "patch" resumes a run's suspended run and upload Jobs
                {"apiGroups": ["batch"], "resources": ["jobs"],
                 "verbs": ["create", "get", "list", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                 "verbs": ["create", "delete"]},
                # each run's claim, shared by its three pods
                {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "delete"]},
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
