"""The kubernetes serving target's manifests: validated strictly against the Kubernetes schema, and the
Deployment's pod executed for real with ``podman kube play``: the init container (the run's image,
restricted) downloads the artifact and checks its digest, the server container serves it from the
ConfigMap's ``oip_server.py`` with the same image's python3, read-only root, as uid 65534.

Changes for podman (kubeplay.CHANGES): the artifact Secret's URL becomes a literal env value; ports are
dropped (the server is reached at the pod's address on podman's bridge, which the host routes to); the
artifact is served by a plain HTTP server on this machine standing in for the object store's presigned
URL; the pod is played on podman's ``podman`` network (whose gateway is this machine); its
``restartPolicy`` becomes ``Never``: podman 4.3 restarts an init container that exited 0 under a
Deployment's ``Always`` and then fails to remove it ("cannot remove container ... as it is running"),
which a kubelet never does. The ConfigMap is given to ``podman kube play --configmap`` as a cluster
would mount it.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml
from reprolab_runner.deploy import manifests as m
from reprolab_runner.deploy.engine import ServingSpec

from . import kubeplay

STUDENT_IMAGE = "localhost/reprolab/bookworm-python:latest"
SCORE = textwrap.dedent("""
    def init():
        pass

    def run(inputs):
        return ["virginica" if row[2] > 2.5 else "setosa" for row in inputs["input-0"]]
""").encode()


def _playable(deployment: dict, secret: dict, name: str) -> dict:
    pod = kubeplay.for_podman(kubeplay.pod_from(deployment, name),
                              secrets={secret["metadata"]["name"]: secret["stringData"]})
    pod["spec"]["restartPolicy"] = "Never"
    return pod


def _spec(tmp_path: Path) -> ServingSpec:
    return ServingSpec(model_id="ws/iris/3", workspace="ws", name="iris", version=3, image=STUDENT_IMAGE,
                       artifact_dir=tmp_path, artifact_name="score.py", cpu_millis=500, memory_bytes=256 << 20)


def test_manifests_validate_strictly_and_are_restricted(tmp_path: Path) -> None:
    docs = m.make_model_manifests(_spec(tmp_path), namespace="models", installation="i1",
                                  artifact_url="http://store/x", artifact_sha256="0" * 64)
    assert [d["kind"] for d in docs] == ["NetworkPolicy", "ConfigMap", "Secret", "Deployment", "Service",
                                         "HorizontalPodAutoscaler"]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    docs = docs[1:]  # the policy first: no pod exists before it
    pod = docs[2]["spec"]["template"]["spec"]
    for c in pod["initContainers"] + pod["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"]
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["image"] == STUDENT_IMAGE
    assert "http://store/x" not in json.dumps(docs[2])  # the presigned URL stays in the Secret
    assert docs[4]["spec"]["scaleTargetRef"]["name"] == docs[2]["metadata"]["name"] == docs[3]["metadata"]["name"]


@pytest.fixture
def artifact_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    root = tmp_path / "store"
    root.mkdir()
    (root / "score.py").write_bytes(SCORE)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)  # noqa: S104 - the pod is on podman's bridge
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    gateway = subprocess.run(["podman", "network", "inspect", "podman", "--format",
                              "{{range .Subnets}}{{.Gateway}}{{end}}"], capture_output=True, text=True,
                             check=True).stdout.strip()
    yield f"http://{gateway}:{srv.server_address[1]}/score.py", hashlib.sha256(SCORE).hexdigest()
    srv.shutdown()


def test_the_model_pod_runs_restricted_and_serves(podman: str, artifact_server: tuple[str, str],
                                                  tmp_path: Path) -> None:
    url, sha = artifact_server
    spec = _spec(tmp_path)
    docs = m.make_model_manifests(spec, namespace="models", installation="i1", artifact_url=url,
                                  artifact_sha256=sha)
    # podman kube play enforces no NetworkPolicy (its content is checked in tests/runner/test_deploy_k8s.py)
    cm, secret, deployment = docs[1], docs[2], docs[3]
    name = f"kplay-model-{uuid.uuid4().hex[:8]}"
    pod = _playable(deployment, secret, name)
    cm_path = tmp_path / "configmap.yaml"
    cm_path.write_text(yaml.safe_dump(cm))
    try:
        kubeplay.play(pod, tmp_path, args=("--network", "podman", "--configmap", str(cm_path)))
        # `kube play` returned 0: the init container exited 0 (podman waits for it, then removes it)
        assert kubeplay.process_user(name, "server") == "65534:65534"
        ip = subprocess.run(["podman", "pod", "inspect", name, "--format", "{{.InfraContainerID}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
        addr = json.loads(subprocess.run(["podman", "inspect", ip, "--format", "{{json .NetworkSettings.Networks}}"],
                                         capture_output=True, text=True, check=True).stdout)
        base = f"http://{next(iter(addr.values()))['IPAddress']}:8080"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, kubeplay.logs(name, "server")
            time.sleep(0.5)
        resp = httpx.post(f"{base}/v2/models/iris/versions/3/infer", timeout=10, json={
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [6.3, 3.3, 6.0, 2.5]}]})
        assert resp.status_code == 200 and resp.json()["outputs"][0]["data"] == ["virginica"]
        # read-only root: the server cannot write beside itself
        probe = subprocess.run(["podman", "exec", f"{name}-server", "/usr/bin/python3", "-c",
                                "open('/opt/reprolab/model/x', 'w')"], capture_output=True, text=True)
        assert probe.returncode != 0 and "Read-only" in probe.stderr
    finally:
        kubeplay.down(name)


def test_a_tampered_artifact_stops_the_pod_before_it_serves(podman: str, artifact_server: tuple[str, str],
                                                            tmp_path: Path) -> None:
    url, _ = artifact_server
    docs = m.make_model_manifests(_spec(tmp_path), namespace="models", installation="i1", artifact_url=url,
                                  artifact_sha256="f" * 64)[1:]  # without the NetworkPolicy
    name = f"kplay-model-{uuid.uuid4().hex[:8]}"
    pod = _playable(docs[2], docs[1], name)
    cm_path = tmp_path / "configmap.yaml"
    cm_path.write_text(yaml.safe_dump(docs[0]))
    try:
        proc_args = ("--network", "podman", "--configmap", str(cm_path))
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(pod, sort_keys=False))
        proc = subprocess.run(["podman", "kube", "play", *proc_args, str(path)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode != 0 and "init container" in proc.stderr
        assert "digest mismatch" in kubeplay.logs(name, "fetch-artifact")
        assert kubeplay.state(name, "server").get("Status") != "running"
    finally:
        kubeplay.down(name)
