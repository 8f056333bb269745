"""Run rendered pod specs for real with ``podman kube play`` (no Kubernetes API server exists here).

``podman kube play`` (4.3) runs a Pod as a cluster node would: init containers in order, then the
containers, with the spec's runAsUser/runAsGroup, readOnlyRootFilesystem, capabilities,
allowPrivilegeEscalation, emptyDir volumes and the seccomp profile it is given. What it cannot take
as rendered is changed by :func:`for_podman`, and every change is listed in :data:`CHANGES`: security
contexts are never touched.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

# What a test changes in a rendered pod spec to run it outside a cluster (docs/architecture.md lists it).
CHANGES = (
    "env `valueFrom.secretKeyRef` becomes the literal value of that Secret key: podman 4.3 reads"
    " secretKeyRef only from secrets in its own JSON form and refuses Kubernetes Secrets",
    "secret volumes get `optional: false` (the Kubernetes default, spelled out: podman 4.3 crashes on a"
    " missing `optional`) and their Secrets are created in podman's secret store with decoded values"
    " (podman 4.3 writes `data` into the volume without base64-decoding it)",
    "`ports` (containerPort declarations) are dropped: the pods use the host's network, where podman 4.3"
    " refuses port mappings; the port a service listens on is its environment value",
    "environment values naming addresses (database, NATS, S3, registry, port) point at this machine",
    "a Localhost seccomp profile (`seccompProfile.type: Localhost`) is passed as podman's per-container"
    " seccomp annotation, which is where podman 4.3 reads it",
    "the build container gets a writable file at /dev/termination-log (a hostPath volume), which the"
    " kubelet provides and podman does not; the digest is read from it as the kubelet would",
    "a persistentVolumeClaim mounted by `subPath` becomes the podman volume `<claimName>-<subPath>` (podman"
    " 4.3 maps a claim to the volume named by claimName but ignores subPath, mounting the whole volume);"
    " every mount of a run's claim is by subPath, so each directory is still one volume shared by the"
    " run's pods, as the subdirectories of one claim are",
    "emptyDir volumes become fresh hostPath directories of mode 0777, one per pod and volume, as the kubelet"
    " makes them, where a pod's containers need that (`per_pod_empty_dirs`): podman 4.3 turns an emptyDir into"
    " the NAMED volume of the emptyDir's name, shared by every pod that names one alike and kept after them,"
    " and chowns it to the user of whichever container mounts it first",
    "the run pod is played with `--network none`: podman does not enforce NetworkPolicy, so the run"
    " policy's deny-all egress is stood in for by a pod with no network at all",
)


def pod_from(workload: dict[str, Any], name: str) -> dict[str, Any]:
    """A v1 Pod with the pod template of a Deployment or Job."""
    template = copy.deepcopy(workload["spec"]["template"])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": template.get("metadata", {}).get("labels", {}),
                         "annotations": template.get("metadata", {}).get("annotations", {}) or {}},
            "spec": template["spec"]}


def secret_values(doc: dict[str, Any]) -> dict[str, str]:
    import base64

    values = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    values.update(doc.get("stringData") or {})
    return values


def for_podman(pod: dict[str, Any], *, secrets: dict[str, dict[str, str]],
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """``pod`` changed only as :data:`CHANGES` says (env addresses from ``env``; security contexts untouched)."""
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        c.pop("ports", None)
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                e.pop("valueFrom")
                e["value"] = secrets[ref["name"]][ref["key"]]
            if env and e["name"] in env:
                e["value"] = env[e["name"]]
        profile = ((c.get("securityContext") or {}).get("seccompProfile")
                   or (spec.get("securityContext") or {}).get("seccompProfile") or {})
        if profile.get("type") == "Localhost":
            # Relative to `podman kube play --seccomp-profile-root`, as the kubelet's is to its seccomp dir.
            pod["metadata"]["annotations"][f"container.seccomp.security.alpha.kubernetes.io/{c['name']}"] = \
                f"localhost/{profile['localhostProfile']}"
    for v in spec.get("volumes", []):
        if "secret" in v:
            v["secret"].setdefault("optional", False)
    return pod


def claims_by_subpath(pod: dict[str, Any], prefix: str = "") -> list[str]:
    """Each (claim, subPath) mount becomes a mount of the podman volume ``<prefix><claim>-<subPath>``
    (see :data:`CHANGES`); returns the volume names. A test removes them with :func:`remove_volumes`."""
    spec = pod["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes", [])
              if "persistentVolumeClaim" in v}
    added: dict[str, dict[str, Any]] = {}
    for c in spec.get("initContainers", []) + spec["containers"]:
        for mount in c.get("volumeMounts", []):
            if mount["name"] in claims and mount.get("subPath"):
                volume = f"{prefix}{claims[mount['name']]}-{mount.pop('subPath')}"
                added[volume] = {"name": volume, "persistentVolumeClaim": {"claimName": volume}}
                mount["name"] = volume
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in claims] + list(added.values())
    return list(added)


def per_pod_empty_dirs(pod: dict[str, Any], workdir: Path) -> list[Path]:
    """Each emptyDir becomes a new hostPath directory of mode 0777 (see :data:`CHANGES`): private to this pod
    and writable by each of its containers' users, as the kubelet makes emptyDirs. Returns the directories."""
    made = []
    for v in pod["spec"].get("volumes", []):
        if "emptyDir" in v:
            path = workdir / f"{pod['metadata']['name']}-{v['name']}"
            path.mkdir(parents=True)
            path.chmod(0o777)
            del v["emptyDir"]
            v["hostPath"] = {"path": str(path), "type": "Directory"}
            made.append(path)
    return made


def remove_volumes(names: list[str]) -> None:
    for name in names:
        subprocess.run(["podman", "volume", "rm", "--force", name], capture_output=True, timeout=60)


def create_secrets(secrets: dict[str, dict[str, str]], workdir: Path) -> list[str]:
    """Create each Secret in podman's store (decoded values, see CHANGES); returns their names."""
    names = []
    for name, values in secrets.items():
        path = workdir / f"secret-{name}.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                    "data": values}))
        subprocess.run(["podman", "secret", "rm", name], capture_output=True)
        subprocess.run(["podman", "secret", "create", name, str(path)], check=True, capture_output=True)
        names.append(name)
    return names


def remove_secrets(names: list[str]) -> None:
    for name in names:
        subprocess.run(["podman", "secret", "rm", name], capture_output=True)


def play(pod: dict[str, Any], workdir: Path, *, args: tuple[str, ...] = ("--network", "host")) -> str:
    """``podman kube play`` the pod (started, not waited for); returns its name."""
    name = pod["metadata"]["name"]
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(pod, sort_keys=False))
    proc = subprocess.run(["podman", "kube", "play", *args, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"podman kube play {name} failed: {proc.stderr[-2000:]}"
    return name


def down(name: str) -> None:
    subprocess.run(["podman", "pod", "rm", "--force", "--time", "2", name], capture_output=True, timeout=120)


def logs(pod: str, container: str, tail: int = 60) -> str:
    proc = subprocess.run(["podman", "logs", "--tail", str(tail), f"{pod}-{container}"], capture_output=True,
                          text=True, timeout=60)
    return proc.stdout + proc.stderr


def state(pod: str, container: str) -> dict[str, Any]:
    proc = subprocess.run(["podman", "inspect", "--format", "{{json .State}}", f"{pod}-{container}"],
                          capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def wait_exited(pod: str, container: str, timeout: float) -> dict[str, Any]:
    """The container's state once it has exited (asserts it does within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = state(pod, container)
        if st.get("Status") == "exited":
            return st
        time.sleep(1)
    raise AssertionError(f"{pod}-{container} still running after {timeout:.0f} s:\n{logs(pod, container)}")


def process_user(pod: str, container: str) -> str:
    """uid:gid the container's process runs as, from podman's own record."""
    proc = subprocess.run(["podman", "inspect", "--format", "{{.Config.User}}", f"{pod}-{container}"],
                          capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


def with_termination_log(pod: dict[str, Any], container: str, workdir: Path) -> Path:
    """Give ``container`` a writable /dev/termination-log file, as the kubelet does (podman does not);
    returns the host file, which is what the kubelet reads the termination message from."""
    path = workdir / f"{pod['metadata']['name']}-{container}.termination-log"
    path.write_text("")
    path.chmod(0o666)
    spec = pod["spec"]
    spec.setdefault("volumes", []).append(
        {"name": "termination-log", "hostPath": {"path": str(path), "type": "File"}})
    (c,) = [c for c in spec["containers"] if c["name"] == container]
    c.setdefault("volumeMounts", []).append({"name": "termination-log", "mountPath": "/dev/termination-log"})
    return path
