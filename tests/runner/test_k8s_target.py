"""The kubernetes run target: its manifests as data, and its control loop against a FAKE
Kubernetes API server (kmock's emulator, real HTTP).

No Kubernetes API server runs here: the fake only stores objects, so the tests play the Job
controller and kubelet themselves by adding the run's pod and the Job's final status (``finish``).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import io
import json
import re
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kmock as kmocklib
import kubernetes
import kubernetes_validate
import pytest
from reprolab_common import registrytoken as rt
from reprolab_runner.targets import k8s_manifests as m
from reprolab_runner.targets.base import Input, Limits, RunRequest, State, TargetError, target_class
from reprolab_runner.targets.kubernetes import KubernetesTarget

K8S_VERSION = kubernetes_validate.latest_version()
JOBS = kmocklib.resource("batch/v1/jobs")
PODS = kmocklib.resource("v1/pods")
POLICIES = kmocklib.resource("networking.k8s.io/v1/networkpolicies")
SECRETS = kmocklib.resource("v1/secrets")
OUTS = {name: f"https://s3.example.org/runs/r1/transfer/{name}?X-Amz-Signature=sig-{i}&X-Amz-Expires=3600"
        for i, name in enumerate(("status.json", "stdout.log", "stderr.log", "metrics.json", "outputs.tar.gz"))}
RUN_ID = "0b9c2a1e-5f7d-4c1e-9a53-2d8e6f1b7c40"


def manifests(**overrides: Any) -> m.RunManifests:
    kwargs: dict[str, Any] = dict(
        run_id=RUN_ID, namespace="runs", image="registry.example.org/ws/env@sha256:" + "ab" * 32,
        command=["python", "main.py", "--name", "two words"],
        inputs=[("https://s3.example.org/code.tar.gz?sig=1", "/work", "cd" * 32),
                ("https://s3.example.org/iris.csv?sig=2", "iris/iris.csv", "")],
        outputs=OUTS, limits=Limits(cpu_millis=1500, memory_bytes=2 << 30, timeout_seconds=900),
        fetcher_image="docker.io/curlimages/curl:8.11.1", env={"SEED": "1"}, owner_uid=OWNER_UID,
    )
    return m.make_run_manifests(**(kwargs | overrides))


def job(**overrides: Any) -> dict[str, Any]:
    return manifests(**overrides).job


def pod_spec(manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    return (manifest or job())["spec"]["template"]["spec"]


def steps(run: m.RunManifests | None = None) -> dict[str, dict[str, Any]]:
    """step -> its Job."""
    run = run or manifests()
    return {m.FETCH_STEP: run.fetch, m.RUN_STEP: run.job, m.UPLOAD_STEP: run.upload}


def containers(run: m.RunManifests | None = None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for j in steps(run).values() for c in pod_spec(j)["containers"]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["mountPath"]: v for v in container["volumeMounts"]}


# -- manifests as data ---------------------------------------------------------------------------

OWNER_UID = "5c0f1e52-7d4b-4a39-9d3e-1f0a2b3c4d5e"
POLICIES_NO_NET = m.make_network_policies(run_id=RUN_ID, namespace="runs", network=False)
POLICIES_NET = m.make_network_policies(run_id=RUN_ID, namespace="runs", network=True)
POLICIES_WITH_STORE = m.make_network_policies(run_id=RUN_ID, namespace="runs", network=False,
                                              store_cidrs=["10.0.5.0/24"], store_ports=[9000])
ALL = [*manifests().owned(), job(), job(limits=Limits(network=True)),
       *POLICIES_NET, *POLICIES_WITH_STORE, *m.make_runner_rbac("runs"),
       m.make_pull_secret(run_id=RUN_ID, namespace="runs", registry="r.example.org", username="u", password="p")]


@pytest.mark.parametrize("version", [f"1.{minor}.0" for minor in range(29, 38)])
def test_manifests_validate_against_the_openapi_schema(version: str) -> None:
    """Every object of a run (all three Jobs, the claim, both policies with and without network, the
    pull Secret, the RBAC) is valid under ``kubernetes-validate --strict`` for 1.29 to 1.37."""
    for manifest in ALL:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_every_container_is_restricted_and_no_pod_has_a_token() -> None:
    from tests.chart.podsecurity import restricted_violations

    for step, j in steps().items():
        spec = pod_spec(j)
        assert restricted_violations(spec) == [], step
        assert spec["restartPolicy"] == "Never"
        assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert j["spec"]["template"]["metadata"]["labels"][m.STEP_LABEL] == step
        for key in ("hostNetwork", "hostPID", "hostIPC", "serviceAccountName", "initContainers"):
            assert key not in spec
        # the run's claim and emptyDirs, nothing else (no hostPath, no secrets)
        for v in spec["volumes"]:
            assert set(v) == {"name", "emptyDir"} or v == {"name": "run", "persistentVolumeClaim":
                                                           {"claimName": f"reprolab-run-{RUN_ID}"}}, v
            if "emptyDir" in v:
                assert v["emptyDir"]["sizeLimit"], (step, v)  # a student cannot fill the node's disk
    assert set(containers()) == {m.FETCH_CONTAINER, m.RUN_CONTAINER, m.UPLOAD_CONTAINER}
    for container in containers().values():
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0 and sc["runAsGroup"] > 0
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True
        resources = container["resources"]
        assert resources["requests"] == resources["limits"] and resources["limits"]["ephemeral-storage"]


def test_single_shot_steps_with_deadlines_and_guaranteed_resources() -> None:
    run = manifests()
    assert run.job["spec"]["backoffLimit"] == 0 and run.job["spec"]["activeDeadlineSeconds"] == 900
    assert run.job["spec"]["ttlSecondsAfterFinished"] > 0
    for j in (run.fetch, run.upload):
        assert j["spec"]["backoffLimit"] == 0 and j["spec"]["activeDeadlineSeconds"] == m.STEP_DEADLINE_SECONDS
        assert "ttlSecondsAfterFinished" not in j["spec"]  # removed with their owner, the run Job
    # the run and upload steps wait (suspended) until the runner resumes them; the fetch step starts at once
    assert run.job["spec"]["suspend"] is True and run.upload["spec"]["suspend"] is True
    assert "suspend" not in run.fetch["spec"]
    assert containers()[m.RUN_CONTAINER]["resources"] == {
        "requests": {"cpu": "1500m", "memory": str(2 << 30), "ephemeral-storage": m.RUN_EPHEMERAL_STORAGE},
        "limits": {"cpu": "1500m", "memory": str(2 << 30), "ephemeral-storage": m.RUN_EPHEMERAL_STORAGE}}


def test_everything_but_the_run_job_is_owned_by_it() -> None:
    """ownerReferences to the run Job: the garbage collector removes an ended run's policies, claim,
    Secret and step Jobs with it (or with its TTL), so nothing leaks even without the runner."""
    secret = m.make_pull_secret(run_id=RUN_ID, namespace="runs", registry="r", username="u", password="p")
    run = manifests(pull_secret=secret)
    assert "ownerReferences" not in run.job["metadata"]
    owned = run.owned()
    assert [o["kind"] for o in owned] == ["NetworkPolicy", "NetworkPolicy", "PersistentVolumeClaim", "Secret",
                                          "Job", "Job"]
    for obj in owned:
        assert obj["metadata"]["ownerReferences"] == [{
            "apiVersion": "batch/v1", "kind": "Job", "name": f"reprolab-run-{RUN_ID}", "uid": OWNER_UID,
            "controller": False, "blockOwnerDeletion": False}], obj["kind"]
    assert all("ownerReferences" not in o["metadata"] for o in manifests(owner_uid=None).owned())
    assert pod_spec(run.job)["imagePullSecrets"] == [{"name": f"reprolab-run-{RUN_ID}"}]


def test_the_claim_is_shared_by_subpath() -> None:
    run = manifests(storage="3Gi", storage_class="fast")
    assert run.claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "3Gi"}},
                                 "storageClassName": "fast"}
    assert "storageClassName" not in manifests().claim["spec"]
    sub = {step: {mt["mountPath"]: (mt.get("subPath"), bool(mt.get("readOnly")))
                  for mt in pod_spec(j)["containers"][0]["volumeMounts"]} for step, j in steps(run).items()}
    assert sub[m.FETCH_STEP] == {"/work": ("work", False), "/data": ("data", False)}
    assert sub[m.RUN_STEP] == {"/work": ("work", False), "/data": ("data", True), "/tmp": (None, False),
                               "/outputs": ("outputs", False), m.STATUS_DIR: ("status", False)}
    assert sub[m.UPLOAD_STEP] == {"/outputs": ("outputs", True), m.STATUS_DIR: ("status", True),
                                  "/upload": (None, False)}
    (tmp,) = [v for v in pod_spec(run.job)["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": str(2 << 30)}  # counted against memory anyway
    (upload,) = [v for v in pod_spec(run.upload)["volumes"] if v["name"] == "upload"]
    assert upload["emptyDir"] == {"sizeLimit": "3Gi"}


def test_run_container_layout() -> None:
    run = containers()[m.RUN_CONTAINER]
    assert run["image"] == "registry.example.org/ws/env@sha256:" + "ab" * 32
    assert run["command"][:2] == ["/bin/sh", "-c"]
    assert run["command"][3:] == ["reprolab-run", "python", "main.py", "--name", "two words"]
    assert run["workingDir"] == "/work"
    env = {e["name"]: e["value"] for e in run["env"]}
    assert env == {"HOME": "/tmp", "TMPDIR": "/tmp", "SEED": "1"}
    assert run["terminationMessagePath"] == m.TERMINATION_LOG and run["terminationMessagePolicy"] == "File"


def test_inputs_are_fetched_by_presigned_url_and_checked() -> None:
    fetch = containers()[m.FETCH_CONTAINER]
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env == {"INPUT_0_URL": "https://s3.example.org/code.tar.gz?sig=1",
                   "INPUT_1_URL": "https://s3.example.org/iris.csv?sig=2"}
    script = fetch["command"][-1]
    assert '"$INPUT_0_URL"' in script and "verify /work/.reprolab-code " + "cd" * 32 in script
    assert "tar -xzf /work/.reprolab-code -C /work" in script and "unzip" in script
    assert "-o /data/iris/iris.csv" in script
    assert "https://" not in script  # URLs stay in the env, never in the shell text
    with pytest.raises(ValueError, match="not under /data"):
        manifests(inputs=[("https://x/y", "../etc/passwd", "")])
    with pytest.raises(ValueError, match="sha256"):
        manifests(inputs=[("https://x/y", "/work", "not-a-digest")])


def test_outputs_go_to_one_presigned_url_each() -> None:
    """S3 signs each key separately: the uploader gets one PUT URL per object, like the VM agent."""
    upload = containers()[m.UPLOAD_CONTAINER]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert env == {"OUTPUTS_ARCHIVE_URL": OUTS["outputs.tar.gz"], "STATUS_URL": OUTS["status.json"]}
    script = upload["command"][-1]
    assert '-T /upload/outputs.tar.gz "$OUTPUTS_ARCHIVE_URL"' in script
    assert '-T /upload/status.json "$STATUS_URL"' in script
    assert script.index("$OUTPUTS_ARCHIVE_URL") < script.index("$STATUS_URL")  # the status goes last
    assert "https://" not in script  # URLs stay in the env, never in the shell text
    with pytest.raises(ValueError, match="presigned http"):
        manifests(outputs=OUTS | {"status.json": "s3://bucket/prefix"})
    with pytest.raises(ValueError, match="outputs.tar.gz"):
        manifests(outputs={"status.json": OUTS["status.json"]})


@pytest.mark.parametrize("script", [m.fetch_script([("u", "/work", ""), ("u", "a.csv", "")]), m.upload_script(),
                                    m.run_script()])
def test_scripts_are_valid_sh(script: str) -> None:
    subprocess.run(["sh", "-n", "-c", script], check=True)


@pytest.mark.parametrize("code", [0, 3])
def test_run_wrapper_records_the_exit_code_and_exits_zero(tmp_path: Path, code: int) -> None:
    """The wrapper really runs (local sh): the exit code reaches both the uploader's status file
    and the termination message, and the pod goes on to the upload step."""
    status, log = tmp_path / "status.json", tmp_path / "termination-log"
    argv = ["sh", "-c", f'printf "%s|" "$@"; exit {code}', "x", "two words", "b"]
    proc = subprocess.run(["sh", "-c", m.run_script(str(status), str(log)), "reprolab-run", *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == "two words|b|"
    assert json.loads(status.read_text()) == {"exit_code": code, "timed_out": False, "error": ""}
    assert log.read_text() == str(code)


class _Store(http.server.BaseHTTPRequestHandler):
    """A FAKE object store at presigned URLs: serves GETs from ``objects`` and records PUTs."""

    objects: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802
        body = self.objects.get(self.path)
        self.send_response(200 if body is not None else 403)
        self.end_headers()
        self.wfile.write(body or b"")

    def do_PUT(self) -> None:  # noqa: N802
        self.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def store_url() -> Any:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Store.objects = {}
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _rooted(script: str, root: Path, dirs: list[str]) -> str:
    for d in dirs:  # whole absolute paths only, not "/outputs" inside "/upload/outputs.tar.gz"
        script = re.sub(rf"(?<![\w.$/-]){re.escape(d)}(?![\w.-])", lambda mt: f"{root}{mt.group(0)}", script)
    return script


def test_fetch_and_upload_scripts_really_run(tmp_path: Path, store_url: str) -> None:
    """The fetch and upload steps run for real (local sh, curl, tar, sha256sum) under a temporary
    root, against a FAKE object store over HTTP."""
    code = io.BytesIO()
    with tarfile.open(fileobj=code, mode="w:gz") as tar:
        info = tarfile.TarInfo("main.py")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"print(1)"[:6]))
    _Store.objects = {"/code.tar.gz?sig=1": code.getvalue(), "/iris.csv?sig=2": b"a,b\n"}
    for d in ("work", "data", "outputs/sub", ".reprolab", "upload"):
        (tmp_path / d).mkdir(parents=True)
    inputs = [(f"{store_url}/code.tar.gz?sig=1", "/work", hashlib.sha256(code.getvalue()).hexdigest()),
              (f"{store_url}/iris.csv?sig=2", "iris/iris.csv", hashlib.sha256(b"a,b\n").hexdigest())]
    env = {"PATH": "/usr/bin:/bin"} | {f"INPUT_{i}_URL": url for i, (url, _, _) in enumerate(inputs)}
    fetch = _rooted(m.fetch_script(inputs), tmp_path, ["/work", "/data"])
    subprocess.run(["sh", "-c", fetch], env=env, check=True)
    assert (tmp_path / "work/main.py").read_bytes() == b"print("
    assert not (tmp_path / "work/.reprolab-code").exists()
    assert (tmp_path / "data/iris/iris.csv").read_bytes() == b"a,b\n"

    bad = [(inputs[1][0], "x.csv", "00" * 32)]
    proc = subprocess.run(["sh", "-c", _rooted(m.fetch_script(bad), tmp_path, ["/data"])],
                          env=env | {"INPUT_0_URL": inputs[1][0]}, capture_output=True, text=True)
    assert proc.returncode != 0 and "sha256 mismatch" in proc.stderr

    (tmp_path / "outputs/sub/result.txt").write_text("0.97\n")
    (tmp_path / ".reprolab/status.json").write_text('{"exit_code": 3}\n')
    urls = {name: f"{store_url}/runs/r1/transfer/{name}?sig={name[:3]}" for name in ("status.json", "outputs.tar.gz")}
    upload = _rooted(m.upload_script(), tmp_path, ["/outputs", "/.reprolab", "/upload"])
    env = {"PATH": "/usr/bin:/bin"} | {e["name"]: e["value"] for e in m.upload_env(urls)}
    subprocess.run(["sh", "-c", upload], env=env, check=True)
    assert json.loads(_Store.objects["/runs/r1/transfer/status.json?sig=sta"]) == {"exit_code": 3}
    with tarfile.open(fileobj=io.BytesIO(_Store.objects["/runs/r1/transfer/outputs.tar.gz?sig=out"])) as tar:
        assert tar.extractfile("./sub/result.txt").read() == b"0.97\n"


def test_labels_and_names() -> None:
    manifest = job()
    for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
        labels = meta["labels"]
        assert labels["reprolab.org/run-id"] == RUN_ID
        assert labels["app.kubernetes.io/name"] == "reprolab"
        assert labels["app.kubernetes.io/component"] == "run"
        assert labels["app.kubernetes.io/managed-by"] == "reprolab-runner"
        assert labels["reprolab.org/step"] == "run"
        assert meta["annotations"]["reprolab.org/run-id"] == RUN_ID
    assert manifest["metadata"]["name"] == f"reprolab-run-{RUN_ID}"
    run = manifests()
    assert run.fetch["metadata"]["name"] == f"reprolab-run-{RUN_ID}-fetch"
    assert run.upload["metadata"]["name"] == f"reprolab-run-{RUN_ID}-upload"
    assert run.claim["metadata"]["name"] == f"reprolab-run-{RUN_ID}"
    assert all(len(o["metadata"]["name"]) <= 63 for o in steps(manifests(run_id="Run_ID.with.DOTS" * 3)).values())
    odd = m.job_name("Run_ID.with.DOTS" * 5)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", odd) and len(odd) <= 52
    assert m.job_name("A_b") != m.job_name("a-b")
    with pytest.raises(ValueError, match="label value"):
        m.run_labels("x" * 64)


def _selects(policy: dict[str, Any], job_manifest: dict[str, Any]) -> bool:
    """Does the policy's podSelector select the Job's pods (matchLabels and In expressions)?"""
    labels = job_manifest["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]
    if not selector["matchLabels"].items() <= labels.items():
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def test_the_run_pod_has_no_network_and_the_helpers_only_the_store() -> None:
    run = manifests(store_cidrs=["10.0.5.0/24"], store_ports=[9000])
    store, run_policy = run.policies
    assert [p["metadata"]["name"] for p in run.policies] == [f"{NAME}-store", f"{NAME}-run"]
    # each pod is selected by exactly one of the two
    assert _selects(store, run.fetch) and _selects(store, run.upload) and not _selects(store, run.job)
    assert _selects(run_policy, run.job)
    assert not _selects(run_policy, run.fetch) and not _selects(run_policy, run.upload)
    for policy in run.policies:
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["ingress"] == []
    assert run_policy["spec"]["egress"] == []  # deny all: the student's code reaches nothing, not even DNS
    egress = store["spec"]["egress"]
    assert egress[0] == {"to": [{"ipBlock": {"cidr": "10.0.5.0/24"}}], "ports": [{"protocol": "TCP", "port": 9000}]}
    assert egress[1]["to"] == m.DNS_PEERS and {p["port"] for p in egress[1]["ports"]} == {53}
    assert len(egress) == 2
    # someone else's run is selected by neither
    other = manifests(run_id="run-2")
    assert not any(_selects(p, j) for p in run.policies for j in steps(other).values())


def _blocked(egress_peer: dict[str, Any]) -> tuple[str, set[str]]:
    block = egress_peer["ipBlock"]
    return block["cidr"], set(block.get("except", []))


def test_a_network_run_reaches_neither_the_cluster_nor_metadata() -> None:
    store, run_policy = manifests(limits=Limits(network=True)).policies
    outside, dns = run_policy["spec"]["egress"]
    assert dns == {"to": m.DNS_PEERS, "ports": m.DNS_PORTS}  # only kube-dns inside the cluster
    v4, v6 = (_blocked(p) for p in outside["to"])
    assert "ports" not in outside  # every port, outside
    assert v4 == ("0.0.0.0/0", {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"})
    assert v6 == ("::/0", {"fc00::/7", "fe80::/10"})  # fd00:ec2::254 (AWS metadata) is inside fc00::/7
    # A cluster on other ranges: its CIDRs are configured; metadata stays blocked whatever is configured.
    _, custom = manifests(limits=Limits(network=True), cluster_cidrs=["203.0.113.0/24", "2001:db8::/48"]).policies
    v4, v6 = (_blocked(p) for p in custom["spec"]["egress"][0]["to"])
    assert v4 == ("0.0.0.0/0", {"203.0.113.0/24", "169.254.0.0/16"})
    assert v6 == ("::/0", {"2001:db8::/48", "fe80::/10", "fd00:ec2::254/128"})
    # Without store CIDRs, the helpers may reach the outside (a store on the internet) on the store ports only.
    helpers = store["spec"]["egress"][0]
    assert helpers["ports"] == [{"protocol": "TCP", "port": 443}] and helpers["to"] == outside["to"]
    import ipaddress
    for peer in outside["to"]:
        net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        for ex in peer["ipBlock"]["except"]:  # the API server refuses an except outside its cidr
            assert ipaddress.ip_network(ex).subnet_of(net)
    for address in ("169.254.169.254", "fd00:ec2::254", "10.96.0.1", "10.244.1.7"):  # metadata, cluster
        ip = ipaddress.ip_address(address)
        (peer,) = [p for p in outside["to"] if ipaddress.ip_network(p["ipBlock"]["cidr"]).version == ip.version]
        assert any(ip in ipaddress.ip_network(ex) for ex in peer["ipBlock"]["except"]), address


def test_rbac_is_namespaced_and_minimal() -> None:
    sa, role, binding = m.make_runner_rbac("runs")
    assert {o["metadata"]["namespace"] for o in (sa, role, binding)} == {"runs"}
    assert role["kind"] == "Role"  # never a ClusterRole
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("batch", "jobs"), ("", "pods"), ("", "pods/log"), ("networking.k8s.io", "networkpolicies"),
                       ("", "secrets"), ("", "persistentvolumeclaims")}
    assert not any("*" in rule["verbs"] for rule in role["rules"])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reprolab-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "runs"}]


def test_registered() -> None:
    assert target_class("kubernetes") is KubernetesTarget


# -- the control loop against the FAKE API server ----------------------------------------------------

LOG = b"loading iris\naccuracy 0.97\n"


CLAIMS = kmocklib.resource("v1/persistentvolumeclaims")


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the target uses. Like a
    real API server (and unlike the bare emulator) it gives every created object a uid."""
    kmock.resources["batch/v1/jobs"] = {"namespaced": True, "kind": "Job",
                                        "verbs": {"create", "get", "list", "patch", "delete"}}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": {"list", "get"},
                                  "subresources": {"log"}}
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = {"namespaced": True, "kind": "NetworkPolicy",
                                                               "verbs": {"create", "delete"}}
    kmock.resources["v1/persistentvolumeclaims"] = {"namespaced": True, "kind": "PersistentVolumeClaim",
                                                    "verbs": {"create", "delete"}}
    kmock.resources["v1/secrets"] = {"namespaced": True, "kind": "Secret", "verbs": {"create", "delete"}}
    kmock["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << LOG

    def with_uid(request: Any) -> Any:
        meta = request.data.get("metadata", {})
        obj = kmock.objects[request.resource, request.namespace or meta.get("namespace"), meta["name"]]
        if not (obj.get("metadata") or {}).get("uid"):
            obj.patch({"metadata": {"uid": str(uuid.uuid4())}})
        return dict(obj.raw)

    kmock["post"] << with_uid
    return kmock


def make_target(kmock: Any, registry_auth_file: Path | None = None, **options: Any) -> KubernetesTarget:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    settings = SimpleNamespace(registry_auth_file=registry_auth_file) if registry_auth_file else None
    return KubernetesTarget(settings, namespace="runs", api_client=kubernetes.client.ApiClient(configuration),
                            **options)


def runner_auth(tmp_path: Path) -> Path:
    """The runner's containers-auth.json for the registry the test images live in."""
    path = tmp_path / "runner-auth.json"
    path.write_text(rt.auth_json("registry.example.org", rt.RUNNER, "runner-pw"))
    return path


def request(run_id: str = RUN_ID, *, network: bool = False) -> RunRequest:
    return RunRequest(
        run_id=run_id, image="registry.example.org/ws/env@sha256:" + "ab" * 32, command=["python", "main.py"],
        code=Input(mount="/work", url="https://s3.example.org/code.tar.gz?sig=1", sha256="cd" * 32),
        datasets=[Input(mount="/data/iris.csv", url="https://s3.example.org/iris.csv?sig=2")],
        limits=Limits(timeout_seconds=60, network=network), output_urls=OUTS)


def _terminated(name: str, code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {"name": name, "image": "img", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}


COMPLETE = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}


def failed_job(reason: str, message: str) -> dict[str, Any]:
    return {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message}]}


def finish(kmock: Any, job_name: str, pod_status: dict[str, Any], job_status: dict[str, Any]) -> None:
    """Play the Job controller and kubelet of the FAKE: add the Job's pod and the Job's final status."""
    obj = kmock.objects[JOBS, "runs", job_name]
    assert not obj.get("spec", {}).get("suspend"), f"{job_name} finished while suspended"
    template = obj.raw["spec"]["template"]
    kmock.objects[PODS, "runs", f"{job_name}-x7k2p"] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{job_name}-x7k2p", "namespace": "runs", "labels": template["metadata"]["labels"],
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": template["spec"], "status": pod_status,
    }
    obj.patch({"status": job_status})


def done(container: str, code: int = 0, message: str = "") -> dict[str, Any]:
    return {"phase": "Succeeded", "containerStatuses": [_terminated(container, 0, "Completed", message or str(code))]}


def collect_garbage(kmock: Any) -> None:
    """Play the cluster's garbage collector in the FAKE: delete every object whose owner is gone."""
    alive = {o.get("metadata", {}).get("uid") for o in kmock.objects.values() if not o.deleted}
    for obj in list(kmock.objects.values()):
        owners = (obj.get("metadata") or {}).get("ownerReferences") or []
        if not obj.deleted and owners and not any(o["uid"] in alive for o in owners):
            obj.delete()


def live(kmock: Any, run_id: str = RUN_ID) -> set[tuple[str, str]]:
    """(kind, name) of the run's objects still in the FAKE."""
    return {(o.get("kind"), o["metadata"]["name"]) for o in kmock.objects.values()
            if not o.deleted and (o.get("metadata", {}).get("annotations") or {}).get("reprolab.org/run-id") == run_id}


def requests_to(kmock: Any, method: str, resource: Any) -> list[Any]:
    return [r for r in kmock[method] if r.resource == resource]


async def call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)  # the target is sync; the FAKE serves on this loop


NAME = f"reprolab-run-{RUN_ID}"


async def test_a_run_goes_through_fetch_run_and_upload_pods(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    assert handle == f"runs/{NAME}"

    # The run Job first (suspended), then what it owns: both policies before any pod can exist.
    posts = [(r.resource, r.data["metadata"]["name"]) for r in fake_k8s["post"]]
    assert posts == [(JOBS, NAME), (POLICIES, f"{NAME}-store"), (POLICIES, f"{NAME}-run"), (CLAIMS, NAME),
                     (JOBS, f"{NAME}-upload"), (JOBS, f"{NAME}-fetch")]
    uid = fake_k8s.objects[JOBS, "runs", NAME]["metadata"]["uid"]
    for resource, name in posts[1:]:
        created = fake_k8s.objects[resource, "runs", name].history[0].raw
        kubernetes_validate.validate(dict(created), K8S_VERSION, strict=True)
        assert [o["uid"] for o in created["metadata"]["ownerReferences"]] == [uid]
    assert fake_k8s.objects[JOBS, "runs", NAME]["spec"]["suspend"] is True
    assert fake_k8s.objects[JOBS, "runs", NAME]["spec"]["activeDeadlineSeconds"] == 60

    assert (await call(target.status, handle)).state == State.PENDING
    assert not requests_to(fake_k8s, "patch", JOBS)
    finish(fake_k8s, f"{NAME}-fetch", done(m.FETCH_CONTAINER), COMPLETE)
    status = await call(target.status, handle)
    assert status.state == State.PENDING and "inputs fetched" in status.reason
    (resume,) = requests_to(fake_k8s, "patch", JOBS)
    assert (resume.name, resume.data) == (NAME, {"spec": {"suspend": False}})
    assert fake_k8s.objects[JOBS, "runs", f"{NAME}-upload"]["spec"]["suspend"] is True  # not yet

    finish(fake_k8s, NAME, done(m.RUN_CONTAINER, 3), COMPLETE)
    assert (await call(target.status, handle)).state == State.RUNNING  # uploading
    assert fake_k8s.objects[JOBS, "runs", f"{NAME}-upload"]["spec"]["suspend"] is False
    assert await call(lambda: list(target.logs(handle))) == ["loading iris", "accuracy 0.97"]
    (log_request,) = [r for r in fake_k8s["get"] if r.url.path.endswith("/log")]
    assert log_request.params["container"] == m.RUN_CONTAINER and log_request.name == f"{NAME}-x7k2p"

    finish(fake_k8s, f"{NAME}-upload", done(m.UPLOAD_CONTAINER), COMPLETE)
    status = await call(target.status, handle)
    assert status.state == State.EXITED and status.exit_code == 3 and not status.timed_out


async def test_deadline_exceeded_is_a_timeout_and_nothing_is_uploaded(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    finish(fake_k8s, f"{NAME}-fetch", done(m.FETCH_CONTAINER), COMPLETE)
    await call(target.status, handle)
    finish(fake_k8s, NAME, {"phase": "Failed", "reason": "DeadlineExceeded", "containerStatuses": [
        _terminated(m.RUN_CONTAINER, 137, "Error")]},
        failed_job("DeadlineExceeded", "Job was active longer than specified deadline"))
    status = await call(target.status, handle)
    assert status.state == State.EXITED and status.timed_out and "deadline" in status.reason
    assert fake_k8s.objects[JOBS, "runs", f"{NAME}-upload"]["spec"]["suspend"] is True


async def test_a_failed_fetch_is_a_target_failure_and_the_run_never_starts(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    finish(fake_k8s, f"{NAME}-fetch", {"phase": "Failed", "containerStatuses": [
        _terminated(m.FETCH_CONTAINER, 22, "Error", "curl: (22) The requested URL returned error: 403\n")]},
        failed_job("BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    status = await call(target.status, handle)
    assert status.state == State.FAILED and status.exit_code is None
    assert "fetch-inputs exited 22 (Error): curl: (22) The requested URL returned error: 403" in status.reason
    assert "BackoffLimitExceeded" in status.reason
    assert fake_k8s.objects[JOBS, "runs", NAME]["spec"]["suspend"] is True
    assert not requests_to(fake_k8s, "patch", JOBS)


async def test_a_failed_upload_is_a_target_failure(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    finish(fake_k8s, f"{NAME}-fetch", done(m.FETCH_CONTAINER), COMPLETE)
    await call(target.status, handle)
    finish(fake_k8s, NAME, done(m.RUN_CONTAINER, 0), COMPLETE)
    await call(target.status, handle)
    finish(fake_k8s, f"{NAME}-upload", {"phase": "Failed", "containerStatuses": [
        _terminated(m.UPLOAD_CONTAINER, 22, "Error", "curl: (22) 403")]},
        failed_job("BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    status = await call(target.status, handle)
    assert status.state == State.FAILED and "upload-outputs exited 22" in status.reason


async def test_a_network_run_gets_a_policy_too(fake_k8s: Any) -> None:
    handle = await call(make_target(fake_k8s, cluster_cidrs=["10.0.0.0/8"], allowed_egress_cidrs=["192.0.2.10/32"],
                                    store_ports=[9000]).submit, request(network=True))
    name = handle.split("/")[1]
    run_policy = fake_k8s.objects[POLICIES, "runs", f"{name}-run"].raw
    outside = run_policy["spec"]["egress"][0]["to"][0]["ipBlock"]
    assert outside == {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.0.0/16"]}
    store = fake_k8s.objects[POLICIES, "runs", f"{name}-store"].raw
    assert store["spec"]["egress"][0] == {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}],
                                          "ports": [{"protocol": "TCP", "port": 9000}]}


async def test_the_kubelet_pulls_with_a_grant_for_the_runs_image_only(fake_k8s: Any, tmp_path: Path) -> None:
    """The run's own dockerconfigjson Secret, owned by its run Job, holds a pull grant for the run's one
    repository (never the runner's password); without registry credentials there is no Secret."""
    import base64

    handle = await call(make_target(fake_k8s, runner_auth(tmp_path)).submit, request())
    name = handle.split("/")[1]
    (post,) = requests_to(fake_k8s, "post", SECRETS)
    secret = fake_k8s.objects[SECRETS, "runs", name].history[0].raw
    kubernetes_validate.validate(dict(secret), K8S_VERSION, strict=True)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["ownerReferences"][0]["name"] == name
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    username, _, grant = base64.b64decode(config["auths"]["registry.example.org"]["auth"]).decode().partition(":")
    assert username == rt.GRANT_USER and "runner-pw" not in json.dumps(config)
    assert rt.check_grant("runner-pw", grant) == "ws/env"
    job_spec = fake_k8s.objects[JOBS, "runs", name].history[0].raw["spec"]["template"]["spec"]
    assert job_spec["imagePullSecrets"] == [{"name": name}]

    other = await call(make_target(fake_k8s).submit, request("run-3"))
    assert "imagePullSecrets" not in fake_k8s.objects[JOBS, "runs", other.split("/")[1]].raw["spec"]["template"]["spec"]
    assert len(requests_to(fake_k8s, "post", SECRETS)) == 1


async def test_nothing_of_an_ended_run_leaks(fake_k8s: Any, tmp_path: Path) -> None:
    """Deleting the run Job alone (a cancel, its TTL, someone's kubectl) takes everything else of the run
    with it: the FAKE plays the garbage collector by the ownerReferences the target wrote."""
    target = make_target(fake_k8s, runner_auth(tmp_path))
    handle = await call(target.submit, request())
    await call(target.submit, request("run-2"))
    assert live(fake_k8s) == {("Job", NAME), ("Job", f"{NAME}-fetch"), ("Job", f"{NAME}-upload"),
                              ("NetworkPolicy", f"{NAME}-store"), ("NetworkPolicy", f"{NAME}-run"),
                              ("PersistentVolumeClaim", NAME), ("Secret", NAME)}
    await call(target.cancel, handle)
    (delete,) = requests_to(fake_k8s, "delete", JOBS)
    assert (delete.name, delete.data["propagationPolicy"]) == (NAME, "Background")
    assert (await call(target.status, handle)).state == State.GONE
    collect_garbage(fake_k8s)
    assert live(fake_k8s) == set()
    assert len(live(fake_k8s, "run-2")) == 7  # another run's objects are not touched


async def test_cleanup_deletes_everything_by_name_too(fake_k8s: Any, tmp_path: Path) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    await call(target.cleanup, handle)
    assert live(fake_k8s) == set()  # without the garbage collector
    await call(target.cleanup, handle)  # idempotent: 404s are fine
    assert {r.data["propagationPolicy"] for r in fake_k8s["delete"]} == {"Background"}
    dest = tmp_path / "outputs"
    await call(target.collect, handle, dest)  # nothing to copy: the uploader put the outputs in the store
    assert dest.is_dir() and not any(dest.iterdir())


async def test_owned_finds_run_jobs_by_label(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    first = await call(target.submit, request())
    second = await call(target.submit, request("run-2"))
    # Someone else's Job in the namespace: the FAKE ignores label selectors, the target does not.
    fake_k8s.objects[JOBS, "runs", "unrelated"] = {"apiVersion": "batch/v1", "kind": "Job",
                                                   "metadata": {"name": "unrelated", "namespace": "runs"}}
    owned = await call(target.owned)
    assert {(o.run_id, o.handle) for o in owned} == {(RUN_ID, first), ("run-2", second)}  # not the step Jobs
    (listing,) = requests_to(fake_k8s, "get", JOBS)
    assert listing.params["labelSelector"] == ("reprolab.org/run-id,app.kubernetes.io/managed-by=reprolab-runner,"
                                               "reprolab.org/step=run")
    assert listing.namespace == "runs"


async def test_resubmitting_a_run_adopts_it_and_creates_what_is_missing(fake_k8s: Any) -> None:
    """A runner killed in the middle of ``submit`` left the run Job but not all of its objects."""
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    fake_k8s.objects[POLICIES, "runs", f"{NAME}-run"].delete()
    assert await call(target.submit, request()) == handle
    recreated = fake_k8s.objects[POLICIES, "runs", f"{NAME}-run"]
    assert not recreated.deleted
    assert recreated["metadata"]["ownerReferences"][0]["uid"] == fake_k8s.objects[JOBS, "runs", NAME]["metadata"]["uid"]
    # another run with a colliding name is refused, not adopted
    fake_k8s.objects[JOBS, "runs", "reprolab-run-run-9"] = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "reprolab-run-run-9", "namespace": "runs",
                                                              "annotations": {"reprolab.org/run-id": "other"}}}
    with pytest.raises(TargetError, match="409"):
        await call(target.submit, request("run-9"))
    with pytest.raises(TargetError, match="presigned URL"):
        await call(target.submit, RunRequest(run_id="x", image="i", command=["c"], code=Input(mount="/work",
                                                                                              path=Path("/c"))))


async def test_api_server_down() -> None:
    from reprolab_common.natsserver import free_port

    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    target = KubernetesTarget(namespace="runs", api_client=kubernetes.client.ApiClient(configuration))
    with pytest.raises(TargetError, match="unreachable"):
        await call(target.submit, request())
    with pytest.raises(TargetError, match="unreachable"):
        await call(target.status, "runs/reprolab-run-x")
    with pytest.raises(TargetError, match="not a kubernetes run handle"):
        await call(target.status, "no-namespace")


async def test_the_charts_runner_role_grants_exactly_what_the_target_uses(fake_k8s: Any, tmp_path: Path) -> None:
    """Every request the target makes in its whole life cycle (submit with and without network, the three
    steps' status, logs, cancel, cleanup, owned, resubmit) is allowed by the chart's Role, and the Role
    allows nothing more."""
    from tests.chart.chartlib import documents, load_values, render, role_grants, used_verbs

    target = make_target(fake_k8s, runner_auth(tmp_path))
    handle = await call(target.submit, request())
    await call(target.submit, request())  # adopting the existing Job
    await call(target.submit, request("run-2", network=True))
    await call(target.status, handle)
    finish(fake_k8s, f"{NAME}-fetch", done(m.FETCH_CONTAINER), COMPLETE)
    await call(target.status, handle)
    finish(fake_k8s, NAME, done(m.RUN_CONTAINER, 0), COMPLETE)
    await call(target.status, handle)
    finish(fake_k8s, f"{NAME}-upload", done(m.UPLOAD_CONTAINER), COMPLETE)
    await call(target.status, handle)
    await call(lambda: list(target.logs(handle)))
    await call(target.owned)
    await call(target.cancel, handle)
    await call(target.cleanup, handle)

    docs = documents(render(load_values("required.yaml")))
    used = used_verbs(fake_k8s)
    assert ("networking.k8s.io", "networkpolicies", "create") in used and ("", "pods/log", "get") in used
    assert ("batch", "jobs", "patch") in used and ("", "persistentvolumeclaims", "create") in used
    assert role_grants(docs, "rl-reprolab-runner") == used
