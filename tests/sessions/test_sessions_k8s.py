"""Kubernetes sessions: the manifests as data (strict schemas 1.29-1.37, Pod Security "restricted") and the
control loop against a FAKE Kubernetes API server (kmock's emulator, real HTTP). The activity container's
server (layer/agentd.py) runs here as a real process on this host for the runner's side of /chain and
/capture; the pod itself, both containers, is executed with `podman kube play` in test_sessions_k8s_pod.py,
which has the built session image."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kmock as kmocklib
import kubernetes
import kubernetes_validate
import pytest
from reprolab_common.natsserver import free_port, stop_child
from reprolab_runner.sessions import activity, manifests
from reprolab_runner.sessions.kube import RUNNER_LABELS, KubernetesSessions
from reprolab_runner.sessions.manager import LAYER_DIR
from reprolab_runner.sessions.targets import SessionSpec, home_key
from reprolab_runner.targets.base import TargetError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
from podsecurity import restricted_violations  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "services/builder/src/reprolab_builder/agent/agent.py"
K8S_VERSIONS = [f"1.{minor}.0" for minor in range(29, 38)]
SID = "0b6a1c3e-5a7e-4f7e-9d2a-3c1f2e4d5b6a"
PODS = kmocklib.resource("v1/pods")
SERVICES = kmocklib.resource("v1/services")
SECRETS = kmocklib.resource("v1/secrets")
CLAIMS = kmocklib.resource("v1/persistentvolumeclaims")
POLICIES = kmocklib.resource("networking.k8s.io/v1/networkpolicies")


def spec(network: str = "index", sid: str = SID) -> SessionSpec:
    return SessionSpec(session_id=sid, workspace="course", owner_id="user-1", token="t0ken" * 8,
                       image="registry.example.org/course/py@sha256:" + "ab" * 32, cpu_millis=1500,
                       memory_bytes=2 << 30, pids=512, network=network)


def everything(network: str = "index") -> list[dict[str, Any]]:
    key = home_key("inst", "course", "user-1")
    common = {"namespace": "sessions", "installation": "inst", "home_key": key}
    return [manifests.home_claim(home_key=key, namespace="sessions", size_bytes=5 << 30, installation="inst"),
            manifests.token_secret(spec(network), agent_token="a9" * 20, **common),
            manifests.pod(spec(network), **common), manifests.service(spec(network), **common),
            manifests.network_policy(spec(network), index_cidrs=["151.101.0.0/16"],
                                     gateway_labels={"app.kubernetes.io/component": "gateway"},
                                     runner_labels=RUNNER_LABELS, **common),
            *manifests.runner_rbac("sessions")]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("network", ["index", "none"])
def test_manifests_validate_strictly(version: str, network: str) -> None:
    for manifest in everything(network):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_pod_is_restricted_runs_as_the_student_and_keeps_the_entrypoint() -> None:
    pod = manifests.pod(spec(), namespace="sessions", installation="inst", home_key="k")
    assert restricted_violations(pod["spec"]) == []
    agent, c = pod["spec"]["containers"]
    assert (agent["name"], c["name"]) == ("activity", "notebook")
    assert "command" not in c and c["args"][:2] == ["python3", "/opt/reprolab/session/server.py"]
    assert f"--ServerApp.base_url=/sessions/{SID}/" in c["args"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000 and pod["spec"]["automountServiceAccountToken"] is False
    assert {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": f"session-{SID}", "key": "token"}}} \
        in c["env"]
    assert "t0ken" not in str(pod)  # the token is in the Secret only
    assert pod["spec"]["volumes"][0] == {"name": "home", "persistentVolumeClaim": {"claimName": "claim-k"}}


def test_the_activity_container_is_another_user_of_the_same_image_and_alone_holds_the_chain() -> None:
    pod = manifests.pod(spec(), namespace="sessions", installation="inst", home_key="k")
    agent, notebook = pod["spec"]["containers"]
    assert agent["image"] == notebook["image"] == spec().image  # nothing new to pull
    sc = agent["securityContext"]
    assert sc["runAsUser"] == sc["runAsGroup"] == 65534 and sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
    assert agent["command"] == ["python3", "/opt/reprolab/session/agentd.py"]
    mounts = {c["name"]: {m["mountPath"]: (m["name"], m.get("readOnly", False)) for m in c["volumeMounts"]}
              for c in (agent, notebook)}
    # the chain: in the activity container only; the socket: read-only for the notebook; the home: read-only
    # for the activity container (pip's installs land in ~/.local: the notebook's root is read-only)
    assert mounts["activity"]["/var/lib/reprolab-activity"] == ("activity", False)
    assert "activity" not in {name for name, _ in mounts["notebook"].values()}
    assert mounts["notebook"]["/run/reprolab"] == ("agent-socket", True)
    assert mounts["activity"]["/run/reprolab"] == ("agent-socket", False)
    assert mounts["activity"]["/home/student"] == ("home", True) and mounts["notebook"]["/home/student"] == \
        ("home", False)
    # the runner's token reaches the activity container only, from the Secret
    assert {"name": "REPROLAB_AGENT_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": f"session-{SID}", "key": "agent-token"}}} in agent["env"]
    assert "agent-token" not in json.dumps(notebook)
    secret = manifests.token_secret(spec(), namespace="s", installation="", home_key="k", agent_token="agent-secret")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "token": spec().token, "agent-token": "agent-secret"}
    service = manifests.service(spec(), namespace="s", installation="", home_key="k")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8888, "agent": 8890}
    # what the runner may do stays get/list/create/delete: no pods/exec
    (role,) = manifests.runner_rbac("s")
    assert not any("pods/exec" in r["resources"] for r in role["rules"])


def test_network_none_allows_no_egress_and_index_only_the_index() -> None:
    common = {"namespace": "s", "installation": "", "home_key": "k", "gateway_labels": {"a": "b"},
              "runner_labels": {"c": "d"}}
    none = manifests.network_policy(spec("none"), index_cidrs=["151.101.0.0/16"], **common)
    assert none["spec"]["egress"] == [] and none["spec"]["policyTypes"] == ["Ingress", "Egress"]
    index = manifests.network_policy(spec("index"), index_cidrs=["151.101.0.0/16"], **common)
    assert index["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "151.101.0.0/16"}}]
    # the server's port from the gateway's pods; the activity container's from the runner's pods only
    assert index["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}],
         "ports": [{"protocol": "TCP", "port": 8888}]},
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"c": "d"}}}],
         "ports": [{"protocol": "TCP", "port": 8890}]}]


def test_homes_are_per_installation_workspace_and_user() -> None:
    keys = {home_key(i, w, u) for i in ("a", "b") for w in ("w1", "w2") for u in ("u1", "u2")}
    assert len(keys) == 8
    claim = manifests.home_claim(home_key=home_key("a", "w1", "u1"), namespace="s", size_bytes=1 << 30)
    assert claim["metadata"]["name"].startswith("claim-") and "u1" not in claim["metadata"]["name"]


# -- the control loop against the FAKE API server ----------------------------------------------------


@pytest.fixture
def fake_k8s(kmock: Any) -> Any:
    """The FAKE Kubernetes API server (kmock's emulator) with the resources the session target uses."""
    verbs = {"create", "get", "list", "delete"}
    kmock.resources["v1/pods"] = {"namespaced": True, "kind": "Pod", "verbs": verbs}
    kmock.resources["v1/services"] = {"namespaced": True, "kind": "Service", "verbs": verbs}
    kmock.resources["v1/secrets"] = {"namespaced": True, "kind": "Secret", "verbs": verbs}
    kmock.resources["v1/persistentvolumeclaims"] = {"namespaced": True, "kind": "PersistentVolumeClaim",
                                                    "verbs": verbs}
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = {"namespaced": True, "kind": "NetworkPolicy",
                                                               "verbs": verbs}
    return kmock


def make_target(kmock: Any) -> KubernetesSessions:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    return KubernetesSessions(installation="inst", namespace="sessions", index_cidrs=["151.101.0.0/16"],
                              api_client=kubernetes.client.ApiClient(configuration))


async def call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)  # the target is sync; the FAKE serves on this loop


async def test_start_stop_and_restart_keep_the_home_claim(fake_k8s: Any) -> None:
    target = make_target(fake_k8s)
    started = await call(target.start, spec())
    name = f"session-{SID}"
    assert started.handle == f"sessions/{name}"
    assert started.upstream_url == f"http://{name}.sessions.svc:8888/sessions/{SID}/"
    claim = f"claim-{home_key('inst', 'course', 'user-1')}"
    for resource, obj in ((PODS, name), (SERVICES, name), (SECRETS, name), (POLICIES, name), (CLAIMS, claim)):
        assert (resource, "sessions", obj) in fake_k8s.objects, (resource, obj)
        kubernetes_validate.validate(dict(fake_k8s.objects[resource, "sessions", obj].history[0].raw),
                                     K8S_VERSIONS[-1], strict=True)
    # the policy is in place before the pod exists
    kinds = [r.resource for r in fake_k8s["post"]]
    assert kinds.index(POLICIES) < kinds.index(PODS)
    assert await call(target.owned) == {SID: started.handle}
    assert await call(target.alive, started.handle) == (True, "")

    # the kubelet of the FAKE: the server died
    fake_k8s.objects[PODS, "sessions", name].patch({"status": {"phase": "Failed", "containerStatuses": [
        {"name": "notebook", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}})
    alive, why = await call(target.alive, started.handle)
    assert not alive and "OOMKilled" in why

    await call(target.stop, started.handle)
    for resource in (PODS, SERVICES, SECRETS, POLICIES):
        assert fake_k8s.objects[resource, "sessions", name].deleted, resource
    assert not fake_k8s.objects[CLAIMS, "sessions", claim].deleted  # the home stays
    assert await call(target.alive, started.handle) == (False, "the session's pod no longer exists")
    await call(target.stop, started.handle)  # idempotent

    # a new session of the same user and workspace mounts the same claim (created once: 409 is fine)
    other = "9c1d2e3f-0000-4000-8000-000000000001"
    again = await call(target.start, spec(sid=other))
    pod = fake_k8s.objects[PODS, "sessions", f"session-{other}"].raw
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    await call(target.stop, again.handle)


# -- the runner's side of /chain and /capture: the FAKE API server and agentd as a real process ---------------


def run_agentd(root: Path, token: str) -> tuple[subprocess.Popen, str, Path]:
    """layer/agentd.py as a process of this host (the image's agent from the builder's source); (process, its
    URL, its socket) once it answers."""
    port = free_port()
    sock = root / "run" / "agent.sock"
    sock.parent.mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "REPROLAB_AGENT": str(AGENT), "REPROLAB_AGENT_SOCKET": str(sock),
           "REPROLAB_ACTIVITY_DIR": str(root / "chain"), "REPROLAB_AGENT_PORT": str(port),
           "REPROLAB_AGENT_TOKEN": token, "REPROLAB_SESSION_COMMAND": json.dumps(["python3", "server.py"])}
    proc = subprocess.Popen([sys.executable, str(LAYER_DIR / "agentd.py")], env=env, start_new_session=True,
                            stdout=open(root / "agentd.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (root / "agentd.log").read_text()
        try:
            if httpx.get(url + "/chain").status_code == 401 and sock.exists():
                return proc, url, sock
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, (root / "agentd.log").read_text()
        time.sleep(0.05)


def send_record(sock: Path, kind: str, details: dict) -> dict:
    """One request as the image's agent sends it (``agent.record`` over the socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(json.dumps({"kind": kind, "details": details}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


async def test_chain_and_capture_come_from_the_activity_container_with_the_secrets_token(
        fake_k8s: Any, tmp_path: Path) -> None:
    box: dict[str, str] = {}
    target = make_target(fake_k8s)
    target._agent_url = lambda name: box[name]  # the Service's DNS name does not resolve here
    started = await call(target.start, spec())
    name = started.handle.split("/")[1]
    secret = fake_k8s.objects[SECRETS, "sessions", name].raw
    assert "stringData" not in secret and set(secret["data"]) == {"token", "agent-token"}
    token = base64.b64decode(secret["data"]["agent-token"]).decode()
    assert len(token) >= 40 and token not in json.dumps(fake_k8s.objects[PODS, "sessions", name].raw)
    proc, url, sock = run_agentd(tmp_path, token)
    box[name] = url
    try:
        # the kernel's cell recorder and the pip wrapper send what they send locally; bad requests are refused
        assert "seq" in send_record(sock, "cell", {"code_sha256": "0" * 64, "status": "ok", "uid": 0})
        assert "seq" in send_record(sock, "install", {"tool": "pip", "command": ["pip", "install", "x"]})
        assert send_record(sock, "chain.started", {}) == {"error": "bad request"}
        assert "error" in send_record(sock, "cell", ["not", "a", "dict"])  # type: ignore[arg-type]

        raw = await call(target.activity_chain, started.handle)
        entries, ok = activity.parse(raw)
        assert ok and [e["kind"] for e in entries] == ["chain.started", "session", "cell", "install"]
        assert entries[2]["details"]["uid"] == os.getuid()  # the kernel's word (SO_PEERCRED), not the client's

        # no token, a wrong one, another method: refused, and nothing is written
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/chain")).status_code == 401
            wrong = {"Authorization": "Bearer " + "x" * len(token)}
            assert (await http.get("/chain", headers=wrong)).status_code == 401
            right = {"Authorization": f"Bearer {token}"}
            assert (await http.post("/chain", headers=right)).status_code == 405
            assert (await http.get("/nothing", headers=right)).status_code == 404

        # capture runs the agent's own `env capture --json`: this host has no image baseline, and the runner
        # says what the agent said
        with pytest.raises(TargetError, match="no Reprolab baseline"):
            await call(target.capture, started.handle)

        # a restarted runner knows no token: it reads it back from the Secret
        restarted = make_target(fake_k8s)
        restarted._agent_url = target._agent_url
        assert await call(restarted.activity_chain, started.handle) == raw
        assert token not in (tmp_path / "agentd.log").read_text()  # never in the log

        # the recorder ended: the session is not alive (its cells would go unrecorded)
        fake_k8s.objects[PODS, "sessions", name].patch({"status": {"phase": "Running", "containerStatuses": [
            {"name": "activity", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "reason": "Error"}}},
            {"name": "notebook", "image": "i", "imageID": "", "ready": True, "restartCount": 0,
             "state": {"running": {}}}]}})
        assert await call(target.alive, started.handle) == (
            False, "the session's activity recorder ended (Error)")
    finally:
        stop_child(proc)
    # unreachable recorder: no chain (said in the log), capture says why
    assert await call(target.activity_chain, started.handle) == b""
    with pytest.raises(TargetError, match="unreachable"):
        await call(target.capture, started.handle)
    await call(target.stop, started.handle)
    later = make_target(fake_k8s)
    later._agent_url = target._agent_url
    assert await call(later.activity_chain, started.handle) == b""  # the Secret is gone with the session
    with pytest.raises(TargetError, match="no longer exists"):
        await call(later.capture, started.handle)
