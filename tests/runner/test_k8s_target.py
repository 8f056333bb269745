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


def job(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        run_id=RUN_ID, namespace="runs", image="registry.example.org/ws/env@sha256:" + "ab" * 32,
        command=["python", "main.py", "--name", "two words"],
        inputs=[("https://s3.example.org/code.tar.gz?sig=1", "/work", "cd" * 32),
                ("https://s3.example.org/iris.csv?sig=2", "iris/iris.csv", "")],
        outputs=OUTS, limits=Limits(cpu_millis=1500, memory_bytes=2 << 30, timeout_seconds=900),
        fetcher_image="docker.io/curlimages/curl:8.11.1", env={"SEED": "1"},
    )
    return m.make_run_job(**(kwargs | overrides))


def pod_spec(manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    return (manifest or job())["spec"]["template"]["spec"]


def containers(manifest: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    spec = pod_spec(manifest)
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["mountPath"]: v for v in container["volumeMounts"]}


# -- manifests as data ---------------------------------------------------------------------------

POLICY = m.make_network_policy(run_id=RUN_ID, namespace="runs", network=False)
POLICY_WITH_STORE = m.make_network_policy(run_id=RUN_ID, namespace="runs", network=False,
                                          allowed_egress_cidrs=["10.0.5.0/24"], allow_dns=True)


@pytest.mark.parametrize("manifest", [job(), job(inputs=[("https://x/c.zip", "/work", "")]), POLICY,
                                      POLICY_WITH_STORE, *m.make_runner_rbac("runs")],
                         ids=lambda d: d["kind"])
def test_manifests_validate_against_the_openapi_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_every_container_is_restricted_and_the_pod_has_no_token() -> None:
    spec = pod_spec()
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(containers()) == {m.FETCH_CONTAINER, m.RUN_CONTAINER, m.UPLOAD_CONTAINER}
    for container in containers().values():
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0 and sc["runAsGroup"] > 0
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["readOnlyRootFilesystem"] is True
    assert all(set(v) == {"name", "emptyDir"} for v in spec["volumes"])  # no hostPath, no secrets
    for key in ("hostNetwork", "hostPID", "hostIPC", "serviceAccountName"):
        assert key not in spec


def test_single_shot_with_deadline_and_guaranteed_resources() -> None:
    spec = job()["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 900
    assert spec["ttlSecondsAfterFinished"] > 0
    run = containers()[m.RUN_CONTAINER]
    expected = {"cpu": "1500m", "memory": str(2 << 30)}
    assert run["resources"] == {"requests": expected, "limits": expected}
    for container in containers().values():
        assert container["resources"]["requests"] == container["resources"]["limits"]


def test_run_container_layout() -> None:
    run = containers()[m.RUN_CONTAINER]
    assert run["image"] == "registry.example.org/ws/env@sha256:" + "ab" * 32
    assert run["command"][:2] == ["/bin/sh", "-c"]
    assert run["command"][3:] == ["reprolab-run", "python", "main.py", "--name", "two words"]
    assert run["workingDir"] == "/work"
    env = {e["name"]: e["value"] for e in run["env"]}
    assert env == {"HOME": "/tmp", "TMPDIR": "/tmp", "SEED": "1"}
    mnt = mounts(run)
    assert set(mnt) == {"/work", "/data", "/tmp", "/outputs", m.STATUS_DIR}
    assert mnt["/data"]["readOnly"] is True and not mnt["/outputs"].get("readOnly")
    volumes = {v["name"]: v["emptyDir"] for v in pod_spec()["volumes"]}
    assert volumes[mnt["/tmp"]["name"]] == {"medium": "Memory"}
    assert "emptyDir" in next(v for v in pod_spec()["volumes"] if v["name"] == mnt["/outputs"]["name"])
    # The uploader sees the outputs and the exit status read-only, after the run step (init) is over.
    upload = containers()[m.UPLOAD_CONTAINER]
    assert mounts(upload)["/outputs"]["readOnly"] is True and mounts(upload)[m.STATUS_DIR]["readOnly"] is True
    assert [c["name"] for c in pod_spec()["initContainers"]] == [m.FETCH_CONTAINER, m.RUN_CONTAINER]


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
    assert set(mounts(fetch)) == {"/work", "/data"}
    with pytest.raises(ValueError, match="not under /data"):
        job(inputs=[("https://x/y", "../etc/passwd", "")])
    with pytest.raises(ValueError, match="sha256"):
        job(inputs=[("https://x/y", "/work", "not-a-digest")])


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
        job(outputs=OUTS | {"status.json": "s3://bucket/prefix"})
    with pytest.raises(ValueError, match="outputs.tar.gz"):
        job(outputs={"status.json": OUTS["status.json"]})


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
        assert meta["annotations"]["reprolab.org/run-id"] == RUN_ID
    assert manifest["metadata"]["name"] == f"reprolab-run-{RUN_ID}"
    odd = m.job_name("Run_ID.with.DOTS" * 5)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", odd) and len(odd) <= 52
    assert m.job_name("A_b") != m.job_name("a-b")
    with pytest.raises(ValueError, match="label value"):
        m.run_labels("x" * 64)


def test_network_policy_denies_everything_unless_the_run_asks_for_network() -> None:
    assert m.make_network_policy(run_id=RUN_ID, namespace="runs", network=True) is None
    assert POLICY is not None
    spec = POLICY["spec"]
    assert spec["podSelector"] == {"matchLabels": {"reprolab.org/run-id": RUN_ID}}
    selected = job()["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= selected.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == [] and spec["egress"] == []
    assert POLICY["metadata"]["name"] == job()["metadata"]["name"]
    assert POLICY_WITH_STORE is not None
    egress = POLICY_WITH_STORE["spec"]["egress"]
    assert egress[0] == {"to": [{"ipBlock": {"cidr": "10.0.5.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    assert {p["port"] for p in egress[1]["ports"]} == {53}


def test_rbac_is_namespaced_and_minimal() -> None:
    sa, role, binding = m.make_runner_rbac("runs")
    assert {o["metadata"]["namespace"] for o in (sa, role, binding)} == {"runs"}
    assert role["kind"] == "Role"  # never a ClusterRole
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("batch", "jobs"), ("", "pods"), ("", "pods/log"), ("networking.k8s.io", "networkpolicies"),
                       ("", "secrets")}
    assert not any("*" in rule["verbs"] for rule in role["rules"])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reprolab-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "runs"}]


def test_registered() -> None:
    assert target_class("kubernetes") is KubernetesTarget


# -- the control loop against the FAKE API server ----------------------------------------------------

LOG = b"loading iris\naccuracy 0.97\n"


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the target uses."""
    kmock.resources["batch/v1/jobs"] = {"namespaced": True, "kind": "Job",
                                        "verbs": {"create", "get", "list", "delete"}}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": {"list", "get"},
                                  "subresources": {"log"}}
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = {"namespaced": True, "kind": "NetworkPolicy",
                                                               "verbs": {"create", "get", "delete"}}
    kmock.resources["v1/secrets"] = {"namespaced": True, "kind": "Secret", "verbs": {"create", "delete"}}
    kmock["get", re.compile(r"/api/v1/namespaces/[^/]+/pods/[^/]+/log")] << LOG
    return kmock


def make_target(kmock: Any, registry_auth_file: Path | None = None) -> KubernetesTarget:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    settings = SimpleNamespace(registry_auth_file=registry_auth_file) if registry_auth_file else None
    return KubernetesTarget(settings, namespace="runs", api_client=kubernetes.client.ApiClient(configuration))


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


def finish(kmock: Any, handle: str, pod_status: dict[str, Any], job_status: dict[str, Any]) -> None:
    """Play the Job controller and kubelet of the FAKE: add the run's pod and the Job's status."""
    namespace, name = handle.split("/")
    obj = kmock.objects[JOBS, namespace, name]
    template = obj.raw["spec"]["template"]
    kmock.objects[PODS, namespace, f"{name}-x7k2p"] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-x7k2p", "namespace": namespace, "labels": template["metadata"]["labels"],
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": template["spec"], "status": pod_status,
    }
    obj.patch({"status": job_status})


def completed(run_exit_code: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"phase": "Succeeded",
             "initContainerStatuses": [_terminated(m.FETCH_CONTAINER, 0, "Completed"),
                                       _terminated(m.RUN_CONTAINER, 0, "Completed", str(run_exit_code))],
             "containerStatuses": [_terminated(m.UPLOAD_CONTAINER, 0, "Completed")]},
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})


def requests_to(kmock: Any, method: str, resource: Any) -> list[Any]:
    return [r for r in kmock[method] if r.resource == resource]


async def call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)  # the target is sync; the FAKE serves on this loop


async def test_succeeding_run_exits_with_the_code_from_the_pod(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())

    name = f"reprolab-run-{RUN_ID}"
    assert handle == f"runs/{name}"
    created = fake_k8s.objects[JOBS, "runs", name].history[0].raw
    kubernetes_validate.validate(dict(created), K8S_VERSION, strict=True)
    assert created["spec"]["activeDeadlineSeconds"] == 60
    assert (POLICIES, "runs", name) in fake_k8s.objects  # created, and before the Job
    kinds = [r.resource for r in fake_k8s["post"]]
    assert kinds == [POLICIES, JOBS]

    assert (await call(target.status, handle)).state == State.PENDING
    finish(fake_k8s, handle, *completed(3))
    status = await call(target.status, handle)
    assert status.state == State.EXITED and status.exit_code == 3 and not status.timed_out

    assert await call(lambda: list(target.logs(handle))) == ["loading iris", "accuracy 0.97"]
    (log_request,) = [r for r in fake_k8s["get"] if r.url.path.endswith("/log")]
    assert log_request.params["container"] == m.RUN_CONTAINER


async def test_deadline_exceeded_is_a_timeout(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    finish(fake_k8s, handle,
           {"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than "
            "the specified deadline", "initContainerStatuses": [_terminated(m.FETCH_CONTAINER, 0, "Completed"),
                                                                _terminated(m.RUN_CONTAINER, 137, "Error")]},
           {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                         "message": "Job was active longer than specified deadline"}]})
    status = await call(target.status, handle)
    assert status.state == State.EXITED and status.timed_out
    assert "deadline" in status.reason


async def test_failed_pod_is_a_target_failure_with_its_message(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    finish(fake_k8s, handle,
           {"phase": "Failed", "initContainerStatuses": [
               _terminated(m.FETCH_CONTAINER, 22, "Error", "curl: (22) The requested URL returned error: 403\n")]},
           {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]})
    status = await call(target.status, handle)
    assert status.state == State.FAILED and status.exit_code is None
    assert "fetch-inputs exited 22 (Error): curl: (22) The requested URL returned error: 403" in status.reason
    assert "BackoffLimitExceeded" in status.reason


async def test_network_run_has_no_policy(fake_k8s: Any) -> None:
    handle = await call(make_target(fake_k8s).submit, request(network=True))
    assert not requests_to(fake_k8s, "post", POLICIES)
    assert (JOBS, "runs", handle.split("/")[1]) in fake_k8s.objects


async def test_the_kubelet_pulls_with_a_grant_for_the_runs_image_only(fake_k8s: Any, tmp_path: Path) -> None:
    """The run's own dockerconfigjson Secret, created before its Job, holds a pull grant for the run's one
    repository (never the runner's password); without registry credentials there is no Secret."""
    import base64

    handle = await call(make_target(fake_k8s, runner_auth(tmp_path)).submit, request())
    name = handle.split("/")[1]
    assert [r.resource for r in fake_k8s["post"]] == [POLICIES, SECRETS, JOBS]
    secret = fake_k8s.objects[SECRETS, "runs", name].history[0].raw
    kubernetes_validate.validate(dict(secret), K8S_VERSION, strict=True)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    username, _, grant = base64.b64decode(config["auths"]["registry.example.org"]["auth"]).decode().partition(":")
    assert username == rt.GRANT_USER and "runner-pw" not in json.dumps(config)
    assert rt.check_grant("runner-pw", grant) == "ws/env"
    job_spec = fake_k8s.objects[JOBS, "runs", name].history[0].raw["spec"]["template"]["spec"]
    assert job_spec["imagePullSecrets"] == [{"name": name}]

    other = await call(make_target(fake_k8s).submit, request("run-3"))
    assert "imagePullSecrets" not in fake_k8s.objects[JOBS, "runs", other.split("/")[1]].raw["spec"]["template"]["spec"]
    assert len(requests_to(fake_k8s, "post", SECRETS)) == 1


async def test_cancel_and_cleanup_delete_in_the_background(fake_k8s: Any, tmp_path: Path) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    name = handle.split("/")[1]

    await call(target.cancel, handle)
    (delete,) = requests_to(fake_k8s, "delete", JOBS)
    assert (delete.namespace, delete.name) == ("runs", name)
    assert delete.data["propagationPolicy"] == "Background"
    assert fake_k8s.objects[JOBS, "runs", name].deleted
    assert (await call(target.status, handle)).state == State.GONE

    await call(target.cleanup, handle)
    await call(target.cleanup, handle)  # idempotent: 404s are fine
    deletes = [(r.resource, r.name, r.data["propagationPolicy"]) for r in fake_k8s["delete"]]
    cleanup = [(JOBS, name, "Background"), (POLICIES, name, "Background"), (SECRETS, name, "Background")]
    assert deletes == [(JOBS, name, "Background"), *cleanup, *cleanup]
    assert fake_k8s.objects[POLICIES, "runs", name].deleted

    dest = tmp_path / "outputs"
    await call(target.collect, handle, dest)  # nothing to copy: the uploader put the outputs in the store
    assert dest.is_dir() and not any(dest.iterdir())


async def test_owned_finds_jobs_by_label(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    first = await call(target.submit, request())
    second = await call(target.submit, request("run-2"))
    # Someone else's Job in the namespace: the FAKE ignores label selectors, the target does not.
    fake_k8s.objects[JOBS, "runs", "unrelated"] = {"apiVersion": "batch/v1", "kind": "Job",
                                                   "metadata": {"name": "unrelated", "namespace": "runs"}}
    owned = await call(target.owned)
    assert {(o.run_id, o.handle) for o in owned} == {(RUN_ID, first), ("run-2", second)}
    (listing,) = requests_to(fake_k8s, "get", JOBS)
    assert listing.params["labelSelector"] == "reprolab.org/run-id,app.kubernetes.io/managed-by=reprolab-runner"
    assert listing.namespace == "runs"


async def test_resubmitting_a_run_adopts_its_job(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    handle = await call(target.submit, request())
    assert await call(target.submit, request()) == handle
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
    """Every request the target makes in its whole life cycle (submit with and without network, status,
    logs, cancel, cleanup, owned, resubmit) is allowed by the chart's Role, and the Role allows nothing more."""
    from tests.chart.chartlib import documents, load_values, render, role_grants, used_verbs

    target = make_target(fake_k8s, runner_auth(tmp_path))
    handle = await call(target.submit, request())
    await call(target.submit, request())  # adopting the existing Job
    await call(target.submit, request("run-2", network=True))
    await call(target.status, handle)
    finish(fake_k8s, handle, *completed(0))
    await call(target.status, handle)
    await call(lambda: list(target.logs(handle)))
    await call(target.owned)
    await call(target.cancel, handle)
    await call(target.cleanup, handle)

    docs = documents(render(load_values("required.yaml")))
    used = used_verbs(fake_k8s)
    assert ("networking.k8s.io", "networkpolicies", "create") in used and ("", "pods/log", "get") in used
    assert role_grants(docs, "rl-reprolab-runner") == used
